"""Short-time features from one shared STFT, with librosa 0.11 definitions.

Axes (time-major, as stored in Zarr with dims (clip, frame, ...)):

- a clip is ``(samples,)`` float in [-1, 1]; a batch of equal-length clips is
  ``(clips, samples)``;
- a power spectrum is ``(..., frames, n_fft // 2 + 1)``;
- ``mel``/``logmel`` are ``(..., frames, n_mels)``, ``mfcc`` is ``(..., frames, n_mfcc)``,
  ``chroma`` is ``(..., frames, n_chroma)``, ``stft`` is ``(..., frames, n_fft // 2 + 1)``;
- ``centroid``, ``bandwidth`` (Hz) and ``rms`` (full scale) are ``(..., frames)``.

Every output is float32. Each feature equals librosa's, transposed to time-major:

=========  ====================================================================================
mel        ``librosa.feature.melspectrogram(y=..., power=power, n_mels, fmin, fmax, ...)``
logmel     ``librosa.power_to_db(mel, top_db=top_db)`` (ref 1.0, amin 1e-10), per clip
mfcc       ``librosa.feature.mfcc(y=..., n_mfcc, ...)`` (DCT-II ortho of logmel, no lifter)
centroid   ``librosa.feature.spectral_centroid(y=..., ...)`` (magnitude-weighted mean, Hz)
bandwidth  ``librosa.feature.spectral_bandwidth(y=..., p=2, ...)``
chroma     ``librosa.feature.chroma_stft(y=..., tuning=tuning, n_chroma, ...)`` (max-normalised)
rms        ``librosa.feature.rms(y=..., frame_length=n_fft, hop_length, center, pad_mode)``
stft       ``np.abs(librosa.stft(y=..., ...))``
=========  ====================================================================================

The acoustic indices (``aci``, ``ndsi``, ``ent_spectrum``...: one value per clip, or per clip and
frequency bin) come from the same power spectrum; their definitions are scikit-maad's, in
:mod:`fieldkit.dsp.indices`.

Frames whose spectrum is all zero give centroid 0, bandwidth 0 and chroma 0, as in librosa.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fieldkit.config.params import FEATURES, FeatureParams
from fieldkit.dsp import filters
from fieldkit.dsp.clips import joined
from fieldkit.dsp.indices import compute_indices
from fieldkit.dsp.stft import as_clips, frame_count, frames, pad_clips, power_blocks, stft_power
from fieldkit.errors import ValidationError

__all__ = [
    "stft_power",
    "mel",
    "power_to_db",
    "mfcc",
    "spectral_centroid",
    "spectral_bandwidth",
    "chroma",
    "rms",
    "compute_features",
]

_AMIN = 1e-10  # librosa.power_to_db's floor on power
_TINY32 = np.finfo(np.float32).tiny  # librosa.util.normalize's threshold for float32 input


def _mel_input(power: np.ndarray, exponent: float) -> np.ndarray:
    """``|X|**exponent`` from ``|X|**2`` without a second FFT."""
    if exponent == 2.0:
        return power
    if exponent == 1.0:
        return np.sqrt(power)
    return np.power(power, np.float32(exponent / 2.0))


def _chroma_bank_t(sample_rate_hz: float, params: FeatureParams) -> np.ndarray:
    return _transposed("chroma", float(sample_rate_hz), params.n_fft, params.n_chroma,
                       params.tuning)


@functools.lru_cache(maxsize=64)
def _transposed(kind: str, *args: object) -> np.ndarray:
    """Contiguous (n_bins, bands) transpose of a cached filter bank, as matmul wants it."""
    basis = filters.mel_basis(*args) if kind == "mel" else filters.chroma_basis(*args)
    out = np.ascontiguousarray(basis.T)
    out.setflags(write=False)
    return out


#: Relative cost of one more matmul call in a banded product (measured: 4 groups of 16 of 64
#: Slaney bands over 513 bins take 47 us per 128-frame block, dense 102 us, 8 groups 51 us).
_GROUP_CALL_COST = 0.06


def _mel_groups(sample_rate_hz: float, params: FeatureParams) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    return _banded("mel", float(sample_rate_hz), params.n_fft, params.n_mels, params.fmin_hz, params.fmax_hz)


@functools.lru_cache(maxsize=64)
def _banded(kind: str, *args: object) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The filter bank as groups of consecutive bands over the bins they use:
    ``(bin_lo, bin_hi, band_lo, band_hi, bank_t[bin_lo:bin_hi, band_lo:band_hi])``.

    Mel filters are triangles a few bins wide, so a product by groups skips most of the
    zeros of the dense ``(bins, bands)`` matrix; it adds the same non-zero terms (agreeing to
    float32 rounding). The number of groups (1, 2, 4 or 8) minimises the multiply-adds plus a
    cost per call.
    """
    bank_t = _transposed(kind, *args)
    n_bands = bank_t.shape[1]
    best: tuple[float, tuple] = (np.inf, ())
    for n_groups in (1, 2, 4, 8):
        if n_groups > n_bands:
            break
        groups = []
        edges = np.linspace(0, n_bands, n_groups + 1).round().astype(int)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            used = np.flatnonzero(np.any(bank_t[:, a:b] != 0, axis=1))
            lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 0)
            sub = np.ascontiguousarray(bank_t[lo:hi, a:b])
            sub.setflags(write=False)
            groups.append((lo, hi, int(a), int(b), sub))
        cost = sum((hi - lo) * (b - a) for lo, hi, a, b, _ in groups) / bank_t.size + _GROUP_CALL_COST * (n_groups - 1)
        if cost < best[0]:
            best = (cost, tuple(groups))
    return best[1]


