"""G1: a card dump (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``) ingested as if it were the card.

The dump file is the card: it is opened for reading only, never written, renamed or deleted.
Its regular-file entries are extracted into a private folder under the archive's staging area
(``archive/.staging/dumps/<sha256 of the dump>``), each hashed while it is written, and that
folder is then ingested by :func:`fieldkit.ingest.service.ingest_card` with the same
verification as a mounted card (read-back hash, catalogue, manifest). The SHA-256 the ingest
recorded for each file must equal the hash taken while extracting; the folder is removed
afterwards (it is fieldkit's own copy; the dump and the archive keep the bytes).

Rejected by name, with the reason, before a byte of them is written (the others carry on):

``absolute``        ``/etc/passwd``, ``C:\\x``, ``\\\\server\\share``
``traversal``       a ``..`` component (``../x``, ``a/../../x``)
``bad_name``        a NUL byte or an empty name
``link``            a symbolic or hard link (outside the dump or not: a card has none, and the
                    inventory never follows one); ``link_outside`` when it points outside
``device``          character/block devices, FIFOs and other special entries
``duplicate``       a second entry with the same (case-folded, NFC) name: the first is kept
``corrupt``         an entry the archive library cannot read (bad CRC, broken stream)
``ratio``           an entry that expands more than ``ingest.dump_max_ratio`` times its
                    compressed size, or more than its header declared (a lying zip entry)

Refused as a whole (:class:`DumpRefusedError`, nothing extracted or the extraction removed):
more than ``ingest.dump_max_entries`` entries, or more than ``ingest.dump_max_bytes`` in total
(declared, or met while streaming a compressed tar), or a tar expanding more than
``dump_max_ratio`` times the dump's size: the zip-bomb limits, all in the settings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from fieldkit.errors import FieldkitError, IngestError, InputUnavailableError

if TYPE_CHECKING:
    from fieldkit.ingest.outcomes import IngestReport, Progress
    from fieldkit.ingest.service import IngestRequest
    from fieldkit.workspace import Workspace

__all__ = ["DUMP_SUFFIXES", "DumpLimits", "DumpRefusedError", "Extracted", "Rejected",
           "extract_dump", "ingest_dump", "is_dump", "plan_dump"]

DUMP_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_BLOCK = 1 << 20


class DumpRefusedError(IngestError):
    """The dump breaks a limit as a whole (entry count, total size, expansion ratio)."""


@dataclass(frozen=True)
class DumpLimits:
    """The zip-bomb limits (``ingest.dump_max_*`` in the settings)."""

    max_entries: int
    max_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class Rejected:
    """An entry not extracted: its name as the dump has it, a reason code and a sentence."""

    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class Extracted:
    """An entry written to the extraction folder, with the SHA-256 taken while writing it."""

    name: str
    size_bytes: int
    sha256: str


def is_dump(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file named like a card dump (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``)."""
    return Path(path).is_file() and str(path).lower().endswith(DUMP_SUFFIXES)


def _name_problem(name: str) -> tuple[str, str] | None:
    """Why an entry name may not be written below the extraction folder, or None."""
    if not name or "\x00" in name:
        return "bad_name", "an empty name or a NUL byte in the name"
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        return "absolute", "an absolute path (it would be written outside the workspace)"
    if ".." in PurePosixPath(unified).parts:
        return "traversal", "a '..' component (it would be written outside the workspace)"
    return None


def _key(name: str) -> str:
    """Names that collide on a card's FAT/exFAT file system collide here too."""
    return unicodedata.normalize("NFC", name.replace("\\", "/").strip("/")).casefold()


def _link_problem(name: str, target: str) -> tuple[str, str]:
    unified = target.replace("\\", "/")
    where = PurePosixPath(name.replace("\\", "/")).parent / unified
    depth = 0
    for part in where.parts:
        depth += -1 if part == ".." else 0 if part in (".", "") else 1
        if depth < 0:
            break
    if unified.startswith("/") or depth < 0:
        return "link_outside", f"a link pointing outside the dump (to {target!r})"
    return "link", f"a link (to {target!r}); links are never followed"


