"""Translating what a storage library raises into fieldkit's errors, once for every root.

An unreachable endpoint is temporary (:class:`~fieldkit.errors.StorageUnavailableError`, exit 75);
a missing bucket, missing credentials or a denied access are configuration (exit 78); a name
taken under a create-only write is :class:`~fieldkit.errors.ObjectExistsError`. Every message
names the URL with its secrets redacted (:func:`fieldkit.config.settings.redact_url`).
"""

from __future__ import annotations

import errno
import os
from typing import Any

from fieldkit.config.settings import redact_url
from fieldkit.errors import (
    ConfigError,
    FieldkitError,
    InputUnavailableError,
    ObjectExistsError,
    OutputUnavailableError,
    StorageUnavailableError,
)

__all__ = ["storage_error", "unreachable"]

#: What the S3 clients (botocore, aiobotocore, aiohttp) raise when an endpoint does not answer.
_UNREACHABLE = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                          "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                          "ClientOSError"})
#: obstore raises one GenericError for every failure without an S3 error code; its text (the
#: HTTP client's error kind) tells a connection that failed, timed out or broke off from the rest.
_OBSTORE_UNREACHABLE = ("error sending request", "kind: Connect", "kind: Timeout", "timed out",
                        "kind: Body", "error reading a body", "connection closed", "Connection reset")


def _obstore_unreachable(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("obstore") and type(exc).__name__ == "GenericError" \
        and any(marker in str(exc) for marker in _OBSTORE_UNREACHABLE)


def unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error behind it, says a storage endpoint did not answer (temporary).

    A task that failed this way failed for its storage, not for its recording: the run stops
    and is resumed later rather than counting one failure per remaining task.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (StorageUnavailableError, ConnectionError, TimeoutError)) \
                or type(exc).__name__ in _UNREACHABLE or _obstore_unreachable(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class storage_error:  # noqa: N801 - used as a context manager, reads as a clause
    """Translate a storage library's exception into fieldkit's error for ``uri``."""

    def __init__(self, uri: str, *, creating: bool = False) -> None:
        self.uri = redact_url(uri)
        self.creating = creating

    def __enter__(self) -> storage_error:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, FieldkitError) or not isinstance(exc, Exception):
            return False
        raise _translate(self.uri, exc, self.creating) from exc


def _translate(uri: str, exc: Exception, creating: bool) -> Exception:
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, FileExistsError):
        return exc  # put_new turns it into ObjectExistsError with its own message
    if name in ("NoCredentialsError", "PartialCredentialsError") or "Unable to locate credentials" in text:
        return ConfigError(
            f"no credentials to reach {uri}.",
            hint="Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (or [storage.options] with ${VAR} "
                 "references) on this machine and on every worker.", path=uri)
    if isinstance(exc, PermissionError) or name in ("PermissionDeniedError", "UnauthenticatedError") \
            or "AccessDenied" in text or "Forbidden" in text \
            or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return ConfigError(
            f"access denied to {uri} ({_short(text)}).",
            hint="Check the credentials and that they may read and write this bucket and prefix.", path=uri)
    if "NoSuchBucket" in text or "specified bucket does not exist" in text:
        return ConfigError(
            f"the bucket of {uri} does not exist.",
            hint="Create it, or correct archive_root/stores_root/exports_root in fieldkit.toml.", path=uri)
    if name == "AlreadyExistsError" or "PreconditionFailed" in text or "ConditionalRequestConflict" in text:
        return ObjectExistsError(f"{uri} already exists: the archive is never overwritten.", path=uri)
    # s3fs turns S3's 501 NotImplemented into OSError(ENOSYS) with S3's message, without the code
    not_implemented = "NotImplemented" in text or name == "NotSupportedError" \
        or (isinstance(exc, OSError) and exc.errno == errno.ENOSYS)
    if not_implemented and creating:
        return ConfigError(
            f"{uri}: the server does not support conditional writes (If-None-Match), so fieldkit cannot "
            "guarantee never to overwrite the archive.",
            hint="Use an S3 service with conditional writes (AWS S3, recent MinIO/Ceph).", path=uri)
    if name in _UNREACHABLE or isinstance(exc, (ConnectionError, TimeoutError)) or _obstore_unreachable(exc):
        return StorageUnavailableError(
            f"cannot reach the storage of {uri} ({_short(text)}).",
            hint="Check the endpoint (endpoint_url in [storage.options]) and the network, then run the command "
                 "again; what was stored is kept and the command resumes.", path=uri)
    if isinstance(exc, FileNotFoundError):
        return InputUnavailableError(f"{uri} does not exist.", hint="Check the path or URL.", path=uri)
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.ENOSPC):
        return OutputUnavailableError(f"cannot write {uri}: {os.strerror(exc.errno)}.", path=uri)
    return exc


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."
