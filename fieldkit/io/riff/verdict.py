"""Judge a RIFF/RF64 file from its chunk layout alone: status, reason, frame counts.

Pure functions of a :class:`~fieldkit.model.audio.RiffLayout` (no I/O), used by
:func:`fieldkit.io.audio.probe.probe` before any sample is decoded (docs/reliability.md, A1-A5, A8):

- no usable ``fmt ``: ``stub`` when nothing else is there, else ``unreadable``;
- no ``data``: ``unreadable`` (broken structure), ``header_only`` (cut short, or metadata but no
  samples) or ``stub``;
- ``data`` size 0: ``header_only`` with metadata (AudioMoth's 488-byte header), else ``stub``;
- ``data`` size 0/0xFFFFFFFF/wrapped with samples after it: ``header_inconsistent``;
- fewer whole frames than declared: ``truncated`` (0 frames: ``header_only``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldkit.model.audio import STATUS_OK, STATUS_QUARANTINED, STATUS_TRUNCATED, RiffLayout

__all__ = ["LINEAR_TAGS", "METADATA_CHUNKS", "LayoutVerdict", "judge_layout"]

#: Format tags whose frame size follows from channels and bits (PCM, float, A-law, mu-law).
LINEAR_TAGS = {1: "PCM", 3: "FLOAT", 6: "ALAW", 7: "ULAW"}
#: Chunks whose presence makes a sample-less file a "header_only" recording, not a stub.
METADATA_CHUNKS = {"LIST", "guan", "bext", "iXML", "wamd", "id3 ", "ID3 "}


@dataclass(frozen=True)
class LayoutVerdict:
    """What a RIFF header says about a file before any sample is decoded.

    Attributes
    ----------
    status : str
        ``ok``, ``truncated`` or ``quarantined``.
    reason : str or None
        A reason code from :data:`fieldkit.model.audio.REASONS`.
    frames_declared, frames_present : int or None
        Frames the header declares and whole frames present; None for compressed formats
        (counted by decoding).
    messages : tuple of str
        Messages without the file name (the caller prefixes it).
    """

    status: str = STATUS_OK
    reason: str | None = None
    frames_declared: int | None = None
    frames_present: int | None = None
    messages: tuple[str, ...] = ()


def judge_layout(layout: RiffLayout) -> LayoutVerdict:
    """Decide status and reason from the chunk layout alone (docs/reliability.md, A1-A5, A8)."""
    issues = set(layout.issues)
    if "not_wave" in issues:
        return LayoutVerdict(STATUS_QUARANTINED, "not_audio", messages=(
            "RIFF file whose form type is not WAVE - expected WAVE audio. It is archived as is.",))
    fmt = layout.fmt
    if fmt is None or "fmt_implausible" in issues or _block_bytes(layout) == 0:
        return _judge_without_fmt(layout)
    if layout.data_offset is None:
        return _judge_without_data(layout)
    return _judge_data(layout)


def _block_bytes(layout: RiffLayout) -> int | None:
    """Bytes per frame: computed for linear formats, declared otherwise (None if unknown)."""
    fmt = layout.fmt
    if fmt is None:
        return None
    if fmt.effective_tag in LINEAR_TAGS:
        return fmt.expected_block_align
    return fmt.block_align


def _judge_without_fmt(layout: RiffLayout) -> LayoutVerdict:
    """No usable fmt chunk: a stub when nothing else is there, else unreadable."""
    bare = layout.data_offset is None and not _overruns(layout) and layout.trailing_bytes < 8
    if bare and "fmt " not in layout.chunk_ids:
        return LayoutVerdict(STATUS_QUARANTINED, "stub", messages=(
            f"{layout.file_size}-byte RIFF header with no fmt and no data chunk - expected a "
            "WAV header followed by samples, found a pre-allocated stub. Nothing to process.",))
    found = "no fmt chunk" if layout.fmt is None else "a malformed fmt chunk"
    return LayoutVerdict(STATUS_QUARANTINED, "unreadable", messages=(
        f"expected a fmt chunk describing the samples, found {found} "
        f"(issues: {', '.join(layout.issues)}). The bytes are archived unchanged; "
        "report the recorder model and firmware.",))


def _overruns(layout: RiffLayout) -> bool:
    return any(c.size_available < c.size_declared for c in layout.chunks)


def _has_metadata(layout: RiffLayout) -> bool:
    return any(c.chunk_id in METADATA_CHUNKS for c in layout.chunks)


def _judge_without_data(layout: RiffLayout) -> LayoutVerdict:
    """fmt but no data chunk: broken structure, a cut-short header (header_only) or a stub."""
    if "garbage_after_chunks" in layout.issues or "fmt_extension_truncated" in layout.issues:
        end = layout.file_size - layout.trailing_bytes
        return LayoutVerdict(STATUS_QUARANTINED, "unreadable", 0, 0, (
            f"the chunk structure breaks at byte {end} (issues: {', '.join(layout.issues)}) "
            "before any data chunk - expected fmt then data. The bytes are archived unchanged.",))
    riff_claims = layout.riff_size_declared or 0
    cut_short = riff_claims > layout.file_size - 8 or "truncated_chunk_header" in layout.issues
    if cut_short or _has_metadata(layout):
        return LayoutVerdict(STATUS_QUARANTINED, "header_only", 0, 0, (
            f"header without a data chunk: the RIFF header claims {riff_claims + 8} bytes, the "
            f"file has {layout.file_size} - recording or copy stopped before any sample was "
            "written. Metadata is still read; there is no audio to process.",))
    return LayoutVerdict(STATUS_QUARANTINED, "stub", 0, 0, (
        f"{layout.file_size}-byte WAV header with no data chunk and no metadata - expected "
        "samples, found a pre-allocated stub. Nothing to process.",))


def _judge_data(layout: RiffLayout) -> LayoutVerdict:
    """Compare declared and present frames (truncated, header-only, inconsistent)."""
    block = _block_bytes(layout) or 1
    declared = layout.data_size_declared or 0
    if layout.fmt is not None and layout.fmt.effective_tag not in LINEAR_TAGS:
        return LayoutVerdict(messages=_warnings(layout))  # compressed: frames come from decoding
    frames_declared = declared // block
    frames_present = layout.data_bytes_present // block
    if "data_size_unfinalised" in layout.issues or "data_size_wrapped" in layout.issues:
        return _inconsistent(layout, block)
    if declared == 0 or frames_present == 0:
        return _no_frames(layout, frames_declared, block)
    if frames_present < frames_declared:
        truncated = _truncated_message(layout, frames_declared, frames_present)
        return LayoutVerdict(STATUS_TRUNCATED, None, frames_declared, frames_present,
                             (truncated, *_warnings(layout)))
    return LayoutVerdict(STATUS_OK, None, frames_declared, frames_present, _warnings(layout))


def _inconsistent(layout: RiffLayout, block: int) -> LayoutVerdict:
    """data size 0, 0xFFFFFFFF or wrapped, but samples follow (FL012, A8): needs a repair."""
    recoverable = (layout.file_size - (layout.data_offset or 0)) // block
    rate = layout.fmt.sample_rate_hz if layout.fmt else 0
    return LayoutVerdict(STATUS_QUARANTINED, "header_inconsistent", None, 0, (
        f"the data chunk size is wrong or was never finalised (declared "
        f"{layout.data_size_declared} bytes, issues: {', '.join(layout.issues)}) "
        f"but {layout.file_size - (layout.data_offset or 0)} bytes follow - about "
        f"{recoverable} frames ({recoverable / rate if rate else 0:.1f} s) if they are samples. "
        "Nothing is used until a repair policy is chosen; the original is never rewritten.",))


def _no_frames(layout: RiffLayout, frames_declared: int, block: int) -> LayoutVerdict:
    """A data chunk without one whole frame: header_only (with metadata) or stub."""
    declared = layout.data_size_declared or 0
    if declared == 0 and not _has_metadata(layout):
        return LayoutVerdict(STATUS_QUARANTINED, "stub", 0, 0, (
            f"{layout.file_size}-byte WAV header with data size 0 and no metadata - a "
            "pre-allocated stub. Nothing to process.",))
    if declared == 0:
        text = ("header never finalised (recorder lost power or card filled): data size 0, "
                f"RIFF size {layout.riff_size_declared}. The initial metadata is still read; "
                "there is no audio to process.")
    else:
        text = (f"the data chunk declares {declared} bytes ({frames_declared} frames) but only "
                f"{layout.data_bytes_present} bytes are present, less than one {block}-byte "
                "frame. There is no audio to process; check whether a complete copy exists.")
    return LayoutVerdict(STATUS_QUARANTINED, "header_only", frames_declared, 0, (text,))


def _truncated_message(layout: RiffLayout, declared: int, present: int) -> str:
    rate = layout.fmt.sample_rate_hz if layout.fmt else 1
    return (
        f"truncated: the header declares {declared} frames ({declared / rate:.3f} s) but only "
        f"{present} frames ({present / rate:.3f} s) are present (power loss or an interrupted "
        "copy). Only the frames present are used; look for a complete copy on the card.")


def _warnings(layout: RiffLayout) -> tuple[str, ...]:
    """Messages for issues that do not change the status."""
    notes = {
        "riff_size_mismatch": f"RIFF size {layout.riff_size_declared} != file size - 8 "
                              f"({layout.file_size - 8}); the chunks were walked instead.",
        "block_align_mismatch": "fmt block align disagrees with channels x sample size; "
                                "the computed frame size is used.",
        "rf64_data_size_mismatch": "RF64 data size disagrees with ds64; the ds64 size is used.",
        "chunk_overruns_file": "a chunk after the audio is cut short; the audio is complete.",
        "garbage_after_chunks": f"{layout.trailing_bytes} bytes after the last chunk are not "
                                "a chunk; they are kept in the archive but ignored.",
        "data_before_fmt": "the data chunk comes before fmt (unusual order).",
    }
    return tuple(text for code, text in notes.items() if code in layout.issues)
