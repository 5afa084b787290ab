"""Long-duration false-colour spectrograms and index heat maps: the pure arithmetic.

Towsey et al. (2014), "Visualization of long-duration acoustic recordings of the environment",
Procedia Computer Science 29: three spectral indices per frequency bin per minute, each scaled
to [0, 1] and shown as one colour channel, one pixel column per minute (R = ACI, G = ENT,
B = EVN, their "ACI-ENT-EVN" picture). Towsey scales each index between fixed bounds tuned to
his 22.05 kHz, 512-sample pipeline; here each channel is scaled between its 2nd and 98th
percentile over the picture, so a picture of any rate, frame length or site uses each
channel's full range (the bounds are returned, and printed on the figure's caption).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PERCENTILES", "false_colour", "group_means", "group_sums", "hour_day_grid", "means_of", "scale_channel"]

#: Percentiles of each channel mapped to 0 and 1.
PERCENTILES = (2.0, 98.0)


def group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the finite values of the rows of each group, to add up block by block.

    ``values`` is (rows, ...), ``groups`` (rows,) integers in ``[0, n_groups)``; both results are
    (n_groups, ...) float64.
    """
    v = np.asarray(values, np.float64)
    finite = np.isfinite(v)
    sums = np.zeros((n_groups, *v.shape[1:]))
    counts = np.zeros((n_groups, *v.shape[1:]))
    np.add.at(sums, groups, np.where(finite, v, 0.0))
    np.add.at(counts, groups, finite)
    return sums, counts


def means_of(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``sums / counts``, NaN where a group had no finite value."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def group_means(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the rows of ``values`` that share a key, ignoring NaN.

    Parameters
    ----------
    values : ndarray, shape (rows, ...)
    keys : ndarray of int, shape (rows,)
        Group of each row (a minute number, an hour...).

    Returns
    -------
    (ndarray, ndarray)
        The distinct keys, sorted, shape (groups,), and the means, shape (groups, ...),
        float64 (NaN where a group has no finite value).
    """
    unique, inverse = np.unique(np.asarray(keys), return_inverse=True)
    return unique, means_of(*group_sums(values, inverse, unique.size))


def scale_channel(values: np.ndarray, percentiles: tuple[float, float] = PERCENTILES
                  ) -> tuple[np.ndarray, tuple[float, float]]:
    """``values`` mapped linearly to [0, 1] between two percentiles of its finite values.

    Returns the scaled array (NaN stays NaN) and the (low, high) values used. A channel whose
    percentiles coincide (a constant index) maps to 0.5.
    """
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    if not finite.size:
        return np.full(v.shape, np.nan), (np.nan, np.nan)
    lo, hi = (float(x) for x in np.percentile(finite, percentiles))
    if hi <= lo:
        return np.where(np.isfinite(v), 0.5, np.nan), (lo, hi)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0), (lo, hi)


def false_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray
                 ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """An RGB picture from three (columns, bins) index arrays: (bins, columns, 3) in [0, 1].

    Row 0 is the lowest frequency bin (draw with ``origin="lower"``); a column without data
    (NaN in every channel) stays NaN, for the renderer to paint as missing. Returns the
    picture and each channel's (low, high) bounds.
    """
    channels, bounds = zip(*(scale_channel(c) for c in (red, green, blue)), strict=True)
    return np.stack([c.T for c in channels], axis=-1), list(bounds)


def hour_day_grid(keys: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (days, 24) grid of per-hour means, NaN where no clip; and the days' numbers.

    ``keys`` are ``day * 24 + hour`` (day: an integer count of local days, hour 0-23), distinct,
    and ``means`` the value of each key.
    """
    keys = np.asarray(keys)
    days = np.unique(keys // 24)
    grid = np.full((days.size, 24), np.nan)
    grid[np.searchsorted(days, keys // 24), keys % 24] = means
    return grid, days
