"""``fieldkit catalog rebuild``: a new catalogue from the archive alone (H2's last resort).

Sources, all inside the archive: the MHL manifests (``archive/mhl/*.mhl``: which path holds which
SHA-256), the ledger records written beside them when each session was sealed
(``archive/mhl/ledger``: card identity, raw source path bytes, session state and times, site,
deployment and time zone as given on the command line) and the archived bytes themselves. Every
file is re-hashed: a copy whose hash no longer matches its manifest is catalogued ``quarantined``
with reason ``hash_mismatch`` (never silently trusted); a file of the archive that no manifest
lists is reported. Status, reason, facts, times and metadata are re-derived by the probe ingest
uses (:func:`fieldkit.ingest.describe.describe_archived`, deterministic).

The current catalogue is never opened: the target must be a new SQLite file or an empty
database. What the archive does not hold is not rebuilt: processing runs (and their
derivatives and exclusions), annotations, datasets and exports (:data:`NOT_REBUILT`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldkit.catalogue import migrate, restore, writes
from fieldkit.catalogue.engine import Catalogue
from fieldkit.errors import EXIT_DATAERR, EXIT_OK, EXIT_PARTIAL, OutputUnavailableError
from fieldkit.ingest.copy import hash_file
from fieldkit.ingest.describe import describe_archived
from fieldkit.ingest.lock import IngestLock
from fieldkit.ingest.outcomes import NullProgress, Progress
from fieldkit.ingest.verify import SKIP_TOP
from fieldkit.io.manifests.ledger import read_ledger
from fieldkit.io.manifests.mhl import latest_hashes, list_manifests, read_generation

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["NOT_REBUILT", "RebuildReport", "rebuild_catalogue"]

log = logging.getLogger(__name__)

#: Tables the archive cannot give back, and why.
NOT_REBUILT = {
    "processing_run, derivative, run_exclusion": "processing runs live in the catalogue and their stores; "
                                                 "re-run 'fieldkit process' (stores are recomputed identically)",
    "annotation": "annotations are imported tables; import them again with 'fieldkit annotations import'",
    "dataset, dataset_item, export": "datasets and exports are built from runs and annotations; build them again",
}


@dataclass
class RebuildReport:
    """What a rebuild wrote and what it found wrong (each list names archive paths)."""

    target: str
    recordings: int = 0
    sessions: int = 0
    source_files: int = 0
    manifests: int = 0
    hash_mismatches: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    without_session: list[str] = field(default_factory=list)
    ledger_problems: list[str] = field(default_factory=list)
    not_rebuilt: dict[str, str] = field(default_factory=lambda: dict(NOT_REBUILT))

    @property
    def exit_code(self) -> int:
        """65 when archived bytes are changed or gone; 3 when files could not all be accounted for."""
        if self.hash_mismatches or self.missing:
            return EXIT_DATAERR
        return EXIT_PARTIAL if (self.unlisted or self.without_session or self.ledger_problems) else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}


@dataclass
class _Origin:
    """Where an archived content was first verified: its session record and card file."""

    doc: dict[str, Any] | None
    card_name: str


def _prepare_target(workspace: Workspace, url: str) -> None:
    """Refuse an existing target; create and migrate a new one."""
    shown, file = restore.shown_url(url), restore.sqlite_file(url)
    if file is not None:
        database = Path(file)
        if not database.name or str(database) == ":memory:":
            raise OutputUnavailableError(f"{shown} is not a file: give the rebuilt catalogue a path with --out.")
        if database.exists():
            raise OutputUnavailableError(
                f"{database} already exists; a rebuild writes a NEW catalogue and never replaces one.",
                hint="Give --out a path that does not exist yet.", path=database)
        if Path(workspace.paths.catalogue_url.removeprefix("sqlite:///")).resolve() == database.resolve():
            raise OutputUnavailableError(f"{database} is the workspace's catalogue.", path=database)
        database.parent.mkdir(parents=True, exist_ok=True)
    elif tables := restore.database_tables(url):
        raise OutputUnavailableError(
            f"the database {shown} is not empty (it holds {', '.join(tables[:5])}"
            f"{', …' if len(tables) > 5 else ''}); a rebuild writes into a new, empty database only.",
            hint="Create an empty database (createdb NAME) and give its URL with --url.")
    migrate.upgrade(url, backup=False)


def _sessions(records: list[tuple[Path, dict]]) -> tuple[list[dict], list[dict]]:
    """The newest record of each session (by start) and every manifest row the records name."""
    latest: dict[tuple[str, str], dict] = {}
    manifests: dict[int, dict] = {}
    for _, doc in records:  # name order is time order: a later seal of a session replaces the earlier
        manifest = doc.get("manifest")
        if doc["kind"] == "session":
            key = restore.session_key(doc["card"]["identity"], doc["session"]["started_at"])
            latest[key] = doc
            if manifest:
                manifests[manifest["sequence"]] = {**manifest, "session": key}
        elif manifest:
            manifests[manifest["sequence"]] = {**manifest, "session": None}
    ordered = sorted(latest.values(), key=lambda d: d["session"]["started_at"])
    return ordered, [manifests[k] for k in sorted(manifests)]


def _origins(sessions: list[dict]) -> dict[str, _Origin]:
    """Content hash → the session and card file that first archived it (ingest's insertion order)."""
    origins: dict[str, _Origin] = {}
    for doc in sessions:
        for f in doc["files"]:
            if f["state"] == "verified" and f["sha256"] and f["sha256"] not in origins:
                origins[f["sha256"]] = _Origin(doc, f["display_path"].rsplit("/", 1)[-1])
    return origins


def _unlisted(archive: Path, listed: set[str]) -> list[str]:
    found = []
    for path in sorted(archive.rglob("*")):
        rel = path.relative_to(archive)
        if path.is_file() and rel.parts[0] not in SKIP_TOP and not rel.name.startswith(".ingest.lock") \
                and rel.as_posix() not in listed:
            found.append(rel.as_posix())
    return found


def _describe(workspace: Workspace, sha: str, rel: str, size: int, origin: _Origin,
              report: RebuildReport) -> dict[str, Any] | None:
    """The recording row of one archived file (hash checked, probed as ingest probes it)."""
    path = workspace.paths.archive / rel
    if not path.is_file():
        report.missing.append(rel)
        return None
    digest, _ = hash_file(path, evict=True)
    timezone = origin.doc["deployment"]["timezone"] if origin.doc else workspace.settings.ingest.default_timezone
    description, meta = describe_archived(path, origin.card_name, timezone)
    row = {**description.columns(), "sha256": sha, "size_bytes": size, "archive_path": rel,
           "_device": (meta.make, meta.model, meta.serial or (origin.doc or {}).get("device_serial"), meta.firmware)}
    if digest != sha:
        report.hash_mismatches.append({"archive_path": rel, "manifest": sha, "found": digest})
        row.update(status="quarantined", reason="hash_mismatch",
                   status_message=f"{rel}: the archived copy hashes {digest}, its manifest says {sha}: the bytes "
                                  "changed after they were archived. Restore the file from a backup copy.")
    return row


@contextlib.contextmanager
def _archive_held(workspace: Workspace) -> Iterator[None]:
    """The ingest lock, so that no ingest or verify changes the archive while it is read (E1).

    A read-only archive (a restored copy mounted read-only) cannot hold the lock file, and
    nothing can write it either: the rebuild goes on without the lock.
    """
    lock = IngestLock(workspace.paths.archive / ".ingest.lock", command="rebuild")
    try:
        lock.acquire()
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        log.warning("the archive is read-only (%s): rebuilding without the ingest lock", exc.strerror)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def rebuild_catalogue(workspace: Workspace, url: str, *, progress: Progress | None = None) -> RebuildReport:
    """Rebuild the catalogue of ``workspace``'s archive into the new database ``url``.

    Parameters
    ----------
    workspace : Workspace
        Only its archive and settings are read; its catalogue is never opened.
    url : str
        A new SQLite file (``sqlite:///NEW.sqlite``, which must not exist) or an empty database.
    progress : Progress, optional
        Advanced once per archived file (hashed and probed).

    Returns
    -------
    RebuildReport

    Raises
    ------
    OutputUnavailableError
        If the target exists (or is not empty); nothing is written to it then.
    IngestLockedError
        If an ingest or a verify holds the archive (exit 75: run it again when it is done).
    """
    with _archive_held(workspace):
        return _rebuild(workspace, url, progress or NullProgress())


def _rebuild(workspace: Workspace, url: str, progress: Progress) -> RebuildReport:
    report = RebuildReport(restore.shown_url(url))
    manifests_dir = workspace.paths.manifests
    records, report.ledger_problems = read_ledger(manifests_dir)
    sessions, manifest_rows = _sessions(records)
    origins = _origins(sessions)
    listed = latest_hashes(manifests_dir)  # path → newest original/verified entry
    by_sha: dict[str, tuple[str, int]] = {}
    for rel, entry in sorted(listed.items()):
        if "sha256" in entry.hashes:
            by_sha.setdefault(entry.hashes["sha256"], (rel, entry.size_bytes or 0))
    order = [h for h in origins if h in by_sha] + sorted((h for h in by_sha if h not in origins),
                                                         key=lambda h: by_sha[h][0])
    report.unlisted = _unlisted(workspace.paths.archive, set(listed))
    rows: list[tuple[_Origin, dict[str, Any]]] = []
    progress.start(len(order), sum(by_sha[h][1] for h in order))
    try:
        for sha in order:
            rel, size = by_sha[sha]
            origin = origins.get(sha) or _Origin(None, rel.rsplit("/", 1)[-1])
            if sha not in origins:
                report.without_session.append(rel)
            row = _describe(workspace, sha, rel, size, origin, report)
            if row is not None:
                rows.append((origin, row))
            progress.advance(rel, size)
    finally:
        progress.finish()
    _prepare_target(workspace, url)
    try:
        _write(workspace, url, sessions, rows, manifest_rows, report)
    except BaseException:
        _discard(url)
        raise
    return report


def _discard(url: str) -> None:
    """A failed rebuild leaves no half-built SQLite file behind (this run created it)."""
    file = restore.sqlite_file(url)
    if file:
        database = Path(file)
        for suffix in ("", "-wal", "-shm", "-journal"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)


def _write(workspace: Workspace, url: str, sessions: list[dict], rows: list, manifest_rows: list[dict],
           report: RebuildReport) -> None:
    default_tz = workspace.settings.ingest.default_timezone
    by_session: dict[int, list] = {}
    for origin, row in rows:
        by_session.setdefault(id(origin.doc) if origin.doc else 0, []).append(row)
    catalogue = Catalogue(url)
    try:
        with catalogue.write() as s:
            recording_ids: dict[str, int] = {}
            session_ids: dict[tuple[str, str], int] = {}
            for doc in [*sessions, None]:  # None: recordings no session record names
                deployment_id = restore.deployment_for(s, doc, default_tz) if doc else None
                new = []
                for row in by_session.get(id(doc) if doc else 0, []):
                    device = row.pop("_device")
                    new.append({**row, "deployment_id": deployment_id,
                                "device_id": writes.ensure_device(s, *device)})
                recording_ids.update({h: i for h, (i, _) in writes.insert_recordings(s, new).items()})
                if doc is not None:
                    key = restore.session_key(doc["card"]["identity"], doc["session"]["started_at"])
                    session_ids[key] = restore.restore_session(s, doc, recording_ids=recording_ids,
                                                               session_ids=session_ids, default_timezone=default_tz)
                    report.source_files += len(doc["files"])
            report.recordings, report.sessions = len(recording_ids), len(session_ids)
            _write_manifests(s, workspace, manifest_rows, session_ids, report)
    finally:
        catalogue.dispose()


def _write_manifests(s, workspace: Workspace, manifest_rows: list[dict], session_ids: dict,
                     report: RebuildReport) -> None:
    """Manifest rows as recorded in the ledger; a generation no record names, from the MHL itself."""
    known = {m["sequence"] for m in manifest_rows}
    for m in manifest_rows:
        restore.restore_manifest(s, sequence=m["sequence"], kind=m["kind"], path=m["path"], files=m["files"],
                                 failures=m["failures"], report=m["report"],
                                 session_id=session_ids.get(m["session"]) if m["session"] else None,
                                 created_at=restore.parse_iso(m["created_at"]))
    for sequence, path in list_manifests(workspace.paths.manifests):
        if sequence in known:
            continue
        generation = read_generation(path)
        restore.restore_manifest(s, sequence=sequence, kind="ingest" if generation.process == "transfer" else "verify",
                                 path=workspace.relative(path), files=len(generation.entries),
                                 failures=sum(1 for e in generation.entries if e.action == "failed"),
                                 session_id=None, report=None, created_at=generation.creator.created)
    report.manifests = len(known) + sum(1 for seq, _ in list_manifests(workspace.paths.manifests) if seq not in known)
