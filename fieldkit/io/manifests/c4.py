"""C4 ids (SMPTE ST 2114): SHA-512 of the bytes as 88 base58 digits behind ``c4`` (90 characters).

ASC MHL chains its manifest generations by the C4 id of each manifest file.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["C4Hasher", "c4_id", "c4_file"]

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_C4_DIGITS = 88
_CHUNK_BYTES = 1 << 20

def _c4_from_digest(digest: bytes) -> str:
    number, digits = int.from_bytes(digest, "big"), []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58[digit])
    return "c4" + "".join(reversed(digits)).rjust(_C4_DIGITS, "1")


class C4Hasher:
    """Incremental C4 id (SMPTE ST 2114): ``update()`` with bytes, then ``c4()``."""

    def __init__(self, data: bytes = b"") -> None:
        self._sha512 = hashlib.sha512(data)

    def update(self, data: bytes) -> None:
        """Feed more bytes."""
        self._sha512.update(data)

    def c4(self) -> str:
        """Return the 90-character C4 id of the bytes fed so far."""
        return _c4_from_digest(self._sha512.digest())


def c4_id(data: bytes) -> str:
    """Return the C4 id of ``data`` (``c4`` + 88 base58 digits)."""
    return C4Hasher(data).c4()


def c4_file(path: str | os.PathLike[str]) -> str:
    """Return the C4 id of a file's bytes, read in 1 MiB chunks."""
    hasher = C4Hasher()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.c4()


