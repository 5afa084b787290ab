"""Each export format against the store it came from: files, values, loaders, card, Croissant."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlcroissant as mlc
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xarray as xr

from fieldkit.export.request import LINEAGE_KEYS, file_sha256
from tests.export.conftest import LABELS, store_values

COMMON_FILES = ("README.md", "croissant.json", "manifest.json", "index.parquet", "index.csv",
                "lineage.json", "export.json")
ARRAYS = ("waveform", "valid_samples", "mel", "mfcc", "chroma", "centroid", "bandwidth", "rms",
          "clipped_fraction", "peak_dbfs", "dc_offset", "silent_fraction")


def _split_rows(export_input, split: str) -> pd.DataFrame:
    return export_input.split_index(split)


def test_every_export_has_the_common_files(exported):
    _, out = exported
    for name in COMMON_FILES:
        assert (out / name).is_file(), name
    assert not list(out.parent.glob(".*partial*")), "temporary folder left behind"


def test_data_files_per_format(exported, export_input):
    fmt, out = exported
    for split in export_input.splits:
        if fmt == "zarr":
            assert (out / "data" / f"{split}.zarr" / "zarr.json").is_file()
        elif fmt == "numpy":
            for name in (*ARRAYS, "labels", "clip_id"):
                assert (out / "data" / split / f"{name}.npy").is_file(), name
        else:
            assert (out / "data" / f"{split}-00000-of-00001.parquet").is_file()


def test_numpy_arrays_memory_map_and_equal_the_store(exports, export_input, store_path):
    out = exports["numpy"]
    for split in export_input.splits:
        rows = _split_rows(export_input, split)
        ids = rows["clip_id"].to_numpy()
        for name in ARRAYS:
            array = np.load(out / "data" / split / f"{name}.npy", mmap_mode="r")
            assert isinstance(array, np.memmap)
            np.testing.assert_array_equal(array, store_values(store_path, name, ids))
        np.testing.assert_array_equal(np.load(out / "data" / split / "clip_id.npy"), ids)
        labels = np.load(out / "data" / split / "labels.npy", mmap_mode="r")
        assert labels.dtype == np.uint8 and labels.shape == (len(ids), len(LABELS))
        expected = [LABELS.index(names[0]) for names in rows["labels"]]
        np.testing.assert_array_equal(labels.argmax(axis=1), expected)
        assert (labels.sum(axis=1) == 1).all()


def test_numpy_export_streams_in_small_blocks(tmp_path, export_input, store_path, monkeypatch):
    monkeypatch.setattr("fieldkit.export.pooling.BLOCK_BYTES", 100_000)  # ~1 clip per block
    from fieldkit.export.exporter import export_dataset

    out = export_dataset(export_input, tmp_path / "small-blocks", format="numpy").out_dir
    ids = _split_rows(export_input, "train")["clip_id"].to_numpy()
    np.testing.assert_array_equal(np.load(out / "data/train/mel.npy", mmap_mode="r"),
                                  store_values(store_path, "mel", ids))


def test_zarr_export_opens_with_xarray_and_equals_the_store(exports, export_input, store_path):
    out = exports["zarr"]
    for split in export_input.splits:
        ds = xr.open_zarr(out / "data" / f"{split}.zarr", consolidated=True)
        ids = _split_rows(export_input, split)["clip_id"].to_numpy()
        assert ds.attrs["split"] == split and ds.attrs["sample_rate_hz"] == 16000
        assert "layout" not in ds.attrs and ds.attrs["parameters"]["features"]["n_mels"] == 40
        assert list(ds["label"].values) == list(LABELS)
        np.testing.assert_array_equal(ds["clip_id"].values, ids)
        for name in ARRAYS:
            np.testing.assert_array_equal(ds[name].values, store_values(store_path, name, ids))
        assert ds["labels"].dims == ("clip", "label") and ds["labels"].dtype == np.uint8
        np.testing.assert_array_equal(ds["labels"].values, export_input.multi_hot(split))
        assert ds["site"].values.tolist() == store_values(store_path, "site", ids).tolist()


def test_parquet_features_are_pooled_store_values(exports, export_input, store_path):
    out = exports["parquet"]
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet").to_pandas()
    ids = table["clip_id"].to_numpy()
    np.testing.assert_array_equal(ids, _split_rows(export_input, "train")["clip_id"].to_numpy())
    valid = store_values(store_path, "valid_samples", ids)
    assert (valid == 16000).all(), "this check assumes full 1 s clips at 16 kHz"
    # frames whose centre (t * hop_length = t * 160) lies inside the clip: 0..99 of 101
    mel = store_values(store_path, "mel", ids).astype(np.float64)[:, :100]
    mel_mean, mel_std = np.stack(table["mel_mean"]), np.stack(table["mel_std"])
    assert mel_mean.shape == (len(ids), 40)  # one fixed-length list per feature, not 40 columns
    np.testing.assert_allclose(mel_mean[:, 3], mel[:, :, 3].mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(mel_std[:, 3], mel[:, :, 3].std(axis=1), rtol=1e-4)
    rms = store_values(store_path, "rms", ids).astype(np.float64)[:, :100]
    np.testing.assert_allclose(table["rms_mean"], rms.mean(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(table["peak_dbfs"], store_values(store_path, "peak_dbfs", ids))
    assert set(table["split"]) == {"train"}


def _hf_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


LOAD_WITH_DATASETS = """
import json, sys
from datasets import load_dataset
files = {s: f"data/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")}
ds = load_dataset("parquet", data_files=files)
print(json.dumps({"rows": {s: ds[s].num_rows for s in ds},
                  "names": ds["train"].features["label"].names,
                  "label_type": type(ds["train"].features["label"]).__name__,
                  "splits": {s: sorted(set(ds[s]["split"])) for s in ds},
                  "has_torch": "torch" in sys.modules}))
