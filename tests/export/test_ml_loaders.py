"""Each ML format loaded by its own library and compared with the run's store.

Audio, features, labels and splits of the demo-like export (tests/export/conftest.py) are
read back with Hugging Face ``datasets``, ``webdataset`` (through a torch DataLoader) and
``lhotse``, and compared value by value with the store they came from. FLAC of a float
waveform is 24-bit, so a decoded sample may differ from the stored float by one 24-bit step.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fieldkit.export.exporter import export_dataset
from fieldkit.export.flac_audio import FLOAT_FLAC_STEP, clip_key
from tests.export.conftest import LABELS, SHARD_SIZE, make_input, store_values


def _expected_audio(store_path: Path, clip_ids) -> list[np.ndarray]:
    wave = store_values(store_path, "waveform", np.asarray(clip_ids))
    valid = store_values(store_path, "valid_samples", np.asarray(clip_ids))
    return [w[:v] for w, v in zip(wave, valid)]


def _assert_same_audio(decoded: np.ndarray, stored: np.ndarray) -> None:
    """Equal to the store: bit for bit for int16, within one 24-bit step for floats.

    FLAC has no room above full scale: a float sample beyond +-1 (the resampler's overshoot
    on a clipped recording; this card has some) decodes as +-1.
    """
    assert decoded.shape == stored.shape
    if stored.dtype == np.int16:
        np.testing.assert_array_equal(decoded, stored)
    else:
        expected = np.clip(stored.astype(np.float64), -1.0, 1.0)
        assert np.max(np.abs(decoded.astype(np.float64) - expected)) <= FLOAT_FLAC_STEP


def _hf_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


# Run in a child process so that the HF cache lives in tmp_path and nothing is fetched.
HF_LOAD = """
import io, json, sys
import numpy as np, soundfile as sf
from datasets import Audio, load_dataset
ds = load_dataset(sys.argv[1])  # the folder: the card's configs name each split's file
features = ds["train"].features
report = {"splits": {s: ds[s].num_rows for s in ds},
          "audio": type(features["audio"]).__name__, "rate": features["audio"].sampling_rate,
          "mel_mean": [type(features["mel_mean"]).__name__, features["mel_mean"].length],
          "label": [type(features["label"]).__name__, features["label"].names],
          "start_time": features["start_time"].dtype, "start_s": features["start_s"].dtype}
raw = ds.cast_column("audio", Audio(decode=False))
np.savez(sys.argv[2], **{f"{s}_{i}": sf.read(io.BytesIO(row["audio"]["bytes"]),
                                              dtype="float32")[0]
                          for s in raw for i, row in enumerate(raw[s])})
