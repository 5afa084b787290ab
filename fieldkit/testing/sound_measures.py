"""Measure what a sonification plays, from its samples alone (for tests with known answers).

Independent of how the notes were made: onsets from the analytic envelope (scipy's Hilbert
transform), pitch from a zero-padded FFT (:func:`fieldkit.testing.signals.peak_hz`), harmonic
profiles from the FFT magnitude at the partials, stereo balance from per-channel RMS.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal

from fieldkit.testing.signals import peak_hz

__all__ = ["balance", "cents_off_grid", "harmonic_profile", "note_onsets", "peak_hz"]


def note_onsets(samples: np.ndarray, rate_hz: float, fade_s: float = 0.01, floor: float = 0.1) -> np.ndarray:
    """Onsets (s) of notes that fade in (raised cosine of ``fade_s``), back to back or apart.

    The analytic envelope (channels summed) is compared with the level of the next 20 ms: it
    is "low" below ``floor`` times that level, which happens at every join of a fade-out and a
    fade-in and in every silence. A note starts where a low run ends, less the time its
    fade-in takes to reach ``floor`` (``fade_s * acos(1 - 2 floor) / pi``), if the next 20 ms
    reach 5 % of the loudest note; a signal that starts loud has an onset at 0.
    """
    x = np.atleast_2d(np.asarray(samples, np.float64))
    env = np.abs(scipy.signal.hilbert(x, axis=-1)).sum(axis=0)
    env = scipy.ndimage.uniform_filter1d(env, max(1, round(0.0005 * rate_hz)))
    size = 2 * round(0.01 * rate_hz) + 1
    ahead = scipy.ndimage.maximum_filter1d(env, size, origin=-(size // 2))  # max of env[i : i + size]
    low = env < floor * np.maximum(ahead, 0.01 * env.max())
    rises = np.flatnonzero(low[:-1] & ~low[1:]) + 1
    # a rise must lead into a note: not the Hilbert ripple at the end of a note before a rest
    rises = rises[ahead[rises] > 0.05 * env.max()]
    rise_s = fade_s * np.arccos(1 - 2 * floor) / np.pi
    onsets = rises / rate_hz - rise_s
    return onsets if low[0] else np.concatenate([[0.0], onsets])


def harmonic_profile(samples: np.ndarray, rate_hz: float, f0_hz: float, partials: int = 8) -> np.ndarray:
    """Amplitudes of partials 1..``partials`` of a steady note, relative to the strongest
    (Hann-windowed, zero-padded FFT magnitude: the largest within 2 Hz of each ``k * f0_hz``)."""
    x = np.asarray(samples, np.float64)
    n = max(2**18, x.size)  # zero-padded: the Hann window's scalloping (up to 15 %) disappears
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate_hz)
    out = []
    for k in range(1, partials + 1):
        near = np.abs(freqs - k * f0_hz) <= 2.0
        out.append(mag[near].max() if k * f0_hz < rate_hz / 2 else 0.0)
    profile = np.asarray(out)
    return profile / profile.max()


def balance(left: np.ndarray, right: np.ndarray) -> float:
    """Stereo balance in [0, 1]: ``rms(right) / (rms(left) + rms(right))`` (0.5 = centre)."""
    lr = [float(np.sqrt(np.mean(np.asarray(c, np.float64) ** 2))) for c in (left, right)]
    return lr[1] / (lr[0] + lr[1])


def cents_off_grid(freq_hz: float, base_hz: float, steps_per_octave: int) -> float:
    """Distance in cents of ``freq_hz`` from the nearest note of an N-TET grid on ``base_hz``."""
    step = 1200.0 / steps_per_octave
    cents = 1200.0 * np.log2(freq_hz / base_hz)
    return float(abs(cents - step * round(cents / step)))
