"""Layer 1: pure DSP kernels (ndarray + params -> ndarray). No files, no database."""