torch_rows = raw["train"].select_columns(["mel_mean", "label", "start_s", "clip_id"])
batch = torch_rows.with_format("torch")[:4]
report["torch"] = {k: [type(v).__name__, list(v.shape)] for k, v in batch.items()}
full = ds["train"].remove_columns("audio").with_format("numpy")[:]
report["numpy_mel_mean"] = list(full["mel_mean"].shape)
report["labels"] = {s: list(raw[s]["label"]) for s in raw}
report["clip_ids"] = {s: list(raw[s]["clip_id"]) for s in raw}
report["split_column"] = {s: sorted(set(raw[s]["split"])) for s in raw}
print(json.dumps(report))
"""


def test_hf_load_dataset_yields_audio_arrays_and_class_labels(exports, export_input,
                                                              store_path, tmp_path):
    out = exports["parquet"]
    decoded = tmp_path / "decoded.npz"
    done = subprocess.run([sys.executable, "-c", HF_LOAD, str(out), str(decoded)],
                          env=_hf_env(tmp_path), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["splits"] == {s: len(export_input.split_index(s)) for s in export_input.splits}
    assert report["audio"] == "Audio" and report["rate"] == 16000
    assert report["mel_mean"] == ["List", 40]
    assert report["label"] == ["ClassLabel", list(LABELS)]
    assert report["start_time"] == "string" and report["start_s"] == "float64"
    assert report["torch"]["mel_mean"] == ["Tensor", [4, 40]]
    assert report["torch"]["label"] == ["Tensor", [4]]
    assert report["numpy_mel_mean"] == [len(export_input.split_index("train")), 40]
    arrays = np.load(decoded)
    for split in export_input.splits:
        rows = export_input.split_index(split)
        assert report["clip_ids"][split] == rows["clip_id"].tolist()
        assert report["labels"][split] == [LABELS.index(n[0]) for n in rows["labels"]]
        assert report["split_column"][split] == [split]
        for i, stored in enumerate(_expected_audio(store_path, rows["clip_id"])):
            _assert_same_audio(arrays[f"{split}_{i}"], stored)


def _flac(data: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(data), dtype="float32")[0]


def test_webdataset_shards_read_with_webdataset_and_a_dataloader(loader_exports, export_input,
                                                                 store_path):
    import torch.utils.data
    import webdataset as wds

    out = loader_exports["webdataset"]
    for split in export_input.splits:
        rows = export_input.split_index(split)
        urls = sorted(str(p) for p in (out / "data").glob(f"{split}-*.tar"))
        assert len(urls) == -(-len(rows) // SHARD_SIZE)
        ds = (wds.WebDataset(urls, shardshuffle=False)
              .decode(wds.handle_extension("flac", _flac)).to_tuple("__key__", "flac", "npy",
                                                                    "json"))
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)
        samples = list(loader)
        ids = rows["clip_id"].to_numpy()
        assert [s[0] for s in samples] == [clip_key(c) for c in ids]
        mel = store_values(store_path, "mel", ids)
        for (_, wave, feature, meta), stored, mel_i, names in zip(
                samples, _expected_audio(store_path, ids), mel, rows["labels"]):
            _assert_same_audio(np.asarray(wave), stored)
            np.testing.assert_array_equal(np.asarray(feature), mel_i)
            assert meta["labels"] == names and meta["label"] == LABELS.index(names[0])
            assert meta["split"] == split and meta["run_id"] == 1


def test_webdataset_shards_batch_in_a_multi_worker_dataloader(loader_exports, export_input):
    import webdataset as wds

    urls = sorted(str(p) for p in (loader_exports["webdataset"] / "data").glob("train-*.tar"))
    ds = (wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node,
                         workersplitter=wds.split_by_worker)
          .decode().to_tuple("npy", "json").map_tuple(lambda x: x, lambda m: m["label"])
          .batched(4))
    loader = wds.WebLoader(ds, batch_size=None, num_workers=2)
    seen = sum(len(labels) for _, labels in loader)
    assert seen == len(export_input.split_index("train"))


def test_lhotse_manifests_load_and_cut_audio_equals_the_store(loader_exports, export_input,
                                                              store_path):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    out = loader_exports["lhotse"]
    for split in export_input.splits:
        rows = export_input.split_index(split)
        recordings = RecordingSet.from_file(out / f"lhotse/{split}/recordings.jsonl.gz")
        supervisions = SupervisionSet.from_file(out / f"lhotse/{split}/supervisions.jsonl.gz")
        cuts = CutSet.from_file(out / f"lhotse/{split}/cuts.jsonl.gz")
        cuts = cuts.with_recording_path_prefix(str(out))
        assert len(recordings) == len(rows) and len(supervisions) == len(rows)
        ids = rows["clip_id"].to_numpy()
        for cut, stored, names, clip_id in zip(cuts, _expected_audio(store_path, ids),
                                               rows["labels"], ids):
            assert cut.id == clip_key(clip_id) and cut.sampling_rate == 16000
            assert cut.custom["split"] == split and cut.custom["clip_id"] == clip_id
            assert [s.custom["label"] for s in cut.supervisions] == names
            _assert_same_audio(cut.load_audio()[0], stored)
        assert {s.recording_id for s in supervisions} == {clip_key(c) for c in ids}


def test_loader_format_snippets_run(loader_exports, tmp_path):
    from tests.export.test_formats import _snippet

    for fmt, out in loader_exports.items():
        code = _snippet((out / "README.md").read_text())
        assert len(code.strip().splitlines()) == 5
        done = subprocess.run([sys.executable, "-c", code], cwd=out, env=_hf_env(tmp_path),
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{fmt} snippet failed:\n{code}\n{done.stderr}"


def test_loader_formats_need_audio(tmp_path, export_input):
    from fieldkit.errors import ValidationError

    silent = type(export_input)(**{**export_input.__dict__, "audio": "none"})
    for fmt in ("webdataset", "lhotse"):
        with pytest.raises(ValidationError, match="audio 'none'"):
            export_dataset(silent, tmp_path / fmt, format=fmt)
        assert not (tmp_path / fmt).exists()


def test_audio_none_leaves_audio_out(tmp_path, store_path):
    inp = make_input(store_path)
    silent = type(inp)(**{**inp.__dict__, "audio": "none"})
    out = export_dataset(silent, tmp_path / "silent", format="numpy").out_dir
    assert not (out / "audio").exists()
    assert json.loads((out / "export.json").read_text())["audio"] == "none"


def test_torch_dataset_over_a_zarr_export_in_a_two_worker_dataloader(exports, export_input,
                                                                     store_path):
    import torch
    from torch.utils.data import DataLoader

    from fieldkit.export.torch_dataset import ZarrClipDataset

    def scaled(item):  # the transform hook: here, log-compress the mel bands
        return {**item, "mel": torch.log1p(item["mel"].float())}

    rows = export_input.split_index("train")
    ds = ZarrClipDataset(exports["zarr"], "train", variables=("mel", "waveform"),
                         transform=scaled)
    assert len(ds) == len(rows) and ds.label_names == LABELS
    batches = list(DataLoader(ds, batch_size=8, num_workers=2))
    clip_ids = torch.cat([b["clip_id"] for b in batches]).numpy()
    np.testing.assert_array_equal(clip_ids, rows["clip_id"].to_numpy())
    mel = torch.cat([b["mel"] for b in batches]).numpy()
    np.testing.assert_allclose(mel, np.log1p(store_values(store_path, "mel", clip_ids)
                                             .astype(np.float32)), rtol=1e-6)
    wave = torch.cat([b["waveform"] for b in batches]).numpy()
    np.testing.assert_array_equal(wave, store_values(store_path, "waveform", clip_ids))
    labels = torch.cat([b["label"] for b in batches]).numpy()
    assert labels.tolist() == [LABELS.index(n[0]) for n in rows["labels"]]


def test_torch_dataset_multi_label_is_multi_hot(tmp_path, store_path):
    from fieldkit.export.torch_dataset import ZarrClipDataset

    inp = make_input(store_path, multi_label=True, name="wood-multi")
    out = export_dataset(inp, tmp_path / "multi", format="zarr").out_dir
    ds = ZarrClipDataset(out, "train", variables=())
    expected = inp.multi_hot("train").astype(np.float32)
    np.testing.assert_array_equal(np.stack([ds[i]["labels"].numpy() for i in range(len(ds))]),
                                  expected)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_croissant_describes_index_arrays_and_audio(tmp_path, store_path):
    import mlcroissant as mlc

    inp = make_input(store_path)
    inp = type(inp)(**{**inp.__dict__, "creator": "Wood Survey", "url": "https://example.org/wood",
                       "cite_as": "Wood Survey (2024). Wood calls."})
    for fmt in ("numpy", "parquet"):
        out = export_dataset(inp, tmp_path / fmt, format=fmt).out_dir
        document = json.loads((out / "croissant.json").read_text())
        assert document["creator"] == {"@type": "sc:Person", "name": "Wood Survey"}
        assert document["url"] == "https://example.org/wood"
        assert document["citeAs"] == "Wood Survey (2024). Wood calls."
        dataset = mlc.Dataset(jsonld=out / "croissant.json")
        assert not dataset.metadata.issues.errors, dataset.metadata.issues.report()
        assert len(list(dataset.records("clips"))) == len(inp.index)
        if fmt == "numpy":
            arrays = {(_text(r["arrays/split"]), _text(r["arrays/name"])):
                      _text(r["arrays/shape"]) for r in dataset.records("arrays")}
            n_train = len(inp.split_index("train"))
            assert arrays[("train", "mel")] == "x".join(map(str, (n_train, 101, 40)))
            audio = [_text(r["audio/file"]) for r in dataset.records("audio")]
            assert audio == [f"audio/{s}/{clip_key(c)}.flac"
                             for s, c in zip(inp.index["split"], inp.index["clip_id"])]
            assert all((out / a).is_file() for a in audio)
        else:
            fields = {f["name"]: f for f in next(r for r in document["recordSet"]
                                                 if r["@id"] == "features")["field"]}
            assert fields["mel_mean"]["isArray"] is True and fields["mel_mean"]["arrayShape"] == "40"
            first = next(iter(dataset.records("features")))
            assert len(first["features/mel_mean"]) == 40


def test_original_audio_is_the_archive_excerpt_at_its_own_rate(tmp_path, store_path):
    import soxr

    from fieldkit.catalogue import queries
    from fieldkit.workspace import open_workspace

    root = next(p for p in store_path.parents if (p / "fieldkit.toml").is_file())
    with open_workspace(root) as ws, ws.catalogue.read() as s:
        archive = {r.id: r.archive_path for r in queries.list_recordings(s)}
        archive_root = ws.paths.archive
    inp = make_input(store_path)
    lineage = [{**rec, "archive_path": archive[int(rid)]}
               for rec, rid in zip(inp.lineage_records(), inp.index["recording_id"])]
    original = type(inp)(**{**inp.__dict__, "lineage": lineage, "audio": "original",
                            "archive_root": archive_root})
    out = export_dataset(original, tmp_path / "original", format="lhotse").out_dir
    index = pd.read_parquet(out / "index.parquet")
    processed = _expected_audio(store_path, index["clip_id"])
    rates, similarity = set(), []
    for row, wave in zip(index.itertuples(), processed):
        source = archive_root / archive[row.recording_id]
        rate = sf.info(str(source)).samplerate
        decoded, got_rate = sf.read(str(out / row.audio), dtype="float32", always_2d=True)
        assert got_rate == rate and row.file_name == source.name
        assert decoded.shape[0] == round((row.end_s - row.start_s) * rate)
        excerpt, _ = sf.read(str(source), start=round(row.start_s * rate), frames=decoded.shape[0],
                             dtype="float32", always_2d=True)
        assert np.max(np.abs(decoded - excerpt)) <= FLOAT_FLAC_STEP  # 16-bit sources: exact
        rates.add(rate)
        # independent of fieldkit's reader: the excerpt resampled by soxr is the run's waveform
        mono = soxr.resample(excerpt.mean(axis=1), rate, 16000)[:len(wave)]
        similarity.append(np.corrcoef(mono, wave[:len(mono)])[0, 1])
    assert len(rates) > 1  # this card mixes 48 kHz and 32 kHz (and more) recordings
    assert np.median(similarity) > 0.99, similarity


def test_zarr_export_variables_carry_cf_units(exports):
    import xarray as xr

    ds = xr.open_zarr(exports["zarr"] / "data" / "train.zarr", consolidated=True)
    assert ds["centroid"].attrs["units"] == "Hz" and ds["peak_dbfs"].attrs["units"] == "dBFS"
    assert ds["offset_s"].attrs["units"] == "s" and ds["mel"].attrs["long_name"]
    assert all("units" in ds[v].attrs for v in ds.data_vars), [
        v for v in ds.data_vars if "units" not in ds[v].attrs]


def test_lineage_store_path_is_relative_to_the_export(exports, store_path):
    for out in exports.values():
        lineage = json.loads((out / "lineage.json").read_text())
        assert not Path(lineage["store"]).is_absolute()
        assert (out / lineage["store"]).resolve() == store_path.resolve()


def test_every_card_states_the_label_convention_and_the_audio(exports, loader_exports):
    for fmt, out in {**exports, **loader_exports}.items():
        readme = (out / "README.md").read_text()
        section = readme.split("## Labels", 1)[1].split("## Label counts", 1)[0]
        assert "0 = `bird`, 1 = `frog`, 2 = `insect`" in section, fmt
        assert "Single-label" in section and f"In this {fmt} export" in section, fmt
        assert "FLAC" in readme.split("## Audio", 1)[1].split("##", 1)[0], fmt