def _apply_bank(x: np.ndarray, groups: tuple, out: np.ndarray | None = None) -> np.ndarray:
    """``x @ bank_t`` by the band groups of :func:`_banded`, into ``out`` when given."""
    if out is None:
        out = np.empty((*x.shape[:-1], groups[-1][3]), np.result_type(x.dtype, np.float32))
    for lo, hi, a, b, sub in groups:
        if hi > lo:
            out[..., a:b] = x[..., lo:hi] @ sub
        else:
            out[..., a:b] = 0
    return out


@functools.lru_cache(maxsize=32)
def _moment_matrix(sample_rate_hz: float, n_fft: int) -> np.ndarray:
    """(n_bins, 3) float64 columns 1, f, f**2: ``|X| @ M`` gives the spectral moments."""
    f = filters.fft_frequencies(sample_rate_hz, n_fft)
    out = np.ascontiguousarray(np.stack([np.ones_like(f), f, f * f], axis=1))
    out.setflags(write=False)
    return out


def mel(power: np.ndarray, sample_rate_hz: float, params: FeatureParams) -> np.ndarray:
    """Mel spectrogram from a power spectrum.

    Parameters
    ----------
    power : ndarray, float32, shape (..., frames, n_fft // 2 + 1)
        ``|STFT|**2`` from :func:`stft_power`.
    sample_rate_hz : float
        Sample rate of the clip in Hz.
    params : FeatureParams
        Uses n_fft, n_mels, fmin_hz, fmax_hz and power (the magnitude exponent).

    Returns
    -------
    ndarray, float32, shape (..., frames, n_mels)
    """
    return _apply_bank(_mel_input(power, params.power), _mel_groups(sample_rate_hz, params))


def power_to_db(mel_power: np.ndarray, top_db: float | None = 80.0) -> np.ndarray:
    """``10 log10(max(S, 1e-10))`` floored at each clip's maximum minus ``top_db`` dB.

    ``mel_power`` is (frames, bands) for one clip or (clips, frames, bands) for a batch; the
    maximum is taken per clip (as librosa called once per clip). float32 output.
    """
    db = np.log10(np.maximum(mel_power, np.float32(_AMIN)))
    db *= np.float32(10.0)
    if top_db is not None:
        peak = db.max(axis=(-2, -1), keepdims=True)
        np.maximum(db, peak - np.float32(top_db), out=db)
    return db


def mfcc(mel_power: np.ndarray, params: FeatureParams) -> np.ndarray:
    """MFCC, shape (..., frames, n_mfcc), from a mel spectrogram (..., frames, n_mels)."""
    return power_to_db(mel_power, params.top_db) @ filters.dct_matrix(params.n_mels, params.n_mfcc)


def _moments(power: np.ndarray, sample_rate_hz: float, n_fft: int) -> np.ndarray:
    """(..., frames, 3) float64: sum |X|, sum f |X|, sum f**2 |X| per frame."""
    return np.sqrt(power).astype(np.float64) @ _moment_matrix(float(sample_rate_hz), n_fft)


def _centroid_from_moments(moments: np.ndarray) -> np.ndarray:
    total = moments[..., 0]
    return moments[..., 1] / np.where(total < _TINY32, 1.0, total)


