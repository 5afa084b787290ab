"""Synthetic signals with known answers, for tests across fieldkit.

Signals are float32 ``(frames,)`` in full-scale units unless said otherwise; multichannel
signals are ``(channels, frames)`` (fieldkit's convention). The clipping helpers return the
samples in an integer or float format together with the exact clipping they contain,
derived from how the signal was built (an independent, plain-Python count of runs), so a
detector can be checked against the truth rather than against itself.

Formats (``fmt``): ``"int16"``, ``"int24"`` (24-bit codes in an int32 container,
left-justified like soundfile returns them unless ``left_justified=False``), ``"int32"``,
``"float32"``, ``"float64"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.signal

__all__ = [
    "FORMATS",
    "KnownClipping",
    "tone",
    "chirp",
    "white_noise",
    "silence",
    "with_dc",
    "clipped_tone",
    "clip_bursts",
    "runs_of",
    "peak_hz",
]

FORMATS = {"int16": (np.int16, 16), "int24": (np.int32, 24), "int32": (np.int32, 32),
           "float32": (np.float32, 0), "float64": (np.float64, 0)}


def _times(duration_s: float, sample_rate_hz: float) -> np.ndarray:
    return np.arange(int(round(duration_s * sample_rate_hz))) / float(sample_rate_hz)


def tone(
    freq_hz: float,
    duration_s: float,
    sample_rate_hz: float,
    amplitude: float = 0.5,
    phase: float = 0.0,
) -> np.ndarray:
    """``amplitude * sin(2 pi freq_hz t + phase)``, float32 (frames,); phase in radians."""
    t = _times(duration_s, sample_rate_hz)
    return (amplitude * np.sin(2 * np.pi * freq_hz * t + phase)).astype(np.float32)


def chirp(
    f0_hz: float,
    f1_hz: float,
    duration_s: float,
    sample_rate_hz: float,
    amplitude: float = 0.5,
    method: str = "linear",
) -> np.ndarray:
    """Sweep from f0_hz at t=0 to f1_hz at the end (scipy.signal.chirp), float32 (frames,)."""
    t = _times(duration_s, sample_rate_hz)
    sweep = scipy.signal.chirp(t, f0=f0_hz, t1=max(duration_s, 1e-12), f1=f1_hz, method=method)
    return (amplitude * sweep).astype(np.float32)


def white_noise(
    duration_s: float, sample_rate_hz: float, rms: float = 0.1, seed: int = 0, channels: int = 0
) -> np.ndarray:
    """Gaussian white noise of the given RMS (full scale), seeded; (frames,) or (channels, frames).

    ``channels=0`` gives a 1-D array.
    """
    n = int(round(duration_s * sample_rate_hz))
    shape = (channels, n) if channels else (n,)
    return (rms * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def silence(duration_s: float, sample_rate_hz: float, channels: int = 0) -> np.ndarray:
    """Exact digital silence, float32, (frames,) or (channels, frames) when channels > 0."""
    n = int(round(duration_s * sample_rate_hz))
    return np.zeros((channels, n) if channels else (n,), np.float32)


def with_dc(samples: np.ndarray, offset: float) -> np.ndarray:
    """A new array: ``samples + offset`` in the same dtype (the input is not changed)."""
    x = np.asarray(samples)
    return (x + offset).astype(x.dtype)


def peak_hz(samples: np.ndarray, rate_hz: float) -> float:
    """Frequency of the spectral peak of a 1-D signal, in Hz, to a fraction of a bin: Hann
    window, zero-padded FFT of at least 2**18 points, parabolic fit on log magnitudes."""
    n = max(2**18, samples.size)
    mag = np.abs(np.fft.rfft(np.asarray(samples, np.float64) * np.hanning(samples.size), n))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-300)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate_hz / n


def runs_of(flags: Sequence[bool]) -> tuple[tuple[int, int], ...]:
    """(start, length) of each run of true values, by a plain loop (a reference for tests)."""
    runs, start = [], None
    for i, flag in enumerate(list(flags) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i - start))
            start = None
    return tuple(runs)


@dataclasses.dataclass(frozen=True)
class KnownClipping:
    """Samples with exactly known clipping, per channel.

    Attributes
    ----------
    samples : ndarray
        (frames,) or (channels, frames) in the requested format.
    runs : tuple of tuple of (start, length)
        Every run of full-scale samples, per channel.
    bits : int or None
        Significant bits of integer formats (None for float); ``left_justified`` as built.
    """

    samples: np.ndarray
    runs: tuple[tuple[tuple[int, int], ...], ...]
    bits: int | None
    left_justified: bool = True

    def clipped_per_channel(self, min_run: int = 1) -> np.ndarray:
        """Samples in runs of at least ``min_run``, int64 (channels,)."""
        return np.array([sum(n for _, n in ch if n >= min_run) for ch in self.runs], np.int64)

    def n_runs(self, min_run: int = 1) -> np.ndarray:
        """Number of runs of at least ``min_run`` samples, int64 (channels,)."""
        return np.array([sum(1 for _, n in ch if n >= min_run) for ch in self.runs], np.int64)

    def longest_run(self, min_run: int = 1) -> np.ndarray:
        """Longest run of at least ``min_run`` samples (0 if none), int64 (channels,)."""
        return np.array([max([n for _, n in ch if n >= min_run], default=0) for ch in self.runs],
                        np.int64)


def _encode(ideal: np.ndarray, fmt: str, left_justified: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hard-clip ideal full-scale values into ``fmt``; also return the full-scale mask."""
    dtype, bits = FORMATS[fmt]
    if not bits:
        return np.clip(ideal, -1.0, 1.0).astype(dtype), np.abs(ideal) >= 1.0
    half = 2 ** (bits - 1)
    codes = np.round(ideal * half)
    at_full_scale = (codes >= half - 1) | (codes <= -half)
    codes = np.clip(codes, -half, half - 1).astype(np.int64)
    shift = 8 * np.dtype(dtype).itemsize - bits if left_justified else 0
    return (codes << shift).astype(dtype), at_full_scale


