"""Plain records describing an audio file's container layout, format and ingest QC.

These are produced by :mod:`fieldkit.io.riff.chunks` and :func:`fieldkit.io.audio.probe.probe` and stored
by the catalogue. They live in the model layer (no I/O) so that every layer can use them.

Status and reason vocabulary (docs/reliability.md, cases A1-A8):

``status``
    ``ok`` (every declared frame is present), ``truncated`` (some whole frames, fewer than the
    header declares; usable with the real duration) or ``quarantined`` (no usable frame, or a
    file that must not be processed without a human decision).
``reason``
    ``None`` when nothing is wrong, else one of :data:`REASONS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "REASONS",
    "STATUSES",
    "STATUS_OK",
    "STATUS_QUARANTINED",
    "STATUS_TRUNCATED",
    "AudioFacts",
    "Ds64Info",
    "FmtInfo",
    "QCMetrics",
    "RiffChunk",
    "RiffLayout",
]

STATUS_OK = "ok"
STATUS_TRUNCATED = "truncated"
STATUS_QUARANTINED = "quarantined"
STATUSES = (STATUS_OK, STATUS_TRUNCATED, STATUS_QUARANTINED)

#: Reason codes with their one-line meaning (used in messages and documentation).
REASONS: dict[str, str] = {
    "empty": "0 bytes: the recorder produced an empty file",
    "header_only": "a header without a single whole sample frame",
    "null_bytes": "every byte is NUL: the file was allocated but never written",
    "not_audio": "the content is not a known audio format",
    "unreadable": "an audio container whose format header cannot be decoded",
    "stub": "a pre-allocated stub header with no samples and no metadata",
    "header_inconsistent": "the header sizes contradict the bytes present",
    "corrupt_samples": "floating-point samples that are NaN or infinite",
}


def _jsonable(value: Any) -> Any:
    """Return ``value`` with tuples turned into lists, recursively (for JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class RiffChunk:
    """One chunk found while walking a RIFF/RF64 file.

    Attributes
    ----------
    chunk_id : str
        Four-character id, decoded as Latin-1 (``"fmt "``, ``"LIST"``, ``"guan"``...).
    offset : int
        Byte offset of the chunk header (id + size) from the start of the file.
    size_declared : int
        Body size in bytes as declared (from ``ds64`` for RF64 chunks marked 0xFFFFFFFF).
    size_available : int
        Body bytes actually present in the file (``<= size_declared``).
    odd_without_pad : bool
        True when the declared size is odd and the mandatory pad byte is missing.
    """

    chunk_id: str
    offset: int
    size_declared: int
    size_available: int
    odd_without_pad: bool = False

    @property
    def body_offset(self) -> int:
        """Byte offset of the chunk body."""
        return self.offset + 8


@dataclass(frozen=True)
class FmtInfo:
    """Decoded ``fmt `` chunk.

    Attributes
    ----------
    format_tag : int
        WAVE format tag (1 PCM, 3 IEEE float, 6 A-law, 7 mu-law, 0xFFFE extensible...).
    subformat_tag : int or None
        For ``WAVE_FORMAT_EXTENSIBLE``, the tag in the sub-format GUID, else None.
    channels : int
    sample_rate_hz : int
    byte_rate : int
        Declared bytes per second.
    block_align : int
        Declared bytes per frame (may be wrong; see ``expected_block_align``).
    bits_per_sample : int
        Container bits per sample.
    valid_bits : int or None
        Extensible ``wValidBitsPerSample``, if present.
    channel_mask : int or None
    size_bytes : int
        Size of the fmt body that was decoded.
    """

    format_tag: int
    subformat_tag: int | None
    channels: int
    sample_rate_hz: int
    byte_rate: int
    block_align: int
    bits_per_sample: int
    valid_bits: int | None = None
    channel_mask: int | None = None
    size_bytes: int = 16

    @property
    def effective_tag(self) -> int:
        """The sub-format tag for extensible files, else the format tag."""
        return self.subformat_tag if self.subformat_tag is not None else self.format_tag

    @property
    def expected_block_align(self) -> int:
        """Bytes per frame computed from channels and bits (what libsndfile uses for PCM)."""
        return self.channels * ((self.bits_per_sample + 7) // 8)


@dataclass(frozen=True)
class Ds64Info:
    """Decoded RF64/BW64 ``ds64`` chunk (64-bit sizes)."""

    riff_size: int
    data_size: int
    sample_count: int
    table: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class RiffLayout:
    """Everything the tolerant chunk walker found in a RIFF-family file.

    Attributes
    ----------
    container : str
        ``RIFF``, ``RF64``, ``BW64`` or ``RIFX`` (big-endian).
    form_type : str
        Form type after the size (``WAVE`` for audio).
    riff_size_declared : int or None
        The RIFF size field (from ``ds64`` for RF64); None if the header is cut short.
    file_size : int
        File size in bytes.
    chunks : tuple of RiffChunk
        Every top-level chunk in file order.
    fmt : FmtInfo or None
    ds64 : Ds64Info or None
    data_offset : int or None
        Byte offset of the first ``data`` chunk body.
    data_size_declared : int or None
        Declared size of the ``data`` body in bytes (64-bit size from ``ds64`` for RF64).
    data_bytes_present : int
        Bytes of the ``data`` body actually present in the file.
    trailing_bytes : int
        Bytes after the last chunk that could not be walked (garbage or a cut-off header).
    issues : tuple of str
        Issue codes such as ``riff_size_mismatch``, ``chunk_overruns_file``,
        ``odd_chunk_without_pad``, ``data_size_exceeds_file``, ``no_fmt``, ``no_data``.
    """

    container: str
    form_type: str
    riff_size_declared: int | None
    file_size: int
    chunks: tuple[RiffChunk, ...] = ()
    fmt: FmtInfo | None = None
    ds64: Ds64Info | None = None
    data_offset: int | None = None
    data_size_declared: int | None = None
    data_bytes_present: int = 0
    trailing_bytes: int = 0
    issues: tuple[str, ...] = ()

    @property
    def chunk_ids(self) -> tuple[str, ...]:
        """Chunk ids in file order (duplicates kept)."""
        return tuple(c.chunk_id for c in self.chunks)

    def find(self, chunk_id: str) -> tuple[RiffChunk, ...]:
        """Return every chunk whose id equals ``chunk_id`` (exact, case-sensitive)."""
        return tuple(c for c in self.chunks if c.chunk_id == chunk_id)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of the layout."""
        return _jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class QCMetrics:
    """Cheap ingest QC over the frames actually present.

    Attributes
    ----------
    frames_analysed : int
        Frames read and analysed.
    peak : float
        Largest absolute sample value, full scale = 1.0 (float files may exceed 1.0).
    peak_dbfs : float or None
        ``20 log10(peak)`` in dBFS; None for digital silence (peak 0).
    clipped_samples : int
        Samples at the format's full scale (integer PCM: the most positive or negative code;
        float: ``|x| >= 1.0``).
    dc_offset : float
        Mean sample value of the channel whose mean is largest in magnitude (full scale 1.0).
    silent_fraction : float
        Fraction of samples that are exactly zero, 0..1.
    digital_silence : bool
        True when every sample analysed is exactly zero.
    nonfinite_samples : int
        NaN or infinite samples (float formats only).
    nonfinite_frames : tuple of int
        Frame indices of the first non-finite samples (at most 20).
    """

    frames_analysed: int
    peak: float
    peak_dbfs: float | None
    clipped_samples: int
    dc_offset: float
    silent_fraction: float
    digital_silence: bool
    nonfinite_samples: int = 0
    nonfinite_frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class AudioFacts:
    """What :func:`fieldkit.io.audio.probe.probe` learned about one file.

    Attributes
    ----------
    path : str
    file_size_bytes : int
    detected_format : str
        From magic bytes: ``wav``, ``rf64``, ``w64``, ``flac``, ``ogg``, ``mp3``, ``aiff`` or
        ``unknown``.
    declared_extension : str
        Lower-case extension without the dot (``""`` when there is none).
    sample_rate_hz, channels, bit_depth : int or None
    subtype : str or None
        soundfile subtype (``PCM_16``, ``PCM_24``, ``FLOAT``...).
    frames_declared : int or None
        Frames the header declares (None when the header does not say).
    frames_present : int
        Whole frames actually present (decoded or computed from the bytes present).
    duration_s : float
        ``frames_present / sample_rate_hz`` in seconds (0.0 when unknown).
    status : str
        ``ok``, ``truncated`` or ``quarantined``.
    reason : str or None
        One of :data:`REASONS`, or None.
    messages : tuple of str
        Human messages: the file, what was expected, what was found, what to do next.
    qc : QCMetrics or None
    layout : RiffLayout or None
        The chunk layout for RIFF-family files.
    """

    path: str
    file_size_bytes: int
    detected_format: str
    declared_extension: str
    sample_rate_hz: int | None = None
    channels: int | None = None
    bit_depth: int | None = None
    subtype: str | None = None
    frames_declared: int | None = None
    frames_present: int = 0
    duration_s: float = 0.0
    status: str = STATUS_OK
    reason: str | None = None
    messages: tuple[str, ...] = ()
    qc: QCMetrics | None = None
    layout: RiffLayout | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (the layout included)."""
        return _jsonable(dataclasses.asdict(self))
