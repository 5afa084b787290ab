"""Clip cutting, per-clip clipped counts and per-clip QC: known answers and block invariance."""

from __future__ import annotations

import numpy as np
import pytest

from fieldkit.dsp.clips import ClipCutter, ClippedCounter, clip_count, clip_qc, joined


def _cut(signal: np.ndarray, clip_len: int, hop: int, n_clips: int, blocks: list[int]):
    cutter = ClipCutter(clip_len, hop, n_clips)
    parts, at = [], 0
    for size in blocks:
        parts.append(cutter.feed(signal[at:at + size]))
        at += size
    parts.append(cutter.feed(signal[at:]))
    parts.append(cutter.finish())
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("blocks", [[], [1] * 50, [7, 300, 2, 1000], [10_000]])
@pytest.mark.parametrize(("clip_len", "hop"), [(100, 100), (100, 40), (64, 150)])
def test_clips_do_not_depend_on_how_the_stream_is_fed(blocks, clip_len, hop):
    signal = np.arange(1, 1031, dtype=np.float32)
    n = clip_count(len(signal), clip_len, hop, 0.5)
    clips, valid = _cut(signal, clip_len, hop, n, blocks)
    assert clips.shape == (n, clip_len) and clips.dtype == np.float32
    for k in range(n):
        piece = signal[k * hop:k * hop + clip_len]
        assert valid[k] == len(piece)
        np.testing.assert_array_equal(clips[k, :len(piece)], piece)
        assert not clips[k, len(piece):].any()  # zero padding after the valid samples


def test_planned_clips_past_the_stream_are_all_padding():
    clips, valid = _cut(np.ones(150, np.float32), 100, 100, 3, [])
    assert valid.tolist() == [100, 50, 0]
    assert clips[2].tolist() == [0.0] * 100


def test_clipped_counts_per_clip_with_and_without_clipped_blocks():
    counter = ClippedCounter(clip_len_in=10, hop_in=5, n_clips=4)  # clips [0,10) [5,15) [10,20) [15,25)
    counter.skip(4)  # frames 0-3: nothing clipped (the fast path)
    mask = np.zeros(10, np.int64)  # frames 4-13
    mask[[2, 8]] = [1, 2]  # frames 6 (one channel) and 12 (two channels)
    counter.update(mask)
    counter.skip(11)
    assert counter.counts().tolist() == [1, 3, 2, 0]


def test_clip_qc_known_answers():
    rate = 1000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 50 * t) + 0.1).astype(np.float32)  # peak 0.6, DC 0.1
    quiet = np.zeros(rate, np.float32)
    quiet[:250] = 0.25  # 75 % silent
    half = np.zeros(rate, np.float32)
    half[:500] = -0.5  # 500 valid samples then padding: DC -0.5, not silent
    qc = clip_qc(np.stack([tone, quiet, half]), np.array([rate, rate, 500]))
    np.testing.assert_allclose(qc["peak_dbfs"], 20 * np.log10([0.6, 0.25, 0.5]), atol=1e-4)
    np.testing.assert_allclose(qc["dc_offset"], [0.1, 0.0625, -0.5], atol=1e-6)
    np.testing.assert_allclose(qc["silent_fraction"], [0.0, 0.75, 0.0])
    empty = clip_qc(np.zeros((1, rate), np.float32), np.array([0]))
    assert empty["peak_dbfs"].tolist() == [-np.inf] and empty["silent_fraction"].tolist() == [1.0]


def test_joined_batches_are_one_array_and_a_single_one_is_not_copied():
    a, b = np.arange(6.0).reshape(3, 2), np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(joined([a, b]), np.vstack([a, b]))
    assert joined([a]) is a
