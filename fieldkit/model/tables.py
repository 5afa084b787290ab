"""pandera models of the tables that cross a boundary, and their language-neutral JSON Schemas.

The pandera models are the source of truth; ``fieldkit schema export`` writes one JSON Schema
per row type into the top-level ``schemas/`` folder (plus the settings file's schema) and a test
checks the committed files never drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from fieldkit.config.settings import Settings
from fieldkit.config.workflow import workflow_json_schema

__all__ = [
    "RecordingsTable", "QCTable", "AnnotationImport", "ExportIndex", "TABLES",
    "table_json_schema", "json_schemas", "write_json_schemas", "validate",
]

STATUSES = ["ok", "truncated", "quarantined", "sidecar"]
SPLITS = ["train", "validation", "test"]
UTC = pd.DatetimeTZDtype(tz="UTC")


class RecordingsTable(pa.DataFrameModel):
    """One row per archived recording (``fieldkit catalog recordings``)."""

    id: Series[int] = pa.Field(ge=1, unique=True)
    sha256: Series[str] = pa.Field(str_matches=r"^[0-9a-f]{64}$", unique=True)
    archive_path: Series[str] = pa.Field(unique=True)
    status: Series[str] = pa.Field(isin=STATUSES)
    reason: Series[str] = pa.Field(nullable=True)
    format: Series[str]
    sample_rate_hz: Series[pd.Int64Dtype] = pa.Field(gt=0, nullable=True)
    channels: Series[pd.Int64Dtype] = pa.Field(gt=0, nullable=True)
    bit_depth: Series[pd.Int64Dtype] = pa.Field(gt=0, nullable=True)
    frames_declared: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    frames_present: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    duration_s: Series[float] = pa.Field(ge=0, nullable=True)
    start_time_utc: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    site: Series[str] = pa.Field(nullable=True)
    deployment: Series[str] = pa.Field(nullable=True)
    peak_dbfs: Series[float] = pa.Field(nullable=True)
    clipped_samples: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)

    class Config:
        coerce = True
        strict = "filter"


class QCTable(pa.DataFrameModel):
    """Per-clip quality control of a processing run."""

    recording_id: Series[int] = pa.Field(ge=1)
    clip: Series[int] = pa.Field(ge=0)
    offset_s: Series[float] = pa.Field(ge=0)
    peak_dbfs: Series[float] = pa.Field(nullable=True)
    dc_offset: Series[float]
    clipped_fraction: Series[float] = pa.Field(ge=0, le=1)
    silent_fraction: Series[float] = pa.Field(ge=0, le=1)

    class Config:
        coerce = True
        strict = "filter"


class AnnotationImport(pa.DataFrameModel):
    """One annotated event, after a Raven / Audacity / CSV reader has normalised its columns."""

    source_line: Series[int] = pa.Field(ge=1)
    begin_s: Series[float] = pa.Field(ge=0)
    end_s: Series[float] = pa.Field(ge=0)
    low_hz: Series[float] = pa.Field(ge=0, nullable=True)
    high_hz: Series[float] = pa.Field(ge=0, nullable=True)
    label: Series[str] = pa.Field(str_length={"min_value": 1})

    @pa.dataframe_check(error="end_s must not be before begin_s")
    def _interval(cls, df: pd.DataFrame) -> Series[bool]:
        return df["end_s"] >= df["begin_s"]

    class Config:
        coerce = True
        strict = "filter"


class ExportIndex(pa.DataFrameModel):
    """One row per exported clip: what it is, where it came from, which split it is in."""

    clip_id: Series[int] = pa.Field(ge=0, unique=True)
    recording_sha256: Series[str] = pa.Field(str_matches=r"^[0-9a-f]{64}$")
    start_time: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    offset_s: Series[float] = pa.Field(ge=0)
    site: Series[str] = pa.Field(nullable=True)
    deployment: Series[str] = pa.Field(nullable=True)
    labels: Series[str] = pa.Field(description="label names joined by ';'")
    split: Series[str] = pa.Field(isin=SPLITS)

    class Config:
        coerce = True
        strict = "filter"


TABLES: dict[str, type[pa.DataFrameModel]] = {
    "recordings": RecordingsTable,
    "qc": QCTable,
    "annotation-import": AnnotationImport,
    "export-index": ExportIndex,
}


def validate(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> pd.DataFrame:
    """Validate lazily (all failures at once); raises ``pandera.errors.SchemaErrors``."""
    return model.validate(frame, lazy=True)


def _json_type(dtype: Any) -> dict[str, Any]:
    text = str(dtype).lower()
    if "datetime" in text:
        return {"type": "string", "format": "date-time"}
    if "int" in text:
        return {"type": "integer"}
    if "float" in text:
        return {"type": "number"}
    if "bool" in text:
        return {"type": "boolean"}
    return {"type": "string"}


_CHECK_KEYWORDS = {
    "greater_than_or_equal_to": ("min_value", "minimum"),
    "greater_than": ("min_value", "exclusiveMinimum"),
    "less_than_or_equal_to": ("max_value", "maximum"),
    "less_than": ("max_value", "exclusiveMaximum"),
    "isin": ("allowed_values", "enum"),
    "str_matches": ("pattern", "pattern"),
}


def _column_schema(column: Any) -> dict[str, Any]:
    prop = _json_type(column.dtype)
    for check in column.checks:
        name = check.name
        if name in _CHECK_KEYWORDS:
            stat, keyword = _CHECK_KEYWORDS[name]
            value = check.statistics[stat]
            prop[keyword] = list(value) if keyword == "enum" else getattr(value, "pattern", value)
        elif name == "str_length" and check.statistics.get("min_value") is not None:
            prop["minLength"] = check.statistics["min_value"]
    if column.nullable:
        prop["type"] = [prop["type"], "null"]
        if "enum" in prop:
            prop["enum"] = [*prop["enum"], None]
    if column.unique:
        prop["description"] = "unique within the table"
    return prop


def table_json_schema(name: str, model: type[pa.DataFrameModel]) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for one *row* of the table."""
    schema = model.to_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://fieldkit.invalid/schemas/{name}.schema.json",
        "title": model.__name__,
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "properties": {col: _column_schema(c) for col, c in schema.columns.items()},
        "required": [col for col, c in schema.columns.items() if c.required],
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every schema fieldkit publishes, by file name."""
    out = {f"{name}.schema.json": table_json_schema(name, model) for name, model in TABLES.items()}
    for filename, schema in (("settings.schema.json", Settings.model_json_schema()),
                             ("workflow.schema.json", workflow_json_schema())):
        out[filename] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in json_schemas().items():
        path = directory / filename
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
