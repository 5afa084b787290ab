"""The two halves of a task on real stores: the pure :class:`RowExtractor` (clips -> stored
rows) and the :class:`ShardBuffer` (batches into shards, skips shards a resumed run finds
complete, writes), the latter through both sinks of the store contract."""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from fieldkit.config.params import BitDepthParams, FeatureParams, ResampleParams
from fieldkit.dsp.bitdepth import to_int16
from fieldkit.errors import ProcessingError
from fieldkit.pipeline.extract import ClipBatch, RowExtractor, clipped_fraction
from fieldkit.pipeline.spec import DspSpec
from fieldkit.pipeline.tasks import ShardBuffer
from fieldkit.store.layout import StoreLayout
from fieldkit.store.regions import ZarrShardSink, open_sink, padding_arrays
from fieldkit.store.shards import DirectShardSink
from fieldkit.store.zarr_store import create_store, open_store
from fieldkit.testing.signals import white_noise
from tests.store.store_helpers import coords_for

SR, CLIP, N_CLIPS, SHARD = 16000, 400, 12, 4
PARAMS = FeatureParams(n_fft=256, hop_length=128, n_mels=16, n_mfcc=8)
DSP = DspSpec(resample=ResampleParams(target_rate_hz=SR, quality="HQ"),
              bit_depth=BitDepthParams(policy="int16", dither="tpdf", seed=7), features=PARAMS,
              clip_len=CLIP, hop=CLIP, waveform=True)
LAYOUT = StoreLayout.from_feature_params(N_CLIPS, CLIP, SR, PARAMS, waveform=True, waveform_dtype="int16",
                                         clips_per_chunk=2, clips_per_shard=SHARD)
EXTRACTOR = RowExtractor.for_store(DSP, (v.name for v in LAYOUT.variables()))