"""


def test_parquet_loads_with_datasets_without_torch(exports, export_input, tmp_path):
    done = subprocess.run([sys.executable, "-c", LOAD_WITH_DATASETS], cwd=exports["parquet"],
                          env=_hf_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["rows"] == {s: len(_split_rows(export_input, s)) for s in export_input.splits}
    assert report["names"] == list(LABELS) and report["label_type"] == "ClassLabel"
    assert report["splits"] == {s: [s] for s in export_input.splits}
    assert report["has_torch"] is False


def test_croissant_validates_with_mlcroissant(exported, export_input):
    fmt, out = exported
    dataset = mlc.Dataset(jsonld=out / "croissant.json")
    issues = dataset.metadata.issues
    print(f"{fmt} croissant warnings: {sorted(issues.warnings)}")
    assert not issues.errors, issues.report()
    document = json.loads((out / "croissant.json").read_text())
    for key in ("datePublished", "license", "citeAs", "version", "conformsTo"):
        assert document[key], key
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    records = list(dataset.records("clips"))
    assert len(records) == len(export_input.index)
    if fmt == "parquet":
        assert len(list(dataset.records("features"))) == len(export_input.index)


def test_croissant_file_objects_carry_the_right_hashes(exported):
    _, out = exported
    document = json.loads((out / "croissant.json").read_text())
    objects = [d for d in document["distribution"] if d["@type"] == "cr:FileObject"]
    assert {"index.parquet", "README.md", "lineage.json"} <= {d["contentUrl"] for d in objects}
    for entry in objects:
        assert entry["sha256"] == file_sha256(out / entry["contentUrl"])


def test_manifest_hashes_every_file(exported):
    _, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and not p.relative_to(out).as_posix().startswith("baseline/")}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == file_sha256(out / rel), rel
        assert entry["size"] == (out / rel).stat().st_size


def test_lineage_has_one_complete_record_per_clip(exported, export_input):
    _, out = exported
    lineage = json.loads((out / "lineage.json").read_text())
    clips = lineage["clips"]
    assert [c["clip_id"] for c in clips] == export_input.index["clip_id"].tolist()
    for record in clips:
        assert all(record.get(key) not in (None, "", []) for key in LINEAGE_KEYS), record


def test_index_files_describe_every_clip_in_array_order(exported, export_input):
    _, out = exported
    index = pd.read_parquet(out / "index.parquet")
    text = pd.read_csv(out / "index.csv", keep_default_na=False)
    assert list(index.columns) == ["clip_id", "recording_id", "recording_sha256", "file_name",
                                   "start_time", "start_s", "end_s", "site", "deployment",
                                   "labels", "split", "audio"]
    assert index["clip_id"].tolist() == text["clip_id"].tolist()
    assert index["clip_id"].tolist() == export_input.index["clip_id"].tolist()
    assert index["recording_id"].tolist() == export_input.index["recording_id"].tolist()
    archive = {c["clip_id"]: c["archive_path"] for c in export_input.lineage}
    assert index["file_name"].tolist() == [Path(archive[c]).name for c in index["clip_id"]]
    np.testing.assert_array_equal(index["start_s"], export_input.index["offset_s"])
    assert (index["end_s"] - index["start_s"]).between(0.5, 1.0).all()  # 1 s clips, >= half real
    assert index["start_time"].tolist() == text["start_time"].fillna("").tolist()
    assert all(a and (out / a).is_file() for a in index["audio"])
    times = index["start_time"]
    assert all(t == "" or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", t)
               for t in times)
    assert (times == "").sum() == export_input.index["start_time"].isna().sum()
    assert set(text["labels"]) <= set(LABELS)


def _snippet(readme: str) -> str:
    section = readme.split("## How to load it", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_has_the_label_table_and_a_five_line_snippet(exported, export_input):
    _, out = exported
    readme = (out / "README.md").read_text()
    assert "| label | train | validation | test | total |" in readme
    for label in LABELS:
        counts = [sum(label in names for names in export_input.split_index(s)["labels"])
                  for s in export_input.splits]
        assert f"| {label} | {' | '.join(map(str, counts))} | {sum(counts)} |" in readme
    assert f"| **clips** | 27 | 16 | 18 | {len(export_input.index)} |" in readme
    for text in ("CC-BY-4.0", "seed\n7", "`recording`", export_input.manifest_hash, "Wood",
                 "hop_length", "quarantined_files", "## Known limitations"):
        assert text in readme, text
    assert len(_snippet(readme).strip().splitlines()) == 5


def test_readme_snippet_runs_against_the_export(exported, tmp_path):
    fmt, out = exported
    code = _snippet((out / "README.md").read_text())
    done = subprocess.run([sys.executable, "-c", code], cwd=out, env=_hf_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{fmt} snippet failed:\n{code}\n{done.stderr}"