def _bandwidth_from_moments(moments: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    # sum w (f - c)**2 = sum w f**2 - c**2 for weights w summing to 1; float64 keeps the
    # cancellation harmless (relative error ~1e-12 even for a pure tone).
    total = moments[..., 0]
    second = moments[..., 2] / np.where(total < _TINY32, 1.0, total)
    return np.sqrt(np.maximum(second - centroid * centroid, 0.0))


def spectral_centroid(power: np.ndarray, sample_rate_hz: float, n_fft: int) -> np.ndarray:
    """Magnitude-weighted mean frequency in Hz, float32, shape (..., frames).

    ``power`` is (..., frames, n_fft // 2 + 1) from :func:`stft_power`.
    """
    return _centroid_from_moments(_moments(power, sample_rate_hz, n_fft)).astype(np.float32)


def spectral_bandwidth(power: np.ndarray, sample_rate_hz: float, n_fft: int) -> np.ndarray:
    """Magnitude-weighted standard deviation of frequency around the centroid, in Hz.

    float32, shape (..., frames); ``power`` is (..., frames, n_fft // 2 + 1). This is
    librosa's ``spectral_bandwidth`` with ``p=2`` and ``norm=True``.
    """
    moments = _moments(power, sample_rate_hz, n_fft)
    return _bandwidth_from_moments(moments, _centroid_from_moments(moments)).astype(np.float32)


def _max_normalise(raw: np.ndarray) -> np.ndarray:
    peak = raw.max(axis=-1, keepdims=True)
    return raw / np.where(peak < _TINY32, np.float32(1.0), peak)


def chroma(power: np.ndarray, sample_rate_hz: float, params: FeatureParams) -> np.ndarray:
    """STFT chroma with fixed tuning, each frame divided by its maximum.

    ``power`` is (..., frames, n_fft // 2 + 1); returns float32 (..., frames, n_chroma), bin 0
    is C. Uses params n_fft, n_chroma and tuning (never estimated from the signal).
    """
    return _max_normalise(power @ _chroma_bank_t(sample_rate_hz, params))


def rms(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Root-mean-square of each (unwindowed) frame of n_fft samples, in full-scale units.

    ``samples`` is (samples,) or (clips, samples); returns float32 (frames,) or
    (clips, frames), aligned with the STFT frames.
    """
    clips, batched = as_clips(samples)
    out = np.sqrt(_frame_energy(clips, params) / params.n_fft).astype(np.float32)
    return out if batched else out[0]


#: Most segments per frame for which :func:`_frame_energy` adds segment sums instead of
#: multiplying every frame out (hop 320 of n_fft 1024: 16 segments of 64 samples).
_MAX_SEGMENTS_PER_FRAME = 32


def _frame_energy(clips: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Sum of squares of each frame in float64, (clips, frames)."""
    n_frames, hop, n_fft = frame_count(clips.shape[-1], params), params.hop_length, params.n_fft
    seg = math.gcd(n_fft, hop)
    k, step = n_fft // seg, hop // seg
    if n_frames < 1 or k > _MAX_SEGMENTS_PER_FRAME:
        framed = frames(clips, params)  # raises for a clip shorter than a frame
        return np.einsum("ctn,ctn->ct", framed, framed, dtype=np.float64)
    # Frames tile into segments of gcd(n_fft, hop) samples: square and sum each sample once, then
    # add the k = n_fft / seg consecutive segments of each frame (no cancellation, unlike a
    # cumulative sum). Multiplying every frame out costs ~2x more at hop 320 of n_fft 1024.
    n_segments = (n_frames - 1) * step + k
    used = pad_clips(clips, params)[:, : n_segments * seg].reshape(clips.shape[0], n_segments, seg)
    segments = np.einsum("csn,csn->cs", used, used, dtype=np.float64)
    last = (n_frames - 1) * step + 1
    energy = segments[:, :last:step].copy()
    for j in range(1, k):
        energy += segments[:, j : j + last : step]
    return energy


#: Clips are processed in groups of about this many frames, so that the finishing steps
#: (dB, DCT, normalisation) work on cache-sized arrays even for a batch of an hour of audio.
FEATURE_GROUP_FRAMES = 2048
_SPECTRAL = frozenset(FEATURES) - {"rms"}  # every feature but rms comes from the STFT


def compute_features(
    samples: np.ndarray, sample_rate_hz: float, params: FeatureParams | None = None
) -> dict[str, np.ndarray]:
    """All requested features of a clip, or of a batch of clips, from one STFT per clip.

    Parameters
    ----------
    samples : ndarray, float, shape (samples,) or (clips, samples)
        Mono audio in full-scale units; a 2-D array is a batch of equal-length clips
        processed in one vectorised call (the fastest way to process many clips).
    sample_rate_hz : float
        Sample rate in Hz, > 0.
    params : FeatureParams, optional
        Which features (``params.compute``) and how; ``FeatureParams()`` by default.

    Returns
    -------
    dict of str to ndarray
        One float32 array per name in ``params.compute``, in that order: ``(frames, n)``
        for band features and ``(frames,)`` for centroid, bandwidth and rms, ``()`` for an
        index and ``(n_fft // 2 + 1,)`` for an index spectrum; a batch adds a leading clip axis. See the module docstring for the definitions.
    """
    params = FeatureParams() if params is None else params
    clips, batched = as_clips(samples)
    sr = _checked_rate(sample_rate_hz)
    per_group = max(1, FEATURE_GROUP_FRAMES // max(frame_count(clips.shape[-1], params), 1))
    groups = [_features_of_group(clips[i : i + per_group], sr, params)
              for i in range(0, max(clips.shape[0], 1), per_group)]  # 0 clips: one empty group
    out = {name: joined([g[name] for g in groups]) for name in params.compute}
    return out if batched else {name: value[0] for name, value in out.items()}


def _features_of_group(clips: np.ndarray, sr: float, params: FeatureParams) -> dict:
    """Features of a few clips, (clips, frames, ...): every temporary stays cache-sized."""
    acc = _allocate(clips.shape[0], frame_count(clips.shape[-1], params), params)
    if _SPECTRAL.intersection(params.compute):
        for cs, ts, power in power_blocks(clips, params):
            _accumulate(acc, power, (cs, ts), sr, params)
    out = _finish(acc, params)
    if "power" in acc:
        out.update(compute_indices(acc["power"], clips, sr, params))
    if "rms" in params.compute:
        out["rms"] = rms(clips, params)
    return out


def _checked_rate(sample_rate_hz: float) -> float:
    rate = float(sample_rate_hz)
    if not np.isfinite(rate) or rate <= 0:
        raise ValidationError(f"sample_rate_hz must be a finite number of Hz > 0; got {rate!r}.")
    return rate


def _allocate(n_clips: int, n_frames: int, params: FeatureParams) -> dict[str, np.ndarray]:
    wanted = set(params.compute)
    widths = {
        "mel": params.n_mels if wanted & {"mel", "logmel", "mfcc"} else 0,
        "chroma": params.n_chroma if "chroma" in wanted else 0,
        "stft": params.n_fft // 2 + 1 if "stft" in wanted else 0,
    }
    if params.index_names:  # indices need each clip's whole spectrogram (ACI: frame to frame)
        widths["power"] = params.n_fft // 2 + 1
    acc = {k: np.empty((n_clips, n_frames, n), np.float32) for k, n in widths.items() if n}
    if wanted & {"centroid", "bandwidth"}:
        acc["moments"] = np.empty((n_clips, n_frames, 3), np.float64)
    return acc


def _accumulate(
    acc: dict[str, np.ndarray],
    power: np.ndarray,
    where: tuple[slice, slice],
    sample_rate_hz: float,
    params: FeatureParams,
) -> None:
    """Fill one block of every accumulator from its power spectrum (writes only into acc)."""
    if "mel" in acc:
        _apply_bank(_mel_input(power, params.power), _mel_groups(sample_rate_hz, params), out=acc["mel"][where])
    if "power" in acc:
        acc["power"][where] = power
    if "chroma" in acc:
        np.matmul(power, _chroma_bank_t(sample_rate_hz, params), out=acc["chroma"][where])
    if "stft" in acc or "moments" in acc:
        magnitude = np.sqrt(power)
        if "stft" in acc:
            acc["stft"][where] = magnitude
        if "moments" in acc:
            moments_t = _moment_matrix(sample_rate_hz, params.n_fft)
            np.matmul(magnitude.astype(np.float64), moments_t, out=acc["moments"][where])


def _finish(acc: dict[str, np.ndarray], params: FeatureParams) -> dict[str, np.ndarray]:
    out = {k: acc[k] for k in ("mel", "stft") if k in acc}
    if {"logmel", "mfcc"} & set(params.compute):
        out["logmel"] = power_to_db(acc["mel"], params.top_db)
        out["mfcc"] = out["logmel"] @ filters.dct_matrix(params.n_mels, params.n_mfcc)
    if "chroma" in acc:
        out["chroma"] = _max_normalise(acc["chroma"])
    if "moments" in acc:
        centroid = _centroid_from_moments(acc["moments"])
        out["centroid"] = centroid.astype(np.float32)
        out["bandwidth"] = _bandwidth_from_moments(acc["moments"], centroid).astype(np.float32)
    return out
