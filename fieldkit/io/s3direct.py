"""S3 through obstore: the storage adapter's transport for the requests a run makes.

:class:`fieldkit.io.storage.Root` reaches ``s3://`` roots two ways, chosen here once per set of
options: through **obstore** (Rust's ``object_store``: its own HTTP client, signing and retries,
the GIL released while a request runs) when the options say everything obstore needs to know,
and through **s3fs** (botocore's whole credential chain) otherwise.

Why two: measured on the S3 test server (moto, 127.0.0.1; `benchmarks/s3_process.py`,
docs/notes/performance.md), reading the 1 h corpus's 60 recordings (346 MB) cost s3fs 0.9 s of
client CPU and obstore 0.2 s; a small request 3-6 ms of client CPU against 0.4 ms; and importing
s3fs/aiobotocore and making its two clients (the synchronous one and zarr's) 0.45-0.75 s against
0.03 s. In a run those are paid on the same cores as the audio work. s3fs stays for what obstore
does not do: a *conditional* multipart upload (``If-None-Match: *`` on the COMPLETE; obstore makes
a create-only write a single PUT of the whole object in memory), and credentials from a profile,
an instance role or any chain beyond static keys (botocore's own chain, unchanged).

obstore is used when:

- obstore is installed (the ``s3`` extra installs it);
- every storage option is one this module maps (``endpoint_url``, ``key``/``secret``/``token``,
  ``region_name``, ``anon``, ``config_kwargs`` timeouts and retries, ``client_kwargs``'s
  ``region_name``/``endpoint_url``/session token);
- credentials are static: given in the options, or ``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY`` in the environment (or ``anon``). A profile (``profile`` or
  ``AWS_PROFILE`` without keys), an instance role or web identity go through botocore;
- the region is known (options, ``AWS_REGION``/``AWS_DEFAULT_REGION``) or the endpoint is given:
  botocore finds an AWS bucket's region by itself, object_store does not; and botocore's
  ``AWS_ENDPOINT_URL_S3`` is not set without ``endpoint_url`` (object_store does not read it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = ["DirectRoot", "RangeReader", "direct_config", "make_store"]

#: botocore's standard retry mode makes 3 attempts; obstore's default retries for 3 minutes.
DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_TIMEOUT_S = 60.0
#: botocore's defaults: 60 s to connect, 60 s without a byte read. obstore's own default is an
#: overall limit of 30 s per request, which an 8 MB block over a slow field-station uplink can
#: exceed while the transfer is alive; here the overall limit is an hour and the read timeout,
#: reset by every byte received, tells a stalled server from a slow link.
DEFAULT_CLIENT = {"connect_timeout": timedelta(seconds=60), "read_timeout": timedelta(seconds=60),
                  "timeout": timedelta(hours=1)}

_CONFIG_KEYS = {"connect_timeout", "read_timeout", "retries", "s3"}


def direct_config(options: Mapping[str, Any]) -> dict[str, Any] | None:
    """``S3Store`` keyword arguments for these (resolved) fsspec options, or None when obstore
    cannot stand in for s3fs with them (see the module's text)."""
    try:
        import obstore  # noqa: F401
    except ImportError:
        return None
    opts = dict(options)
    config: dict[str, Any] = {}
    client: dict[str, Any] = dict(DEFAULT_CLIENT)
    retry: dict[str, Any] = {"max_retries": DEFAULT_MAX_RETRIES,
                             "retry_timeout": timedelta(seconds=DEFAULT_RETRY_TIMEOUT_S)}
    client_kwargs = dict(opts.pop("client_kwargs", None) or {})
    endpoint = opts.pop("endpoint_url", None) or client_kwargs.pop("endpoint_url", None)
    region = opts.pop("region_name", None) or client_kwargs.pop("region_name", None)
    token = opts.pop("token", None) or client_kwargs.pop("aws_session_token", None)
    key, secret = opts.pop("key", None), opts.pop("secret", None)
    anon = bool(opts.pop("anon", False))
    config_kwargs = dict(opts.pop("config_kwargs", None) or {})
    if opts or client_kwargs or set(config_kwargs) - _CONFIG_KEYS:
        return None  # an option only s3fs/botocore understands
    if config_kwargs.get("s3") not in (None, {}, {"addressing_style": "path"}):
        return None
    if endpoint:
        config["endpoint"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            client["allow_http"] = True
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        config["region"] = str(region)
    elif not endpoint:
        return None  # an AWS bucket in a region botocore looks up
    if not endpoint and os.environ.get("AWS_ENDPOINT_URL_S3"):
        return None
    if anon:
        config["skip_signature"] = True
    elif key and secret:
        config["access_key_id"], config["secret_access_key"] = str(key), str(secret)
        if token:
            config["token"] = str(token)
    elif key or secret:
        return None  # half a key pair: botocore's message about it
    elif os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        config["access_key_id"] = os.environ["AWS_ACCESS_KEY_ID"]
        config["secret_access_key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
        if os.environ.get("AWS_SESSION_TOKEN"):
            config["token"] = os.environ["AWS_SESSION_TOKEN"]
    else:
        return None  # a profile, an instance role, web identity: botocore's chain
    if "connect_timeout" in config_kwargs:
        client["connect_timeout"] = timedelta(seconds=float(config_kwargs["connect_timeout"]))
    if "read_timeout" in config_kwargs:
        client["read_timeout"] = timedelta(seconds=float(config_kwargs["read_timeout"]))
    attempts = (config_kwargs.get("retries") or {}).get("max_attempts")
    if attempts is not None:
        retry["max_retries"] = max(0, int(attempts) - 1)
    return {"config": config, "client_options": client, "retry_config": retry}


def make_store(kwargs: Mapping[str, Any], bucket: str, prefix: str = "") -> Any:
    """A new obstore ``S3Store`` of ``bucket`` (under ``prefix``) for :func:`direct_config`'s
    ``kwargs``; :func:`fieldkit.io.storage_clients.direct_store` keeps one per process."""
    from obstore.store import S3Store

    return S3Store(bucket, prefix=prefix.strip("/") or None, **kwargs)


@dataclass(frozen=True)
class DirectRoot:
    """A storage root's operations through obstore: the key ``prefix`` of a bucket whose stores
    ``stores`` makes (``stores("")`` the bucket's, ``stores(p)`` one under key prefix ``p``, as
    zarr needs). Names are relative to the root, as :class:`Root`'s; errors are obstore's own,
    translated by the caller (:mod:`fieldkit.io.storage_errors`)."""

    stores: Callable[[str], Any]
    prefix: str
    block: int

    @property
    def store(self) -> Any:
        return self.stores("")

    def key(self, rel: str) -> str:
        return "/".join(part for part in (self.prefix, rel.strip("/")) if part)

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is an object, or a prefix holding one (a HEAD, then a LIST)."""
        import obstore

        key = self.key(rel)
        try:
            obstore.head(self.store, key)
            return True
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise
        page = obstore.list_with_delimiter(self.store, prefix=key + "/")
        return bool(page["objects"] or page["common_prefixes"])

    def size(self, rel: str) -> int:
        import obstore

        return int(obstore.head(self.store, self.key(rel))["size"])

    def list(self, rel: str, *, recursive: bool) -> list[str]:
        """Names under ``rel`` relative to the root, sorted, as fsspec's ``find``/``ls`` list them."""
        import obstore

        key = self.key(rel)
        cut = len(self.prefix) + 1 if self.prefix else 0
        listed = key + "/" if key else None
        if recursive:
            names = [meta["path"] for batch in obstore.list(self.store, prefix=listed) for meta in batch]
        else:
            page = obstore.list_with_delimiter(self.store, prefix=listed)
            names = [meta["path"] for meta in page["objects"]] + list(page["common_prefixes"])
            if not names and key:  # ``rel`` is an object itself, as fsspec's ls lists it
                try:
                    obstore.head(self.store, key)
                    names = [key]
                except FileNotFoundError:
                    pass
        return sorted(name[cut:] for name in names)

    def open_read(self, rel: str, *, size: int | None) -> RangeReader:
        key = self.key(rel)
        if size is None:
            import obstore

            size = int(obstore.head(self.store, key)["size"])
        return RangeReader(self.store, key, size, self.block)

    def sha256(self, rel: str) -> tuple[str, int]:
        """(hex digest, bytes) of one streamed GET of the whole object: no HEAD first, the answer
        carries the length."""
        import obstore

        digest = hashlib.sha256()
        size = 0
        for chunk in obstore.get(self.store, self.key(rel)).stream(min_chunk_size=self.block):
            digest.update(chunk)
            size += len(memoryview(chunk))
        return digest.hexdigest(), size

    def create(self, rel: str, data: bytes) -> None:
        """A create-only PUT (``If-None-Match: *``); a taken name is FileExistsError."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            obstore.put(self.store, self.key(rel), data, mode="create")
        except AlreadyExistsError as exc:
            raise FileExistsError(str(exc)) from exc

    def replace(self, rel: str, data: bytes) -> None:
        import obstore

        obstore.put(self.store, self.key(rel), data)

    def replace_file(self, rel: str, source: Path) -> None:
        import obstore

        with open(source, "rb") as handle:
            obstore.put(self.store, self.key(rel), handle)

    def zarr_store(self, rel: str, *, read_only: bool) -> Any:
        """zarr's ``ObjectStore`` on the key prefix ``rel``."""
        from zarr.storage import ObjectStore

        return ObjectStore(self.stores(self.key(rel)), read_only=read_only)

    def check(self) -> None:
        """One LIST of the root's prefix: a wrong endpoint, bucket or key fails here."""
        import obstore

        obstore.list_with_delimiter(self.store, prefix=self.prefix + "/" if self.prefix else None)


class RangeReader:
    """A seekable binary file over one object, read in ranged GETs of at least ``block`` bytes
    (the last block kept): what soundfile's virtual IO and the RIFF walker need, and no more.

    ``size`` is the object's length (from the catalogue, or one HEAD). A read never asks past it,
    so a recording is read in ``ceil(size / block)`` requests when read front to back.
    """

    def __init__(self, store: Any, key: str, size: int, block: int) -> None:
        self._store, self._key, self.size, self._block = store, key, int(size), max(1, int(block))
        self._pos = 0
        self._lo, self._data = 0, memoryview(b"")
        self.closed = False

    # -- the file protocol
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        if end <= self._pos:
            return b""
        hi = self._lo + len(self._data)
        if self._lo <= self._pos and end <= hi:  # all of it in the block kept
            out = bytes(self._data[self._pos - self._lo:end - self._lo])
        else:
            head = bytes(self._data[self._pos - self._lo:]) if self._lo <= self._pos < hi else b""
            start = self._pos + len(head)
            fetched = self._fetch(start, min(self.size, max(end, start + self._block)))
            self._lo, self._data = start, fetched
            out = head + bytes(fetched[:end - start])
        self._pos += len(out)
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def _fetch(self, start: int, stop: int) -> memoryview:
        import obstore

        data = memoryview(obstore.get_range(self._store, self._key, start=start, end=stop))
        if len(data) != stop - start:  # the object is not as long as said: never a silent short read
            raise OSError(f"{self._key}: asked for bytes {start}-{stop}, the store answered {len(data)} bytes")
        return data

    def close(self) -> None:
        self.closed = True
        self._data = memoryview(b"")

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
