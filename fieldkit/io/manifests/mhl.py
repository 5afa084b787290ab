"""ASC MHL v2.0 manifests for the archive: C4 ids, immutable generations and the chain file.

An archive's ``mhl/`` folder holds one manifest per generation (every ingest or verification
adds one), named ``<NNNN>_<root_name>_<YYYY-MM-DD>_<HHMMSS>Z.mhl`` after the UTC start of the
operation, plus ``ascmhl_chain.xml``, which lists each manifest's C4 id so that a manifest
edited after it was sealed can be detected. Manifests are immutable (ASC MHL spec): a new one is
written to a temporary file in the same folder, fsynced and hard-linked to its final name
(``os.link`` never replaces an existing file, unlike ``os.replace``), and the folder is fsynced.
The chain file is derived from the manifests, so it alone is replaced atomically.

Writers are serialised by the ingest lock; a crash leaves at most a ``.fieldkit-<pid>-*.tmp``
file, which readers never look at and the next write removes once it is stale (older than
the import of this module, i.e. left by an earlier process).

**SHA-256 is a fieldkit extension.** ASC MHL knows md5, sha1, c4 and the xxHash family but no
SHA-256, fieldkit's content hash. It is written as ``<fk:sha256 action=... hashdate=...>``
(namespace :data:`FIELDKIT_NS`) inside the ``<metadata>`` element of each ``<hash>``, which
the ASC schema leaves open to any content, so the manifests stay valid against
``ASCMHL.xsd`` and other tools simply ignore the extension. Write a ``c4`` too when the
manifest must be verifiable by ASC tools.

A C4 id (SMPTE ST 2114) is the SHA-512 digest read as a 512-bit big-endian integer, written in
base58 (most significant digit first), left-padded with ``1`` to 88 digits and prefixed ``c4``.
"""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from fieldkit.errors import IngestError, UnknownNameError, ValidationError
from fieldkit.io.durable import fsync_dir
from fieldkit.io.manifests.c4 import C4Hasher, c4_file, c4_id
from fieldkit.io.manifests.mhl_records import (  # noqa: F401 - re-exported
    _CHUNK_BYTES,
    _HASH_TAGS,
    _HASH_VALUE,
    _MANIFEST_NAME,
    _STARTED_AT,  # noqa: F401
    _TEMP_NAME,
    _UNSAFE_NAME,
    _UNSAFE_TEXT,
    ACTIONS,  # noqa: F401
    ASC_HASH_FORMATS,
    ASC_NS,
    CHAIN_FILENAME,
    DIRECTORY_NS,
    EXTENSION_HASH_FORMATS,
    FIELDKIT_NS,  # noqa: F401
    HASH_FORMATS,
    PROCESSES,
    Action,
    ChainLink,
    CreatorInfo,
    Generation,
    MhlEntry,
    _check_path,  # noqa: F401
    _require_aware,
)

__all__ = [
    "ACTIONS", "ASC_NS", "CHAIN_FILENAME", "DIRECTORY_NS", "FIELDKIT_NS", "HASH_FORMATS",
    "C4Hasher", "ChainLink", "CreatorInfo", "Generation", "MhlEntry", "append_to_chain", "c4_file",
    "c4_id", "latest_hashes", "list_manifests", "manifest_name", "next_sequence", "read_chain",
    "read_generation", "remove_stale_temps", "verify_chain", "write_generation",
]


def _q(tag: str, ns: str = ASC_NS) -> str:
    return f"{{{ns}}}{tag}"


# --- naming and temporary files -------------------------------------------------------------


def _check_root_name(root_name: str) -> None:
    if not root_name or root_name[0] == "." or "/" in root_name or _UNSAFE_NAME.search(root_name):
        raise ValidationError(f"root name {root_name!r} cannot be part of a manifest file name.")


def manifest_name(sequence: int, root_name: str, created: datetime) -> str:
    """Return ``<NNNN>_<root_name>_<YYYY-MM-DD>_<HHMMSS>Z.mhl`` (time in UTC)."""
    if sequence < 1:
        raise ValidationError(f"manifest sequence {sequence} must be 1 or more.")
    _check_root_name(root_name)
    return f"{sequence:04d}_{root_name}_{created.astimezone(UTC):%Y-%m-%d_%H%M%S}Z.mhl"


