"""A tolerant, read-only RIFF / RF64 / BW64 / RIFX chunk walker.

The walker reads chunk headers and seeks past chunk bodies, so its cost does not depend on the
file size; only the small ``fmt `` and ``ds64`` bodies are read (capped), and
:func:`read_chunk_body` reads other metadata bodies on request with a cap. Sizes in the file
are never trusted for allocation: a 22-byte fuzzer file that claims a 3 GB chunk costs 8 bytes
of reading.

Everything unusual becomes an issue code in :class:`~fieldkit.model.audio.RiffLayout`, never an
exception; :class:`~fieldkit.errors.AudioFormatError` is raised only when the file is not a RIFF
family file at all. Issue codes:

``truncated_riff_header``  fewer than 12 bytes: the RIFF header itself is cut short
``not_wave``               the form type is not ``WAVE``
``riff_size_mismatch``     RIFF size field != file size - 8
``chunk_overruns_file``    a chunk declares more bytes than the file holds
``data_size_exceeds_file`` the ``data`` chunk declares more bytes than are present
``odd_chunk_without_pad``  an odd-sized chunk without its pad byte (AudioMoth ``guan``)
``truncated_chunk_header`` the file ends inside a chunk header (1-7 bytes left)
``garbage_after_chunks``   bytes that are not a chunk follow the last valid chunk
``no_fmt`` / ``no_data``   the chunk is missing
``fmt_too_short``          ``fmt `` body shorter than 16 bytes
``fmt_extension_truncated`` extensible ``fmt `` shorter than 40 bytes
``fmt_implausible``        zero or absurd channels, rate or bits
``block_align_mismatch``   declared block align != channels * bytes per sample
``duplicate_fmt`` / ``duplicate_data``
``data_before_fmt``        legal order is fmt first; many readers fail otherwise
``ds64_missing``           RF64/BW64 without a ``ds64`` chunk
``rf64_data_size_mismatch`` RF64 ``data`` size is neither 0xFFFFFFFF nor the ds64 value
``data_size_unfinalised``  plain RIFF ``data`` size 0 or 0xFFFFFFFF with bytes after it
``data_size_wrapped``      plain RIFF over 4 GiB whose 32-bit ``data`` size wrapped around
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from fieldkit.errors import AudioFormatError
from fieldkit.model.audio import Ds64Info, FmtInfo, RiffChunk, RiffLayout

__all__ = [
    "CONTAINERS",
    "METADATA_BODY_CAP_BYTES",
    "parse_ds64",
    "parse_fmt",
    "read_chunk_body",
    "walk_riff",
    "walk_riff_path",
]

CONTAINERS = (b"RIFF", b"RF64", b"BW64", b"RIFX")
#: Largest metadata chunk body ever read into memory.
METADATA_BODY_CAP_BYTES = 4 * 1024 * 1024
_SIZE_32_MAX = 0xFFFFFFFF
_KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_MAX_CHANNELS = 4096
_MAX_RATE_HZ = 100_000_000


@dataclass
class _WalkState:
    """Mutable accumulator used only while walking (never escapes this module)."""

    endian: str
    container: str
    file_size: int
    chunks: list[RiffChunk] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    fmt: FmtInfo | None = None
    ds64: Ds64Info | None = None
    data: RiffChunk | None = None
    data_raw_size: int | None = None
    trailing_bytes: int = 0

    def issue(self, code: str) -> None:
        if code not in self.issues:
            self.issues.append(code)


def walk_riff_path(path: str | bytes) -> RiffLayout:
    """Walk the file at ``path``; see :func:`walk_riff`."""
    with open(path, "rb") as fileobj:
        fileobj.seek(0, 2)
        return walk_riff(fileobj, fileobj.tell())


def walk_riff(fileobj: BinaryIO, file_size: int) -> RiffLayout:
    """Walk the top-level chunks of a RIFF-family file without reading sample data.

    Parameters
    ----------
    fileobj : binary file object
        Seekable, opened for reading. Its position is changed.
    file_size : int
        Size of the file in bytes.

    Returns
    -------
    RiffLayout

    Raises
    ------
    AudioFormatError
        If the file does not start with ``RIFF``, ``RF64``, ``BW64`` or ``RIFX``.
    """
    fileobj.seek(0)
    head = fileobj.read(12)
    magic = head[:4]
    if magic not in CONTAINERS:
        raise AudioFormatError(
            f"not a RIFF/RF64 file: expected the magic bytes RIFF, RF64, BW64 or RIFX, "
            f"found {magic!r}.",
            hint="Identify the format with fieldkit.io.audio.probe.probe().",
        )
    endian = ">" if magic == b"RIFX" else "<"
    container = magic.decode("ascii")
    if len(head) < 12:
        return RiffLayout(container, "", None, file_size, issues=("truncated_riff_header",))
    riff_size = struct.unpack(endian + "I", head[4:8])[0]
    form_type = head[8:12].decode("latin-1")
    if head[8:12] != b"WAVE":
        return RiffLayout(container, form_type, riff_size, file_size, issues=("not_wave",))
    state = _WalkState(endian=endian, container=container, file_size=file_size)
    _walk_chunks(fileobj, state)
    return _finish(state, riff_size, form_type)


def _walk_chunks(fileobj: BinaryIO, state: _WalkState) -> None:
    """Walk chunk headers from byte 12 to the end of the file."""
    pos = 12
    while pos + 8 <= state.file_size:
        fileobj.seek(pos)
        header = fileobj.read(8)
        if len(header) < 8 or not _is_chunk_id(header[:4]):
            state.trailing_bytes = state.file_size - pos
            state.issue("garbage_after_chunks")
            return
        next_pos = _visit_chunk(fileobj, state, pos, header)
        if next_pos is None:
            return
        pos = next_pos
    if pos < state.file_size:
        state.trailing_bytes = state.file_size - pos
        state.issue("truncated_chunk_header")


def _visit_chunk(fileobj: BinaryIO, state: _WalkState, pos: int, header: bytes) -> int | None:
    """Record the chunk at ``pos``; return the next chunk offset, or None to stop."""
    chunk_id = header[:4].decode("latin-1")
    raw_size = struct.unpack(state.endian + "I", header[4:8])[0]
    size = _resolved_size(state, chunk_id, raw_size)
    body_offset = pos + 8
    available = max(0, min(size, state.file_size - body_offset))
    end = body_offset + size
    without_pad = bool(size & 1) and end <= state.file_size
    without_pad = without_pad and not _pad_present(fileobj, end, state.file_size)
    chunk = RiffChunk(chunk_id, pos, size, available, without_pad)
    state.chunks.append(chunk)
    if without_pad:
        state.issue("odd_chunk_without_pad")
    _interpret(fileobj, state, chunk, raw_size)
    if end > state.file_size:
        state.issue("data_size_exceeds_file" if chunk_id == "data" else "chunk_overruns_file")
        return None
    return end + (size & 1 and not without_pad)


def _resolved_size(state: _WalkState, chunk_id: str, raw_size: int) -> int:
    """Return a chunk's size, taking 64-bit sizes from ``ds64`` for RF64/BW64."""
    if state.container in ("RF64", "BW64") and state.ds64 is not None:
        if chunk_id == "data" and (raw_size == _SIZE_32_MAX or state.ds64.data_size > 0):
            # EBU Tech 3306: the 64-bit size rules; a 32-bit size that disagrees is flagged
            # later (rf64_data_size_mismatch), never used to truncate silently.
            return state.ds64.data_size
        if raw_size == _SIZE_32_MAX:
            return dict(state.ds64.table).get(chunk_id, raw_size)
    return raw_size