def _known(ideal: np.ndarray, fmt: str, left_justified: bool) -> KnownClipping:
    samples, mask = _encode(ideal, fmt, left_justified)
    rows = mask if mask.ndim == 2 else mask[np.newaxis, :]
    return KnownClipping(samples=samples, runs=tuple(runs_of(r.tolist()) for r in rows),
                         bits=FORMATS[fmt][1] or None, left_justified=left_justified)


def clipped_tone(
    freq_hz: float,
    duration_s: float,
    sample_rate_hz: float,
    amplitude: float | Sequence[float] = 1.5,
    fmt: str = "int16",
    phase: float = 0.0,
    left_justified: bool = True,
) -> KnownClipping:
    """A sine overdriven past full scale (amplitude > 1) and hard-clipped in ``fmt``.

    One amplitude gives (frames,); a sequence gives one channel per amplitude. Every sample
    whose ideal value reaches full scale is clipped; the truth comes from the ideal values.
    """
    amps = np.atleast_1d(np.asarray(amplitude, dtype=np.float64))
    t = _times(duration_s, sample_rate_hz)
    ideal = amps[:, None] * np.sin(2 * np.pi * freq_hz * t + phase)[None, :]
    return _known(ideal if np.ndim(amplitude) else ideal[0], fmt, left_justified)


def clip_bursts(
    n_frames: int,
    bursts: Sequence[tuple[int, int, int]],
    fmt: str = "int16",
    base_amplitude: float = 0.25,
    seed: int = 0,
    left_justified: bool = True,
) -> KnownClipping:
    """Noise below full scale with full-scale bursts at given places, (frames,).

    ``bursts`` are ``(start, length, sign)`` with sign +1 (positive full scale) or -1;
    adjacent or overlapping bursts merge into one run, as they would in a recording.
    """
    ideal = base_amplitude * np.random.default_rng(seed).uniform(-1, 1, n_frames)
    for start, length, sign in bursts:
        ideal[start : start + length] = 1.2 if sign > 0 else -1.2
    return _known(ideal, fmt, left_justified)
