"""Layer 3: creating and opening a workspace (settings + archive + catalogue)."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from fieldkit.catalogue.listing import Runner
from fieldkit.catalogue.revisions import head_revision
from fieldkit.catalogue.sqlite_reader import open_reader, sqlite_database, stamped_revision
from fieldkit.config.settings import (
    CONFIG_FILENAME,
    LoadedSettings,
    Settings,
    WorkspacePaths,
    default_config_toml,
    find_workspace,
    load_settings,
)
from fieldkit.errors import MigrationError, WorkspaceExistsError

if TYPE_CHECKING:
    from fieldkit.catalogue.engine import Catalogue
    from fieldkit.io.storage import Root

__all__ = ["Roots", "Workspace", "init_workspace", "open_workspace"]


@dataclass(frozen=True)
class Roots:
    """The workspace's storage roots, each a local folder or a URL (:class:`fieldkit.io.storage.Root`)."""

    archive: Root
    stores: Root
    exports: Root


@dataclass
class Workspace:
    """An opened workspace: merged settings, absolute paths and the catalogue handle."""

    loaded: LoadedSettings
    _catalogue: Catalogue | None = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        return self.loaded.workspace

    @property
    def paths(self) -> WorkspacePaths:
        return self.loaded.paths

    @property
    def settings(self):
        return self.loaded.settings

    @functools.cached_property
    def roots(self) -> Roots:
        """The archive, stores and exports roots, with the ``[storage]`` options for URL roots."""
        from fieldkit.io.storage import open_root

        storage = self.settings.storage
        make = functools.partial(open_root, base=self.root, options=storage.options, block_bytes=storage.block_bytes)
        return Roots(make(self.settings.archive_root), make(self.settings.stores_root),
                     make(self.settings.exports_root))

    @functools.cached_property
    def catalogue(self) -> Catalogue:
        # SQLAlchemy is imported here, on first use, not by every command that opens a workspace.
        from fieldkit.catalogue.engine import Catalogue

        return self._catalogue or Catalogue(self.paths.catalogue_url)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Runner]:
        """Read-only SQL on the catalogue for the listings of :mod:`fieldkit.catalogue.listing`:
        straight through ``sqlite3`` on an SQLite catalogue (no SQLAlchemy import), else through a
        catalogue session."""
        database = None if self._catalogue is not None else sqlite_database(self.paths.catalogue_url)
        if database is not None:
            with open_reader(database) as run:
                yield run
            return
        from fieldkit.catalogue.queries import runner

        with self.catalogue.read() as session:
            yield runner(session)

    def relative(self, path: Path) -> str:
        """``path`` relative to the workspace root (POSIX separators) when inside it."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def require_current_schema(self) -> None:
        # The revision stamp only, without Alembic: drift is 'fieldkit db check's business.
        database = None if self._catalogue is not None else sqlite_database(self.paths.catalogue_url)
        if database is not None:
            current = stamped_revision(database)
        else:
            from fieldkit.catalogue.revisions import current_revision

            current = current_revision(self.catalogue.engine)
        head = head_revision()
        if current != head:
            raise MigrationError(
                f"the catalogue of {self.root} is at schema revision {current or '(empty)'}, "
                f"this fieldkit needs {head}.",
                hint="Run 'fieldkit db upgrade' (a backup is made first).",
            )

    def close(self) -> None:
        if "catalogue" in self.__dict__:
            self.catalogue.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def init_workspace(directory: os.PathLike[str] | str, *, catalogue_url: str | None = None,
                   roots: Mapping[str, str] | None = None, storage_options: Mapping[str, Any] | None = None) -> Workspace:
    """Create a workspace: ``fieldkit.toml``, the archive, stores and exports, a migrated catalogue,
    and ``workflows/`` holding copies of the shipped workflow files to edit.

    Parameters
    ----------
    directory : path
        The workspace folder (created if missing).
    catalogue_url : str, optional
        SQLAlchemy URL of the catalogue (default: SQLite in the workspace).
    roots : mapping, optional
        ``archive_root``/``stores_root``/``exports_root`` values: folders or URLs (``s3://...``).
    storage_options : mapping, optional
        ``[storage] options`` (fsspec options of every URL root; ``${VAR}`` references kept as such).

    Every URL root is reached once (listed); when that fails, or anything else does, nothing this
    call made is left behind: the folder (if it made it), or else its ``fieldkit.toml`` and the
    folders it created.
    """
    root = Path(directory).expanduser().resolve()
    made = [p for p in (root, *root.parents) if not p.exists()]
    before = set(root.iterdir()) if root.is_dir() else set()
    try:
        return _init_workspace(root, catalogue_url, roots or {}, storage_options or {})
    except BaseException as exc:
        if isinstance(exc, WorkspaceExistsError):
            raise
        import shutil

        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
        elif root.is_dir():
            for leftover in set(root.iterdir()) - before:
                shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
        raise


def _config_text(catalogue_url: str | None, roots: Mapping[str, str], storage_options: Mapping[str, Any]) -> str:
    import json

    text = default_config_toml()
    if catalogue_url:
        text = text.replace('catalogue_url = "sqlite:///catalogue.sqlite"', f'catalogue_url = "{catalogue_url}"')
    for key, value in roots.items():
        default = f'{key} = "{getattr(Settings(), key)}"'
        text = text.replace(default, f"{key} = {json.dumps(str(value))}")
    if storage_options:
        # JSON scalars and objects are TOML basic strings, numbers, booleans and inline tables
        def inline(options: Mapping[str, Any]) -> str:
            return "{ " + ", ".join(f"{json.dumps(k)} = {inline(v) if isinstance(v, Mapping) else json.dumps(v)}"
                                    for k, v in options.items()) + " }"

        text += f"\n[storage]\noptions = {inline(storage_options)}\n"
    return text


def _init_workspace(root: Path, catalogue_url: str | None, roots: Mapping[str, str],
                    storage_options: Mapping[str, Any]) -> Workspace:
    # Alembic (~0.3 s) and the workflow models (pydantic, YAML: ~25 ms) are imported here, where a
    # workspace is created, not by every command that opens one.
    from fieldkit.catalogue import migrate
    from fieldkit.config.workflow_files import WORKSPACE_WORKFLOWS_DIR, copy_bundled_workflows

    config = root / CONFIG_FILENAME
    if config.exists():
        raise WorkspaceExistsError(
            f"{root} is already a fieldkit workspace ({CONFIG_FILENAME} exists).",
            hint="Use it as it is, or choose another directory.",
        )
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(_config_text(catalogue_url, roots, storage_options), encoding="utf-8")
    ws = Workspace(load_settings(root, env={}))
    for storage in (ws.roots.archive, ws.roots.stores, ws.roots.exports):
        if storage.is_local:
            storage.local_path.mkdir(parents=True, exist_ok=True)
        else:
            storage.check_reachable()  # a wrong endpoint, bucket or credential fails here, not mid-ingest
    if ws.roots.archive.is_local:
        ws.paths.staging.mkdir(parents=True, exist_ok=True)
        ws.paths.manifests.mkdir(parents=True, exist_ok=True)
    copy_bundled_workflows(root / WORKSPACE_WORKFLOWS_DIR)
    migrate.upgrade(ws.paths.catalogue_url)
    return ws


def open_workspace(
    explicit: os.PathLike[str] | str | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    check_schema: bool = True,
) -> Workspace:
    """Find and open the workspace (``--workspace``, ``$FIELDKIT_WORKSPACE``, or upward search)."""
    ws = Workspace(load_settings(find_workspace(explicit), flags))
    if check_schema:
        ws.require_current_schema()
    return ws
