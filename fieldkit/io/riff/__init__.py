"""RIFF/WAVE containers: a tolerant chunk walk and the verdict on a file's layout."""
