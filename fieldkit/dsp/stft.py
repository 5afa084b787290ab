"""Framing and the short-time power spectrum, computed block by block.

Axes: a clip is a 1-D float array ``(samples,)``; a batch of equal-length clips is
``(clips, samples)``. Frames follow librosa 0.11: with ``center=True`` the signal is padded by
``n_fft // 2`` samples on each side (``pad_mode``) and frame ``t`` starts at ``t * hop_length``
in the padded signal; there are ``1 + (padded_length - n_fft) // hop_length`` frames. Spectra
are time-major, ``(..., frames, n_fft // 2 + 1)``, to match the Zarr layout (clip, frame, bin).

The FFT runs on blocks of about :data:`BLOCK_FRAMES` frames so that its working set stays in
the L2 cache (see ``docs/notes/performance.md``: the whole-signal FFT was ~1.5x slower).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.fft

from fieldkit.config.params import FeatureParams
from fieldkit.dsp.filters import window
from fieldkit.errors import ValidationError

__all__ = [
    "BLOCK_FRAMES",
    "as_clips",
    "frame_count",
    "frames",
    "pad_clips",
    "power_blocks",
    "stft_power",
]

#: Frames per FFT block: 128 frames of 1024 float32 samples is ~0.5 MB per temporary.
BLOCK_FRAMES = 128


def as_clips(samples: np.ndarray) -> tuple[np.ndarray, bool]:
    """View a clip or a batch of clips as float32 ``(clips, samples)``.

    Returns the 2-D array (a copy only when a dtype conversion is needed) and whether the
    input was already a batch.
    """
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or not np.issubdtype(x.dtype, np.floating):
        raise ValidationError(
            f"expected float samples shaped (samples,) or (clips, samples); "
            f"got dtype {x.dtype} with shape {x.shape}. Normalise with fieldkit.dsp.bitdepth."
        )
    return np.asarray(x.reshape(-1, x.shape[-1]), dtype=np.float32), x.ndim == 2


def frame_count(n_samples: int, params: FeatureParams) -> int:
    """Number of STFT frames of a clip of ``n_samples`` samples (0 if too short, uncentred)."""
    padded = n_samples + (2 * (params.n_fft // 2) if params.center else 0)
    return max(0, 1 + (padded - params.n_fft) // params.hop_length)


def pad_clips(clips: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Pad each clip by n_fft // 2 on both sides when ``params.center`` (librosa's framing)."""
    if not params.center:
        return clips
    pad = params.n_fft // 2
    return np.pad(clips, [(0, 0), (pad, pad)], mode=params.pad_mode)


def frames(clips: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Read-only strided view of the (padded) frames, shape (clips, frames, n_fft)."""
    n = clips.shape[-1]
    if frame_count(n, params) < 1:
        raise ValidationError(
            f"a clip of {n} samples is shorter than n_fft={params.n_fft} with center=False; "
            "use longer clips, a smaller n_fft or center=True."
        )
    view = np.lib.stride_tricks.sliding_window_view(pad_clips(clips, params), params.n_fft, axis=-1)
    return view[:, :: params.hop_length]


def power_blocks(
    clips: np.ndarray, params: FeatureParams, block_frames: int = BLOCK_FRAMES
) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Yield ``(clip_slice, frame_slice, power)`` over blocks of the STFT power spectrum.

    ``power`` is ``|rfft(window * frame)|**2`` in float32, shape (clips_in_block,
    frames_in_block, n_fft // 2 + 1). Short clips are grouped so each block holds about
    ``block_frames`` frames; long clips are split along frames.
    """
    framed = frames(clips, params)
    win = window(params.window, params.frame_length, params.n_fft, params.fft_precision)
    n_clips, n_frames = framed.shape[:2]
    per_block = max(1, block_frames // n_frames)
    frame_step = n_frames if per_block > 1 else block_frames
    for c0 in range(0, n_clips, per_block):
        cs = slice(c0, min(c0 + per_block, n_clips))
        for t0 in range(0, n_frames, frame_step):
            ts = slice(t0, min(t0 + frame_step, n_frames))
            yield cs, ts, _power(framed[cs, ts], win)


def _power(block: np.ndarray, win: np.ndarray) -> np.ndarray:
    # The product takes the window's precision: float64 reproduces librosa (float64 window
    # and FFT) to rounding even where a float32 FFT's noise floor (~1e-7 of the frame's peak)
    # would show, e.g. the far sidelobes that set the bandwidth of a pure synthetic tone.
    spec = scipy.fft.rfft(block * win, axis=-1, overwrite_x=True)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    return power if power.dtype == np.float32 else power.astype(np.float32)


def stft_power(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Short-time power spectrum ``|STFT|**2``.

    Parameters
    ----------
    samples : ndarray, float, shape (samples,) or (clips, samples)
        Audio in [-1, 1] (full scale).
    params : FeatureParams
        Framing parameters (n_fft, hop_length, win_length, window, center, pad_mode).

    Returns
    -------
    ndarray, float32, shape (frames, n_fft // 2 + 1) or (clips, frames, n_fft // 2 + 1)
        Equals ``np.abs(librosa.stft(samples, ...)).T ** 2`` (time-major).
    """
    clips, batched = as_clips(samples)
    n_bins = params.n_fft // 2 + 1
    out = np.empty((clips.shape[0], frame_count(clips.shape[-1], params), n_bins), np.float32)
    for cs, ts, power in power_blocks(clips, params):
        out[cs, ts] = power
    return out if batched else out[0]
