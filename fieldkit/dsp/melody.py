"""Listen to the data: one note per data point (after V. Granville, "Sound Generation in
Python: Turning Your Data into Music").

Up to five feature series of equal length drive the melody, point by point:

- **pitch**: binned (equal-width by default; quantile, log, asinh) onto the notes of a scale
  (:mod:`fieldkit.dsp.scales`: named, N-TET, cents, Scala) upward from ``base_hz``;
- **duration**: rescaled to ``dur_range`` seconds (0.1-0.5 s);
- **volume**: rescaled to ``amp_range`` peak amplitude (full-scale units);
- **pan** (optional, stereo output): rescaled to -1 (left) .. +1 (right), constant-power law;
- **timbre** (optional): an instrument per point, each an additive recipe of harmonics
  (:data:`INSTRUMENTS`).

Any dimension can be mapped in reverse (the method makes low values loud). Notes follow each
other, or start at given clock-true onsets. Each note has raised-cosine fades in and out so that
joins do not click. A data point with NaN in pitch, duration or volume is a **rest**: silence
for its rescaled duration (or the shortest duration when its duration is NaN too), so gaps in
the data are heard as gaps; rests are not in the returned note list. Rescaling uses the finite
values only; a constant series maps to the middle of its range (the middle note for pitch).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fieldkit.dsp.scales import MAPS, SCALES, parse_scale, positions
from fieldkit.errors import ConfigError, UnknownNameError, ValidationError

__all__ = ["INSTRUMENTS", "SCALES", "bin_to_scale", "melody", "pan_gains", "rescale", "scale_frequencies"]

#: Octaves spanned by default (pentatonic: 15 notes, 220 Hz to 1320 Hz).
DEFAULT_OCTAVES = 3
BINNINGS = ("equal", *MAPS)  # "equal" is the historical name of "linear"
#: Additive recipes: relative amplitudes of harmonics 1, 2, 3... (the fundamental strongest, so
#: a note's pitch is its strongest partial) and the General MIDI program (0-based) that plays
#: the instrument in a synthesizer.
INSTRUMENTS: dict[str, dict[str, Any]] = {
    "sine": {"harmonics": (1.0,), "program": 79},  # GM ocarina: the nearest to a pure tone
    "flute": {"harmonics": (1.0, 0.3, 0.08), "program": 73},
    "clarinet": {"harmonics": (1.0, 0.0, 0.6, 0.0, 0.35, 0.0, 0.2), "program": 71},  # odd only
    "strings": {"harmonics": (1.0, 0.5, 0.33, 0.25, 0.2, 0.17, 0.14), "program": 48},  # 1/k: sawtooth
    "organ": {"harmonics": (1.0, 0.7, 0.0, 0.5, 0.0, 0.0, 0.0, 0.35), "program": 19},  # octave stops
}


def scale_steps(scale: str) -> tuple[int, ...]:
    """Semitone offsets of a named 12-tone scale; an unknown name lists the known ones."""
    if scale not in SCALES:
        raise UnknownNameError("scale", scale, tuple(SCALES))
    return SCALES[scale]


def scale_frequencies(scale: str, n_notes: int | None = None, base_hz: float | None = None) -> np.ndarray:
    """The first ``n_notes`` notes of ``scale`` upward from ``base_hz``.

    Parameters
    ----------
    scale : str
        A scale spec of :func:`fieldkit.dsp.scales.parse_scale`: a name of :data:`SCALES`,
        ``granville``, ``N-tet`` or ``cents:...``.
    n_notes : int, optional
        Number of notes >= 1; more than the scale has per octave continues into the next
        octaves (pentatonic, 15 notes: three octaves). Default: the scale's own (3 octaves).
    base_hz : float, optional
        Frequency of the first note in Hz (default 220 Hz = A3; granville: MIDI 35).

    Returns
    -------
    ndarray, float64, shape (n_notes,), strictly increasing, Hz
    """
    return parse_scale(scale).frequencies(n_notes, base_hz)


def _finite_values(values: Any, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValidationError(f"{what} must be a 1-D series; got shape {x.shape}.")
    return x


def bin_to_scale(values: Any, n_notes: int, method: str = "equal", reverse: bool = False) -> np.ndarray:
    """Note index (0 .. n_notes - 1) of each value; -1 for NaN.

    ``"equal"`` / ``"linear"``: equal-width bins between the smallest and largest finite value,
    as in Granville's ``int(0.9999 * n_notes * (v - min) / (max - min))`` (so the maximum falls
    in the top bin). ``"quantile"``: bins holding equal numbers of points, which uses every note
    even for skewed data. ``"log"`` and ``"asinh"``: equal-width bins of ``log10 v`` or
    ``asinh(v / median |v|)`` (:func:`fieldkit.dsp.scales.positions`). A constant series gets
    the middle note ``n_notes // 2``; ``reverse`` gives the largest value the lowest note.
    """
    x = _finite_values(values, "values")
    if method not in BINNINGS:
        raise UnknownNameError("binning", method, BINNINGS)
    position = positions(x, "linear" if method == "equal" else method, reverse)
    out = np.full(x.shape, -1, dtype=np.int64)
    finite = np.isfinite(position)
    out[finite] = np.minimum((position[finite] * n_notes).astype(np.int64), n_notes - 1)
    return out


def rescale(values: Any, lo: float, hi: float) -> np.ndarray:
    """Linear map of the finite values' [min, max] onto [lo, hi]; NaN stays NaN.

    A constant series (max == min) maps to the midpoint ``(lo + hi) / 2``.

    Returns
    -------
    ndarray, float64, same shape
    """
    return lo + (hi - lo) * positions(_finite_values(values, "values"))


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


def pan_gains(pan: Any) -> tuple[np.ndarray, np.ndarray]:
    """Constant-power pan law: (left, right) gains of pan positions in [-1, 1] (0 = centre).

    ``left = cos(theta)``, ``right = sin(theta)`` with ``theta = (pan + 1) pi / 4``, so
    ``left**2 + right**2 = 1`` (the loudness stays the same across the stereo field) and the
    balance ``right / (left + right)`` rises monotonically from 0 (hard left) to 1.
    """
    theta = (np.clip(np.asarray(pan, dtype=np.float64), -1.0, 1.0) + 1.0) * np.pi / 4
    return np.cos(theta), np.sin(theta)


def _check_melody_args(lengths: set[int], rate_hz: float, fade_s: float,
                       harmonics: tuple[float, ...]) -> None:
    if len(lengths) != 1:
        raise ValidationError(
            f"pitch, duration, volume (and pan, timbre, onsets when given) must have one value per data "
            f"point; got lengths {sorted(lengths)}."
        )
    if not (math.isfinite(rate_hz) and rate_hz > 0 and math.isfinite(fade_s) and fade_s >= 0):
        raise ConfigError(f"rate_hz = {rate_hz!r} and fade_s = {fade_s!r} must be finite, "
                          "rate_hz > 0 and fade_s >= 0.")
    if not harmonics or min(harmonics) < 0 or sum(harmonics) <= 0:
        raise ConfigError(f"harmonics = {harmonics!r} is invalid; expected weights >= 0 "
                          "with a positive sum, e.g. (1.0,) or (1.0, 0.5, 0.25).")


def _instrument_recipes(instruments: tuple[str, ...], harmonics: tuple[float, ...] | None) -> list[tuple[float, ...]]:
    unknown = [name for name in instruments if name not in INSTRUMENTS]
    if unknown:
        raise UnknownNameError("instrument", unknown[0], tuple(INSTRUMENTS))
    if harmonics is not None and len(instruments) == 1:
        return [tuple(harmonics)]  # an explicit recipe for a one-instrument melody
    return [INSTRUMENTS[name]["harmonics"] for name in instruments]


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
    base_hz: float | None = None,
    harmonics: tuple[float, ...] | None = None,
    binning: str = "equal",
    *,
    pan_values: Any = None,
    instrument_index: Any = None,
    instruments: tuple[str, ...] = ("sine",),
    maps: dict[str, str] | None = None,
    reverse: tuple[str, ...] = (),
    onsets_s: Any = None,
    scale_hz: Any = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Sonify up to five feature series: one note per data point.

    Parameters
    ----------
    pitch_values, duration_values, volume_values : array_like, shape (points,)
        The three features (any units); NaN makes the point a rest (module docstring).
    scale : str
        A scale spec (:func:`scale_frequencies`; major pentatonic by default).
    n_notes : int, optional
        Notes the pitch is binned onto; default the scale's own (3 octaves).
    rate_hz : float
        Output sample rate in Hz.
    amp_range : (float, float)
        Peak amplitude of the quietest and loudest notes, full-scale units (<= 1).
    dur_range : (float, float)
        Duration in seconds of the shortest and longest notes.
    fade_s : float
        Raised-cosine fade in and out of every note, seconds (capped at half the note).
    base_hz, harmonics, binning
        Lowest note (Hz); partial weights of a one-instrument melody (default: the
        instrument's recipe); the pitch map (:func:`bin_to_scale`).
    pan_values : array_like, optional
        The 4th dimension: a feature mapped to the stereo position (lowest value hard left,
        highest hard right, constant-power law :func:`pan_gains`). Given: stereo output.
    instrument_index : array_like of int, optional
        The 5th dimension: index into ``instruments`` of each point's instrument (a category
        or a binned feature); default the first instrument for every note.
    instruments : tuple of str
        Names of :data:`INSTRUMENTS` used.
    maps, reverse
        Map per dimension (``{"volume": "log"}``, :data:`fieldkit.dsp.scales.MAPS`; pitch
        takes ``binning`` unless given here), and the dimensions mapped in reverse.
    onsets_s : array_like, optional
        Clock-true placement: note ``i`` starts at ``onsets_s[i]`` seconds (increasing) and is
        cut short where the next begins; default: notes back to back.
    scale_hz : array_like, optional
        Explicit note frequencies (Hz, increasing), e.g. from a Scala file; overrides ``scale``.

    Returns
    -------
    samples : ndarray, float32, shape (frames,) or (2, frames) with ``pan_values``
        Note ``i`` starts at frame ``round(start_s * rate_hz)``.
    notes : list of dict
        One per sounding data point: ``index`` (data point), ``note`` (index on the scale),
        ``freq_hz``, ``midi`` (fractional MIDI number), ``start_s``, ``duration_s``,
        ``amplitude`` (peak, full scale), ``pan`` (-1 .. 1, 0 in mono), ``instrument``.
    """
    maps = {"pitch": "linear" if binning == "equal" else binning, **(maps or {})}
    unknown = set(maps) | set(reverse)
    if unknown - {"pitch", "duration", "volume", "pan", "timbre"}:
        raise UnknownNameError("dimension", sorted(unknown - {"pitch", "duration", "volume", "pan", "timbre"})[0],
                               ("pitch", "duration", "volume", "pan", "timbre"))
    series = {name: _finite_values(v, name) for name, v in (
        ("pitch", pitch_values), ("duration", duration_values), ("volume", volume_values))}
    extra = {k: np.asarray(v) for k, v in (("pan", pan_values), ("timbre", instrument_index),
                                           ("onsets", onsets_s)) if v is not None}
    recipes = _instrument_recipes(tuple(instruments), None if harmonics is None else tuple(harmonics))
    _check_melody_args({len(s) for s in (*series.values(), *extra.values())}, rate_hz, fade_s, recipes[0])
    if not (0 <= min(amp_range) and max(amp_range) <= 1 and min(dur_range) > 0):
        raise ConfigError(f"amp_range = {amp_range!r} must lie in [0, 1] and dur_range = "
                          f"{dur_range!r} must be positive seconds.")
    freqs = (np.asarray(scale_hz, np.float64) if scale_hz is not None
             else scale_frequencies(scale, n_notes, base_hz))
    bins = bin_to_scale(series["pitch"], freqs.size, maps["pitch"], "pitch" in reverse)

    def mapped(name: str, lo: float, hi: float) -> np.ndarray:
        return lo + (hi - lo) * positions(series[name] if name in series else extra[name],
                                          maps.get(name, "linear"), name in reverse)

    seconds, amps = mapped("duration", *dur_range), mapped("volume", *amp_range)
    rest = ~(np.isfinite(series["pitch"]) & np.isfinite(series["volume"]) & np.isfinite(seconds))
    seconds = np.where(np.isfinite(seconds), seconds, min(dur_range))
    pan = np.nan_to_num(mapped("pan", -1.0, 1.0), nan=0.0) if "pan" in extra else None
    which = np.zeros(bins.size, np.int64) if "timbre" not in extra else extra["timbre"].astype(np.int64) % len(recipes)
    starts = _starts(seconds, extra.get("onsets"))
    if "onsets" in extra:  # clock-true: a note ends where the next begins
        seconds = np.minimum(seconds, np.append(np.diff(starts), np.inf))
    return _render(freqs, bins, starts, seconds, amps, rest, rate_hz, fade_s,
                   [recipes[i] for i in which], [tuple(instruments)[i] for i in which], pan)


