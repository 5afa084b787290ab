"""Listening previews of recordings: time expansion, heterodyne, loudness normalisation.

Pure kernels (ndarray + numbers -> ndarray + plain data); writing the WAV, its GUANO ``TE``
field and the spectrogram is :mod:`fieldkit.io.render.media`'s job. Samples are float ``(frames,)``
or ``(channels, frames)`` in full-scale units (1.0 = 0 dBFS) and come back as float32.

Two ways to hear ultrasound (bats call at 20-120 kHz, humans hear up to ~16-20 kHz):

- **time expansion** plays the *same samples* at ``rate / factor``: every frequency is divided
  by the factor and the duration multiplied by it. Nothing is computed on the samples; only the
  declared rate changes (GUANO ``TE`` records the factor, ``Samplerate`` the original rate).
- **heterodyne** multiplies by a carrier ``cos(2 pi f_c t)``, which shifts a call at ``f`` to
  ``|f - f_c|`` (and ``f + f_c``, removed by a low-pass), then resamples to an audible rate:
  real time, but only a narrow band around the carrier is heard (+-6 kHz by default), as on a
  hand-held bat detector; tuned :data:`HETERODYNE_OFFSET_HZ` below a call's peak, the call is
  heard at a few kHz.
- **frequency division** (:func:`frequency_divide`) is the other real-time method of bat
  detectors: a flip-flop toggled every N zero crossings of the (high-passed) signal makes a
  square wave at ``f / N``, scaled by the signal's envelope (amplitude-retaining division),
  so the whole band is heard at once, N times lower, in real time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyloudnorm
import scipy.ndimage
import scipy.signal

from fieldkit.dsp.channels import as_channels
from fieldkit.dsp.resample import resample
from fieldkit.errors import ConfigError, ValidationError

__all__ = [
    "AUDIBLE_DOMINANT_HZ",
    "HETERODYNE_BAND_HZ",
    "HETERODYNE_OFFSET_HZ",
    "frequency_divide",
    "high_pass",
    "BS1770_BLOCK_S",
    "MAX_PLAYBACK_RATE_HZ",
    "default_expansion_factor",
    "heterodyne",
    "loudness_normalise",
    "time_expand",
    "true_peak",
]

#: Highest playback rate a time-expanded preview should need (every sound card plays 48 kHz).
MAX_PLAYBACK_RATE_HZ = 48_000
#: Where the dominant frequency of a time-expanded call should land: well inside adult hearing
#: (20 kHz is the textbook limit, which few adults reach).
AUDIBLE_DOMINANT_HZ = 12_000.0
#: Heterodyne tuning below the call's peak: the peak is heard at this frequency (Hz).
HETERODYNE_OFFSET_HZ = 4_000.0
#: Heterodyne low-pass: the band heard either side of the carrier (a hand-held detector hears
#: a few kHz; wider lets unrelated sound in).
HETERODYNE_BAND_HZ = 6_000.0
#: BS.1770 gating block: shorter clips cannot be measured by pyloudnorm.
BS1770_BLOCK_S = 0.4
#: Preferred time-expansion factors (a 1-2-5 series: 10 is the classic bat-detector factor).
_PREFERRED_FACTORS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_OVERSAMPLE = 4  # true-peak estimate: 4x oversampling, as BS.1770-4 Annex 2 recommends
_LIMITER_WINDOW_S = 0.005  # look-ahead = attack = release of the peak limiter
_MAX_LIMIT_PASSES = 12


def _check_rate(name: str, rate_hz: float) -> None:
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f"{name} = {rate_hz!r} is invalid; expected a finite number of Hz > 0.")


def _float_samples(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    as_channels(x)  # shape check only
    if x.dtype.kind != "f":
        raise ValidationError(
            f"preview kernels take float samples in full-scale units; got {x.dtype} "
            "(normalise with fieldkit.dsp.bitdepth.to_float32 first)."
        )
    return x.astype(np.float32)


def time_expand(samples: np.ndarray, rate_hz: float, factor: int) -> tuple[np.ndarray, float]:
    """Time-expand by ``factor``: the same samples, played at ``rate_hz / factor``.

    Parameters
    ----------
    samples : ndarray, float, shape (frames,) or (channels, frames)
    rate_hz : float
        Sample rate of the recording in Hz.
    factor : int
        Time-expansion factor >= 1 (an integer, as GUANO ``TE`` requires).

    Returns
    -------
    y : ndarray, float32, same shape
        A copy of ``samples``: lasts ``factor`` times longer and every frequency is divided
        by ``factor`` when played at ``out_rate_hz``.
    out_rate_hz : float
        ``rate_hz / factor``, the playback rate to write in the WAV header.
    """
    _check_rate("rate_hz", rate_hz)
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ConfigError(
            f"factor = {factor!r} is invalid; expected an integer >= 1 (GUANO TE is an integer)."
        )
    return _float_samples(samples).copy(), rate_hz / int(factor)


def default_expansion_factor(rate_hz: float, dominant_hz: float | None = None) -> int:
    """The smallest preferred factor (1, 2, 5, 10, 20...) that makes a recording audible.

    The factor must bring the playback rate to at most :data:`MAX_PLAYBACK_RATE_HZ` and, when
    ``dominant_hz`` is known, the dominant frequency to at most :data:`AUDIBLE_DOMINANT_HZ`.
    250-384 kHz bat recordings get 10; 500 kHz gets 20; 48 kHz and below get 1.

    Parameters
    ----------
    rate_hz : float
        Sample rate of the recording in Hz.
    dominant_hz : float, optional
        Dominant frequency of the content in Hz (e.g. the peak of the call spectrum).
    """
    _check_rate("rate_hz", rate_hz)
    need = rate_hz / MAX_PLAYBACK_RATE_HZ
    if dominant_hz is not None:
        _check_rate("dominant_hz", dominant_hz)
        need = max(need, dominant_hz / AUDIBLE_DOMINANT_HZ)
    for factor in _PREFERRED_FACTORS:
        if factor >= need * (1 - 1e-9):
            return factor
    return math.ceil(need)


def heterodyne(
    samples: np.ndarray,
    rate_hz: float,
    carrier_hz: float,
    out_rate_hz: float = 48_000,
    cutoff_hz: float | None = None,
) -> tuple[np.ndarray, float]:
    """Heterodyne: mix with a carrier, low-pass, resample to an audible rate.

    Parameters
    ----------
    samples : ndarray, float, shape (frames,) or (channels, frames)
    rate_hz : float
        Sample rate of the recording in Hz.
    carrier_hz : float
        Carrier ("tuning") frequency in Hz, below ``rate_hz / 2``; a tone at ``f`` is heard
        at ``|f - carrier_hz|``.
    out_rate_hz : float
        Output sample rate in Hz (48 kHz).
    cutoff_hz : float, optional
        Low-pass cut-off in Hz, applied before resampling (8th-order Butterworth, zero
        phase): the band heard either side of the carrier; default
        :data:`HETERODYNE_BAND_HZ`; always capped at ``0.45 * rate_hz`` and
        ``0.45 * out_rate_hz``.

    Returns
    -------
    y : ndarray, float32, same ndim
        About ``frames * out_rate_hz / rate_hz`` frames. The mixer output is doubled so that
        a tone keeps its amplitude after the sum frequency is filtered out.
    out_rate_hz : float
    """
    _check_rate("rate_hz", rate_hz)
    _check_rate("out_rate_hz", out_rate_hz)
    _check_rate("carrier_hz", carrier_hz)
    if carrier_hz >= rate_hz / 2:
        raise ConfigError(
            f"carrier_hz = {carrier_hz} is invalid; expected below the Nyquist frequency "
            f"{rate_hz / 2:g} Hz of this recording."
        )
    x = _float_samples(samples).astype(np.float64)
    t = np.arange(x.shape[-1]) / float(rate_hz)
    mixed = 2.0 * x * np.cos(2 * np.pi * carrier_hz * t)
    cutoff = cutoff_hz if cutoff_hz is not None else HETERODYNE_BAND_HZ
    cutoff = min(cutoff, 0.45 * rate_hz, 0.45 * out_rate_hz)
    _check_rate("cutoff_hz", cutoff)
    sos = scipy.signal.butter(8, cutoff, btype="lowpass", fs=rate_hz, output="sos")
    low = scipy.signal.sosfiltfilt(sos, mixed, axis=-1).astype(np.float32)
    return resample(np.ascontiguousarray(low), rate_hz, out_rate_hz), float(out_rate_hz)


def high_pass(samples: np.ndarray, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """4th-order Butterworth high-pass, zero phase (removes wind and handling noise below the
    calls before a time expansion makes it a rumble)."""
    _check_rate("rate_hz", rate_hz)
    _check_rate("cutoff_hz", cutoff_hz)
    if cutoff_hz >= 0.45 * rate_hz:
        raise ConfigError(f"high-pass cutoff {cutoff_hz:g} Hz is invalid; expected below {0.45 * rate_hz:g} Hz "
                          "(0.45 x the sample rate).")
    sos = scipy.signal.butter(4, cutoff_hz, btype="highpass", fs=rate_hz, output="sos")
    x = _float_samples(samples).astype(np.float64)
    return scipy.signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)


def frequency_divide(
    samples: np.ndarray, rate_hz: float, divisor: int = 10, out_rate_hz: float = 48_000,
    highpass_hz: float | None = 10_000.0,
) -> tuple[np.ndarray, float]:
    """Frequency division: every frequency divided by ``divisor``, in real time.

    Per channel: high-pass at ``highpass_hz`` (noise below the calls would otherwise drive
    the divider), a flip-flop toggled at every ``divisor``-th zero crossing (a square wave at
    ``f / divisor``: one input period holds two crossings), multiplied by the analytic
    envelope (amplitude-retaining), low-passed at ``0.45 * out_rate_hz`` and resampled.

    Parameters
    ----------
    samples : ndarray, float, shape (frames,) or (channels, frames)
    rate_hz : float
    divisor : int
        N >= 2 (10 is the classic bat-detector ratio: 45 kHz is heard at 4.5 kHz).
    out_rate_hz : float
    highpass_hz : float or None
        None: no high-pass.

    Returns
    -------
    y : ndarray, float32, same ndim, about ``frames * out_rate_hz / rate_hz`` frames
    out_rate_hz : float
    """
    _check_rate("rate_hz", rate_hz)
    _check_rate("out_rate_hz", out_rate_hz)
    if isinstance(divisor, bool) or not isinstance(divisor, (int, np.integer)) or divisor < 2:
        raise ConfigError(f"divisor = {divisor!r} is invalid; expected an integer >= 2 (e.g. 10).")
    x = _float_samples(samples)
    x = high_pass(x, rate_hz, highpass_hz) if highpass_hz else x
    channels = as_channels(x).astype(np.float64)
    out = np.empty_like(channels)
    for c, ch in enumerate(channels):
        crossings = np.flatnonzero(np.diff(np.signbit(ch).astype(np.int8))) + 1
        flips = np.zeros(ch.size, np.int64)
        flips[crossings[divisor - 1::divisor]] = 1
        square = 1.0 - 2.0 * (np.cumsum(flips) % 2)
        out[c] = square * np.abs(scipy.signal.hilbert(ch))
    sos = scipy.signal.butter(8, 0.45 * min(out_rate_hz, rate_hz), btype="lowpass", fs=rate_hz, output="sos")
    low = scipy.signal.sosfiltfilt(sos, out, axis=-1).astype(np.float32)
    y = resample(np.ascontiguousarray(low if x.ndim == 2 else low[0]), rate_hz, out_rate_hz)
    return y, float(out_rate_hz)


def _oversampled_peaks(channels: np.ndarray) -> np.ndarray:
    """Per-sample true-peak envelope ``(frames,)``: max over channels and over the
    :data:`_OVERSAMPLE` interpolated points that follow each sample."""
    up = scipy.signal.resample_poly(channels.astype(np.float64), _OVERSAMPLE, 1, axis=-1)
    frames = channels.shape[-1]
    up = np.abs(up[:, : frames * _OVERSAMPLE]).reshape(channels.shape[0], frames, _OVERSAMPLE)
    return np.maximum(up.max(axis=(0, 2)), np.abs(channels).max(axis=0))


def true_peak(samples: np.ndarray) -> float:
    """True peak (linear full scale) of float samples, estimated by 4x oversampling."""
    channels = as_channels(np.asarray(samples, dtype=np.float64))
    if channels.shape[-1] == 0:
        return 0.0
    return float(_oversampled_peaks(channels).max())


def _measure(channels: np.ndarray, rate_hz: float) -> tuple[float, str]:
    """Loudness in LUFS: BS.1770 (pyloudnorm) when the clip is long enough, else plain RMS.

    The RMS fallback is BS.1770 without K-weighting and gating: ``-0.691 + 10 log10`` of the
    sum over channels of the mean square.
    """
    if channels.shape[-1] >= BS1770_BLOCK_S * rate_hz:
        meter = pyloudnorm.Meter(round(rate_hz))
        data = channels[0] if channels.shape[0] == 1 else channels.T
        return float(meter.integrated_loudness(data.astype(np.float64))), "bs1770"
    power = float(np.sum(np.mean(channels.astype(np.float64) ** 2, axis=-1)))
    return (-0.691 + 10 * math.log10(power) if power > 0 else -math.inf), "rms"


def _limit(channels: np.ndarray, ceiling: float, rate_hz: float) -> np.ndarray:
    """Look-ahead peak limiter: gain never lets the true-peak envelope exceed ``ceiling``.

    The needed gain is min-filtered then averaged over the same window, so the smoothed gain
    at each sample is at most the gain that sample needs (no overshoot), with attack and
    release of :data:`_LIMITER_WINDOW_S`.
    """
    peaks = _oversampled_peaks(channels)
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    size = 2 * max(1, round(_LIMITER_WINDOW_S * rate_hz)) + 1
    floor = scipy.ndimage.minimum_filter1d(need, size, mode="nearest")
    gain = scipy.ndimage.uniform_filter1d(floor, size, mode="nearest")
    return channels * np.minimum(gain, need)


def loudness_normalise(
    samples: np.ndarray, rate_hz: float, target_lufs: float = -23.0, peak_dbfs: float = -1.0
) -> tuple[np.ndarray, dict[str, Any]]:
    """Bring a clip to ``target_lufs`` (ITU-R BS.1770) without exceeding ``peak_dbfs``.

    Gain to the target, then a look-ahead true-peak limiter if the peaks would pass the
    ceiling; since limiting lowers the loudness, gain and limiter are repeated (at most
    12 passes) until the clip measures within 0.05 LU of the target.

    Parameters
    ----------
    samples : ndarray, float, shape (frames,) or (channels, frames)
    rate_hz : float
        Sample rate in Hz.
    target_lufs : float
        Integrated loudness wanted, LUFS (-23 = EBU R 128 broadcast; -16 to -14 for phones).
    peak_dbfs : float
        True-peak ceiling in dBFS (<= 0); ``max |y| <= 10 ** (peak_dbfs / 20)``.

    Returns
    -------
    y : ndarray, float32, same shape
    info : dict
        ``method`` (``"bs1770"``, or ``"rms"`` for clips shorter than the 0.4 s BS.1770 block,
        or ``"silent"``: returned unchanged), ``measured_lufs``, ``target_lufs``,
        ``output_lufs``, ``gain_db`` (the overall gain before limiting), ``limited`` (bool),
        ``true_peak_dbfs`` of the output and a ``note`` for the fallbacks and when the target
        cannot be reached (isolated clicks only a few samples long: the limiter holds each at
        the ceiling, so no gain makes the clip louder; ``output_lufs`` says what was reached).
    """
    _check_rate("rate_hz", rate_hz)
    if not (math.isfinite(target_lufs) and math.isfinite(peak_dbfs) and peak_dbfs <= 0):
        raise ConfigError(
            f"target_lufs = {target_lufs!r}, peak_dbfs = {peak_dbfs!r} are invalid; expected "
            "finite numbers with peak_dbfs <= 0."
        )
    x = _float_samples(samples)
    channels = as_channels(x).astype(np.float64)
    measured, method = _measure(channels, rate_hz)
    info: dict[str, Any] = {"method": method, "measured_lufs": measured,
                            "target_lufs": float(target_lufs)}
    if not math.isfinite(measured):
        info.update(method="silent", output_lufs=measured, gain_db=0.0, limited=False,
                    true_peak_dbfs=-math.inf, note="silent clip: returned unchanged")
        return x.copy(), info
    y, limited, output = _gain_and_limit(channels, rate_hz, measured, target_lufs, peak_dbfs)
    info.update(output_lufs=output, gain_db=float(target_lufs - measured), limited=limited,
                true_peak_dbfs=_dbfs(true_peak(y)))
    if method == "rms":
        info["note"] = (f"clip shorter than the {BS1770_BLOCK_S} s BS.1770 block: loudness "
                        "measured as unweighted, ungated RMS")
    elif abs(output - target_lufs) > 0.5:
        info["note"] = (f"target not reachable under the {peak_dbfs} dBFS ceiling (peaks too "
                        f"short to limit): reached {output:.1f} LUFS")
    return (y[0] if x.ndim == 1 else y).astype(np.float32), info


def _gain_and_limit(
    channels: np.ndarray, rate_hz: float, measured: float, target: float, peak_dbfs: float
) -> tuple[np.ndarray, bool, float]:
    """Repeat gain-to-target and limiting until within 0.05 LU; (y, limited, output LUFS)."""
    ceiling = 10 ** (peak_dbfs / 20)
    y, level, limited = channels, measured, False
    for _ in range(_MAX_LIMIT_PASSES):
        y = y * 10 ** ((target - level) / 20)
        if true_peak(y) > ceiling:
            y, limited = _limit(y, ceiling, rate_hz), True
        level = _measure(y, rate_hz)[0]
        if abs(level - target) <= 0.05:
            break
    # float rounding in the limiter can leave a peak a hair above the ceiling
    return y * min(1.0, ceiling / max(true_peak(y), 1e-300)), limited, level


def _dbfs(linear: float) -> float:
    return 20 * math.log10(linear) if linear > 0 else -math.inf
