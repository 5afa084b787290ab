"""pandera models and the committed JSON Schemas in schemas/ never drift."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pandera.errors
import pytest
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.model.tables import AnnotationImport, RecordingsTable, json_schemas, render, validate

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_committed_schemas_equal_fresh_export(tmp_path):
    result = CliRunner().invoke(app, ["schema", "export", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in SCHEMAS.glob("*.json")}
    assert fresh == committed, "run 'make schemas' and commit schemas/"


def test_schema_check_flags_a_stale_file(tmp_path):
    CliRunner().invoke(app, ["schema", "export", "--out", str(tmp_path)])
    (tmp_path / "recordings.schema.json").write_text("{}\n")
    result = CliRunner().invoke(app, ["schema", "export", "--out", str(tmp_path), "--check", "--json"])
    assert result.exit_code == 65
    assert json.loads(result.stdout) == {"stale": ["recordings.schema.json"]}


def test_recordings_schema_has_row_properties_and_enums():
    schema = json_schemas()["recordings.schema.json"]
    assert schema["type"] == "object"
    assert schema["properties"]["status"]["enum"] == ["ok", "truncated", "quarantined", "sidecar"]
    assert schema["properties"]["sample_rate_hz"]["type"] == ["integer", "null"]
    assert render(schema).endswith("}\n")


def _recording_row(**overrides):
    row = {"id": 1, "sha256": "a" * 64, "archive_path": "x.wav", "status": "ok", "reason": None,
           "format": "wav", "sample_rate_hz": 48000, "channels": 1, "bit_depth": 16,
           "frames_declared": 10, "frames_present": 10, "duration_s": 0.1,
           "start_time_utc": "2024-05-01T22:00:00Z", "site": "s", "deployment": "d",
           "peak_dbfs": -3.0, "clipped_samples": 0}
    row.update(overrides)
    return row


def test_recordings_table_accepts_catalogue_rows_and_reports_every_bad_one():
    good = validate(RecordingsTable, pd.DataFrame([_recording_row()]))
    assert str(good["start_time_utc"].dtype) == "datetime64[us, UTC]" or "UTC" in str(good["start_time_utc"].dtype)
    bad = pd.DataFrame([_recording_row(status="lost"), _recording_row(id=2, sha256="zz", sample_rate_hz=0)])
    with pytest.raises(pandera.errors.SchemaErrors) as info:
        validate(RecordingsTable, bad)
    failing = set(info.value.failure_cases["column"].dropna())
    assert {"status", "sha256", "sample_rate_hz"} <= failing


def test_annotation_interval_check():
    frame = pd.DataFrame({"source_line": [2, 3], "begin_s": [1.0, 5.0], "end_s": [2.0, 4.0],
                          "low_hz": [None, 100.0], "high_hz": [None, 2000.0], "label": ["a", "b"]})
    with pytest.raises(pandera.errors.SchemaErrors) as info:
        validate(AnnotationImport, frame)
    assert "end_s must not be before begin_s" in str(info.value)
