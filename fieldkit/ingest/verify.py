"""``fieldkit verify``: re-hash the archive against the catalogue and the manifests (a scrub).

Every catalogued recording is re-read from disk (evicted from the page cache first) and its
SHA-256 compared with the catalogue and with the newest manifest hash. The result is appended as
a new, ``in-place`` manifest generation whose entries are ``verified`` or ``failed`` — earlier
generations are never altered — and recorded in the catalogue. Files in the archive that the
catalogue does not know, and breaks in the manifest chain, are reported too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldkit.catalogue import writes
from fieldkit.catalogue.restore import iso
from fieldkit.catalogue.records import ArchivedRecording
from fieldkit.errors import EXIT_DATAERR, EXIT_OK
from fieldkit.ingest.copy import hash_file
from fieldkit.ingest.lock import ingest_lock
from fieldkit.ingest.outcomes import NullProgress, Progress, judge
from fieldkit.ingest.recover import recover_archive
from fieldkit.ingest.seal import ledger_stamp
from fieldkit.io.manifests.ledger import write_record
from fieldkit.io.manifests.mhl import (
    CreatorInfo,
    MhlEntry,
    latest_hashes,
    verify_chain,
    write_generation,
)

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["VerifyReport", "verify_archive"]

SKIP_TOP = {".staging", "mhl"}


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    uncatalogued: list[str] = field(default_factory=list)
    chain_problems: list[str] = field(default_factory=list)
    manifest: str | None = None

    @property
    def passed(self) -> bool:
        return not (self.mismatched or self.missing or self.chain_problems)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_DATAERR

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "exit_code": self.exit_code}


def verify_archive(workspace: Workspace, *, progress: Progress | None = None) -> VerifyReport:
    """Scrub the archive; see the module docstring."""
    if not workspace.roots.archive.is_local:  # an object-storage archive: same scrub, over the adapter
        from fieldkit.ingest.remote import verify_url_archive

        return verify_url_archive(workspace, VerifyReport(), SKIP_TOP, progress=progress)
    progress = progress or NullProgress()
    report = VerifyReport()
    with ingest_lock(workspace, command="verify"):
        recover_archive(workspace, do_fsync=workspace.settings.ingest.fsync)
        with workspace.catalogue.read() as s:
            recordings = writes.archived_recordings(s)
        manifest_hashes = latest_hashes(workspace.paths.manifests)
        entries = _check_all(workspace, recordings, manifest_hashes, report, progress)
        report.uncatalogued = _uncatalogued(workspace.paths.archive, {r.archive_path for r in recordings})
        report.chain_problems = verify_chain(workspace.paths.manifests)
        _record(workspace, entries, report)
    return report


def _check_all(workspace: Workspace, recordings: list[ArchivedRecording], manifest_hashes: dict[str, MhlEntry],
               report: VerifyReport, progress: Progress) -> list[MhlEntry]:
    archive, entries = workspace.paths.archive, []
    progress.start(len(recordings), sum(r.size_bytes for r in recordings))
    for rec in recordings:
        entry = _check_one(archive / rec.archive_path, rec, manifest_hashes.get(rec.archive_path), report)
        if entry is not None:
            entries.append(entry)
        progress.advance(rec.archive_path, rec.size_bytes)
    progress.finish()
    return entries


def _check_one(path: Path, rec: ArchivedRecording, listed: MhlEntry | None, report: VerifyReport) -> MhlEntry | None:
    report.checked += 1
    if not path.is_file():
        report.missing.append(rec.archive_path)
        return None
    digest, size = hash_file(path, evict=True)
    return judge(rec, listed, digest, size, report)



def _uncatalogued(archive: Path, known: set[str]) -> list[str]:
    found = []
    for path in sorted(archive.rglob("*")):
        rel = path.relative_to(archive)
        if path.is_file() and rel.parts[0] not in SKIP_TOP and not rel.name.startswith(".ingest.lock"):
            if rel.as_posix() not in known:
                found.append(rel.as_posix())
    return found


def _record(workspace: Workspace, entries: list[MhlEntry], report: VerifyReport) -> None:
    if not entries:
        return
    creator = CreatorInfo.now(comment="fieldkit verify")
    path = write_generation(workspace.paths.manifests, process="in-place", entries=entries, creator=creator,
                            root_name="archive")
    report.manifest = workspace.relative(path)
    row = {"sequence": int(path.name.split("_", 1)[0]), "kind": "verify", "path": report.manifest,
           "files": len(entries), "failures": len(report.mismatched) + len(report.missing),
           "report": {k: v for k, v in report.to_dict().items() if k != "manifest"}}
    with workspace.catalogue.write() as s:
        writes.insert_manifest(s, **row, created_at=creator.created)
        # The ledger record (for 'fieldkit catalog rebuild'), before the commit, like ingest's.
        write_record(workspace.paths.manifests, "verify",
                     {"manifest": {**row, "session_id": None, "created_at": iso(creator.created)}}, ledger_stamp())
