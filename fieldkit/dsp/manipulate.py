"""The classic manipulations for listening: reverse, speed change, pitch shift, echo.

Pure kernels on float full-scale samples ``(frames,)`` or ``(channels, frames)``, applied to a
preview after its mode (time expansion, heterodyne...) and before loudness normalisation.
Speed change resamples with soxr (:func:`fieldkit.dsp.resample.resample`): played at the same
rate, ``speed`` 2 is twice as fast and an octave higher. Pitch shift is librosa's (phase
vocoder time stretch + soxr resampling): the duration stays, every frequency is multiplied by
``2 ** (semitones / 12)``. Echo is a feedback delay line ``y[n] = x[n] + g y[n - D]``, the
signal extended until the echoes have decayed by 60 dB.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.signal

from fieldkit.dsp.channels import as_channels
from fieldkit.dsp.resample import resample
from fieldkit.errors import ConfigError

__all__ = ["Manipulations", "apply", "echo", "reverse", "speed"]

MAX_ECHO_TAIL_S = 5.0


@dataclass(frozen=True)
class Manipulations:
    """What to do to a preview, in this order: reverse, speed, pitch shift, echo.

    ``speed`` (> 0; 1 = unchanged), ``semitones`` (pitch shift), ``echo_delay_s`` (0 = no echo)
    and ``echo_feedback`` (0 < g < 1, the level of each repeat relative to the one before).
    """

    reverse: bool = False
    speed: float = 1.0
    semitones: float = 0.0
    echo_delay_s: float = 0.0
    echo_feedback: float = 0.4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != Manipulations(echo_feedback=self.echo_feedback)


def reverse(samples: np.ndarray) -> np.ndarray:
    """The samples played backwards (a bat call's sweep runs the other way)."""
    return np.ascontiguousarray(np.asarray(samples)[..., ::-1])


def speed(samples: np.ndarray, rate_hz: float, factor: float) -> np.ndarray:
    """Resampled so that, played at ``rate_hz``, it lasts ``1 / factor`` as long and every
    frequency is ``factor`` times higher."""
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"speed = {factor!r} is invalid; expected a number > 0 (0.5 = half speed).")
    if factor == 1:
        return np.asarray(samples, np.float32)
    return resample(np.ascontiguousarray(samples, dtype=np.float32), rate_hz, rate_hz / factor)


def echo(samples: np.ndarray, rate_hz: float, delay_s: float, feedback: float = 0.4) -> np.ndarray:
    """Feedback echo: ``y[n] = x[n] + feedback * y[n - D]`` with ``D = round(delay_s * rate_hz)``,
    the input padded so the echoes decay by 60 dB (at most :data:`MAX_ECHO_TAIL_S` more)."""
    if not (math.isfinite(delay_s) and delay_s > 0 and 0 < feedback < 1):
        raise ConfigError(f"echo delay {delay_s!r} s and feedback {feedback!r} are invalid; expected delay > 0 "
                          "and 0 < feedback < 1.")
    d = max(1, round(delay_s * rate_hz))
    repeats = math.ceil(-3.0 / math.log10(feedback))  # feedback ** repeats <= 1e-3 (-60 dB)
    tail = min(d * repeats, round(MAX_ECHO_TAIL_S * rate_hz))
    x = as_channels(np.asarray(samples, np.float64))
    x = np.concatenate([x, np.zeros((x.shape[0], tail))], axis=1)
    a = np.zeros(d + 1)
    a[0], a[d] = 1.0, -feedback
    y = scipy.signal.lfilter([1.0], a, x, axis=-1).astype(np.float32)
    return y[0] if np.asarray(samples).ndim == 1 else y


def apply(samples: np.ndarray, rate_hz: float, m: Manipulations,
          pitch_shift: Callable[[np.ndarray, float, float], np.ndarray] | None = None) -> np.ndarray:
    """Apply ``m`` (reverse, speed, pitch shift, echo, in that order).

    ``pitch_shift`` is :func:`fieldkit.dsp.pitch_shift.pitch_shift`, handed in by the caller when
    ``m.semitones`` asks for it: that module imports librosa (~2 s of numba start-up), which a
    preview without a pitch shift should not pay.
    """
    y = np.asarray(samples, np.float32)
    if m.reverse:
        y = reverse(y)
    y = speed(y, rate_hz, m.speed)
    if m.semitones:
        if pitch_shift is None:
            raise ValueError("a pitch shift was asked for but no pitch_shift kernel was given")
        y = pitch_shift(y, rate_hz, m.semitones)
    if m.echo_delay_s:
        y = echo(y, rate_hz, m.echo_delay_s, m.echo_feedback)
    return y
