"""H2: an SQLite catalogue is checked before fieldkit first writes to it.

``PRAGMA quick_check`` (every page and index entry well formed; O(N), without the index-content
cross-check of ``integrity_check``) and ``PRAGMA foreign_key_check`` run once per process, just
before the first writer transaction (:meth:`fieldkit.catalogue.engine.Catalogue.write`). A
damaged catalogue is refused with :class:`CatalogueDamagedError`: nothing is written, the
message lists the automatic backups (``catalogue.sqlite.bak-REVISION-STAMP``, made by ``fieldkit
db upgrade`` before each migration) and the steps to restore one. Readers are not checked:
queries that do not touch a damaged page still work.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from fieldkit.errors import CatalogueDamagedError

__all__ = ["check_before_writing", "backups_of", "restore_steps"]

#: quick_check stops after this many problems; the message shows the first few.
MAX_PROBLEMS = 20
SHOWN = 3


def backups_of(database: Path) -> list[Path]:
    """The automatic backups of ``database`` next to it, newest first (their names sort by time)."""
    found = [p for p in database.parent.glob(f"{database.name}.bak-*") if ".partial-" not in p.name]
    return sorted(found, key=lambda p: p.name.rsplit("-", 1)[-1], reverse=True)


#: When neither a backup nor ``.recover`` will do: the archive rebuilds the ingest tables (docs/reliability.md).
LAST_RESORT = (" Last resort: 'fieldkit catalog rebuild --out rebuilt.sqlite' rebuilds recordings, sessions and "
               "origins from the archive, its manifests and ledger into a new file (not processing runs, "
               "annotations or datasets).")


def restore_steps(database: Path) -> str:
    """What to do with a damaged catalogue: the backups to restore from, or how to recover."""
    backups = backups_of(database)
    aside = f"mv {database} {database}.damaged (and its -wal and -shm files, if any)"
    if backups:
        listed = ", ".join(str(b) for b in backups[:SHOWN]) + (f" and {len(backups) - SHOWN} older"
                                                               if len(backups) > SHOWN else "")
        return (f"Automatic backups: {listed}. To restore the newest: stop every fieldkit command; {aside}; "
                f"cp {backups[0]} {database}; run 'fieldkit db upgrade'; then ingest again the cards ingested "
                "since the backup (archived files are recognised by their hash). The archive and its manifests "
                f"are untouched.{LAST_RESORT}")
    return (f"No automatic backup exists (one is made by 'fieldkit db upgrade' before each migration). Stop every "
            f"fieldkit command; {aside}; recover what is readable with 'sqlite3 {database}.damaged .recover | "
            f"sqlite3 {database}', then run 'fieldkit db check'. The archive and its manifests are untouched."
            f"{LAST_RESORT}")


def check_before_writing(dbapi_connection: sqlite3.Connection, url: str) -> None:
    """Refuse to write to a damaged SQLite catalogue.

    Parameters
    ----------
    dbapi_connection : sqlite3.Connection
        An open connection to the catalogue, outside any transaction.
    url : str
        The catalogue's SQLAlchemy URL (its file is named in the message).

    Raises
    ------
    CatalogueDamagedError
        ``quick_check`` or ``foreign_key_check`` found a problem, or reading the pages failed.
    """
    database = Path(make_url(url).database or "catalogue.sqlite")
    try:
        problems = [row[0] for row in dbapi_connection.execute(f"PRAGMA quick_check({MAX_PROBLEMS})")]
        if problems == ["ok"]:
            problems = [f"table {table} row {rowid} points to a missing {parent} row"
                        for table, rowid, parent, _ in dbapi_connection.execute("PRAGMA foreign_key_check")]
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed" while checking
        problems = [str(exc)]
    if not problems:
        return
    shown = "; ".join(problems[:SHOWN]) + (f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else "")
    raise CatalogueDamagedError(
        f"the catalogue {database} is damaged ({shown}); refusing to write to it, nothing was written.",
        hint=restore_steps(database), path=database)
