"""Spectrograms for people to look at: window from the sample rate, dB re full scale, a fixed
dynamic range, and max-pooling when there are more columns than pixels.

- **window and hop**: about 20 ms below 96 kHz (birds, insects, soundscapes: a bird note's
  harmonics resolved to ~50 Hz) and about 1 ms at 96 kHz and above (a bat call lasts a few ms:
  a 3.3 ms window smears it), as a power of two; hop a quarter window (Hann, 75 % overlap).
- **level**: ``10 log10(2 P)`` with ``P`` scipy's one-sided power *spectrum* scaling, so a
  full-scale sine whose frequency falls on a bin reads 0 dB (dB re full scale, AES17).
- **range**: the colour scale spans ``range_db`` (80 dB) below the loudest cell; quieter cells
  are clipped to the bottom colour, so the noise floor does not take the whole scale.
- **pooling**: a picture ``N`` pixels wide cannot show more than ``N`` columns; taking every
  k-th column (nearest-neighbour) can skip a 3 ms call, so groups of columns are max-pooled
  (each pixel shows the loudest cell it stands for), and rows likewise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.signal

from fieldkit.dsp.channels import as_channels
from fieldkit.errors import ConfigError

__all__ = ["DYNAMIC_RANGE_DB", "SpectrogramView", "max_pool", "spectrogram_dbfs", "view_for_rate"]

DYNAMIC_RANGE_DB = 80.0
_ULTRASONIC_HZ = 96_000
_WINDOW_S = {False: 0.020, True: 0.001}


@dataclass(frozen=True)
class SpectrogramView:
    """Window and hop (samples) and the dynamic range (dB) of a picture."""

    n_window: int
    hop: int
    range_db: float = DYNAMIC_RANGE_DB

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def view_for_rate(rate_hz: float, range_db: float = DYNAMIC_RANGE_DB, n_window: int | None = None) -> SpectrogramView:
    """The window (a power of two near 20 ms, or 1 ms at >= 96 kHz; or ``n_window``) and a
    quarter-window hop for a sample rate."""
    if not (math.isfinite(rate_hz) and rate_hz > 0 and math.isfinite(range_db) and range_db > 0):
        raise ConfigError(f"rate {rate_hz!r} Hz and range {range_db!r} dB are invalid; expected numbers > 0.")
    if n_window is None:
        target = rate_hz * _WINDOW_S[rate_hz >= _ULTRASONIC_HZ]
        n_window = max(64, 2 ** round(math.log2(target)))
    if n_window < 16:
        raise ConfigError(f"window {n_window} samples is invalid; expected at least 16.")
    return SpectrogramView(int(n_window), max(1, int(n_window) // 4), float(range_db))


def spectrogram_dbfs(samples: np.ndarray, rate_hz: float, view: SpectrogramView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies (Hz), frame centre times (s) and levels (dB re full scale, bins x frames) of the
    channel mean, clipped to ``view.range_db`` below the maximum."""
    mono = as_channels(np.asarray(samples, dtype=np.float64)).mean(axis=0)
    n = int(min(view.n_window, max(16, mono.size)))
    hop = min(view.hop, max(1, n // 4))
    freqs, times, power = scipy.signal.spectrogram(mono, fs=rate_hz, window="hann", nperseg=n, noverlap=n - hop,
                                                   scaling="spectrum", mode="psd")
    db = 10 * np.log10(np.maximum(2.0 * power, 1e-30))
    return freqs, times, np.maximum(db, db.max() - view.range_db)


def max_pool(levels: np.ndarray, max_rows: int, max_cols: int) -> np.ndarray:
    """Shrink a (rows, cols) array to at most ``max_rows`` x ``max_cols`` by taking the maximum of
    each group of consecutive rows / columns (the last group may be shorter)."""
    out = np.asarray(levels)
    for axis, limit in ((1, max_cols), (0, max_rows)):
        size = out.shape[axis]
        if limit < 1 or size <= limit:
            continue
        k = math.ceil(size / limit)
        starts = np.arange(0, size, k)
        out = np.maximum.reduceat(out, starts, axis=axis)
    return out
