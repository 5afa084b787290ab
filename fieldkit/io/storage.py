"""The one storage adapter: a root that is a local folder or an fsspec URL.

Every root of a workspace (``archive_root``, ``stores_root``, ``exports_root``) may be a plain
path, ``file://``, ``s3://bucket/prefix``, ``gs://``, ``az://`` or any URL fsspec knows. A
:class:`Root` names one, and offers what fieldkit needs of storage and nothing more:

- ranged reads through a seekable file object (:meth:`Root.open_read`): soundfile and the RIFF
  walker read a 2 h recording block by block, never the whole object into memory;
- a **create-only** write (:meth:`Root.put_new`) that hashes while it streams and cannot
  overwrite: ``If-None-Match: *`` on S3 (checked on the single PUT or the multipart COMPLETE), an
  exclusive ``O_EXCL`` create on a local disk;
- a re-read hash (:meth:`Root.sha256`) for verification after the write;
- a Zarr store for a key prefix (:meth:`Root.zarr_store`), handed to ``fieldkit.store`` so the
  store layer never learns where it writes.

Two transports for S3, chosen once per set of options (:mod:`fieldkit.io.s3direct`): obstore
(Rust's ``object_store``) when the options are plain and the keys static - every read, listing,
plain write, zarr store (zarr's ``ObjectStore``) and create-only write of up to one block; and
fsspec + s3fs otherwise, and for a longer create-only write: s3fs implements ``If-None-Match`` on
the multipart COMPLETE (``mode="xb"``) and botocore's whole credential chain (``~/.aws``
profiles, instance roles). Measured, obstore costs a run a fifth of s3fs's client CPU
(s3direct's text). Other URLs (``gs://``, ``az://``, ``memory://``) go through fsspec.

A Root pickles to Dask workers with its *raw* options: ``${VAR}`` references are resolved on
each machine when its client is first made (:mod:`fieldkit.io.storage_clients`), so a secret
kept in the environment never travels in a task.

Errors are translated once (:mod:`fieldkit.io.storage_errors`): an unreachable endpoint is temporary
(exit 75), a missing bucket, missing credentials or a denied access are configuration (exit 78);
every message names the URL with secrets redacted, what failed and what to set.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fieldkit.config.settings import redact_url
from fieldkit.errors import ConfigError, ObjectExistsError
from fieldkit.io.durable import create_once
from fieldkit.io.s3direct import DirectRoot
from fieldkit.io.storage_clients import direct_kwargs, direct_store, filesystem
from fieldkit.io.storage_errors import storage_error

__all__ = [
    "Root",
    "open_root",
    "is_url",
    "DEFAULT_BLOCK_BYTES",
]

DEFAULT_BLOCK_BYTES = 8 * 1024 * 1024
#: Uploads in flight when a finished folder is sent to an object store (Root.put_tree).
PUT_TREE_WORKERS = 8
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(value: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` (``file://`` included), False for a plain path."""
    return isinstance(value, str) and bool(_URL.match(value))


