"""fieldkit."""
