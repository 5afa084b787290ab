"""Audio files: probe (what a file really is and how much of it is there), sample scans, block streams, ffmpeg decoding."""
