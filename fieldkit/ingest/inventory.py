"""Inventory of a card: every file, with its raw path bytes, size and mtime; nothing skipped silently.

Files that will not be archived (macOS AppleDouble ``._*`` files, ``.Spotlight-V100``,
``System Volume Information``...) are still listed, with the reason they are ignored. Symbolic
links are never followed. The card's *identity* says which physical card this is; its
*fingerprint* says what is on it right now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from fieldkit.errors import IngestError, NotFoundError
from fieldkit.io.audio.probe import sniff_format

__all__ = ["CardFile", "Inventory", "take_inventory", "display_name", "card_identity", "require_audio",
           "AUDIO_SUFFIXES"]

IGNORED_DIRS = {b".Spotlight-V100", b".Trashes", b"System Volume Information", b".fseventsd",
                b".TemporaryItems", b"$RECYCLE.BIN", b".DocumentRevisions-V100"}
IGNORED_FILES = {b".DS_Store", b"Thumbs.db", b"desktop.ini", b".metadata_never_index"}
#: Names that say "recorder audio" (compared lower-case): the containers ``sniff_format`` knows.
AUDIO_SUFFIXES = (".wav", ".wave", ".bwf", ".rf64", ".w64", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga",
                  ".opus", ".mp3")


@dataclass(frozen=True)
class CardFile:
    """One entry of a card's inventory."""

    raw_path: bytes  # relative to the card root, b"/"-separated, exactly as the filesystem has it
    display_path: str  # NFC, undecodable bytes shown as \xNN
    size_bytes: int
    mtime: dt.datetime | None
    ignored: str | None = None  # why it will not be archived, or None

    @property
    def name(self) -> str:
        return self.display_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Inventory:
    root: Path
    identity: str
    label: str | None
    filesystem: str | None
    capacity_bytes: int | None
    recorder_hint: str | None
    files: tuple[CardFile, ...]
    fingerprint: str

    @property
    def to_copy(self) -> tuple[CardFile, ...]:
        return tuple(f for f in self.files if f.ignored is None)

    @property
    def bytes_to_copy(self) -> int:
        return sum(f.size_bytes for f in self.to_copy)

    def keys(self) -> set[tuple[bytes, int]]:
        return {(f.raw_path, f.size_bytes) for f in self.to_copy}

    @property
    def audio_by_name(self) -> tuple[CardFile, ...]:
        """Files to copy whose name ends in an audio extension (``AUDIO_SUFFIXES``, any case)."""
        return tuple(f for f in self.to_copy if f.name.lower().endswith(AUDIO_SUFFIXES))


def display_name(raw: bytes) -> str:
    """A printable, NFC-normalised name; bytes that are not UTF-8 become ``\\xNN``."""
    return unicodedata.normalize("NFC", raw.decode("utf-8", "backslashreplace"))


def _ignored_reason(name: bytes, entry_is_dir: bool) -> str | None:
    if entry_is_dir:
        return "system_folder" if name in IGNORED_DIRS else None
    if name.startswith(b"._"):
        return "appledouble"
    if name in IGNORED_FILES:
        return "system_file"
    return None


def _walk(root: bytes, rel: bytes, inherited: str | None, out: list[CardFile]) -> None:
    here = os.path.join(root, rel) if rel else root
    try:
        entries = sorted(os.scandir(here), key=lambda e: e.name)
    except OSError as exc:
        raise IngestError(f"cannot list {display_name(here)} on the card: {exc.strerror}.",
                          hint="Check the card is mounted and readable, then run again.") from exc
    for entry in entries:
        path = rel + b"/" + entry.name if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _walk(root, path, inherited or _ignored_reason(entry.name, True), out)
            continue
        reason = inherited or _ignored_reason(entry.name, False)
        if stat.S_ISLNK(st.st_mode):
            reason = "symlink_not_followed"
        elif not stat.S_ISREG(st.st_mode):
            reason = "not_a_regular_file"
        mtime = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
        out.append(CardFile(path, display_name(path), st.st_size, mtime, reason))


