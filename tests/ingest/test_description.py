"""What the ingest learns of an archived file is a typed :class:`Description` whose columns are
catalogue recording columns; each file's outcome is built from its catalogue row in one place."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from pathlib import Path

import pytest

from fieldkit.catalogue.models import Recording
from fieldkit.catalogue.records import SessionFileRow
from fieldkit.ingest.describe import Description, describe_archived
from fieldkit.ingest.outcomes import FileOutcome

SAMPLE_CARD = Path(__file__).resolve().parents[2] / "fieldkit" / "data" / "sample_card"


@pytest.fixture
def archived(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("20200404_102500.WAV", "CONFIG.TXT"):
        out[name] = tmp_path / name
        shutil.copyfile(SAMPLE_CARD / name, out[name])
    return out


def test_description_columns_are_recording_columns():
    columns = set(Recording.__table__.columns.keys())
    described = {f.name for f in dataclasses.fields(Description)}
    assert described <= columns, described - columns
    # what the batch adds itself: identity, place, who recorded it, and the row's own bookkeeping
    assert columns - described == {"id", "sha256", "size_bytes", "archive_path", "deployment_id", "device_id",
                                   "created_at"}


def test_an_audiomoth_file_is_described_with_its_facts_and_time(archived):
    description, _ = describe_archived(archived["20200404_102500.WAV"], "20200404_102500.WAV", "UTC")
    assert type(description) is Description and description.status == "ok" and description.format == "wav"
    assert description.sample_rate_hz and description.frames_present and description.start_time_utc is not None
    assert description.metadata["chunks"] and description.times
    columns = description.columns()
    assert columns["sample_rate_hz"] == description.sample_rate_hz and columns["metadata"] == description.metadata
    assert pickle.loads(pickle.dumps(description)) == description  # describe workers send it back pickled


def test_a_sidecar_is_described_without_audio_facts(archived):
    description, _ = describe_archived(archived["CONFIG.TXT"], "CONFIG.TXT", "UTC")
    assert (description.status, description.format, description.declared_extension) == ("sidecar", "text", "txt")
    assert description.metadata["sidecar"] == "audiomoth_config" and description.times == {}
    assert description.sample_rate_hz is None and description.start_time_utc is None and description.reason is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        description.status = "ok"  # type: ignore[misc]


def test_file_outcome_from_row_keeps_every_field():
    row = SessionFileRow(raw_path=b"DATA/A.WAV", path="DATA/A.WAV", size_bytes=12, state="verified",
                         reason="truncated", message="short", sha256="ab" * 32, archive_path="s/d/A.WAV",
                         recording_id=7, status="truncated")
    outcome = FileOutcome.from_row(row)
    assert dataclasses.asdict(outcome) == {k: v for k, v in row.to_dict().items() if k != "raw_path"}