@dataclass
class _Writer:
    """Writes entries below ``root`` with O_EXCL, hashing them, within the limits."""

    root: Path
    limits: DumpLimits
    written: int = 0

    def write(self, name: str, source: IO[bytes], ceiling: int) -> tuple[int, str] | None:
        """Copy ``source`` to ``root/name``; None (and no file) when it exceeds ``ceiling``."""
        path = self.root.joinpath(*PurePosixPath(name.replace("\\", "/")).parts)
        if not path.resolve().is_relative_to(self.root.resolve()):  # belt and braces
            raise IngestError(f"dump entry {name!r} resolves outside {self.root}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                while block := source.read(_BLOCK):
                    size += len(block)
                    if size > ceiling:
                        break
                    self._count(len(block))
                    digest.update(block)
                    out.write(block)
        except BaseException:
            path.unlink(missing_ok=True)  # never leave half an entry behind
            raise
        if size > ceiling:
            path.unlink()
            return None
        return size, digest.hexdigest()

    def _count(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.max_bytes:
            raise DumpRefusedError(
                f"the dump expands to more than ingest.dump_max_bytes = {self.limits.max_bytes} "
                "bytes: refused as a possible zip bomb.",
                hint="If the dump is genuine, raise ingest.dump_max_bytes in fieldkit.toml.")


def _zip_entries(dump: Path, writer: _Writer, limits: DumpLimits,
                 seen: dict[str, str]) -> Iterator[Extracted | Rejected]:
    with zipfile.ZipFile(dump) as archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise DumpRefusedError(
                f"{dump.name} has {len(infos)} entries, more than ingest.dump_max_entries = "
                f"{limits.max_entries}: refused as a possible zip bomb.",
                hint="If the dump is genuine, raise ingest.dump_max_entries.", path=dump)
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_bytes:
            raise DumpRefusedError(
                f"{dump.name} declares {declared} bytes once extracted, more than "
                f"ingest.dump_max_bytes = {limits.max_bytes}: refused as a possible zip bomb.",
                hint="If the dump is genuine, raise ingest.dump_max_bytes.", path=dump)
        for info in infos:
            mode = info.external_attr >> 16
            name = info.filename
            if info.is_dir():
                continue
            if stat.S_ISLNK(mode):
                target = archive.read(info)[:4096].decode("utf-8", "replace")
                yield Rejected(name, *_link_problem(name, target))
                continue
            # writers that store no Unix mode leave the type bits 0: a regular file
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                yield Rejected(name, "device", "a device file, FIFO or socket, not a recording")
                continue
            problem = _name_problem(name) or _duplicate(name, seen)
            if problem:
                yield Rejected(name, *problem)
                continue
            ceiling = min(info.file_size, int(max(info.compress_size, 1) * limits.max_ratio))
            if info.file_size > ceiling:
                yield Rejected(name, "ratio", f"expands {info.file_size} bytes from "
                               f"{info.compress_size} (over ingest.dump_max_ratio = "
                               f"{limits.max_ratio:g}): a possible zip bomb")
                continue
            try:
                with archive.open(info) as source:
                    done = writer.write(name, source, ceiling)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                yield Rejected(name, "corrupt", f"unreadable in the dump ({exc})")
                continue
            if done is None:
                yield Rejected(name, "ratio", f"holds more bytes than its header declares "
                               f"({info.file_size}): a lying or hostile entry")
                continue
            seen[_key(name)] = name
            yield Extracted(name, *done)


def _duplicate(name: str, seen: dict[str, str]) -> tuple[str, str] | None:
    first = seen.get(_key(name))
    if first is None:
        return None
    return "duplicate", f"a second entry named like {first!r}; the first one is kept"


def _tar_entries(dump: Path, writer: _Writer, limits: DumpLimits,
                 seen: dict[str, str]) -> Iterator[Extracted | Rejected]:
    dump_bytes = max(dump.stat().st_size, 1)
    count = 0
    with tarfile.open(dump, mode="r:*") as archive:
        for member in archive:
            count += 1
            if count > limits.max_entries:
                raise DumpRefusedError(
                    f"{dump.name} has more than ingest.dump_max_entries = {limits.max_entries} "
                    "entries: refused as a possible zip bomb.",
                    hint="If the dump is genuine, raise ingest.dump_max_entries.", path=dump)
            name = member.name
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                yield Rejected(name, *_link_problem(name, member.linkname))
                continue
            if not member.isreg():
                yield Rejected(name, "device", "a device file, FIFO or other special entry, "
                               "not a recording")
                continue
            problem = _name_problem(name) or _duplicate(name, seen)
            if problem:
                yield Rejected(name, *problem)
                continue
            source = archive.extractfile(member)
            assert source is not None  # a regular member always has a body
            done = writer.write(name, source, member.size)
            if writer.written > limits.max_ratio * dump_bytes:
                raise DumpRefusedError(
                    f"{dump.name} expands more than ingest.dump_max_ratio = {limits.max_ratio:g} "
                    f"times its {dump_bytes} bytes: refused as a possible compression bomb.",
                    hint="If the dump is genuine, raise ingest.dump_max_ratio.", path=dump)
            if done is None:
                yield Rejected(name, "ratio", "holds more bytes than its header declares")
                continue
            seen[_key(name)] = name
            yield Extracted(name, *done)


def extract_dump(dump: str | os.PathLike[str], target: str | os.PathLike[str],
                 limits: DumpLimits) -> tuple[list[Extracted], list[Rejected]]:
    """Extract the regular files of ``dump`` below ``target``, hashing them; reject the rest.

    Parameters
    ----------
    dump : path-like
        A ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` file; only read.
    target : path-like
        An empty or missing folder; nothing is written outside it.
    limits : DumpLimits

    Returns
    -------
    (list of Extracted, list of Rejected)

    Raises
    ------
    DumpRefusedError
        A whole-dump limit is broken; ``target`` is removed.
    InputUnavailableError
        The file is not a readable zip or tar archive.
    """
    dump, root = Path(dump), Path(target)
    root.mkdir(parents=True, exist_ok=True)
    writer, seen = _Writer(root, limits), {}
    walk = _zip_entries if str(dump).lower().endswith(".zip") else _tar_entries
    extracted: list[Extracted] = []
    rejected: list[Rejected] = []
    try:
        for entry in walk(dump, writer, limits, seen):
            (extracted if isinstance(entry, Extracted) else rejected).append(entry)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise InputUnavailableError(
            f"{dump} is not a readable zip or tar archive ({exc}).",
            hint="Check the file (a copy cut short?) or ingest the card itself.", path=dump) from exc
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return extracted, rejected


def _extraction_folder(workspace: Workspace) -> Path:
    """Where a dump is extracted: the archive's staging folder, or the workspace's own for an
    object-storage archive (a local folder either way: the extracted files are the card)."""
    if workspace.roots.archive.is_local:
        return workspace.paths.staging / "dumps"
    return workspace.root / ".staging" / "dumps"


def _dump_sha256(dump: Path) -> str:
    digest = hashlib.sha256()
    with open(dump, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def ingest_dump(workspace: Workspace, request: IngestRequest, *, progress: Progress | None = None,
                should_stop: Callable[[], bool] = lambda: False) -> IngestReport:
    """Ingest the card dump ``request.card_dir`` (a file): extract, ingest, check the hashes.

    Parameters
    ----------
    workspace : Workspace
    request : IngestRequest
        ``card_dir`` is the dump file; ``card_id`` defaults to ``dump:<name>:<sha256[:12]>``.
    progress, should_stop
        As for :func:`fieldkit.ingest.service.ingest_card`.

    Returns
    -------
    IngestReport
        The ingest of the extracted files; ``messages`` name every rejected entry, and
        ``card_root`` is the dump.

    Raises
    ------
    DumpRefusedError, InputUnavailableError
        See :func:`extract_dump`.
    IngestError
        An archived copy's hash differs from the hash taken while extracting.
    """
    from fieldkit.ingest.service import ingest_card

    dump = Path(request.card_dir).expanduser().resolve()
    settings = workspace.settings.ingest
    limits = DumpLimits(settings.dump_max_entries, settings.dump_max_bytes, settings.dump_max_ratio)
    sha = _dump_sha256(dump)
    target = _extraction_folder(workspace) / sha[:32]
    shutil.rmtree(target, ignore_errors=True)  # a leftover of an interrupted run: ours, redone
    try:
        extracted, rejected = extract_dump(dump, target, limits)
        if not extracted:
            raise IngestError(
                f"{dump.name}: no entry of the dump could be ingested ({len(rejected)} rejected"
                + "".join(f"; {r.name!r}: {r.reason}" for r in rejected[:5]) + ").",
                hint="Check the dump; limits are ingest.dump_max_* in fieldkit.toml.", path=dump)
        card_id = request.card_id or f"dump:{dump.name}:{sha[:12]}"
        try:
            report = ingest_card(workspace, replace(request, card_dir=target, card_id=card_id),
                                 progress=progress, should_stop=should_stop)
        except FieldkitError as exc:  # name the dump, not fieldkit's extraction folder
            exc.message = exc.message.replace(str(target), f"{dump} (extracted)")
            raise
        _check_hashes(dump, extracted, report)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    report.card_root = str(dump)
    report.messages[:0] = [
        f"{dump.name}: entry {r.name!r} rejected ({r.reason}): {r.message}." for r in rejected]
    return report


def _check_hashes(dump: Path, extracted: list[Extracted], report: IngestReport) -> None:
    """Every archived copy must hash as the entry did while it was extracted."""
    taken = {e.name.replace("\\", "/").strip("/"): e.sha256 for e in extracted}
    for outcome in report.files:
        expected = taken.get(outcome.path)
        if outcome.sha256 and expected and outcome.sha256 != expected:
            raise IngestError(
                f"{dump.name}: entry {outcome.path!r} hashed {expected} while extracted but "
                f"{outcome.sha256} when archived: the staging copy changed.",
                hint="Run 'fieldkit verify', then ingest the dump again.", path=dump)


def plan_dump(workspace: Workspace, request: IngestRequest) -> dict:
    """``ingest --dry-run`` of a dump: extract to staging, plan, remove; the catalogue is not touched.

    Returns
    -------
    dict
        :func:`fieldkit.ingest.service.plan_ingest`'s plan, with ``card_root`` the dump and
        ``rejected`` the entries refused (name, reason, message).
    """
    from fieldkit.ingest.service import plan_ingest

    dump = Path(request.card_dir).expanduser().resolve()
    settings = workspace.settings.ingest
    limits = DumpLimits(settings.dump_max_entries, settings.dump_max_bytes, settings.dump_max_ratio)
    target = _extraction_folder(workspace) / f"plan-{_dump_sha256(dump)[:32]}"
    shutil.rmtree(target, ignore_errors=True)
    try:
        _, rejected = extract_dump(dump, target, limits)
        plan = plan_ingest(workspace, replace(request, card_dir=target,
                                              card_id=request.card_id or f"dump:{dump.name}"))
    finally:
        shutil.rmtree(target, ignore_errors=True)
    plan["card_root"] = str(dump)
    plan["rejected"] = [{"name": r.name, "reason": r.reason, "message": r.message} for r in rejected]
    return plan