def _starts(seconds: np.ndarray, onsets: np.ndarray | None) -> np.ndarray:
    if onsets is None:
        return np.concatenate([[0.0], np.cumsum(seconds)[:-1]])
    onsets = np.asarray(onsets, np.float64)
    if onsets.size and (not np.all(np.isfinite(onsets)) or np.any(np.diff(onsets) <= 0) or onsets[0] < 0):
        raise ValidationError("onsets_s must be finite, >= 0 and strictly increasing (one note per onset).")
    return onsets


def _render(
    freqs: np.ndarray, bins: np.ndarray, starts_s: np.ndarray, seconds: np.ndarray, amps: np.ndarray,
    rest: np.ndarray, rate_hz: float, fade_s: float, recipes: list[tuple[float, ...]],
    names: list[str], pan: np.ndarray | None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Place the notes; boundaries are rounded from cumulative time, so no drift builds up."""
    a_edges = np.rint(starts_s * rate_hz).astype(np.int64)
    b_edges = np.rint((starts_s + seconds) * rate_hz).astype(np.int64)
    # float32: a clock-true melody can last many minutes (the output is float32 anyway)
    out = np.zeros((1 if pan is None else 2, int(b_edges.max(initial=0))), dtype=np.float32)
    gains = (np.ones(bins.size), None) if pan is None else pan_gains(pan)
    fade_n = round(fade_s * rate_hz)
    notes: list[dict[str, Any]] = []
    for i in np.flatnonzero(~rest):
        a, b = int(a_edges[i]), int(b_edges[i])
        freq = float(freqs[bins[i]])
        wave = note_samples(freq, b - a, rate_hz, float(amps[i]), fade_n, recipes[i])
        out[0, a:b] += gains[0][i] * wave
        if pan is not None:
            out[1, a:b] += gains[1][i] * wave
        notes.append({"index": int(i), "note": int(bins[i]), "freq_hz": freq,
                      "midi": float(69 + 12 * math.log2(freq / 440.0)),
                      "start_s": float(starts_s[i]), "duration_s": float(seconds[i]),
                      "amplitude": float(amps[i]), "pan": 0.0 if pan is None else float(pan[i]),
                      "instrument": names[i]})
    return out[0] if pan is None else out, notes