def clips(n: int, seed: int = 1) -> ClipBatch:
    samples = white_noise(n * CLIP / SR, SR, rms=0.1, seed=seed).reshape(n, CLIP)
    valid = np.full(n, CLIP, np.int64)
    valid[-1] = CLIP // 2
    samples[-1, CLIP // 2:] = 0  # as the clip cutter pads the last clip
    return ClipBatch(samples, valid, np.linspace(0, 1, n))


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_rows_are_the_same_whichever_batch_computes_them():
    batch = clips(10)
    whole = EXTRACTOR.extract(batch, first_clip=3)
    halves = [EXTRACTOR.extract(ClipBatch(*(a[s] for a in batch)), first_clip=3 + s.start)
              for s in (slice(0, 4), slice(4, 10))]
    assert set(whole) == {v.name for v in LAYOUT.variables()}
    for name, values in whole.items():
        joined = np.concatenate([h[name] for h in halves])
        if name == "waveform":  # dither keyed by the clip's store index: the very same bytes
            np.testing.assert_array_equal(joined, values)
        else:
            np.testing.assert_allclose(joined, values, rtol=1e-5, atol=1e-6)
    bits = BitDepthParams(policy="int16", dither="tpdf", seed=7)
    np.testing.assert_array_equal(whole["waveform"][5], to_int16(batch.clips[5], bits, key=(8,)))
    assert not np.array_equal(whole["waveform"][5], to_int16(batch.clips[5], bits, key=(5,)))
    np.testing.assert_array_equal(whole["valid_samples"], batch.valid.astype(np.int32))
    assert whole["clipped_fraction"].dtype == np.float32


def test_rows_hold_the_stored_variables_only():
    extractor = RowExtractor.for_store(DSP, ["valid_samples", "mel", "peak_dbfs"])
    rows = extractor.extract(clips(3), first_clip=0)
    assert sorted(rows) == ["mel", "peak_dbfs", "valid_samples"]
    assert rows["mel"].shape == (3, LAYOUT.n_frames, PARAMS.n_mels)


def test_a_float32_waveform_is_the_clips_themselves():
    dsp = dataclasses.replace(DSP, bit_depth=BitDepthParams(policy="float32"))
    batch = clips(2)
    assert RowExtractor.for_store(dsp, ["waveform"]).extract(batch, 0)["waveform"] is batch.clips


def test_clipped_fraction_counts_original_samples_of_every_channel_used():
    fraction = clipped_fraction(np.array([0, 3, 100, 5]), np.array([10, 10, 0, 10]), ratio=2.0, channels=2)
    np.testing.assert_allclose(fraction, [0.0, 3 / 40, 1.0, 5 / 40])


def test_a_batch_is_extracted_for_about_a_feature_group_of_frames():
    assert EXTRACTOR.batch_clips == 2048 // LAYOUT.n_frames


@pytest.fixture(params=[DirectShardSink, ZarrShardSink], ids=["direct", "zarr"])
def sink_class(request):
    return request.param


def fresh_store(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    create_store(path, LAYOUT, coords_for(N_CLIPS), {})
    return path


def run_buffer(sink, pieces: list[ClipBatch], batch_clips: int = 3) -> tuple[ShardBuffer, list[int]]:
    """Feed ``pieces`` to a buffer over the whole store; also return where extraction started."""
    extracted: list[int] = []

    def extract(batch: ClipBatch, first_clip: int) -> dict[str, np.ndarray]:
        extracted.extend(range(first_clip, first_clip + len(batch.clips)))
        return EXTRACTOR.extract(batch, first_clip)

    buffer = ShardBuffer(sink, slice(0, N_CLIPS), SHARD, extract, batch_clips)
    for piece in pieces:
        buffer.add(piece)
    buffer.finish()
    return buffer, extracted


def split(batch: ClipBatch, sizes: list[int]) -> list[ClipBatch]:
    edges = np.cumsum([0, *sizes])
    return [ClipBatch(*(a[lo:hi] for a in batch)) for lo, hi in zip(edges[:-1], edges[1:])]


def test_the_buffer_writes_whole_shards_and_pads_the_region(tmp_path, sink_class):
    path = fresh_store(tmp_path, "s.zarr")
    batch = clips(9)
    buffer, extracted = run_buffer(sink_class(path, LAYOUT), split(batch, [1, 5, 0, 2, 1]))
    assert (buffer.clips_computed, buffer.clips_skipped) == (N_CLIPS, 0)
    assert extracted == list(range(9))
    ds = open_store(path).load()
    expected = EXTRACTOR.extract(batch, 0)
    np.testing.assert_array_equal(ds["waveform"].values[:9], expected["waveform"])
    np.testing.assert_allclose(ds["mfcc"].values[:9], expected["mfcc"], rtol=1e-5, atol=1e-5)
    for name, values in padding_arrays(LAYOUT, 3).items():
        np.testing.assert_array_equal(ds[name].values[9:], values)
    assert sink_class(path, LAYOUT).is_complete(slice(0, N_CLIPS))


def test_a_resumed_buffer_skips_complete_shards_and_gives_the_same_bytes(tmp_path, sink_class):
    batch = clips(11)
    reference = fresh_store(tmp_path, "reference.zarr")
    run_buffer(sink_class(reference, LAYOUT), split(batch, [4, 4, 3]))
    resumed = tmp_path / "resumed.zarr"
    shutil.copytree(reference, resumed)
    for shard in (0, 2):  # as a crash mid-write leaves them: done cleared, a variable missing
        (resumed / "progress" / "done" / f"c.{shard}").unlink()
        (resumed / "mel" / f"c.{shard}.0.0").unlink()
    buffer, extracted = run_buffer(sink_class(resumed, LAYOUT), split(batch, [2, 7, 2]))
    assert (buffer.clips_computed, buffer.clips_skipped) == (8, 4)
    assert extracted == [0, 1, 2, 3, 8, 9, 10]  # shard 1 was not extracted again; 11 is padding
    assert snapshot(resumed) == snapshot(reference)


def test_more_clips_than_planned_is_an_error(tmp_path, sink_class):
    buffer = ShardBuffer(sink_class(fresh_store(tmp_path, "s.zarr"), LAYOUT), slice(0, 8), SHARD,
                         EXTRACTOR.extract, 3)
    buffer.add(clips(6))
    with pytest.raises(ProcessingError, match=r"task for clips \[0, 8\) produced more clips than planned"):
        buffer.add(clips(3))


# -- values the store cannot hold ---------------------------------------------------------------

HALF = StoreLayout.from_feature_params(N_CLIPS, CLIP, SR, PARAMS, waveform=True, waveform_dtype="int16",
                                       feature_dtype="float16", clips_per_chunk=2, clips_per_shard=SHARD)
HALF_EXTRACTOR = RowExtractor.for_store(DSP, (v.name for v in HALF.variables()),
                                        {v.name: v.dtype for v in HALF.variables()})


def test_a_value_the_stored_dtype_cannot_hold_is_counted_in_its_clip():
    batch = clips(4)
    batch.clips[2] *= 3000  # an unnormalised float file: its mel power overflows float16 (max 65 504)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # counted, so no "overflow in cast" warning either
        rows = HALF_EXTRACTOR.extract(batch, first_clip=0)
    assert rows["mel"].dtype == np.float16 and rows["centroid"].dtype == np.float32
    flagged = rows["nonfinite_count"]
    assert flagged.dtype == np.int32 and list(flagged[[0, 1, 3]]) == [0, 0, 0]
    stored = [name for name, values in rows.items() if values.dtype.kind == "f" and name != "peak_dbfs"]
    assert flagged[2] == sum(int((~np.isfinite(rows[name][2])).sum()) for name in stored) > 0
    assert np.isposinf(rows["mel"][2]).any() and np.isfinite(rows["mel"][[0, 1, 3]]).all()


def test_nan_from_a_kernel_is_counted_and_digital_silence_is_not():
    batch = clips(3)
    batch.clips[0] = 0.0  # digital silence: peak_dbfs is -inf by definition, every feature finite
    batch.clips[1, 100] = np.nan  # NaN in, NaN out of the STFT frames that see it
    rows = HALF_EXTRACTOR.extract(batch, first_clip=0)
    assert rows["peak_dbfs"][0] == -np.inf and rows["nonfinite_count"][0] == 0
    assert rows["nonfinite_count"][1] >= 2 * PARAMS.n_mels and rows["nonfinite_count"][2] == 0


def test_a_shard_buffer_counts_flagged_clips_and_values(tmp_path):
    path = tmp_path / "half.zarr"
    create_store(path, HALF, coords_for(N_CLIPS), {})
    sink = DirectShardSink(path, HALF)
    buffer = ShardBuffer(sink, slice(0, SHARD), SHARD, HALF_EXTRACTOR.extract, 2)
    batch = clips(SHARD)
    batch.clips[1] *= 3000
    buffer.add(batch)
    buffer.finish()
    stored = open_store(path, chunks=None)["nonfinite_count"].values
    assert buffer.nonfinite_clips == 1 == np.count_nonzero(stored)
    assert buffer.nonfinite_values == stored.sum() == stored[1] > 0


def test_a_schema_1_store_is_still_written_with_its_own_layout(tmp_path):
    # Stores written before nonfinite_count (schema 1) resume: float16 Hz features, no flag.
    old = dataclasses.replace(HALF, schema_version="1")
    path = tmp_path / "old.zarr"
    create_store(path, old, coords_for(N_CLIPS), {})
    sink = open_sink(path)
    assert sink.layout == old and sink.layout.variable("centroid").dtype == "float16"
    names = [v.name for v in sink.layout.variables()]
    extractor = RowExtractor.for_store(DSP, names, {v.name: v.dtype for v in sink.layout.variables()})
    buffer = ShardBuffer(sink, slice(0, SHARD), SHARD, extractor.extract, 2)
    buffer.add(clips(SHARD))
    buffer.finish()
    ds = open_store(path, chunks=None)
    assert ds.attrs["schema_version"] == "1" and "nonfinite_count" not in ds
    assert ds["centroid"].dtype == np.float16 and np.isfinite(ds["centroid"].values[:SHARD]).all()