def _pad_present(fileobj: BinaryIO, end: int, file_size: int) -> bool:
    """Decide whether an odd chunk ending at ``end`` is followed by its pad byte.

    A missing pad byte is detected when the file ends exactly at ``end``, or when a valid
    chunk id starts at ``end`` while the bytes one later do not form one (AudioMoth writes an
    odd ``guan`` chunk without a pad; some writers do the same mid-file).
    """
    if end >= file_size:
        return False
    fileobj.seek(end)
    probe = fileobj.read(9)
    if len(probe) < 8:
        return True
    starts_here = _is_chunk_id(probe[:4])
    starts_after_pad = len(probe) >= 9 and _is_chunk_id(probe[1:5])
    return not (starts_here and not starts_after_pad)


def _is_chunk_id(raw: bytes) -> bool:
    """True for four printable ASCII bytes (space allowed, as in ``fmt ``)."""
    return len(raw) == 4 and all(0x20 <= b <= 0x7E for b in raw)


def _interpret(fileobj: BinaryIO, state: _WalkState, chunk: RiffChunk, raw_size: int) -> None:
    """Decode the chunks the walker itself needs: ``fmt ``, ``ds64`` and ``data``."""
    if chunk.chunk_id == "fmt ":
        _take_fmt(fileobj, state, chunk)
    elif chunk.chunk_id == "ds64" and state.ds64 is None:
        body = read_chunk_body(fileobj, chunk, cap_bytes=METADATA_BODY_CAP_BYTES)
        state.ds64 = parse_ds64(body, state.endian)
    elif chunk.chunk_id == "data":
        if state.data is not None:
            state.issue("duplicate_data")
            return
        state.data, state.data_raw_size = chunk, raw_size
        if state.fmt is None:
            state.issue("data_before_fmt")


