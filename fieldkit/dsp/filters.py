"""Cached analysis constants: windows, mel and chroma filter banks, DCT matrix, frequencies.

The constructions are those of librosa 0.11 (``librosa.filters.mel`` with Slaney scale and
Slaney area normalisation, ``librosa.filters.chroma``, ``scipy.signal.get_window(...,
fftbins=True)`` centred in the FFT frame, ``scipy.fft.dct(type=2, norm="ortho")``), written in
numpy so that a worker imports neither librosa (and numba, ~2 s) nor scipy.signal (~0.5-1 s)
just to build them; the tests check them against librosa and scipy. Every function is cached
on hashable arguments and returns a read-only array, so a cached constant can be shared by
every call without being changed by one.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

__all__ = ["fft_frequencies", "window", "mel_basis", "chroma_basis", "dct_matrix"]

_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz (Hz per mel)
_MIN_LOG_HZ = 1000.0
_LOGSTEP = np.log(6.4) / 27.0  # log-spaced above 1 kHz


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _hz_to_mel(f_hz: np.ndarray) -> np.ndarray:
    f_hz = np.asarray(f_hz, dtype=np.float64)
    log_part = _MIN_LOG_HZ / _F_SP + np.log(np.maximum(f_hz, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f_hz >= _MIN_LOG_HZ, log_part, f_hz / _F_SP)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    min_log_mel = _MIN_LOG_HZ / _F_SP
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log_part, _F_SP * mel)


@functools.lru_cache(maxsize=32)
def fft_frequencies(sample_rate_hz: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each rFFT bin, float64, shape (n_fft // 2 + 1,)."""
    return _frozen(np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz))


#: Periodic generalised cosine windows: w[n] = sum_k (-1)**k a_k cos(2 pi k n / M)
#: (scipy.signal.windows coefficients).
_COSINE_WINDOWS = {
    "boxcar": (1.0,),
    "hann": (0.5, 0.5),
    "hamming": (0.54, 0.46),
    "blackman": (0.42, 0.50, 0.08),
    "blackmanharris": (0.35875, 0.48829, 0.14128, 0.01168),
    "nuttall": (0.3635819, 0.4891775, 0.1365995, 0.0106411),
}


def _periodic_window(name: str, length: int) -> np.ndarray:
    """``scipy.signal.get_window(name, length, fftbins=True)`` for the names in params.WINDOWS."""
    if length == 1:
        return np.ones(1)
    if name == "bartlett":  # triangle of length + 1 points without its last point
        n = np.arange(length, dtype=np.float64)
        return 1.0 - np.abs(2.0 * n / length - 1.0)
    fac = np.linspace(-np.pi, np.pi, length + 1)[:-1]  # scipy's phase grid, periodic
    coefficients = _COSINE_WINDOWS[name]
    return sum(a * np.cos(k * fac) for k, a in enumerate(coefficients))


@functools.lru_cache(maxsize=32)
def window(name: str, win_length: int, n_fft: int, dtype: str = "float64") -> np.ndarray:
    """Periodic analysis window zero-padded (centred) to n_fft, shape (n_fft,).

    ``dtype`` is ``"float64"`` (librosa's window) or ``"float32"``.
    """
    win = _periodic_window(name, win_length)
    left = (n_fft - win_length) // 2
    padded = np.zeros(n_fft, dtype=np.float64)
    padded[left : left + win_length] = win
    return _frozen(padded.astype(dtype))


@functools.lru_cache(maxsize=32)
def mel_basis(
    sample_rate_hz: float, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float | None
) -> np.ndarray:
    """Slaney mel filter bank, area-normalised, float32, shape (n_mels, n_fft // 2 + 1).

    Same as ``librosa.filters.mel(sr=..., n_fft=..., n_mels=..., fmin=..., fmax=...)``.
    """
    fmax = sample_rate_hz / 2.0 if fmax_hz is None else fmax_hz
    fft_f = fft_frequencies(sample_rate_hz, n_fft)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin_hz), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # in float32, as librosa does
    return _frozen(weights)


@functools.lru_cache(maxsize=32)
def chroma_basis(sample_rate_hz: float, n_fft: int, n_chroma: int, tuning: float) -> np.ndarray:
    """STFT chroma filter bank, float32, shape (n_chroma, n_fft // 2 + 1).

    Same as ``librosa.filters.chroma(sr=..., n_fft=..., n_chroma=..., tuning=...)`` with its
    defaults (centre octave 5, octave width 2, L2-normalised columns, bin 0 = C).
    """
    freqs = np.linspace(0, sample_rate_hz, n_fft, endpoint=False)[1:]
    a440_hz = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(freqs / (a440_hz / 16.0))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidth = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1.0]))
    half = np.round(n_chroma / 2.0)
    dist = frqbins[None, :] - np.arange(n_chroma, dtype=np.float64)[:, None]
    dist = np.remainder(dist + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * dist / binwidth[None, :]) ** 2)
    norms = np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights /= np.where(norms < np.finfo(np.float64).tiny, 1.0, norms)
    weights *= np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    return _frozen(np.ascontiguousarray(weights[:, : n_fft // 2 + 1], dtype=np.float32))


@functools.lru_cache(maxsize=32)
def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix, float32, shape (n_mels, n_mfcc): ``mfcc = logmel @ M``."""
    dct = scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]
    return _frozen(np.ascontiguousarray(dct.T, dtype=np.float32))
