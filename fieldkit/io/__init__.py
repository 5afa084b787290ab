"""Layer 2: adapters for audio files, RIFF chunks, recorder metadata and cards."""
