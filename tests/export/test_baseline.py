"""The reference baseline on every format, single- and multi-label."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fieldkit.errors import ExportError
from fieldkit.export.baseline import load_export, run_baseline
from fieldkit.export.exporter import export_dataset
from tests.export.conftest import LABELS, make_input

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: The test store is tiny (3 clips of a class in a split): these tests check the mechanics, so they
#: lower the threshold below which the baseline refuses to report a figure.
MECHANICS = 1


def _in_unit_interval(metrics: dict) -> None:
    for split, values in metrics["splits"].items():
        for key in ("accuracy", "macro_f1", "chance_majority_accuracy",
                    "chance_majority_macro_f1", "chance_uniform_accuracy"):
            assert 0.0 <= values[key] <= 1.0, (split, key, values[key])


def test_load_export_gives_the_same_table_for_every_format(exports, export_input):
    tables = {fmt: load_export(out) for fmt, out in exports.items()}
    X_ref, y_ref, names = tables["zarr"]
    assert names == LABELS
    for split in export_input.splits:
        n = len(export_input.split_index(split))
        assert X_ref[split].shape[0] == n and y_ref[split].shape == (n,)
        for fmt, (X, y, _) in tables.items():
            np.testing.assert_allclose(X[split], X_ref[split], rtol=1e-6, err_msg=fmt)
            np.testing.assert_array_equal(y[split], y_ref[split], err_msg=fmt)


def test_baseline_runs_on_each_format(exported, export_input):
    fmt, out = exported
    metrics = run_baseline(out, seed=0, min_clips_per_class=MECHANICS)
    print(fmt, json.dumps(metrics["splits"], indent=1))
    assert metrics["task"] == "single-label" and metrics["labels_absent_from_train"] == []
    assert set(metrics["splits"]) == set(export_input.splits)
    _in_unit_interval(metrics)
    assert metrics["splits"]["test"]["chance_uniform_accuracy"] == pytest.approx(1 / 3)
    assert json.loads((out / "baseline" / "metrics.json").read_text()) == metrics
    png = (out / "baseline" / "confusion_matrix.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == len(export_input.split_index("test"))


def test_baseline_is_reproducible(exports):
    first = run_baseline(exports["numpy"], seed=3, min_clips_per_class=MECHANICS)
    assert run_baseline(exports["numpy"], seed=3, min_clips_per_class=MECHANICS) == first


@pytest.fixture(scope="module")
def multi_label_export(tmp_path_factory, store_path):
    inp = make_input(store_path, multi_label=True, name="wood-multi")
    return inp, export_dataset(inp, tmp_path_factory.mktemp("multi") / "m", format="parquet")


def test_multi_label_parquet_has_a_list_of_labels(multi_label_export):
    import pyarrow.parquet as pq

    inp, result = multi_label_export
    table = pq.read_table(result.out_dir / "data" / "train-00000-of-00001.parquet")
    assert "label" not in table.column_names
    assert [[LABELS[i] for i in ids] for ids in table["labels"].to_pylist()] == \
        inp.split_index("train")["labels"].tolist()
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["labels"] == {"feature": {"names": list(LABELS), "_type": "ClassLabel"},
                                  "_type": "List"}


def test_multi_label_baseline_uses_one_vs_rest(multi_label_export):
    _inp, result = multi_label_export
    metrics = run_baseline(result.out_dir, min_clips_per_class=MECHANICS)
    assert metrics["task"] == "multi-label"
    _in_unit_interval(metrics)
    assert np.array(metrics["confusion_matrix"]["matrix"]).shape == (len(LABELS), 4)
    assert (result.out_dir / "baseline" / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC


def test_baseline_refuses_a_single_class_train_split(tmp_path, store_path):
    inp = make_input(store_path)
    index = inp.index.copy()
    index.loc[index["split"] == "train", "labels"] = index.loc[
        index["split"] == "train", "labels"].map(lambda _: ["bird"])
    one_class = type(inp)(**{**inp.__dict__, "index": index})
    out = export_dataset(one_class, tmp_path / "one", format="numpy").out_dir
    with pytest.raises(ExportError, match="single class"):
        run_baseline(out, min_clips_per_class=MECHANICS)


def test_too_few_clips_per_class_is_said_instead_of_an_accuracy(exports, export_input):
    out = exports["numpy"]
    counts = {s: export_input.split_index(s)["labels"].explode().value_counts().to_dict()
              for s in export_input.splits}
    smallest = min(counts["test"].values())
    metrics = run_baseline(out, min_clips_per_class=smallest + 1)
    assert metrics["evaluable"] is False and "splits" not in metrics and "confusion_matrix" not in metrics
    assert metrics["message"].startswith("not evaluated: too few clips per class")
    assert {"label": min(counts["test"], key=counts["test"].get), "split": "test", "clips": smallest} in metrics["too_few"]
    assert metrics["clips_per_class"]["train"] == {name: counts["train"].get(name, 0) for name in LABELS}
    assert json.loads((out / "baseline" / "metrics.json").read_text()) == metrics
    assert not (out / "baseline" / "confusion_matrix.png").exists()
    enough = run_baseline(out, min_clips_per_class=smallest)  # the same export, a threshold it meets
    assert enough["evaluable"] is True and "accuracy" in enough["splits"]["test"]


def test_the_cli_prints_the_message_not_an_accuracy(exports, export_input):
    from typer.testing import CliRunner

    from fieldkit.cli import app

    runner = CliRunner()
    out = str(exports["parquet"])
    result = runner.invoke(app, ["baseline", out, "--min-clips-per-class", "100000", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["evaluable"] is False and doc["min_clips_per_class"] == 100000
    human = runner.invoke(app, ["baseline", out, "--min-clips-per-class", "100000"])
    assert human.exit_code == 0 and "not evaluated" in human.stderr and "accuracy" not in human.stderr.replace(
        "An accuracy here would be noise", "")