def _fingerprint(files: list[CardFile]) -> str:
    h = hashlib.sha256()
    for f in files:
        stamp = int(f.mtime.timestamp() * 1e6) if f.mtime else 0
        h.update(f.raw_path + b"\0" + str(f.size_bytes).encode() + b"\0" + str(stamp).encode() + b"\n")
    return h.hexdigest()


def _recorder_hint(files: list[CardFile]) -> str | None:
    names = {f.name.upper() for f in files}
    if "CONFIG.TXT" in names:
        return "audiomoth"
    if any("_SUMMARY" in n and n.endswith(".TXT") for n in names):
        return "songmeter"
    return None


def _mount_info(root: Path) -> tuple[str | None, str | None, str | None]:
    """(filesystem UUID, label, filesystem type) when ``root`` is a mount point on Linux."""
    if not os.path.ismount(root):
        return None, None, None
    device = fstype = None
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            if left.split()[4] == str(root):
                fstype, device = right.split()[:2]
    return _by_link("/dev/disk/by-uuid", device), _by_link("/dev/disk/by-label", device), fstype


def _by_link(folder: str, device: str | None) -> str | None:
    if not device or not os.path.isdir(folder):
        return None
    for name in os.listdir(folder):
        if os.path.realpath(os.path.join(folder, name)) == os.path.realpath(device):
            return name
    return None


def card_identity(root: Path, explicit: str | None = None) -> tuple[str, str | None, str | None]:
    """(identity, label, filesystem type): ``--card-id``, else the filesystem UUID, else the path."""
    uuid, label, fstype = _mount_info(root)
    if explicit:
        return f"id:{explicit}", label, fstype
    if uuid:
        return f"fs-uuid:{uuid}", label, fstype
    return f"path:{root}", label, fstype


def take_inventory(root: os.PathLike[str] | str, card_id: str | None = None) -> Inventory:
    """List every file below ``root`` without following links and without writing anything."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise NotFoundError(f"card directory {root} does not exist or is not a directory.",
                            hint="Pass the mount point of the card (e.g. /media/$USER/AUDIOMOTH).", path=root)
    files: list[CardFile] = []
    _walk(os.fsencode(root), b"", None, files)
    identity, label, fstype = card_identity(root, card_id)
    try:
        capacity = os.statvfs(root).f_blocks * os.statvfs(root).f_frsize
    except OSError:
        capacity = None
    return Inventory(root, identity, label, fstype, capacity, _recorder_hint(files), tuple(files),
                     _fingerprint(files))


def _starts_like_audio(root: Path, f: CardFile) -> bool:
    """Whether a file's first bytes are an audio container's, whatever its name says."""
    try:
        with open(os.path.join(os.fsencode(root), f.raw_path), "rb") as fh:
            return sniff_format(fh.read(64)) != "unknown"
    except OSError:
        return False


def require_audio(inv: Inventory) -> None:
    """Refuse a card that holds no recording: an empty folder is most often a wrong mount point.

    A card holds audio when one of the files it would copy is named like audio
    (``AUDIO_SUFFIXES``, any case) or, failing that, starts like an audio container
    (``sniff_format``: a renamed recording still counts). Only this fallback reads file heads,
    so a normal card costs nothing extra.

    Raises
    ------
    NotFoundError
        (exit 66) naming the folder, what was expected, what was found and the next step.
    """
    if inv.audio_by_name or any(_starts_like_audio(inv.root, f) for f in inv.to_copy):
        return
    if not inv.files:
        found = "it is empty (no file at all)"
    else:
        names = ", ".join(f.display_path for f in inv.files[:3]) + (", …" if len(inv.files) > 3 else "")
        ignored = len(inv.files) - len(inv.to_copy)
        found = (f"it holds {len(inv.files)} file{'s' if len(inv.files) != 1 else ''} ({names}), none of them "
                 f"audio" + (f" ({ignored} ignored: system or AppleDouble files)" if ignored else ""))
    raise NotFoundError(
        f"no recordings in {inv.root}: expected recorder audio files (named {' '.join(AUDIO_SUFFIXES)} in any "
        f"case, or starting like one), but {found}. Nothing was written.",
        hint="Check that this is the card's mount point (e.g. /media/$USER/AUDIOMOTH) and that the card "
             "is mounted, then run again.")