def _take_fmt(fileobj: BinaryIO, state: _WalkState, chunk: RiffChunk) -> None:
    """Decode the first ``fmt `` chunk; note duplicates and malformed ones."""
    if state.fmt is not None:
        state.issue("duplicate_fmt")
        return
    body = read_chunk_body(fileobj, chunk, cap_bytes=64 * 1024)
    fmt, issues = parse_fmt(body, state.endian)
    state.fmt = fmt
    for code in issues:
        state.issue(code)


def read_chunk_body(
    fileobj: BinaryIO, chunk: RiffChunk, *, cap_bytes: int = METADATA_BODY_CAP_BYTES
) -> bytes:
    """Read the body bytes of ``chunk`` that are present, at most ``cap_bytes``.

    Parameters
    ----------
    fileobj : binary file object
    chunk : RiffChunk
    cap_bytes : int
        Upper bound on the bytes read (default 4 MiB), whatever the chunk declares.

    Returns
    -------
    bytes
        Possibly shorter than the declared size (truncated file or cap reached).
    """
    fileobj.seek(chunk.body_offset)
    return fileobj.read(min(chunk.size_available, cap_bytes))


def parse_fmt(body: bytes, endian: str = "<") -> tuple[FmtInfo | None, tuple[str, ...]]:
    """Decode a ``fmt `` chunk body.

    Parameters
    ----------
    body : bytes
        The chunk body (16, 18 or 40 bytes usually).
    endian : {"<", ">"}
        Byte order (``>`` for RIFX).

    Returns
    -------
    (FmtInfo or None, tuple of issue codes)
        None when fewer than 16 bytes are present.
    """
    if len(body) < 16:
        return None, ("fmt_too_short",)
    tag, channels, rate, byte_rate, align, bits = struct.unpack(endian + "HHIIHH", body[:16])
    valid_bits = channel_mask = subformat = None
    issues: list[str] = []
    if tag == 0xFFFE:
        if len(body) >= 40:
            valid_bits, channel_mask = struct.unpack(endian + "HI", body[18:24])
            subformat = struct.unpack(endian + "H", body[24:26])[0]
            if body[26:40] != _KSDATAFORMAT_TAIL:
                issues.append("unknown_subformat_guid")
        else:
            issues.append("fmt_extension_truncated")
    fmt = FmtInfo(tag, subformat, channels, rate, byte_rate, align, bits,
                  valid_bits, channel_mask, size_bytes=len(body))
    issues.extend(_fmt_sanity(fmt))
    return fmt, tuple(issues)


