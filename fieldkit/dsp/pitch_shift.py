"""Pitch shift with librosa (soxr resampling), duration unchanged.

A module of its own because importing librosa costs ~2 s of numba start-up: the preview service
imports it only when a pitch shift is asked for (:func:`fieldkit.dsp.manipulate.apply`).
"""

from __future__ import annotations

import math

import librosa
import numpy as np

from fieldkit.errors import ConfigError

__all__ = ["pitch_shift"]


def pitch_shift(samples: np.ndarray, rate_hz: float, semitones: float) -> np.ndarray:
    """librosa's pitch shift by ``semitones`` (duration unchanged), soxr resampling."""
    if not math.isfinite(semitones):
        raise ConfigError(f"semitones = {semitones!r} is invalid; expected a finite number.")
    if semitones == 0:
        return np.asarray(samples, np.float32)
    y = librosa.effects.pitch_shift(np.asarray(samples, np.float32), sr=rate_hz, n_steps=semitones,
                                    res_type="soxr_hq")
    return y.astype(np.float32)
