"""What the catalogue's query functions return on a real catalogue: typed, frozen records whose
``to_dict`` is the JSON document (see ``tests/test_records.py`` for the static guard)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import pickle
import shutil
import typing

import pytest
import sqlalchemy as sa

from fieldkit.catalogue import labels, queries, records, runs, writes
from fieldkit.catalogue.models import Card
from fieldkit.catalogue.records import Record


def _mentions_a_record(hint: object) -> bool:
    if isinstance(hint, type):
        return issubclass(hint, Record)
    return any(_mentions_a_record(arg) for arg in typing.get_args(hint))


def _record_returning_functions() -> set[str]:
    """Public functions of the query modules whose return type holds a record."""
    return {name for module in (queries, runs, labels, writes)
            for name, fn in inspect.getmembers(module, inspect.isfunction)
            if fn.__module__ == module.__name__ and not name.startswith("_")
            and _mentions_a_record(typing.get_type_hints(fn).get("return"))}


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
    with ws.catalogue.write() as s:  # the shared run leaves nothing out: record one exclusion to read back
        first = queries.list_recordings(s)[0].id
        runs.replace_exclusions(s, processed[1].run_id, [{"recording_id": first, "reason": "status",
                                                           "message": "status quarantined (empty)"}])
    return ws, processed[1].run_id


def _is_record_list(value: object, kind: type) -> bool:
    return isinstance(value, list) and value and all(type(v) is kind for v in value)


def test_query_functions_return_records(catalogued):
    ws, run_id = catalogued
    with ws.catalogue.read() as s:
        recs = queries.list_recordings(s)
        session_id = queries.list_sessions(s)[0].id
        card_id = s.scalar(sa.select(Card.id))
        lineage = labels.recording_lineage(s, [r.id for r in recs])
        returned = {
            "list_sites": (queries.list_sites(s), records.SiteRow),
            "list_deployments": (queries.list_deployments(s), records.DeploymentRow),
            "list_recordings": (recs, records.RecordingRow),
            "list_sessions": (queries.list_sessions(s), records.SessionRow),
            "session_files": (queries.session_files(s, session_id), records.SessionFileRow),
            "recordings_in_scope": (queries.recordings_in_scope(s), records.ScopedRecording),
            "card_sessions": (writes.card_sessions(s, card_id), records.CardSessionRow),
            "archived_recordings": (writes.archived_recordings(s), records.ArchivedRecording),
            "list_runs": (runs.list_runs(s), records.RunRow),
            "runs_with_params": (runs.runs_with_params(s, runs.get_run(s, run_id).params_hash), records.RunDetail),
            "run_derivatives": (runs.run_derivatives(s, run_id), records.DerivativeRow),
            "run_exclusions": (runs.run_exclusions(s, run_id), records.RunExclusionRow),
            "recordings_for_matching": (labels.recordings_for_matching(s), records.MatchableRecording),
            "annotation_counts": (labels.annotation_counts(s), records.LabelCount),
            "list_datasets": (labels.list_datasets(s), records.DatasetRow),
            "annotations_for": ([a for spans in labels.annotations_for(s, [r.id for r in recs]).values()
                                 for a in spans], records.AnnotationSpan),
            "recording_lineage": (list(lineage.values()), records.RecordingLineage),
            "annotations_out": (labels.annotations_out(s), records.AnnotationOut),
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
    # guano_species needs GUANO species fields, which this card has none of: its records are
    # checked on a GUANO file in tests/test_detector_formats.py.
    assert set(returned) | {"session_context", "get_run", "get_dataset", "guano_species"} == _record_returning_functions()


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


def test_recordings_in_scope_carry_datetimes(catalogued):
    ws, _ = catalogued
    with ws.catalogue.read() as s:
        timed = [c for c in queries.recordings_in_scope(s) if c.start_time_utc is not None]
    assert timed and all(isinstance(c.start_time_utc, dt.datetime) and c.start_time_utc.tzinfo for c in timed)


#: The key order of each ``--json`` document, as the CLI has always printed it (scripts and the
#: JSON Schemas rely on the names; byte-for-byte stable output relies on the order).
DOCUMENT_KEYS = {
    ("catalog", "sites"): ["id", "name", "description", "latitude", "longitude", "deployments"],
    ("catalog", "deployments"): ["id", "name", "site", "timezone", "start_utc", "end_utc", "recordings", "overlaps",
                                 "gaps"],
    ("catalog", "recordings"): [
        "id", "sha256", "size_bytes", "archive_path", "source_paths", "status", "reason", "status_message", "format",
        "declared_extension", "sample_rate_hz", "channels", "bit_depth", "subtype", "frames_declared",
        "frames_present", "duration_s", "start_time_utc", "time_source", "time_discrepancy_s", "site", "deployment",
        "device_make", "device_model", "device_serial", "peak_dbfs", "clipped_samples", "dc_offset",
        "silent_fraction", "times", "metadata"],
    ("catalog", "sessions"): ["id", "card", "site", "deployment", "state", "source_root", "files_total", "bytes_total",
                              "counts", "safe_to_erase", "resumed_from", "started_at", "finished_at", "message"],
    ("catalog", "runs"): ["id", "name", "state", "params_hash", "store_path", "n_clips", "started_at", "finished_at",
                          "timings", "message"],
    ("catalog", "annotations"): ["label", "annotations", "recordings"],
    ("dataset", "list"): ["id", "name", "version", "run_id", "clips", "split_by", "manifest_hash", "created_at"],
}


@pytest.mark.parametrize("command", list(DOCUMENT_KEYS), ids=" ".join)
def test_cli_json_rows_keep_their_keys_in_order(catalogued, command):
    from typer.testing import CliRunner

    from fieldkit.cli.app import app

    ws, _ = catalogued
    result = CliRunner().invoke(app, ["-w", str(ws.root), *command, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and all(list(row) == DOCUMENT_KEYS[command] for row in rows)


def test_cli_run_document_keeps_its_keys_in_order(catalogued):
    from typer.testing import CliRunner

    from fieldkit.cli.app import app

    ws, run_id = catalogued
    result = CliRunner().invoke(app, ["-w", str(ws.root), "catalog", "run", str(run_id), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == [*DOCUMENT_KEYS[("catalog", "runs")], "parameters", "versions", "derivatives", "failures",
                         "excluded"]
    assert list(doc["excluded"][0]) == ["recording_id", "archive_path", "reason", "message"]
    assert list(doc["derivatives"][0]) == ["recording_id", "channel", "clip_start", "clip_stop", "state", "error"]
    assert doc["failures"] == [d for d in doc["derivatives"] if d["state"] == "failed"]
    assert isinstance(doc["started_at"], str) and doc["started_at"].endswith("Z")
