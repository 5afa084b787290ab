"""Scales and value-to-position maps for sonification (pure; no files).

A **scale** is a list of pitches within one period (cents above its first note, the period
usually 1200 cents = an octave), repeated period after period upward from a base frequency.
It is given by a *spec*:

- a name of :data:`SCALES` (12-tone equal temperament: ``pentatonic``, ``major``, ``minor``,
  ``chromatic``, ``whole-tone``...) or ``granville``: the scale of V. Granville's "Sound
  Generation in Python" (MIDI notes 35-64 without the half tones ``k % 12 in {0, 2, 5, 7, 10}``,
  :data:`GRANVILLE_MIDI`), played at its own pitch (MIDI 35 = 61.7 Hz) unless a base is given;
- ``N-tet`` (``19-tet``, ``31-TET``): N equal steps per octave;
- ``cents:0,200,386.3,702`` : a cents list (0 is implied; a last value of 1200 is the period);
- the text of a Scala ``.scl`` file (:func:`parse_scl`; the caller reads the file).

A **map** turns a feature series into positions in [0, 1] (:func:`positions`): ``linear``
(equal width between min and max), ``quantile`` (rank), ``log`` (positive values), ``asinh``
(signed values spanning decades, like astronomy's asinh stretch); ``reverse`` flips it (the
method makes *low* values loud).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from fieldkit.errors import ConfigError, UnknownNameError, ValidationError

__all__ = ["GRANVILLE_MIDI", "MAPS", "SCALES", "Scale", "midi_to_hz", "parse_scale", "parse_scl",
           "positions"]

#: Semitone offsets within one octave (12-TET). "minor" is the natural minor (Aeolian) scale.
SCALES: dict[str, tuple[int, ...]] = {
    "pentatonic": (0, 2, 4, 7, 9),  # major pentatonic: no half steps, so nothing clashes
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "chromatic": tuple(range(12)),
    "whole-tone": (0, 2, 4, 6, 8, 10),
    "harmonic-minor": (0, 2, 3, 5, 7, 8, 11),
    "blues": (0, 3, 5, 6, 7, 10),
}
#: The method's own note list: MIDI 35-64 skipping pitch classes 0, 2, 5, 7, 10 (18 notes).
GRANVILLE_MIDI: tuple[int, ...] = tuple(k for k in range(35, 65) if k % 12 not in {0, 2, 5, 7, 10})
MAPS = ("linear", "quantile", "log", "asinh")
#: Most notes a default scale spans (3 octaves of a 12-note scale).
MAX_DEFAULT_NOTES = 36
_TET = re.compile(r"^(\d+)-?tet$", re.IGNORECASE)


def midi_to_hz(midi: Any) -> np.ndarray:
    """Equal-tempered frequency (Hz) of MIDI note numbers (A4 = 69 = 440 Hz; fractions allowed)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class Scale:
    """Pitches of one period in cents (first 0), the period in cents, and defaults.

    ``default_base_hz`` is None for scales played from the caller's base (220 Hz by default);
    ``default_notes`` is the number of notes used when the caller gives none.
    """

    name: str
    cents: tuple[float, ...]
    period_cents: float = 1200.0
    default_notes: int | None = None
    default_base_hz: float | None = None

    def frequencies(self, n_notes: int | None = None, base_hz: float | None = None) -> np.ndarray:
        """The first ``n_notes`` pitches upward from ``base_hz``, Hz, strictly increasing."""
        n = self.default_notes if n_notes is None else n_notes
        if n is None:
            n = min(3 * len(self.cents), max(len(self.cents), MAX_DEFAULT_NOTES))
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"n_notes = {n!r} is invalid; expected an integer >= 1.")
        base = base_hz if base_hz is not None else (self.default_base_hz or 220.0)
        if not (math.isfinite(base) and base > 0):
            raise ConfigError(f"base_hz = {base!r} is invalid; expected a finite number > 0.")
        index = np.arange(n)
        cents = (index // len(self.cents)) * self.period_cents + np.asarray(self.cents)[index % len(self.cents)]
        return base * 2.0 ** (cents / 1200.0)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cents": list(self.cents), "period_cents": self.period_cents}


def _from_cents(name: str, values: list[float]) -> Scale:
    """Scala convention: the list omits 0 and ends with the period; a list not ending above
    its other values is taken as in-period pitches with an octave period."""
    vals = [v for v in values if v != 0.0]
    if not vals or any(not math.isfinite(v) or v < 0 for v in vals) or len(set(vals)) != len(vals):
        raise ConfigError(f"scale {name!r} is invalid: expected distinct positive cents values, got {values!r}.")
    vals = sorted(vals)
    period = vals.pop() if vals[-1] >= 1200.0 or len(vals) == 1 else 1200.0
    if any(v >= period for v in vals):
        raise ConfigError(f"scale {name!r} is invalid: pitches {vals} must lie below the period {period} cents.")
    return Scale(name, (0.0, *vals), period)


def _scl_pitch(text: str, line_no: int) -> float:
    """One Scala pitch line in cents: ``701.955`` (a dot: cents), ``3/2`` or ``2`` (a ratio)."""
    token = text.split()[0] if text.split() else ""
    try:
        if "." in token:
            return float(token)
        ratio = Fraction(token)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValidationError(f"Scala line {line_no} ({text!r}) is not a pitch; expected cents with a dot "
                              "(701.955) or a ratio (3/2).") from exc
    if ratio <= 0:
        raise ValidationError(f"Scala line {line_no} ({text!r}): a ratio must be positive.")
    return 1200.0 * math.log2(ratio)


def parse_scl(text: str, name: str = "scl") -> Scale:
    """A scale from the text of a Scala ``.scl`` file (https://www.huygens-fokker.org/scala/scl_format.html).

    Lines starting with ``!`` are comments; the first other line is the description, the next
    the number of pitches, then one pitch per line (cents if it holds a dot, else a ratio),
    the last being the period (usually 2/1). 1/1 is implied.
    """
    lines = [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1) if not ln.strip().startswith("!")]
    if len(lines) < 2 or not lines[1][1].split() or not lines[1][1].split()[0].isdigit():
        raise ValidationError(f"{name} is not a Scala scale: expected a description line, then the number of "
                              "pitches, then the pitches.")
    count = int(lines[1][1].split()[0])
    pitches = [_scl_pitch(text_, i) for i, text_ in lines[2:2 + count] if text_]
    if len(pitches) != count or count < 1:
        raise ValidationError(f"{name} declares {count} pitches but lists {len(pitches)}.")
    scale = _from_cents(name, pitches)
    return Scale(name, scale.cents, pitches[-1], len(scale.cents) + 1)


