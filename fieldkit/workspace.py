"""Layer 3: creating and opening a workspace (settings + archive + catalogue)."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
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
from fieldkit.errors import InputUnavailableError, MigrationError, WorkspaceExistsError

if TYPE_CHECKING:
    from fieldkit.catalogue.engine import Catalogue
    from fieldkit.catalogue.team import SharedCatalogue
    from fieldkit.io.storage import Root

__all__ = ["OutputFolder", "Roots", "Workspace", "init_workspace", "open_workspace"]


@dataclass(frozen=True)
class Roots:
    """The workspace's storage roots, each a local folder or a URL (:class:`fieldkit.io.storage.Root`)."""

    archive: Root
    stores: Root
    exports: Root


@dataclass(frozen=True)
class OutputFolder:
    """A local folder to write a service's default outputs into (:meth:`Workspace.default_output`)."""

    folder: Path
    root: Root | None  # the URL exports root to upload to, None when the folder is the destination
    sub: str

    def publish(self, result: dict[str, Any]) -> dict[str, Any]:
        """Upload the folder's files (replacing: these are views made again on each run) and
        return ``result`` with every path inside the folder replaced by its object's URL."""
        if self.root is None:
            return result
        names = sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())
        for name in names:
            self.root.replace_file(f"{self.sub}/{name}", self.folder / name)

        def where(value: Any) -> Any:
            if isinstance(value, str | Path) and Path(value).is_relative_to(self.folder):
                return self.root.uri(f"{self.sub}/{Path(value).relative_to(self.folder).as_posix()}")
            return value

        return {key: where(value) for key, value in result.items()}


@dataclass
class Workspace:
    """An opened workspace: merged settings, absolute paths and the catalogue handle."""

    loaded: LoadedSettings
    _catalogue: Catalogue | None = field(default=None, repr=False)
    #: What ``init`` did to a server catalogue (created, joined or migrated it); None otherwise.
    shared: SharedCatalogue | None = field(default=None, repr=False)

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

    def store_root(self, store_path: str) -> Root:
        """The :class:`~fieldkit.io.storage.Root` of a store as the catalogue names it.

        A URL is taken as it is; a relative path lies under the workspace while the stores root
        is a local folder (as every local run records it), else it names a store of the stores
        root by its folder name (stores sit side by side at the top of the stores root).
        """
        from fieldkit.io.storage import is_url, open_root

        storage = self.settings.storage
        if is_url(store_path):
            return open_root(store_path, self.root, storage.options, storage.block_bytes)
        if self.roots.stores.is_local:
            return open_root(str(self.root / store_path), self.root)
        return self.roots.stores.child(PurePosixPath(store_path).name)

    def store_location(self, store_path: str) -> Any:
        """What ``fieldkit.store`` opens for a catalogued store: a local folder, exactly as before
        (``<workspace>/<store_path>``), or a read-only zarr store on a URL stores root."""
        from fieldkit.io.storage import is_url

        if not is_url(store_path) and self.roots.stores.is_local:
            return self.root / store_path
        root = self.store_root(store_path)
        # one request through the adapter first: an unreachable endpoint, a missing bucket or store
        # is named here (exit 75/78/66), not deep inside zarr as a library's traceback
        if not root.is_local and not root.exists("zarr.json"):
            raise InputUnavailableError(f"no store at {root.uri()} (the catalogue's {store_path}).", path=root.uri(),
                                        hint="Check stores_root in fieldkit.toml, or process the run again.")
        return root.zarr_location()

    @contextlib.contextmanager
    def default_output(self, sub: str, given: os.PathLike[str] | str | None = None) -> Iterator[OutputFolder]:
        """Where a service writes what defaults to ``<exports root>/<sub>`` (previews, pictures,
        melodies, the report): see :class:`OutputFolder`. A ``given`` (user's ``--out``) or a
        local exports root: the folder as before, nothing uploaded. A URL exports root: a local
        temporary folder whose files :meth:`OutputFolder.publish` uploads to ``<root>/<sub>/``."""
        exports = self.roots.exports
        if given is not None or exports.is_local:
            yield OutputFolder(exports.local_path / sub if exports.is_local else Path(given or "."), None, sub)
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix=f"fieldkit-{sub.replace('/', '-')}-") as tmp:
            folder = Path(tmp) / sub
            folder.mkdir(parents=True)
            yield OutputFolder(folder, exports, sub)

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

    A server catalogue (``catalogue_url`` of PostgreSQL) that already holds a fieldkit schema is
    *joined*, not re-created: several workspaces share it (docs/team.md); ``ws.shared`` says what
    was done.

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
        ws = _init_workspace(root, catalogue_url, roots or {}, storage_options or {})
        _make_durable(ws, root, made, before)
        return ws
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


def _make_durable(ws: Workspace, root: Path, made: list[Path], before: set[Path]) -> None:
    """fsync what ``init`` created: every new file and folder of the workspace, then the folders
    holding their names up to the first that existed before (docs/notes/durability.md: a name
    is durable only once its folder is synced). Without it a power cut soon after ``init`` can
    leave an empty ``fieldkit.toml`` or no ``archive/`` (the write-back cache never reached
    the disk), which the next command would take for a broken workspace."""
    from fieldkit.io.durable import fsync_dir, fsync_new_tree

    if made:  # the workspace folder is new (and maybe folders above it): all of it
        fsync_new_tree(made[-1], up_to=made[-1].parent)
    else:
        for entry in sorted(set(root.iterdir()) - before):
            fsync_new_tree(entry, up_to=root)
    for storage in (ws.roots.archive, ws.roots.stores, ws.roots.exports):
        path = storage.local_path if storage.is_local else None
        if path is not None and not path.is_relative_to(root):  # a root elsewhere (a shared archive):
            fsync_dir(path)  # its own folder and name only, never an existing archive's files
            fsync_dir(path.parent)


def toml_inline_table(options: Mapping[str, Any]) -> str:
    """``options`` as a TOML inline table (nested mappings as nested tables): JSON's strings,
    numbers and booleans are TOML's basic strings, numbers and booleans."""
    import json

    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_inline_table(v) if isinstance(v, Mapping) else json.dumps(v)}"
                            for k, v in options.items()) + " }"


def _config_text(catalogue_url: str | None, roots: Mapping[str, str], storage_options: Mapping[str, Any]) -> str:
    import json

    text = default_config_toml()
    if catalogue_url:
        text = text.replace('catalogue_url = "sqlite:///catalogue.sqlite"', f'catalogue_url = "{catalogue_url}"')
    for key, value in roots.items():
        default = f'{key} = "{getattr(Settings(), key)}"'
        text = text.replace(default, f"{key} = {json.dumps(str(value))}")
    if storage_options:
        text += f"\n[storage]\noptions = {toml_inline_table(storage_options)}\n"
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
    shared = None
    if catalogue_url and not catalogue_url.startswith("sqlite"):
        # A server catalogue may be shared: join it (migrating only when it is behind) before
        # anything is written here, so a catalogue that cannot be joined leaves no half workspace.
        from fieldkit.catalogue.team import prepare_shared_catalogue

        shared = prepare_shared_catalogue(catalogue_url)
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
    ws.shared = shared
    if shared is None:
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
