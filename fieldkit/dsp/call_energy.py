"""A simple energy/band call detector: where in a recording are the (bat) calls?

Band-pass (4th-order Butterworth, zero phase) to the call band, mean-square energy in short
frames, in dB re full scale; the noise floor is the median frame (most frames of a triggered
bat recording hold no call); frames more than ``threshold_db`` above it are call frames, runs
of them closer than ``merge_gap_s`` are merged and runs shorter than ``min_duration_s``
dropped. Enough to centre a listening preview on a call and to tune a heterodyne to it; not a
species classifier. Its parameters are a frozen dataclass saved with every preview.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.signal

from fieldkit.dsp.channels import as_channels
from fieldkit.errors import ConfigError

__all__ = ["CallDetectorParams", "CallEvent", "band_energy_db", "call_window", "detect_calls"]


@dataclass(frozen=True)
class CallDetectorParams:
    """Band (Hz; the top is capped at 0.45 x the sample rate), frame, threshold above the median
    frame (dB), shortest call and longest gap inside one call (s), quietest call frame (dB re
    full scale)."""

    band_low_hz: float = 15_000.0
    band_high_hz: float = 120_000.0
    frame_s: float = 0.001
    threshold_db: float = 12.0
    min_duration_s: float = 0.001
    merge_gap_s: float = 0.005
    min_level_db: float = -80.0  # a near-silent file has no calls, however far above its floor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def band(self, rate_hz: float) -> tuple[float, float]:
        high = min(self.band_high_hz, 0.45 * rate_hz)
        if not (0 < self.band_low_hz < high):
            raise ConfigError(f"call band {self.band_low_hz:g}-{self.band_high_hz:g} Hz is empty at a sample rate of "
                              f"{rate_hz:g} Hz; expected 0 < low < 0.45 x the rate.")
        return self.band_low_hz, high


@dataclass(frozen=True)
class CallEvent:
    """A detected call: start, end and loudest frame (s), its level (dB re full scale) and the
    peak frequency of its spectrum (Hz)."""

    start_s: float
    end_s: float
    peak_s: float
    peak_db: float
    peak_hz: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _band_passed(samples: np.ndarray, rate_hz: float, params: CallDetectorParams) -> np.ndarray:
    mono = as_channels(np.asarray(samples, np.float64)).mean(axis=0)
    sos = scipy.signal.butter(4, params.band(rate_hz), btype="bandpass", fs=rate_hz, output="sos")
    return scipy.signal.sosfiltfilt(sos, mono)


def band_energy_db(samples: np.ndarray, rate_hz: float,
                   params: CallDetectorParams = CallDetectorParams()) -> tuple[np.ndarray, np.ndarray]:
    """Frame start times (s) and band energy per frame (dB re full scale, mean square)."""
    x = _band_passed(samples, rate_hz, params)
    n = max(1, round(params.frame_s * rate_hz))
    frames = x[: x.size // n * n].reshape(-1, n)
    power = np.mean(frames ** 2, axis=1)
    return np.arange(frames.shape[0]) * n / rate_hz, 10 * np.log10(np.maximum(power, 1e-20))


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def detect_calls(samples: np.ndarray, rate_hz: float,
                 params: CallDetectorParams = CallDetectorParams()) -> list[CallEvent]:
    """Calls in ``samples`` (float full scale, (frames,) or (channels, frames)), in time order."""
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f"rate_hz = {rate_hz!r} is invalid; expected a number of Hz > 0.")
    times, db = band_energy_db(samples, rate_hz, params)
    if db.size == 0:
        return []
    loud = (db > np.median(db) + params.threshold_db) & (db > params.min_level_db)
    gap = max(0, round(params.merge_gap_s / params.frame_s))
    runs: list[list[int]] = []
    for a, b in _runs(loud):
        if runs and a - runs[-1][1] <= gap:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    x = _band_passed(samples, rate_hz, params)
    n = max(1, round(params.frame_s * rate_hz))
    events = []
    for a, b in runs:
        if (b - a) * params.frame_s < params.min_duration_s:
            continue
        k = a + int(np.argmax(db[a:b]))
        seg = x[a * n: b * n]
        spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size), max(seg.size, 4096)))
        freqs = np.fft.rfftfreq(max(seg.size, 4096), 1.0 / rate_hz)
        events.append(CallEvent(float(times[a]), float(times[a] + (b - a) * n / rate_hz),
                                float(times[k] + n / 2 / rate_hz), float(db[k]), float(freqs[np.argmax(spectrum)])))
    return events


def call_window(samples: np.ndarray, rate_hz: float, duration_s: float,
                params: CallDetectorParams = CallDetectorParams()) -> tuple[float, CallEvent | None, int]:
    """Start (s) of a ``duration_s`` window centred on the loudest call (kept inside the
    samples), that call (None: start 0) and the number of calls found."""
    events = detect_calls(samples, rate_hz, params)
    if not events:
        return 0.0, None, 0
    best = max(events, key=lambda e: e.peak_db)
    total_s = np.asarray(samples).shape[-1] / rate_hz
    return max(0.0, min(best.peak_s - duration_s / 2, total_s - duration_s)), best, len(events)
