"""The arithmetic of false-colour pictures and heat maps (fieldkit.dsp.false_colour)."""

from __future__ import annotations

import numpy as np

from fieldkit.dsp.false_colour import false_colour, group_means, group_sums, hour_day_grid, means_of, scale_channel


def test_group_means_ignore_nan_and_add_up_block_by_block():
    rng = np.random.default_rng(0)
    values = rng.random((50, 4))
    values[3, 1] = np.nan
    keys = rng.integers(100, 110, 50)
    unique, means = group_means(values, keys)
    expected = np.array([np.nanmean(values[keys == k], axis=0) for k in unique])
    np.testing.assert_allclose(means, expected)
    _, inverse = np.unique(keys, return_inverse=True)
    halves = [group_sums(values[s], inverse[s], unique.size) for s in (slice(0, 20), slice(20, 50))]
    np.testing.assert_allclose(means_of(halves[0][0] + halves[1][0], halves[0][1] + halves[1][1]), expected)
    assert np.isnan(means_of(np.zeros(1), np.zeros(1)))[0]


def test_channels_are_scaled_between_their_percentiles():
    values = np.arange(101, dtype=float)
    scaled, (lo, hi) = scale_channel(values)
    assert (lo, hi) == (2.0, 98.0)
    assert scaled[2] == 0 and scaled[98] == 1 and scaled[50] == 0.5 and scaled[0] == 0 and scaled[100] == 1
    constant, _ = scale_channel(np.array([3.0, 3.0, np.nan]))
    assert constant[:2].tolist() == [0.5, 0.5] and np.isnan(constant[2])


def test_false_colour_puts_low_bins_first_and_keeps_empty_columns_empty():
    red = np.array([[0.0, 1.0, 2.0], [np.nan] * 3, [2.0, 1.0, 0.0]])  # (columns, bins)
    rgb, bounds = false_colour(red, red * 2, red * 3)
    assert rgb.shape == (3, 3, 3) and len(bounds) == 3  # (bins, columns, channel)
    assert rgb[0, 0, 0] == 0 and rgb[2, 0, 0] == 1 and rgb[0, 2, 0] == 1
    assert np.isnan(rgb[:, 1]).all()


def test_hour_day_grid_places_each_hour():
    grid, days = hour_day_grid(np.array([10 * 24 + 5, 12 * 24 + 23]), np.array([1.5, 2.5]))
    assert days.tolist() == [10, 12] and grid.shape == (2, 24)
    assert grid[0, 5] == 1.5 and grid[1, 23] == 2.5 and np.isnan(grid).sum() == 46