def parse_scale(spec: str) -> Scale:
    """A :class:`Scale` from a name, ``N-tet`` or ``cents:...`` spec (module docstring)."""
    text = str(spec).strip()
    if text.lower() == "granville":
        semis = tuple(float(100 * (k - GRANVILLE_MIDI[0])) for k in GRANVILLE_MIDI[:7])
        return Scale("granville", semis, 1200.0, len(GRANVILLE_MIDI), float(midi_to_hz(GRANVILLE_MIDI[0])))
    if text.lower() in SCALES:
        return Scale(text.lower(), tuple(100.0 * s for s in SCALES[text.lower()]))
    tet = _TET.match(text)
    if tet:
        n = int(tet.group(1))
        if not 1 <= n <= 1200:
            raise ConfigError(f"scale {text!r} is invalid; expected N-tet with 1 <= N <= 1200.")
        return Scale(f"{n}-tet", tuple(1200.0 * k / n for k in range(n)))
    if text.lower().startswith("cents:"):
        try:
            values = [float(v) for v in text[6:].split(",") if v.strip()]
        except ValueError as exc:
            raise ConfigError(f"scale {text!r} is invalid; expected cents:V1,V2,... with numbers.") from exc
        return _from_cents(text, values)
    raise UnknownNameError("scale", text, (*SCALES, "granville", "N-tet", "cents:...", "FILE.scl"))


def positions(values: Any, method: str = "linear", reverse: bool = False) -> np.ndarray:
    """Each finite value's position in [0, 1] under ``method`` (:data:`MAPS`); NaN stays NaN.

    ``linear``: ``(v - min) / (max - min)``; ``quantile``: rank / (n - 1); ``log``: linear in
    ``log10 v`` (every finite value must be > 0); ``asinh``: linear in ``asinh(v / s)`` with
    ``s`` the median absolute value (so small values are near-linear and large ones
    logarithmic, of either sign). A constant series sits at 0.5. ``reverse``: ``1 - p``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValidationError(f"values must be a 1-D series; got shape {x.shape}.")
    if method not in MAPS:
        raise UnknownNameError("map", method, MAPS)
    finite = np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if not finite.any():
        return out
    v = x[finite]
    if method == "quantile":
        ranks = np.argsort(np.argsort(v, kind="stable"), kind="stable")
        out[finite] = ranks / max(1, v.size - 1) if v.size > 1 else 0.5
    else:
        if method == "log":
            if np.any(v <= 0):
                raise ConfigError(f"a log map needs values > 0; the smallest is {v.min():g}.",
                                  hint="Use --map DIM=asinh for values of either sign.")
            v = np.log10(v)
        elif method == "asinh":
            scale = float(np.median(np.abs(v))) or float(np.max(np.abs(v))) or 1.0
            v = np.arcsinh(v / scale)
        lo, hi = v.min(), v.max()
        out[finite] = 0.5 if hi == lo else (v - lo) / (hi - lo)
    return 1.0 - out if reverse else out
