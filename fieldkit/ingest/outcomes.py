"""What an ingest did: per-file outcomes and the session summary (JSON-ready)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from fieldkit.catalogue.records import ArchivedRecording, SessionFileRow
from fieldkit.errors import EXIT_OK, EXIT_PARTIAL
from fieldkit.io.manifests.mhl import MhlEntry

__all__ = ["FileOutcome", "IngestReport", "Progress", "NullProgress", "judge"]


@dataclass
class FileOutcome:
    """One card file: what happened to it (``state``) and what it is (``status``)."""

    path: str
    size_bytes: int
    state: str  # verified | duplicate | ignored | failed | pending
    reason: str | None = None
    message: str | None = None
    sha256: str | None = None
    archive_path: str | None = None
    recording_id: int | None = None
    status: str | None = None  # ok | truncated | quarantined (for archived content)

    @classmethod
    def from_row(cls, row: SessionFileRow) -> FileOutcome:
        """The outcome of one inventoried file, from its catalogue row."""
        return cls(path=row.path, size_bytes=row.size_bytes, state=row.state, reason=row.reason,
                   message=row.message, sha256=row.sha256, archive_path=row.archive_path,
                   recording_id=row.recording_id, status=row.status)


@dataclass
class IngestReport:
    card: str
    card_root: str
    site: str
    deployment: str
    session_id: int | None
    state: str
    dry_run: bool = False
    safe_to_erase: bool = False
    manifest: str | None = None
    resumed_from: int | None = None
    #: A re-ingest (F1): the earlier session whose files this card still holds, unchanged; nothing was copied.
    repeat_of: int | None = None
    files: list[FileOutcome] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        states = Counter(f.state for f in self.files)
        statuses = Counter(f.status for f in self.files if f.status and f.state == "verified")
        return {"files": len(self.files), **{k: states.get(k, 0) for k in
                ("verified", "duplicate", "ignored", "failed", "pending")},
                **{k: statuses.get(k, 0) for k in ("ok", "truncated", "quarantined")}}

    @property
    def problems(self) -> list[FileOutcome]:
        return [f for f in self.files if f.state == "failed" or f.status in ("truncated", "quarantined")]

    @property
    def exit_code(self) -> int:
        # A complete session without failures is safe to erase, unless a re-ingest found archived copies gone.
        return EXIT_PARTIAL if self.problems or self.state != "complete" or not self.safe_to_erase else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["counts"] = self.counts
        doc["exit_code"] = self.exit_code
        return doc


class Progress(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, name: str, size_bytes: int) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, name: str, size_bytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


def judge(rec: ArchivedRecording, listed: MhlEntry | None, digest: str, size: int, report: Any) -> MhlEntry:
    """Count a re-hashed archived file in ``report`` (a ``VerifyReport``: ok, or mismatched with what it should have
    been: the catalogue's hash and the latest manifest's) and return its manifest entry. The one
    judgement of a local file and of an object (fieldkit/ingest/remote.py)."""
    expected = {"catalogue": rec.sha256}
    if listed is not None and "sha256" in listed.hashes:
        expected["manifest"] = listed.hashes["sha256"]
    wrong = {k: v for k, v in expected.items() if v != digest}
    if wrong:
        report.mismatched.append({"archive_path": rec.archive_path, "found": digest, "expected": wrong,
                                  "size_bytes": size})
    else:
        report.ok += 1
    return MhlEntry(rec.archive_path, size, {"sha256": digest}, action="failed" if wrong else "verified")
