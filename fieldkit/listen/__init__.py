"""Layer 3: listening and looking — recording previews, data sonification, data video and the
static HTML report of a workspace."""
