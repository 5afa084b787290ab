"""Safety of the export service: refusals, replacement, atomicity, input checks; pooling."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fieldkit.errors import ExportError, UnknownNameError, ValidationError
from fieldkit.export.exporter import export_dataset
from fieldkit.export.formats import FORMATS, ExportFormat, get_format
from fieldkit.export.pooling import FrameTiming, pooled_columns, valid_frame_counts
from tests.export.conftest import make_input


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


def test_unknown_format_lists_the_known_ones(tmp_path, export_input):
    with pytest.raises(UnknownNameError) as err:
        export_dataset(export_input, tmp_path / "x", format="hdf5")
    assert str(err.value) == "unknown export format 'hdf5'; known: lhotse, numpy, parquet, webdataset, zarr."
    assert not (tmp_path / "x").exists()
    assert get_format("zarr").name == "zarr" and set(FORMATS) == {"zarr", "numpy", "parquet", "webdataset", "lhotse"}


def test_a_non_empty_folder_is_refused_and_left_unchanged(tmp_path, export_input):
    target = tmp_path / "busy"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("field notes")
    (target / "sub" / "a.bin").write_bytes(b"\x00\x01")
    before = _snapshot(target)
    with pytest.raises(ExportError, match="is not empty") as err:
        export_dataset(export_input, target, format="numpy")
    assert "overwrite=True" in str(err.value)
    with pytest.raises(ExportError, match="not a fieldkit export"):
        export_dataset(export_input, target, format="numpy", overwrite=True)
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_overwrite_replaces_only_the_same_dataset_version(tmp_path, store_path):
    first = make_input(store_path, version=1)
    target = tmp_path / "wood-calls-1"
    export_dataset(first, target, format="numpy")
    (target / "stale.txt").write_text("from an older export")
    with pytest.raises(ExportError, match="is not empty"):
        export_dataset(first, target, format="parquet")
    other = make_input(store_path, version=2)
    with pytest.raises(ExportError, match="version 1, not wood-calls version 2"):
        export_dataset(other, target, format="parquet", overwrite=True)
    result = export_dataset(first, target, format="parquet", overwrite=True)
    assert result.format == "parquet" and not (target / "stale.txt").exists()
    assert json.loads((target / "export.json").read_text())["format"] == "parquet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wood-calls-1"]


def test_an_empty_existing_folder_is_used(tmp_path, export_input):
    (tmp_path / "empty").mkdir()
    result = export_dataset(export_input, tmp_path / "empty", format="parquet")
    assert (result.out_dir / "manifest.json").is_file()
    assert result.n_clips == len(export_input.index)


def test_a_failed_export_leaves_nothing(tmp_path, export_input, monkeypatch):
    def half_then_fail(inp, out_dir):
        (out_dir / "data").mkdir()
        (out_dir / "data" / "half.npy").write_bytes(b"partial")
        raise OSError("disk full")

    broken = ExportFormat("broken", "fails midway", half_then_fail,
                          FORMATS["numpy"].read_pooled, "")
    monkeypatch.setitem(FORMATS, "broken", broken)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(export_input, tmp_path / "out", format="broken")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_replacement_keeps_the_earlier_export(tmp_path, export_input, monkeypatch):
    target = export_dataset(export_input, tmp_path / "out", format="parquet").out_dir
    before = _snapshot(target)

    def fail(inp, out_dir):
        raise OSError("disk full")

    monkeypatch.setitem(FORMATS, "broken", dataclasses.replace(FORMATS["numpy"], export=fail))
    with pytest.raises(OSError):
        export_dataset(export_input, target, format="broken", overwrite=True)
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_clips_not_in_the_store_are_refused(tmp_path, export_input):
    index = export_input.index.copy()
    index.loc[0, "recording_id"] = 9999
    bad = dataclasses.replace(export_input, index=index)
    with pytest.raises(ValidationError, match="belong to other recordings"):
        export_dataset(bad, tmp_path / "out", format="numpy")
    first = int(index.loc[0, "clip_id"])
    index.loc[0, "clip_id"] = 10_000
    lineage = [{**r, "clip_id": 10_000} if r["clip_id"] == first else r
               for r in export_input.lineage]
    outside = dataclasses.replace(export_input, index=index, lineage=lineage)
    with pytest.raises(ValidationError, match="outside the store"):
        export_dataset(outside, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_input_checks_name_the_problem(export_input):
    index = export_input.index.copy()
    index.at[0, "labels"] = ["whale"]
    with pytest.raises(ValidationError, match="missing: \\['whale'\\]"):
        dataclasses.replace(export_input, index=index)
    with pytest.raises(ValidationError, match="lacks column"):
        dataclasses.replace(export_input, index=export_input.index.drop(columns="split"))
    lineage = export_input.lineage[1:]
    with pytest.raises(ValidationError, match="missing clips"):
        dataclasses.replace(export_input, lineage=lineage)
    partial = [{k: v for k, v in r.items() if k != "cards"} for r in export_input.lineage]
    with pytest.raises(ValidationError, match="incomplete"):
        dataclasses.replace(export_input, lineage=partial)


def test_valid_frames_exclude_padding():
    timing = FrameTiming(hop_length=160, n_fft=512, center=True)
    counts = valid_frame_counts(np.array([16000, 8000, 1, 0]), 101, timing)
    assert counts.tolist() == [100, 50, 1, 1]
    uncentred = FrameTiming(hop_length=160, n_fft=512, center=False)
    assert valid_frame_counts(np.array([16000]), 97, uncentred).tolist() == [97]


def test_pooled_columns_use_only_valid_frames():
    mel = np.zeros((2, 4, 2), np.float32)
    mel[0] = [[1, 10], [3, 10], [5, 10], [100, 100]]
    mel[1] = [[2, 0], [4, 0], [99, 99], [99, 99]]
    rms = mel[:, :, 0]
    columns = pooled_columns({"mel": mel, "rms": rms, "peak_dbfs": np.array([-1.0, -2.0])},
                             np.array([3, 2]))
    assert list(columns) == ["mel_mean_00", "mel_mean_01", "mel_std_00", "mel_std_01",
                             "rms_mean", "rms_std", "peak_dbfs"]
    np.testing.assert_allclose(columns["mel_mean_00"], [3.0, 3.0])
    np.testing.assert_allclose(columns["mel_std_00"], [np.std([1, 3, 5]), 1.0], rtol=1e-6)
    np.testing.assert_allclose(columns["mel_mean_01"], [10.0, 0.0])
    np.testing.assert_allclose(columns["rms_mean"], columns["mel_mean_00"])
    assert all(c.dtype == np.float32 for c in columns.values())
