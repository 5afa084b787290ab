"""The catalogue's schema revision without Alembic: the check every command makes on opening.

Importing Alembic and comparing the live schema with the models (:func:`.migrate.status`) costs
about half a second; a command that only needs to know "is the schema current?" reads the
``alembic_version`` row and the ``revision`` lines of the migration scripts instead. Alembic is
imported only to migrate (:mod:`.migrate`); a test keeps both answers equal.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.errors import MigrationError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["VERSIONS_DIR", "current_revision", "head_revision"]

#: The migration scripts (``migrations/versions``; :data:`.migrate.MIGRATIONS_DIR` / ``versions``).
VERSIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"


def head_revision(versions_dir: Path = VERSIONS_DIR) -> str:
    """The newest revision: the one no other script names as its ``down_revision``.

    Raises
    ------
    MigrationError
        When the scripts have no head or more than one (as :func:`.migrate.head`).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions_dir.glob("*.py"):
        found = _assignments(script)
        if "revision" in found:
            revisions.add(found["revision"])
            down = found.get("down_revision")
            parents.update((down,) if isinstance(down, str) else (down or ()))
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise MigrationError(f"the migrations have {len(heads)} heads ({heads}); expected one.")
    return heads[0]


def _assignments(script: Path) -> dict[str, object]:
    """Module-level ``revision`` / ``down_revision`` literals of one migration script."""
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
            found[target.id] = ast.literal_eval(node.value)
    return found


def current_revision(engine: sa.Engine) -> str | None:
    """The revision stamped in the catalogue's ``alembic_version`` table; None when empty.

    Several stamped heads (a branched history) come back joined by ``", "``: never the head.
    On SQLite, opening a workspace reads the same row through ``sqlite3``
    (:func:`.sqlite_reader.stamped_revision`); a test keeps both answers equal.
    """
    import sqlalchemy as sa

    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        stamped = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return ", ".join(sorted(stamped)) or None
