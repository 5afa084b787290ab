"""Listen to the data: one note per data point (after V. Granville, "Sound Generation in
Python: Turning Your Data into Music").

Three feature series of equal length drive the melody, point by point in order:

- **pitch**: binned (equal-width by default) onto ``n_notes`` notes of a scale spanning
  several octaves upward from ``base_hz``; the lowest value gets the lowest note;
- **duration**: rescaled linearly to ``dur_range`` seconds (0.1-0.5 s);
- **volume**: rescaled linearly to ``amp_range`` peak amplitude (full-scale units).

Each note is a sine (optionally with a few harmonics) with raised-cosine fades in and out so
that joins do not click. A data point with NaN in any feature is a **rest**: silence for its
rescaled duration (or the shortest duration when its duration is NaN too), so gaps in the data
are heard as gaps; rests are not in the returned note list. Rescaling uses the finite values
only; a constant series maps to the middle of its range (the middle note for pitch).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fieldkit.errors import ConfigError, UnknownNameError, ValidationError

__all__ = ["SCALES", "bin_to_scale", "melody", "rescale", "scale_frequencies"]

#: Semitone offsets within one octave. "minor" is the natural minor (Aeolian) scale.
SCALES: dict[str, tuple[int, ...]] = {
    "pentatonic": (0, 2, 4, 7, 9),  # major pentatonic: no half steps, so nothing clashes
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "chromatic": tuple(range(12)),
}
#: Octaves spanned by default (pentatonic: 15 notes, 220 Hz to 1320 Hz).
DEFAULT_OCTAVES = 3
BINNINGS = ("equal", "quantile")


def scale_steps(scale: str) -> tuple[int, ...]:
    """Semitone offsets of a named scale; an unknown name lists the known ones."""
    if scale not in SCALES:
        raise UnknownNameError("scale", scale, tuple(SCALES))
    return SCALES[scale]


def scale_frequencies(scale: str, n_notes: int, base_hz: float = 220.0) -> np.ndarray:
    """The first ``n_notes`` notes of ``scale`` upward from ``base_hz`` (equal temperament).

    Parameters
    ----------
    scale : str
        One of :data:`SCALES`.
    n_notes : int
        Number of notes >= 1; more than the scale has per octave continues into the next
        octaves (pentatonic, 15 notes: three octaves).
    base_hz : float
        Frequency of the first note in Hz (220 Hz = A3).

    Returns
    -------
    ndarray, float64, shape (n_notes,), strictly increasing, Hz
    """
    steps = scale_steps(scale)
    if isinstance(n_notes, bool) or not isinstance(n_notes, (int, np.integer)) or n_notes < 1:
        raise ConfigError(f"n_notes = {n_notes!r} is invalid; expected an integer >= 1.")
    if not (math.isfinite(base_hz) and base_hz > 0):
        raise ConfigError(f"base_hz = {base_hz!r} is invalid; expected a finite number > 0.")
    index = np.arange(n_notes)
    semitones = 12 * (index // len(steps)) + np.asarray(steps)[index % len(steps)]
    return base_hz * 2.0 ** (semitones / 12.0)


def _finite_values(values: Any, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValidationError(f"{what} must be a 1-D series; got shape {x.shape}.")
    return x


def bin_to_scale(values: Any, n_notes: int, method: str = "equal") -> np.ndarray:
    """Note index (0 .. n_notes - 1) of each value; -1 for NaN.

    ``"equal"``: equal-width bins between the smallest and largest finite value, as in
    Granville's ``int(0.9999 * n_notes * (v - min) / (max - min))`` (so the maximum falls in
    the top bin). ``"quantile"``: bins holding equal numbers of points (the rank of each value
    among the finite values), which uses every note even for skewed data. A constant series
    gets the middle note ``n_notes // 2``.
    """
    x = _finite_values(values, "values")
    if method not in BINNINGS:
        raise UnknownNameError("binning", method, BINNINGS)
    finite = np.isfinite(x)
    out = np.full(x.shape, -1, dtype=np.int64)
    if not finite.any():
        return out
    if method == "quantile":
        ranks = np.argsort(np.argsort(x[finite], kind="stable"), kind="stable")
        position = ranks / max(1, finite.sum() - 1)
    else:
        position = rescale(x[finite], 0.0, 1.0)
    out[finite] = np.minimum((position * n_notes).astype(np.int64), n_notes - 1)
    return out


def rescale(values: Any, lo: float, hi: float) -> np.ndarray:
    """Linear map of the finite values' [min, max] onto [lo, hi]; NaN stays NaN.

    A constant series (max == min) maps to the midpoint ``(lo + hi) / 2``.

    Returns
    -------
    ndarray, float64, same shape
    """
    x = _finite_values(values, "values")
    finite = np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if not finite.any():
        return out
    vmin, vmax = x[finite].min(), x[finite].max()
    if vmax == vmin:
        out[finite] = (lo + hi) / 2
    else:
        out[finite] = lo + (hi - lo) * (x[finite] - vmin) / (vmax - vmin)
    return out


def _fade(n: int, fade_n: int) -> np.ndarray:
    """Envelope of ``n`` samples: raised-cosine ramps of ``fade_n`` (at most n // 2) each end."""
    envelope = np.ones(n)
    k = min(fade_n, n // 2)
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
        envelope[:k], envelope[n - k:] = ramp, ramp[::-1]
    return envelope


def note_samples(
    freq_hz: float, n: int, rate_hz: float, amplitude: float, fade_n: int,
    harmonics: tuple[float, ...] = (1.0,),
) -> np.ndarray:
    """One note: ``sum_k w_k sin(2 pi k f t)`` scaled so the weights sum to ``amplitude``.

    Partials at or above the Nyquist frequency are left out.
    """
    t = np.arange(n) / rate_hz
    weights = np.asarray(harmonics, dtype=np.float64)
    wave = np.zeros(n)
    for k, w in enumerate(weights, start=1):
        if k * freq_hz < rate_hz / 2:
            wave += w * np.sin(2 * np.pi * k * freq_hz * t)
    return amplitude / weights.sum() * wave * _fade(n, fade_n)


def _check_melody_args(lengths: set[int], rate_hz: float, fade_s: float,
                       harmonics: tuple[float, ...]) -> None:
    if len(lengths) != 1:
        raise ValidationError(
            f"pitch, duration and volume must have one value per data point; got lengths "
            f"{sorted(lengths)}."
        )
    if not (math.isfinite(rate_hz) and rate_hz > 0 and math.isfinite(fade_s) and fade_s >= 0):
        raise ConfigError(f"rate_hz = {rate_hz!r} and fade_s = {fade_s!r} must be finite, "
                          "rate_hz > 0 and fade_s >= 0.")
    if not harmonics or min(harmonics) < 0 or sum(harmonics) <= 0:
        raise ConfigError(f"harmonics = {harmonics!r} is invalid; expected weights >= 0 "
                          "with a positive sum, e.g. (1.0,) or (1.0, 0.5, 0.25).")


def melody(
    pitch_values: Any,
    duration_values: Any,
    volume_values: Any,
    scale: str = "pentatonic",
    n_notes: int | None = None,
    rate_hz: float = 22_050,
    amp_range: tuple[float, float] = (0.1, 0.8),
    dur_range: tuple[float, float] = (0.1, 0.5),
    fade_s: float = 0.01,
    base_hz: float = 220.0,
    harmonics: tuple[float, ...] = (1.0,),
    binning: str = "equal",
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Sonify three feature series: one note per data point, in order.

    Parameters
    ----------
    pitch_values, duration_values, volume_values : array_like, shape (points,)
        The three features (any units); NaN makes the point a rest (module docstring).
    scale : str
        One of :data:`SCALES` (major pentatonic by default).
    n_notes : int, optional
        Notes the pitch is binned onto; default :data:`DEFAULT_OCTAVES` octaves of the scale.
    rate_hz : float
        Output sample rate in Hz.
    amp_range : (float, float)
        Peak amplitude of the quietest and loudest notes, full-scale units (<= 1).
    dur_range : (float, float)
        Duration in seconds of the shortest and longest notes.
    fade_s : float
        Raised-cosine fade in and out of every note, seconds (capped at half the note).
    base_hz, harmonics, binning
        Lowest note (Hz); relative weights of the partials 1, 2, 3...; ``"equal"`` or
        ``"quantile"`` (see :func:`bin_to_scale`).

    Returns
    -------
    samples : ndarray, float32, shape (frames,)
        Notes back to back; note ``i`` starts at frame ``round(start_s * rate_hz)``.
    notes : list of dict
        One per sounding data point: ``index`` (data point), ``note`` (index on the scale),
        ``freq_hz``, ``start_s``, ``duration_s``, ``amplitude`` (peak, full scale).
    """
    pitch, dur, vol = (_finite_values(v, name) for v, name in (
        (pitch_values, "pitch_values"), (duration_values, "duration_values"),
        (volume_values, "volume_values")))
    _check_melody_args({len(pitch), len(dur), len(vol)}, rate_hz, fade_s, tuple(harmonics))
    if not (0 <= min(amp_range) and max(amp_range) <= 1 and min(dur_range) > 0):
        raise ConfigError(f"amp_range = {amp_range!r} must lie in [0, 1] and dur_range = "
                          f"{dur_range!r} must be positive seconds.")
    n_notes = n_notes if n_notes is not None else DEFAULT_OCTAVES * len(scale_steps(scale))
    freqs = scale_frequencies(scale, n_notes, base_hz)
    bins = bin_to_scale(pitch, n_notes, binning)
    seconds = rescale(dur, *dur_range)
    amps = rescale(vol, *amp_range)
    rest = ~(np.isfinite(pitch) & np.isfinite(vol) & np.isfinite(seconds))
    seconds = np.where(np.isfinite(seconds), seconds, min(dur_range))
    return _render(freqs, bins, seconds, amps, rest, rate_hz, fade_s, tuple(harmonics))


def _render(
    freqs: np.ndarray, bins: np.ndarray, seconds: np.ndarray, amps: np.ndarray,
    rest: np.ndarray, rate_hz: float, fade_s: float, harmonics: tuple[float, ...],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Place the notes; boundaries are rounded from cumulative time, so no drift builds up."""
    starts_s = np.concatenate([[0.0], np.cumsum(seconds)])
    edges = np.rint(starts_s * rate_hz).astype(np.int64)
    out = np.zeros(int(edges[-1]), dtype=np.float64)
    fade_n = round(fade_s * rate_hz)
    notes: list[dict[str, Any]] = []
    for i in np.flatnonzero(~rest):
        a, b = int(edges[i]), int(edges[i + 1])
        freq = float(freqs[bins[i]])
        out[a:b] = note_samples(freq, b - a, rate_hz, float(amps[i]), fade_n, harmonics)
        notes.append({"index": int(i), "note": int(bins[i]), "freq_hz": freq,
                      "start_s": float(starts_s[i]), "duration_s": float(seconds[i]),
                      "amplitude": float(amps[i])})
    return out.astype(np.float32), notes
