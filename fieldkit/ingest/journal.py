"""The staging journal: what was placed in the archive but may not be in the catalogue yet.

Before a batch is committed, each placed file is appended to
``archive/.staging/<session>/journal.jsonl`` and the journal is fsynced. After a crash between
placing a file and committing its row, recovery finds the file through the journal, re-hashes
it, and adopts it (or leaves it and reports it when the hash does not match).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JournalEntry", "Journal", "read_journal"]


@dataclass(frozen=True)
class JournalEntry:
    session_id: int
    raw_path: bytes
    sha256: str
    size_bytes: int
    archive_path: str  # relative to the archive root

    def to_line(self) -> str:
        return json.dumps({"session": self.session_id, "raw": base64.b64encode(self.raw_path).decode(),
                           "sha256": self.sha256, "size": self.size_bytes, "path": self.archive_path}) + "\n"

    @classmethod
    def from_line(cls, line: str) -> JournalEntry:
        d = json.loads(line)
        return cls(int(d["session"]), base64.b64decode(d["raw"]), d["sha256"], int(d["size"]), d["path"])


class Journal:
    def __init__(self, folder: Path, session_id: int, *, do_fsync: bool = True) -> None:
        self.path = folder / "journal.jsonl"
        self.session_id = session_id
        self.do_fsync = do_fsync
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, entries: list[JournalEntry]) -> None:
        if not entries:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.writelines(e.to_line() for e in entries)
            fh.flush()
            if self.do_fsync:
                os.fsync(fh.fileno())


def read_journal(path: Path) -> list[JournalEntry]:
    """Entries of a journal; a torn last line (crash mid-append) is ignored."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(JournalEntry.from_line(line))
        except (ValueError, KeyError):
            continue
    return entries