@dataclass(frozen=True)
class Root:
    """A storage root: a local folder or an fsspec URL, plus its (unresolved) storage options.

    ``url`` is what the catalogue, lineage and messages may show: an absolute local path, or the
    URL without credentials. ``options`` may hold ``${VAR}`` references; they are resolved when
    :attr:`fs` is first used on a machine, never stored resolved on the object.
    """

    url: str
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    block_bytes: int = field(default=DEFAULT_BLOCK_BYTES, compare=False)

    # ------------------------------------------------------------------ naming
    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0] if is_url(self.url) else "file"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def local_path(self) -> Path:
        """The folder of a local root (``file://`` stripped); a URL root has none."""
        if not self.is_local:
            raise ConfigError(f"{self.url} is not a local folder.", hint="Use the Root's methods to read and write it.")
        return Path(self.url[len("file://"):] if self.url.startswith("file://") else self.url)

    def uri(self, rel: str = "") -> str:
        """The full name of ``rel`` under this root, as shown to users and written to lineage."""
        rel = rel.strip("/")
        if self.is_local:
            return str(self.local_path / rel) if rel else str(self.local_path)
        return f"{self.url.rstrip('/')}/{rel}" if rel else self.url

    def child(self, rel: str) -> Root:
        """The root of a sub-folder (same options)."""
        return Root(self.uri(rel), self.options, self.block_bytes)

    def _path(self, rel: str = "") -> str:
        """``rel`` as the filesystem names it (bucket/prefix/rel for object stores)."""
        if self.is_local:
            return self.uri(rel)
        return self.uri(rel).split("://", 1)[1]

    # ------------------------------------------------------------------ filesystem
    @property
    def fs(self) -> Any:
        """The fsspec filesystem (made once per protocol and options in this process)."""
        return filesystem(self.protocol, self.options)

    @property
    def _direct(self) -> DirectRoot | None:
        """This root through obstore when S3 is reached that way (:mod:`fieldkit.io.s3direct`),
        else None: s3fs, or a local or another URL root."""
        if self.protocol not in ("s3", "s3a"):
            return None
        if direct_kwargs(self.options) is None:
            return None
        bucket, _, prefix = self._path("").partition("/")
        return DirectRoot(functools.partial(direct_store, self.options, bucket), prefix.strip("/"), self.block_bytes)

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is an object, or a folder (a prefix) holding one."""
        with storage_error(self.uri(rel)):
            if (direct := self._direct) is not None:
                return direct.exists(rel)
            return bool(self.fs.exists(self._path(rel)))

    def size(self, rel: str) -> int:
        with storage_error(self.uri(rel)):
            if (direct := self._direct) is not None:
                return direct.size(rel)
            return int(self.fs.size(self._path(rel)))

    def list(self, rel: str = "", *, recursive: bool = False) -> list[str]:
        """Names under ``rel``, relative to this root, sorted; empty when ``rel`` does not exist."""
        base = self._path(rel).rstrip("/")
        with storage_error(self.uri(rel)):
            if (direct := self._direct) is not None:
                return direct.list(rel, recursive=recursive)
            if not self.fs.exists(base):
                return []
            names = self.fs.find(base) if recursive else self.fs.ls(base, detail=False)
        prefix = self._path("").rstrip("/") + "/"
        return sorted(str(n)[len(prefix):] if str(n).startswith(prefix) else str(n) for n in names)

    def open_read(self, rel: str, *, size: int | None = None) -> IO[bytes]:
        """A seekable binary file that reads in ranged blocks of :attr:`block_bytes`.

        ``size``, when the caller knows the object's bytes (the catalogue does for an archived
        file), saves the HEAD that an object store is otherwise asked first: one request per
        recording a task reads (60 of a 1 h run's 346 on the S3 test server, measured).
        """
        with storage_error(self.uri(rel)):
            if self.is_local:
                return open(self._path(rel), "rb")  # noqa: SIM115 - the caller closes it
            if (direct := self._direct) is not None:
                return direct.open_read(rel, size=size)
            if size is None:
                return self.fs.open(self._path(rel), "rb", block_size=self.block_bytes, cache_type="readahead")
            handle = self.fs.open(self._path(rel), "rb", block_size=self.block_bytes, cache_type="readahead",
                                  size=size)
            # nor the HEAD s3fs makes for an ETag check between ranged reads: archived objects never change
            handle.details = {"name": self._path(rel), "size": size}
            return handle

    def read_bytes(self, rel: str) -> bytes:
        with self.open_read(rel) as handle:
            return handle.read()

    def sha256(self, rel: str, *, expected_size: int | None = None) -> tuple[str, int]:
        """Re-read ``rel`` from storage and hash it: (hex digest, bytes).

        An object store is read without first asking for the object's size (one request fewer).
        Through obstore: one streamed GET of the whole object, whose answer carries its length.
        Through s3fs, with ``expected_size`` (a verification after a write): ranged reads that ask
        for one byte more than expected, so a longer object reads back longer (at most that one
        byte) and a shorter one shorter. Either way the result equals (its hash,
        ``expected_size``) only when the object holds exactly that many bytes.
        """
        if (direct := self._direct) is not None:
            with storage_error(self.uri(rel)):
                return direct.sha256(rel)
        if expected_size and not self.is_local:
            return self._sha256_expecting(rel, expected_size)
        digest = hashlib.sha256()
        size = 0
        with self.open_read(rel) as handle:
            while block := handle.read(self.block_bytes):
                digest.update(block)
                size += len(block)
        return digest.hexdigest(), size

    def _sha256_expecting(self, rel: str, expected_size: int) -> tuple[str, int]:
        digest = hashlib.sha256()
        size, limit = 0, expected_size + 1
        with storage_error(self.uri(rel)):
            # no read-ahead cache: each read is one ranged GET, clipped by the server at the end
            handle = self.fs.open(self._path(rel), "rb", block_size=self.block_bytes, cache_type="none", size=limit)
            # s3fs looks the object up (HEAD) for an ETag check between ranged reads; one
            # pass of reads that all must hash right needs no such check
            handle.details = {"name": self._path(rel), "size": limit}
            try:
                while size < limit:
                    want = min(self.block_bytes, limit - size)
                    try:
                        block = handle.read(want)
                    except OSError as exc:  # a range starting past the end: the object is shorter
                        if "InvalidRange" in str(exc) or "not satisfiable" in str(exc).lower():
                            break
                        raise
                    digest.update(block)
                    size += len(block)
                    if len(block) < want:  # the server clipped the range: the object ends here
                        break
            finally:
                handle.close()
        return digest.hexdigest(), size

    def put_new(self, rel: str, blocks: Iterable[bytes]) -> tuple[str, int]:
        """Write ``blocks`` to ``rel``, only if ``rel`` does not exist; return (sha256, bytes).

        Hashes while it streams. On S3 the condition is ``If-None-Match: *``, checked by the
        server on the PUT (small objects) or on the multipart COMPLETE (the upload is aborted if
        the name was taken meanwhile), so two writers cannot both win. On a local disk the file
        is created with ``O_EXCL``, fsynced, and its directory fsynced. A taken name raises
        :class:`ObjectExistsError`; nothing is replaced.
        """
        digest = hashlib.sha256()
        size = 0

        def hashed() -> Iterator[bytes]:
            nonlocal size
            for block in blocks:
                digest.update(block)
                size += len(block)
                yield block

        uri = self.uri(rel)
        if self.is_local:
            create_once(Path(self._path(rel)), hashed())
            return digest.hexdigest(), size
        with storage_error(uri, creating=True):
            try:
                hashed_iter = hashed()
                if (direct := self._direct) is not None:
                    # up to one block in memory: a single create-only PUT through obstore; a
                    # longer object goes on as s3fs's conditional multipart upload
                    held, held_bytes = [], 0
                    for block in hashed_iter:
                        held.append(block)
                        held_bytes += len(block)
                        if held_bytes > self.block_bytes:
                            break
                    else:
                        direct.create(rel, b"".join(held))
                        return digest.hexdigest(), size
                    hashed_iter = itertools.chain(held, hashed_iter)
                first = next((block for block in hashed_iter if block), None)
                if first is None:
                    # an empty object: s3fs's "xb" commit of 0 bytes is an unconditional touch,
                    # so the empty PUT carries the condition itself
                    self.fs.pipe_file(self._path(rel), b"", mode="create")
                else:
                    out = self.fs.open(self._path(rel), "xb", block_size=max(self.block_bytes, 5 * 2**20))
                    try:
                        out.write(first)
                        for block in hashed_iter:
                            out.write(block)
                    except BaseException:
                        # not close(): fsspec's close commits what was buffered, which would store
                        # a truncated object when the source fails mid-stream; discard aborts
                        out.discard()
                        out.closed = True  # nor may its finaliser close (commit) it later
                        raise
                    out.close()
            except FileExistsError as exc:
                raise ObjectExistsError(
                    f"{uri} already exists: the archive is never overwritten.",
                    hint="Another ingest stored this name first; run the ingest again to resume.", path=uri,
                ) from exc
        return digest.hexdigest(), size

    def put_bytes(self, rel: str, data: bytes) -> str:
        """Create ``rel`` holding ``data`` (create-only, as :meth:`put_new`); return its sha256."""
        return self.put_new(rel, [data])[0]

    def replace_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel``, replacing it: only for *derived* files (the MHL chain file,
        rebuilt from the immutable manifests), never for the archive's content."""
        if self.is_local:
            raise ConfigError(f"{self.uri(rel)}: local roots replace files atomically themselves.")
        with storage_error(self.uri(rel)):
            if (direct := self._direct) is not None:
                direct.replace(rel, data)
                return
            self.fs.pipe_file(self._path(rel), data)

    def zarr_store(self, rel: str, *, read_only: bool = False) -> Any:
        """A zarr 3 store for the key prefix ``rel``: a LocalStore, an ObjectStore (S3 through
        obstore) or an FsspecStore."""
        from zarr.storage import FsspecStore, LocalStore

        if self.is_local:
            return LocalStore(self._path(rel), read_only=read_only)
        with storage_error(self.uri(rel)):
            if (direct := self._direct) is not None:
                return direct.zarr_store(rel, read_only=read_only)
            fs = filesystem(self.protocol, self.options, asynchronous=True)
            return FsspecStore(fs, path=self._path(rel), read_only=read_only)

    def zarr_location(self, rel: str = "") -> Any:
        """What ``fieldkit.store`` opens to read the store at ``rel``: the folder of a local root
        (the store layer's direct local readers stay in use), else a read-only zarr store."""
        if self.is_local:
            return Path(self._path(rel))
        return self.zarr_store(rel, read_only=True)

    def replace_file(self, rel: str, source: Path) -> None:
        """Write the local file ``source`` to ``rel``, replacing what is there: only for views made
        again on each run (previews, pictures, reports), never for the archive or an export."""
        if self.is_local:
            target = Path(self._path(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(Path(source).read_bytes())
            os.replace(partial, target)
            return
        with storage_error(self.uri(rel), creating=True):
            if (direct := self._direct) is not None:
                direct.replace_file(rel, source)
                return
            self.fs.put_file(str(source), self._path(rel))

    def put_tree(self, rel: str, folder: Path) -> dict[str, tuple[str, int]]:
        """Upload every file under the local ``folder`` to ``rel/...``, each create-only
        (:meth:`put_new`); return ``relative name -> (sha256, bytes)`` as hashed while sent.

        ``manifest.json`` at the top of ``folder``, if any, goes last: a reader that finds it
        finds every file it lists.
        """
        from concurrent.futures import ThreadPoolExecutor

        def send(name: str) -> tuple[str, int]:
            with open(folder / name, "rb") as handle:
                return self.put_new(f"{rel.strip('/')}/{name}" if rel.strip("/") else name,
                                    iter(lambda: handle.read(self.block_bytes), b""))

        names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        first = [n for n in names if n != "manifest.json"]
        # several requests in flight: an export of many small files is bound by round trips, not bytes
        workers = 1 if self.is_local else PUT_TREE_WORKERS
        with ThreadPoolExecutor(max_workers=workers) as pool:
            sent = dict(zip(first, pool.map(send, first)))
        sent.update({name: send(name) for name in names if name not in sent})
        return sent

    def warm(self) -> None:
        """Make this root's clients now, without a request (a worker's warm-up while the driver
        writes the store's template): the synchronous filesystem and zarr's asynchronous one, with
        their imports (~0.4 s) and S3 clients (~0.3 s of CPU for the first); obstore's store needs
        no warming (made in a millisecond, on first use). Best effort: a client that cannot be
        made fails later, in the task that needs it, with its own message."""
        if self.is_local:
            return
        with contextlib.suppress(Exception):
            if self._direct is not None:
                return
            fs = self.fs
            if hasattr(fs, "connect"):
                fs.connect()
            async_fs = filesystem(self.protocol, self.options, asynchronous=True)
            if hasattr(async_fs, "set_session"):
                from zarr.core.sync import sync

                sync(async_fs.set_session())

    def check_reachable(self) -> None:
        """Touch the root once (list it) so a wrong endpoint, bucket or credential fails early."""
        with storage_error(self.url):
            if (direct := self._direct) is not None:
                direct.check()
                return
            if not self.is_local:
                bucket = self._path("").split("/", 1)[0]
                self.fs.ls(bucket, detail=False)


def open_root(value: str | os.PathLike[str], base: Path, options: Mapping[str, Any] | None = None,
              block_bytes: int = DEFAULT_BLOCK_BYTES) -> Root:
    """The :class:`Root` of a setting: a URL as given, a relative path under ``base``."""
    text = os.fspath(value)
    if is_url(text):
        if text.startswith("file://"):
            return Root(str(Path(text[len("file://"):]).expanduser()), {}, block_bytes)
        if "@" in text.split("://", 1)[1].split("/", 1)[0]:
            raise ConfigError(
                f"storage root {redact_url(text)} carries credentials in the URL.",
                hint="Remove them; credentials come from the standard chain (AWS_* variables, ~/.aws profiles) "
                     "or [storage.options] with ${VAR} references.",
            )
        return Root(text.rstrip("/"), dict(options or {}), block_bytes)
    path = Path(text).expanduser()
    return Root(str(path if path.is_absolute() else base / path), {}, block_bytes)
