"""What the catalogue's query functions return on a real catalogue: typed, frozen records whose
``to_dict`` is the JSON document (see ``tests/test_records.py`` for the static guard)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pickle
import shutil

import pytest

from fieldkit.catalogue import labels, queries, records, runs, writes
from fieldkit.catalogue.records import Record


def _query_functions() -> set[str]:
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("scan", Path(__file__).resolve().parents[1] / "test_records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.QUERY_FUNCTIONS


@pytest.fixture(scope="module")
def catalogued(processed, tmp_path_factory):
    """A copy of the processed pipeline workspace with annotations and a dataset."""
    from typer.testing import CliRunner

    from fieldkit.cli.app import app
    from fieldkit.workspace import open_workspace

    root = tmp_path_factory.mktemp("records") / "ws"
    shutil.copytree(processed[0].root, root)
    ws = open_workspace(root)
    runner = CliRunner()
    label = runner.invoke(app, ["-w", str(root), "annotations", "import", "--label-from",
                                r"(?P<label>\.(WAV|wav))$", "--json"])
    assert label.exit_code == 0, label.output
    made = runner.invoke(app, ["-w", str(root), "dataset", "create", "rec", "--run", str(processed[1].run_id),
                               "--split-by", "recording", "--json"])
    assert made.exit_code == 0, made.output
    return ws, processed[1].run_id


def _is_record_list(value: object, kind: type) -> bool:
    return isinstance(value, list) and value and all(type(v) is kind for v in value)


def test_query_functions_return_records(catalogued):
    ws, run_id = catalogued
    with ws.catalogue.read() as s:
        recs = queries.list_recordings(s)
        session_id = queries.list_sessions(s)[0].id
        card_id = 1
        lineage = labels.recording_lineage(s, [r.id for r in recs])
        returned = {
            "list_sites": (queries.list_sites(s), records.SiteRow),
            "list_deployments": (queries.list_deployments(s), records.DeploymentRow),
            "list_recordings": (recs, records.RecordingRow),
            "list_sessions": (queries.list_sessions(s), records.SessionRow),
            "session_files": (queries.session_files(s, session_id), records.SessionFileRow),
            "processing_candidates": (queries.processing_candidates(s), records.ProcessingCandidate),
            "card_sessions": (writes.card_sessions(s, card_id), records.CardSessionRow),
            "archived_recordings": (writes.archived_recordings(s), records.ArchivedRecording),
            "list_runs": (runs.list_runs(s), records.RunRow),
            "run_derivatives": (runs.run_derivatives(s, run_id), records.DerivativeRow),
            "recordings_for_matching": (labels.recordings_for_matching(s), records.MatchableRecording),
            "annotation_counts": (labels.annotation_counts(s), records.LabelCount),
            "list_datasets": (labels.list_datasets(s), records.DatasetRow),
            "annotations_for": (sum(labels.annotations_for(s, [r.id for r in recs]).values(), []),
                                records.AnnotationSpan),
            "recording_lineage": (list(lineage.values()), records.RecordingLineage),
        }
        context = queries.session_context(s, session_id)
        run = runs.get_run(s, run_id)
        dataset = labels.get_dataset(s, "rec")
    wrong = {name: type(rows[0]).__name__ if rows else "nothing" for name, (rows, kind) in returned.items()
             if not _is_record_list(rows, kind)}
    assert not wrong, f"expected non-empty lists of records: {wrong}"
    assert type(context) is records.SessionContext and type(run) is records.RunDetail
    assert type(dataset) is records.DatasetDetail and _is_record_list(list(dataset.items), records.DatasetItemRow)
    assert all(type(src) is records.CardSighting for rec in lineage.values() for src in rec.sources)
    assert set(returned) | {"session_context", "get_run", "get_dataset"} >= _query_functions() - {"annotations_for"}


def test_records_are_frozen_picklable_and_not_mappings(catalogued):
    ws, _ = catalogued
    with ws.catalogue.read() as s:
        rec = queries.list_recordings(s)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "ok"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rec["status"]  # type: ignore[index]
    assert pickle.loads(pickle.dumps(rec)) == rec


def test_to_dict_is_the_json_document(catalogued):
    """Field order is key order; tuples become lists, nested records dicts; values keep their types."""
    ws, run_id = catalogued
    with ws.catalogue.read() as s:
        rec = queries.list_recordings(s)[0]
        run = runs.get_run(s, run_id)
        dataset = labels.get_dataset(s, "rec")
        lineage = next(iter(labels.recording_lineage(s, [rec.id]).values()))
    doc = rec.to_dict()
    assert list(doc)[:5] == ["id", "sha256", "size_bytes", "archive_path", "source_paths"]
    assert list(doc)[-2:] == ["times", "metadata"] and isinstance(doc["source_paths"], list)
    assert isinstance(doc["start_time_utc"], str) and doc["start_time_utc"].endswith("Z")
    assert list(run.to_dict())[-3:] == ["message", "parameters", "versions"]
    items = dataset.to_dict()["items"]
    assert isinstance(items, list) and isinstance(items[0], dict) and isinstance(items[0]["labels"], list)
    assert isinstance(lineage.to_dict()["sources"][0], dict)
    json.dumps(doc)  # plain data all the way down
    assert Record.to_dict(rec) == doc


def test_processing_candidates_carry_datetimes(catalogued):
    ws, _ = catalogued
    with ws.catalogue.read() as s:
        timed = [c for c in queries.processing_candidates(s) if c.start_time_utc is not None]
    assert timed and all(isinstance(c.start_time_utc, dt.datetime) and c.start_time_utc.tzinfo for c in timed)