def list_manifests(folder: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Return ``(sequence, path)`` of every ASC-named manifest in ``folder``, by sequence."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := _MANIFEST_NAME.fullmatch(p.name))]
    return sorted(found)


def _taken_sequences(folder: str | os.PathLike[str]) -> set[int]:
    # The chain counts too: a deleted manifest's number is never reused.
    chained = {link.sequence for link in read_chain(folder)}
    return chained | {seq for seq, _ in list_manifests(folder)}


def next_sequence(folder: str | os.PathLike[str]) -> int:
    """Return the number the next generation in ``folder`` gets (1 for an empty folder).

    Numbers of manifests on disk and of those recorded in the chain are never reused.
    """
    return max(_taken_sequences(folder), default=0) + 1


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files made before this process started (by a crashed writer).

    A temporary file is never read; only ``os.link`` or ``os.replace`` publishes its bytes.
    Returns the paths removed.
    """
    removed = []
    for path in Path(folder).iterdir():
        if _TEMP_NAME.fullmatch(path.name) and _mtime(path) < _STARTED_AT:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile by its writer
        return float("inf")


def _write_temp(folder: Path, data: bytes, mode: int = 0o444) -> Path:
    """Write ``data`` to a new temporary file in ``folder`` (read-only by default), fsynced."""
    path = folder / f".fieldkit-{os.getpid()}-{secrets.token_hex(8)}.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


# --- XML ------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str | None) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    element.text = text
    return element


def _serialize(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _creator_element(parent: ET.Element, creator: CreatorInfo) -> None:
    info = _sub(parent, "creatorinfo")
    _sub(info, "creationdate", _iso(creator.created))
    _sub(info, "hostname", creator.hostname)
    _sub(info, "tool", creator.tool_name, version=creator.tool_version)
    for tag in ("author", "location", "comment"):
        if getattr(creator, tag) is not None:
            _sub(info, tag, getattr(creator, tag))


def _hash_element(parent: ET.Element, entry: MhlEntry, default_date: datetime) -> None:
    element = _sub(parent, "hash")
    size = None if entry.size_bytes is None else str(entry.size_bytes)
    mtime = None if entry.mtime is None else _iso(entry.mtime)
    _sub(element, "path", entry.path, size=size, lastmodificationdate=mtime)
    attrs = {"action": entry.action, "hashdate": _iso(entry.hashed_at or default_date)}
    for name in (n for n in ASC_HASH_FORMATS if n in entry.hashes):
        _sub(element, name, entry.hashes[name], **attrs)
    extensions = [n for n in EXTENSION_HASH_FORMATS if n in entry.hashes]
    if extensions:
        meta = _sub(element, "metadata")
        for name in extensions:
            _sub(meta, f"fk:{name}", entry.hashes[name], **attrs)


def _manifest_bytes(process: str, entries: Iterable[MhlEntry], creator: CreatorInfo) -> bytes:
    # Tags are written unqualified under explicit xmlns attributes: no global prefix registry.
    root = ET.Element("hashlist", {"version": "2.0", "xmlns": ASC_NS, "xmlns:fk": FIELDKIT_NS})
    _creator_element(root, creator)
    _sub(_sub(root, "processinfo"), "process", process)
    entries = list(entries)
    if entries:  # the schema wants <hashes> absent rather than empty
        hashes = _sub(root, "hashes")
        for entry in entries:
            _hash_element(hashes, entry, creator.created)
    return _serialize(root)


def _parse_xml(path: Path, expected_tag: str) -> ET.Element:
    try:
        root = SafeET.fromstring(path.read_bytes())
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ValidationError(f"{path} is not well-formed, safe XML ({exc}).") from exc
    if root.tag != expected_tag:
        raise ValidationError(f"{path}: root element is {root.tag}, expected {expected_tag}.")
    return root


def _text(parent: ET.Element, tag: str, source: Path, *, required: bool = True) -> str | None:
    element = parent.find(tag)
    if element is None or not (element.text or "").strip():
        if required:
            raise ValidationError(f"{source}: <{tag.rsplit('}', 1)[-1]}> is missing or empty.")
        return None
    return element.text.strip()


def _parse_date(text: str, source: Path) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{source}: {text!r} is not an ISO 8601 date and time.") from exc
    if value.utcoffset() is None:  # never guess: an MHL date without offset is ambiguous
        raise ValidationError(f"{source}: date {text!r} has no UTC offset.")
    return value


# --- writing --------------------------------------------------------------------------------


def write_generation(folder: str | os.PathLike[str], *, sequence: int | None = None,
                     process: Literal["transfer", "in-place"], entries: Iterable[MhlEntry],
                     creator: CreatorInfo, root_name: str) -> Path:
    """Seal a new, immutable manifest generation in ``folder`` and add it to the chain.

    Parameters
    ----------
    folder : path
        The manifest folder (``archive/mhl``); created if missing.
    sequence : int, optional
        Generation number; default one more than the highest in ``folder``.
    process : {"transfer", "in-place"}
        ``transfer`` for an ingest that compared source and copy, ``in-place`` for a re-hash.
    entries : iterable of MhlEntry
    creator : CreatorInfo
        Its ``created`` time names the file.
    root_name : str
        Name of the managed folder, used in the file name.

    Returns
    -------
    Path
        The new manifest.

    Raises
    ------
    IngestError
        If generation ``sequence`` or the target file already exists, or the filesystem cannot
        hard-link (nothing is ever overwritten).
    UnknownNameError
        If ``process`` is not ``transfer`` or ``in-place``.
    ValidationError
        If ``root_name`` cannot be part of a file name, or the chain file is unreadable.
    """
    if process not in ("transfer", "in-place"):
        raise UnknownNameError("MHL process for writing", process, ("transfer", "in-place"))
    _check_root_name(root_name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = _manifest_bytes(process, entries, creator)
    remove_stale_temps(folder)
    _complete_interrupted_appends(folder)
    temp = _write_temp(folder, data)
    try:
        final = _link_manifest(temp, sequence, root_name, creator.created)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(folder)
    append_to_chain(folder, final)
    return final


def _complete_interrupted_appends(folder: Path) -> None:
    """Record in the chain the manifests a stopped writer published but did not record.

    A writer killed (or a power cut, docs/reliability.md D1/D2) between linking a manifest to its
    final name and appending it to ``ascmhl_chain.xml`` leaves a complete manifest (its bytes
    were fsynced before the link) that the chain does not list; the next generation would then
    follow a gap. Appending is idempotent and in sequence order, so the next writer finishes it.
    A file with a manifest's name that is not a well-formed manifest is not fieldkit's: it is
    left out of the chain (``verify_chain`` reports it).
    """
    recorded = {link.sequence for link in read_chain(folder)}
    for path in sorted(folder.iterdir()):
        match = _MANIFEST_NAME.fullmatch(path.name)
        if match is None or int(match[1]) in recorded:
            continue
        try:
            read_generation(path)
        except (ValidationError, OSError):
            continue
        append_to_chain(folder, path)


def _link_manifest(temp: Path, sequence: int | None, root_name: str, created: datetime) -> Path:
    folder = temp.parent
    sequence = next_sequence(folder) if sequence is None else sequence
    final = folder / manifest_name(sequence, root_name, created)
    if sequence in _taken_sequences(folder):
        raise IngestError(f"generation {sequence} already exists in {folder}.",
                          hint="Manifests are immutable; omit sequence to append a new one.")
    try:
        os.link(temp, final)
    except FileExistsError as exc:
        raise IngestError(f"{final} already exists; manifests are never overwritten.") from exc
    except OSError as exc:
        raise IngestError(f"cannot create {final} ({exc}).",
                          hint="The archive filesystem must support hard links.") from exc
    return final


def _chain_bytes(links: Iterable[ChainLink]) -> bytes:
    root = ET.Element("ascmhldirectory", {"xmlns": DIRECTORY_NS})
    for link in links:
        element = _sub(root, "hashlist", sequencenr=str(link.sequence))
        _sub(element, "path", link.path)
        _sub(element, "c4", link.c4)
    return _serialize(root)


def append_to_chain(folder: str | os.PathLike[str],
                    manifest_path: str | os.PathLike[str]) -> ChainLink:
    """Record a manifest's C4 id in ``ascmhl_chain.xml`` (idempotent); return its link.

    Raises
    ------
    ValidationError
        If the manifest is not an ASC-named file in ``folder``.
    IngestError
        If the chain already records that sequence with another file or C4 id.
    """
    folder, manifest = Path(folder), Path(manifest_path)
    match = _MANIFEST_NAME.fullmatch(manifest.name)
    if match is None or manifest.parent.resolve() != folder.resolve():
        raise ValidationError(f"{manifest} is not an ASC-named manifest inside {folder}.")
    link = ChainLink(int(match[1]), manifest.name, c4_file(manifest))
    links = read_chain(folder)
    same = [known for known in links if known.sequence == link.sequence]
    if same and same[0] != link:
        raise IngestError(f"{CHAIN_FILENAME} already records generation {link.sequence} as "
                          f"{same[0].path} with C4 {same[0].c4}; refusing to rewrite history.")
    if not same:
        links = sorted([*links, link], key=lambda known: known.sequence)
        _replace_file(folder, CHAIN_FILENAME, _chain_bytes(links))
    return link


def _replace_file(folder: Path, name: str, data: bytes) -> None:
    temp = _write_temp(folder, data, mode=0o644)  # replaceable, also on Windows
    try:
        os.replace(temp, folder / name)  # the chain is derived data, so replacing it is safe
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(folder)


# --- reading --------------------------------------------------------------------------------


def _read_creator(info: ET.Element, source: Path) -> CreatorInfo:
    tool = info.find(_q("tool"))
    return CreatorInfo(
        created=_parse_date(_text(info, _q("creationdate"), source), source),
        hostname=_text(info, _q("hostname"), source),
        tool_name=_text(info, _q("tool"), source),
        tool_version=tool.get("version", "") if tool is not None else "",
        author=_text(info, _q("author"), source, required=False),
        location=_text(info, _q("location"), source, required=False),
        comment=_text(info, _q("comment"), source, required=False),
    )


def _hash_values(element: ET.Element) -> list[tuple[str, ET.Element]]:
    children = [*element, *element.iterfind(f"{_q('metadata')}/*")]
    return [(_HASH_TAGS[c.tag], c) for c in children if c.tag in _HASH_TAGS]


def _read_entry(element: ET.Element, source: Path) -> MhlEntry:
    path_element = element.find(_q("path"))
    if path_element is None:
        raise ValidationError(f"{source}: a <hash> has no <path>.")
    values = _hash_values(element)
    if any(h.get("action") not in ACTIONS for _, h in values):
        raise ValidationError(f"{source}: {path_element.text!r} has a hash without a valid action.")
    dates = [_parse_date(h.get("hashdate"), source) for _, h in values if h.get("hashdate")]
    mtime = path_element.get("lastmodificationdate")
    size = path_element.get("size")
    return MhlEntry(
        path=path_element.text or "",
        size_bytes=None if size is None else _parse_int(size, f"{source}: size"),
        hashes={name: (h.text or "").strip() for name, h in values},
        mtime=None if mtime is None else _parse_date(mtime, source),
        action=max((h.get("action") for _, h in values), key=ACTIONS.index, default="original"),
        hashed_at=max(dates, default=None),
    )


def _parse_int(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValidationError(f"{what} {text!r} is not a whole number.")
    return int(text)


def read_generation(path: str | os.PathLike[str]) -> Generation:
    """Read one manifest (parsed with defusedxml).

    Raises
    ------
    ValidationError
        If the file is not a well-formed ASC MHL v2.0 manifest with clean paths.
    FileNotFoundError
        If the file does not exist.
    """
    path = Path(path)
    root = _parse_xml(path, _q("hashlist"))
    if root.get("version") != "2.0":
        raise ValidationError(f"{path}: hashlist version {root.get('version')!r}, expected '2.0'.")
    info = root.find(_q("creatorinfo"))
    if info is None:
        raise ValidationError(f"{path}: <creatorinfo> is missing.")
    process = _text(root, f"{_q('processinfo')}/{_q('process')}", path)
    if process not in PROCESSES:
        raise ValidationError(f"{path}: process {process!r} is not one of {', '.join(PROCESSES)}.")
    hashes = root.iterfind(f"{_q('hashes')}/{_q('hash')}")
    match = _MANIFEST_NAME.fullmatch(path.name)
    return Generation(
        path=path,
        sequence=int(match[1]) if match else None,
        process=process,
        creator=_read_creator(info, path),
        entries=tuple(_read_entry(h, path) for h in hashes if h.get("directory") != "true"),
    )


def _read_link(element: ET.Element, source: Path) -> ChainLink:
    number = _parse_int(element.get("sequencenr", ""), f"{source}: sequencenr")
    name = _text(element, _q("path", DIRECTORY_NS), source)
    if not _MANIFEST_NAME.fullmatch(name):  # a bare file name: the chain cannot point elsewhere
        raise ValidationError(f"{source}: chain path {name!r} is not an ASC manifest name.")
    return ChainLink(number, name, _text(element, _q("c4", DIRECTORY_NS), source))


def read_chain(folder: str | os.PathLike[str]) -> list[ChainLink]:
    """Return the chain file's links in file order (``[]`` if there is no chain file yet)."""
    path = Path(folder) / CHAIN_FILENAME
    if not path.exists():
        return []
    root = _parse_xml(path, _q("ascmhldirectory", DIRECTORY_NS))
    return [_read_link(e, path) for e in root.iterfind(_q("hashlist", DIRECTORY_NS))]


def _link_problem(folder: Path, link: ChainLink) -> str | None:
    path = folder / link.path
    if not path.is_file():
        return f"generation {link.sequence}: {link.path} is listed in the chain but missing."
    if int(_MANIFEST_NAME.fullmatch(link.path)[1]) != link.sequence:
        return f"generation {link.sequence}: {link.path} carries another sequence number."
    actual = c4_file(path)
    if actual != link.c4:
        return (f"generation {link.sequence}: {link.path} was modified after it was sealed "
                f"(C4 {actual}, chain says {link.c4}).")
    return None


def _sequence_problems(sequences: list[int]) -> list[str]:
    problems = [f"generation {s} appears more than once in the chain."
                for s in sorted(set(sequences)) if sequences.count(s) > 1]
    gaps = sorted(set(range(1, max(sequences, default=0) + 1)) - set(sequences))
    problems += [f"generation {s} is missing from the chain (sequence gap)." for s in gaps]
    return problems


def verify_chain(folder: str | os.PathLike[str]) -> list[str]:
    """Check the manifests against the chain; return the problems found (``[]`` if none).

    Reports tampering (a manifest whose C4 id differs from the chain's), manifests listed but
    missing, sequence gaps and duplicates, manifests not in the chain and an unreadable chain.
    """
    folder = Path(folder)
    try:
        links = read_chain(folder)
    except ValidationError as exc:
        return [str(exc)]
    problems = _sequence_problems([link.sequence for link in links])
    problems += [p for link in links if (p := _link_problem(folder, link))]
    chained = {link.path for link in links}
    problems += [f"{path.name} is not in {CHAIN_FILENAME} (run append_to_chain to record it)."
                 for _, path in list_manifests(folder) if path.name not in chained]
    return problems


def latest_hashes(folder: str | os.PathLike[str]) -> dict[str, MhlEntry]:
    """Return, for each archived path, its newest ``original`` or ``verified`` entry.

    Generations are read in sequence order; ``failed`` entries never replace a good one, since
    ASC MHL allows only original and verified hashes as a reference for verification.
    """
    latest: dict[str, MhlEntry] = {}
    for _, path in list_manifests(folder):
        for entry in read_generation(path).entries:
            if entry.action != "failed":
                latest[entry.path] = entry
    return latest
