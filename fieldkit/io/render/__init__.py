"""Pictures and sound files for people: spectrograms, coverage charts, preview WAVs (matplotlib Agg)."""
