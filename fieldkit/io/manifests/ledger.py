"""The archive's ledger: fieldkit's own JSON records beside the MHL manifests (``archive/mhl/ledger``).

An MHL manifest says which bytes the archive holds; it cannot say which card they came from, the
raw bytes of their names on that card, the session's state or the time zone and deployment given
on the command line. Each sealed ingest session (and each sighting, and each verification) adds
one JSON record here saying exactly that, so that ``fieldkit catalog rebuild`` can rebuild the
catalogue from the archive alone.

Like the manifests, a record is written once and never overwritten: to a temporary file, fsynced,
hard-linked to its final name (``os.link`` fails rather than replace) and the folder fsynced. A
session sealed twice (stopped, then resumed) has two records; the newest ``sealed_at`` wins.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from fieldkit.errors import IngestError, ObjectExistsError, ValidationError
from fieldkit.io.storage import Root

__all__ = ["LEDGER_DIRNAME", "read_ledger", "write_record"]

LEDGER_DIRNAME = "ledger"
_NAME = re.compile(r"(session|verify)-\d{8}T\d{12}Z-[0-9a-f]{8}\.json")


def write_record(manifests: str | os.PathLike[str] | Root, kind: str, document: dict[str, Any], stamp: str) -> Path | str:
    """Write one ledger record, durably and once; return its path.

    Parameters
    ----------
    manifests : path or Root
        The manifest folder (``archive/mhl``, or the :class:`~fieldkit.io.storage.Root` of an
        object-storage archive's ``mhl/``); the record goes into its ``ledger`` sub-folder.
    kind : {"session", "verify"}
    document : dict
        A JSON-ready document (``kind`` is added to it).
    stamp : str
        ``YYYYMMDDTHHMMSSffffffZ``: the record's time, so names sort in time order.

    Raises
    ------
    IngestError
        If the file system cannot hard-link or the name exists (nothing is ever replaced).
    """
    name = f"{kind}-{stamp}-{secrets.token_hex(4)}.json"
    data = json.dumps({"kind": kind, "version": 1, **document}, indent=1, sort_keys=True).encode() + b"\n"
    root = manifests if isinstance(manifests, Root) else Root(os.fspath(manifests))
    rel = f"{LEDGER_DIRNAME}/{name}"
    try:  # create-only: a temporary file hard-linked to its name (local), If-None-Match (S3)
        root.put_bytes(rel, data)
    except (ObjectExistsError, PermissionError) as exc:  # a name taken; a volume without hard links
        raise IngestError(f"cannot create ledger record {root.uri(rel)} ({exc}); records are never overwritten.",
                          hint="The archive filesystem must support hard links.") from exc
    return Path(root.uri(rel)) if root.is_local else root.uri(rel)


def read_ledger(manifests: str | os.PathLike[str]) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Every ledger record, in name (time) order, and a problem line for each unreadable one.

    Returns
    -------
    records : list of (path, document)
    problems : list of str
        One line per record that is not valid JSON of a known kind (it is skipped, never guessed).
    """
    folder = Path(manifests) / LEDGER_DIRNAME
    if not folder.is_dir():
        return [], []
    records, problems = [], []
    for path in sorted(p for p in folder.iterdir() if _NAME.fullmatch(p.name)):
        try:
            doc = json.loads(path.read_bytes())
            if not isinstance(doc, dict) or doc.get("kind") not in ("session", "verify"):
                raise ValidationError("not a fieldkit ledger record")
        except (ValueError, ValidationError) as exc:
            problems.append(f"{path}: unreadable ledger record ({exc}); skipped.")
            continue
        records.append((path, doc))
    return records, problems
