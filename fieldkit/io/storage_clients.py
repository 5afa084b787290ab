"""The clients behind a URL root: its options resolved, its fsspec filesystem, and whether S3
goes through obstore instead (:mod:`fieldkit.io.s3direct`).

A root's ``[storage] options`` may hold ``${VAR}`` references; they are resolved here, on the
machine that makes the client, never stored resolved on the :class:`~fieldkit.io.storage.Root`.
Every client is made once per process, protocol and options (``functools.lru_cache``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fieldkit.errors import ConfigError
from fieldkit.io.s3direct import direct_config, make_store

__all__ = ["direct_kwargs", "direct_store", "filesystem"]

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _freeze(options: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, _freeze(v) if isinstance(v, Mapping) else v) for k, v in options.items()))


def _thaw(frozen: tuple) -> dict[str, Any]:
    return {k: _thaw(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v for k, v in frozen}


def _resolve_env(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            out[key] = _resolve_env(value)
        elif isinstance(value, str) and (m := _ENV_REF.match(value)):
            if m.group(1) not in os.environ:
                raise ConfigError(
                    f"storage option {key!r} names the environment variable {m.group(1)}, which is not set.",
                    hint=f"Export {m.group(1)} on this machine (and on every worker), or change [storage.options].",
                )
            out[key] = os.environ[m.group(1)]
        else:
            out[key] = value
    return out


def _aws_env() -> tuple:
    """The environment variables obstore's credentials come from (a cache key of _direct_kwargs)."""
    return tuple(os.environ.get(name) for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3"))


def direct_kwargs(options: Mapping[str, Any]) -> dict[str, Any] | None:
    """obstore's S3Store arguments for a root's (unresolved) options, or None to go through s3fs
    (:func:`fieldkit.io.s3direct.direct_config`); made once per options and AWS environment."""
    return _direct_kwargs(_freeze(options), _aws_env())


@lru_cache(maxsize=16)
def _direct_kwargs(frozen: tuple, env: tuple) -> dict[str, Any] | None:
    return direct_config(_resolve_env(_thaw(frozen)))


def direct_store(options: Mapping[str, Any], bucket: str, prefix: str = "") -> Any:
    """The obstore ``S3Store`` of ``bucket`` (under key ``prefix``) for a root whose options go
    through obstore (:func:`direct_kwargs` is not None): one per process, options, bucket and
    prefix, its HTTP connections pooled."""
    return _direct_store(_freeze(options), _aws_env(), bucket, prefix.strip("/"))


@lru_cache(maxsize=32)
def _direct_store(frozen: tuple, env: tuple, bucket: str, prefix: str) -> Any:
    kwargs = _direct_kwargs(frozen, env)
    if kwargs is None:
        raise ValueError("these storage options go through s3fs, not obstore")
    return make_store(kwargs, bucket, prefix)


def filesystem(protocol: str, options: Mapping[str, Any], asynchronous: bool = False) -> Any:
    """The fsspec filesystem of a root's (unresolved) options: made once per protocol and options
    in this process (zarr's asynchronous one apart)."""
    return _filesystem(protocol, _freeze(options), asynchronous)


@lru_cache(maxsize=16)
def _filesystem(protocol: str, frozen: tuple, asynchronous: bool = False) -> Any:
    import fsspec

    options = _resolve_env(_thaw(frozen))
    if protocol in ("s3", "s3a"):
        # s3fs takes endpoint_url at the top level; botocore's own chain supplies credentials
        options.setdefault("config_kwargs", {}).setdefault("retries", {"max_attempts": 3, "mode": "standard"})
        if "session" not in options:
            options["session"] = _s3_session(options.pop("profile", None))
    if asynchronous:
        options["asynchronous"] = True
        options["skip_instance_cache"] = True
        if protocol in ("s3", "s3a"):
            # zarr reads whole objects (array documents, shards of a few MB); with a concurrency
            # above 1, s3fs asks for each object's size first (a HEAD, and a LIST when the object
            # is missing, as a never-written ``done`` chunk is) to split reads over 50 MB: two or
            # three requests per read instead of one (measured on the S3 test server)
            options.setdefault("max_concurrency", 1)
    try:
        fs = fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        raise ConfigError(
            f"no filesystem for {protocol}:// is installed ({exc}).",
            hint={"gs": "pip install gcsfs", "az": "pip install adlfs", "abfs": "pip install adlfs"}.get(
                protocol, "Install the fsspec implementation for this protocol."),
        ) from exc
    if asynchronous:
        atexit.register(_close_async_session, fs)
    return fs


def _close_async_session(fs: Any) -> None:
    """Close the HTTP session of an asynchronous filesystem (the one zarr's FsspecStore used) on
    zarr's event loop at exit: s3fs closes only its synchronous instances' sessions itself, and an
    open one makes aiohttp print "Unclosed client session" and a traceback as the process ends."""
    session = getattr(fs, "_s3", None)
    if session is None:
        return
    with contextlib.suppress(Exception):
        from zarr.core.sync import sync

        sync(session.__aexit__(None, None, None), timeout=2)


def _s3_session(profile: str | None) -> Any:
    """A botocore session whose S3 requests carry no ``Expect: 100-continue``, sharing this
    process's botocore data loader.

    botocore asks for ``Expect`` on every PUT and upload part, and aiohttp then waits for the
    interim response with no timeout at all: a stalled server hung an upload forever instead of
    failing after ``read_timeout`` (botocore#3613, marin-community/marin#6719). Without the
    header the body is sent at once and the read timeout covers the wait for the answer.

    The loader (the parsed service model and endpoint rules) is shared by the synchronous and the
    asynchronous (zarr's) filesystems of a process: making the second S3 client then costs
    0.08 s of CPU instead of 0.15 s (measured). The sessions themselves stay apart: refreshable
    credentials hold an asyncio lock, which must not be shared by two event loops.
    """
    from aiobotocore.session import AioSession

    session = AioSession(profile=profile) if profile else AioSession()
    session.register("before-sign.s3", _drop_expect)
    if _LOADER:
        session.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(session.get_component("data_loader"))
    return session


#: The botocore data loader of this process's first S3 session (see _s3_session).
_LOADER: list[Any] = []


def _drop_expect(request: Any = None, **_: Any) -> None:
    if request is not None and "Expect" in request.headers:
        del request.headers["Expect"]