def _fmt_sanity(fmt: FmtInfo) -> list[str]:
    """Return issue codes for implausible or inconsistent fmt fields."""
    if not (0 < fmt.channels <= _MAX_CHANNELS and 0 < fmt.sample_rate_hz <= _MAX_RATE_HZ):
        return ["fmt_implausible"]
    if not 0 < fmt.bits_per_sample <= 64 and fmt.effective_tag in (1, 3, 6, 7):
        return ["fmt_implausible"]
    if fmt.effective_tag in (1, 3, 6, 7) and fmt.block_align != fmt.expected_block_align:
        return ["block_align_mismatch"]
    return []


def parse_ds64(body: bytes, endian: str = "<") -> Ds64Info | None:
    """Decode an RF64/BW64 ``ds64`` body (None when shorter than 24 bytes)."""
    if len(body) < 24:
        return None
    riff_size, data_size, sample_count = struct.unpack(endian + "QQQ", body[:24])
    table: list[tuple[str, int]] = []
    if len(body) >= 28:
        count = struct.unpack(endian + "I", body[24:28])[0]
        for index in range(min(count, (len(body) - 28) // 12)):
            entry = body[28 + 12 * index: 40 + 12 * index]
            table.append((entry[:4].decode("latin-1"), struct.unpack(endian + "Q", entry[4:])[0]))
    return Ds64Info(riff_size, data_size, sample_count, tuple(table))


def _finish(state: _WalkState, riff_size_raw: int, form_type: str) -> RiffLayout:
    """Cross-check sizes and freeze the walk into a :class:`RiffLayout`."""
    riff_size = _check_riff_size(state, riff_size_raw)
    data = state.data
    if state.fmt is None:
        state.issue("no_fmt")
    if data is None:
        state.issue("no_data")
    else:
        _check_data_size(state, data)
    return RiffLayout(
        container=state.container,
        form_type=form_type,
        riff_size_declared=riff_size,
        file_size=state.file_size,
        chunks=tuple(state.chunks),
        fmt=state.fmt,
        ds64=state.ds64,
        data_offset=data.body_offset if data else None,
        data_size_declared=data.size_declared if data else None,
        data_bytes_present=data.size_available if data else 0,
        trailing_bytes=state.trailing_bytes,
        issues=tuple(state.issues),
    )


def _check_riff_size(state: _WalkState, riff_size_raw: int) -> int:
    """Return the effective RIFF size and note a mismatch with the file size."""
    riff_size = riff_size_raw
    if state.container in ("RF64", "BW64"):
        if state.ds64 is None:
            state.issue("ds64_missing")
        elif riff_size_raw == _SIZE_32_MAX:
            riff_size = state.ds64.riff_size
    if riff_size != state.file_size - 8:
        state.issue("riff_size_mismatch")
    return riff_size


def _check_data_size(state: _WalkState, data: RiffChunk) -> None:
    """Note RF64 size contradictions and unfinalised plain-RIFF data sizes."""
    raw = state.data_raw_size
    if state.container in ("RF64", "BW64") and state.ds64 is not None:
        if raw not in (_SIZE_32_MAX, state.ds64.data_size):
            state.issue("rf64_data_size_mismatch")
    elif raw == _SIZE_32_MAX or (raw == 0 and _unwalkable_after(state, data)):
        state.issue("data_size_unfinalised")
    elif _wrapped(state, data):
        state.issue("data_size_wrapped")


def _wrapped(state: _WalkState, data: RiffChunk) -> bool:
    """True when the bytes after ``data`` make it exactly k * 4 GiB longer than declared.

    A plain RIFF file over 4 GiB stores its sizes modulo 2**32; trusting them silently drops
    whole gigabytes of audio (xiph/flac#300).
    """
    data_end = data.body_offset + data.size_declared
    if state.trailing_bytes == 0 or state.file_size - state.trailing_bytes != data_end:
        return False
    return state.trailing_bytes % (1 << 32) == 0 or (state.file_size - data.body_offset) > _SIZE_32_MAX


def _unwalkable_after(state: _WalkState, data: RiffChunk) -> bool:
    """True when what follows ``data`` is not a clean chunk sequence (samples, not chunks)."""
    after = [c for c in state.chunks if c.offset > data.offset]
    overrun = any(c.size_available < c.size_declared for c in after)
    return overrun or state.trailing_bytes > 0
