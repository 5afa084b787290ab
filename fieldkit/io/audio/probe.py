"""Probe an audio file: what it really is, how much of it is there, and cheap QC.

:func:`probe` never raises for bad audio: an empty, stubbed, truncated, mislabelled or corrupt
file comes back as :class:`~fieldkit.model.audio.AudioFacts` with a status, a reason code and a
message that names the file, says what was expected and found, and what to do next
(docs/reliability.md, A1-A8).

Why not trust libsndfile alone: when a WAV ``data`` chunk claims more bytes than the file holds,
libsndfile silently clamps the length, so a truncated recording would look complete. Frame counts
for RIFF files are therefore computed here from the chunk walk, and samples are then streamed
with soundfile over the frames actually present. The stdlib ``wave`` module is never used (it
rejects 32-bit float and extensible files).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import BinaryIO

import soundfile as sf

from fieldkit.io.audio.scan import DEFAULT_BLOCK_FRAMES, INTEGER_BITS, ScanResult, scan_samples
from fieldkit.io.riff.chunks import walk_riff
from fieldkit.io.riff.verdict import LINEAR_TAGS, LayoutVerdict, judge_layout
from fieldkit.model.audio import (
    STATUS_QUARANTINED,
    STATUS_TRUNCATED,
    AudioFacts,
    RiffLayout,
)

__all__ = ["flac_streaminfo", "probe", "sniff_format"]

_W64_GUID_TAIL = bytes.fromhex("2e91cf11a5d628db04c10000")
_NUL_CHUNK_BYTES = 1 << 20
_LOSSY = ("ogg", "mp3")


def sniff_format(head: bytes) -> str:
    """Identify an audio container from its first bytes, ignoring the file extension.

    Parameters
    ----------
    head : bytes
        At least the first 16 bytes of the file (more helps after an ID3 tag).

    Returns
    -------
    str
        ``wav`` (RIFF/RIFX), ``rf64`` (RF64/BW64), ``w64``, ``flac``, ``ogg``, ``mp3``,
        ``aiff`` or ``unknown``.
    """
    if head[:4] in (b"RIFF", b"RIFX"):
        return "wav"
    if head[:4] in (b"RF64", b"BW64"):
        return "rf64"
    if head[:4] == b"riff" and head[4:16] == _W64_GUID_TAIL:
        return "w64"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3":
        return "flac" if head[_id3_length(head):][:4] == b"fLaC" else "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"
    return "unknown"


def _id3_length(head: bytes) -> int:
    """Total length of an ID3v2 tag (10-byte header + syncsafe size)."""
    if len(head) < 10:
        return len(head)
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size


def flac_streaminfo(head: bytes) -> tuple[int | None, bool]:
    """Read total samples and whether the MD5 is known from a FLAC STREAMINFO block.

    Parameters
    ----------
    head : bytes
        Bytes starting at ``fLaC`` (at least 42 bytes).

    Returns
    -------
    (int or None, bool)
        Total samples per channel (None when the encoder wrote 0 = unknown) and False when
        the MD5 signature is all zero (unknown, which is not a failure).
    """
    if len(head) < 42 or head[:4] != b"fLaC":
        return None, False
    packed = int.from_bytes(head[18:26], "big")
    total = packed & ((1 << 36) - 1)
    return (total or None), any(head[26:42])


def probe(path: str | os.PathLike[str], *, block_frames: int = DEFAULT_BLOCK_FRAMES) -> AudioFacts:
    """Identify, measure and QC one audio file without ever raising for bad audio.

    Parameters
    ----------
    path : path-like
        The file (the archived copy; it is opened read-only).
    block_frames : int
        Frames per block for the streaming QC pass.

    Returns
    -------
    AudioFacts

    Raises
    ------
    OSError
        Only when the file itself cannot be opened or read (not an audio problem).
    """
    path = os.fspath(path)
    base = AudioFacts(
        path=path,
        file_size_bytes=os.path.getsize(path),
        detected_format="unknown",
        declared_extension=os.path.splitext(path)[1].lstrip(".").lower(),
    )
    if base.file_size_bytes == 0:
        return _quarantine(base, "empty", "0 bytes - the recorder produced an empty file")
    with open(path, "rb") as fileobj:
        head = fileobj.read(4096)
        if _all_nul(fileobj, head, base.file_size_bytes):
            return _quarantine(base, "null_bytes", _null_message(base.file_size_bytes))
        detected = sniff_format(head)
        base = replace(base, detected_format=detected)
        if detected in ("wav", "rf64"):
            return _probe_riff(fileobj, base, block_frames)
    if detected == "unknown":
        return _quarantine(base, "not_audio", _not_audio_message(head))
    return _probe_other(base, head, block_frames)


def _all_nul(fileobj: BinaryIO, head: bytes, size: int) -> bool:
    """True when every byte is NUL; stops at the first non-NUL block."""
    if any(head):
        return False
    fileobj.seek(len(head))
    while block := fileobj.read(_NUL_CHUNK_BYTES):
        if any(block):
            return False
    return True


def _null_message(size: int) -> str:
    return (
        f"all {size} bytes are NUL - expected audio, found a file that was allocated but never "
        "written (low battery or card fault). It is archived as is; check the recorder's battery."
    )


def _not_audio_message(head: bytes) -> str:
    return (
        f"not a known audio format: expected RIFF/WAVE, RF64, FLAC, Ogg, MP3 or AIFF magic bytes, "
        f"found {head[:8]!r}. It is archived as is; open it by hand to see what it holds."
    )


def _quarantine(facts: AudioFacts, reason: str, message: str) -> AudioFacts:
    """Return ``facts`` quarantined with ``reason`` and a message naming the file."""
    name = os.path.basename(facts.path)
    return replace(
        facts, status=STATUS_QUARANTINED, reason=reason,
        messages=facts.messages + (f"{name}: {message}",),
    )


# --- RIFF / RF64 -------------------------------------------------------------------------


def _probe_riff(fileobj: BinaryIO, base: AudioFacts, block_frames: int) -> AudioFacts:
    """Probe a RIFF-family file: judge the header, then decode the frames present."""
    layout = walk_riff(fileobj, base.file_size_bytes)
    facts = replace(base, layout=layout, **_format_fields(layout))
    verdict = judge_layout(layout)
    facts = _apply_verdict(facts, verdict)
    if facts.status == STATUS_QUARANTINED:
        return facts
    return _decode(facts, verdict.frames_present, block_frames)


def _format_fields(layout: RiffLayout) -> dict[str, object]:
    """Sample rate, channels, bit depth and subtype as the fmt chunk states them."""
    fmt = layout.fmt
    if fmt is None or "fmt_implausible" in layout.issues:
        return {}
    return {
        "sample_rate_hz": fmt.sample_rate_hz,
        "channels": fmt.channels,
        "bit_depth": fmt.valid_bits or fmt.bits_per_sample,
        "subtype": _subtype_from_fmt(fmt.effective_tag, fmt.bits_per_sample),
    }


def _subtype_from_fmt(tag: int, bits: int) -> str | None:
    """The soundfile subtype name a fmt tag and bit depth correspond to."""
    kind = LINEAR_TAGS.get(tag)
    if kind == "PCM":
        return "PCM_U8" if bits <= 8 else f"PCM_{8 * ((bits + 7) // 8)}"
    if kind == "FLOAT":
        return "DOUBLE" if bits == 64 else "FLOAT"
    return kind


def _apply_verdict(facts: AudioFacts, verdict: LayoutVerdict) -> AudioFacts:
    """Copy a verdict into the facts, prefixing every message with the file name."""
    name = os.path.basename(facts.path)
    present = verdict.frames_present or 0
    rate = facts.sample_rate_hz or 0
    return replace(
        facts, status=verdict.status, reason=verdict.reason,
        frames_declared=verdict.frames_declared, frames_present=present,
        duration_s=present / rate if rate else 0.0,
        messages=facts.messages + tuple(f"{name}: {m}" for m in verdict.messages),
    )


# --- decoding (all formats) ---------------------------------------------------------------


def _decode(facts: AudioFacts, frames_limit: int | None, block_frames: int) -> AudioFacts:
    """Stream the frames present through soundfile for QC and the decoded frame count."""
    try:
        with sf.SoundFile(facts.path) as sound:
            facts = replace(facts, subtype=sound.subtype,
                            sample_rate_hz=sound.samplerate, channels=sound.channels)
            result = scan_samples(sound, frames_limit, block_frames=block_frames,
                                  valid_bits=_valid_bits(facts))
    except sf.LibsndfileError as exc:
        return _quarantine(facts, "unreadable", (
            f"libsndfile cannot decode it ({exc.error_string}) - expected "
            f"{facts.detected_format} audio. The bytes are archived unchanged; a repair tool "
            "may recover it."))
    return _after_decode(facts, frames_limit, result)


def _valid_bits(facts: AudioFacts) -> int | None:
    """Meaningful bits of integer PCM when fewer than the container (20 of 24...)."""
    fmt = facts.layout.fmt if facts.layout else None
    if fmt is None or fmt.effective_tag != 1:
        return None
    return fmt.valid_bits or fmt.bits_per_sample


def _after_decode(facts: AudioFacts, frames_limit: int | None, result: ScanResult) -> AudioFacts:
    """Reconcile the decoded frame count with the header and flag corrupt samples."""
    name = os.path.basename(facts.path)
    frames = result.frames_read
    rate = facts.sample_rate_hz or 0
    expected = frames_limit if frames_limit is not None else facts.frames_declared
    facts = replace(facts, qc=result.qc, frames_present=frames,
                    duration_s=frames / rate if rate else 0.0)
    if result.error or (expected is not None and frames < expected):
        facts = replace(facts, messages=facts.messages + (
            f"{name}: expected {expected} frames, decoding stopped after {frames} "
            f"({result.error or 'end of stream'}); only the frames decoded are used.",))
    if facts.frames_declared is not None and 0 < frames < facts.frames_declared:
        facts = replace(facts, status=STATUS_TRUNCATED)
    if frames == 0:
        return _quarantine(facts, facts.reason or "header_only", "no frame could be decoded.")
    if result.qc.nonfinite_samples:
        return _quarantine(facts, "corrupt_samples", (
            f"{result.qc.nonfinite_samples} NaN/Inf samples (first at frames "
            f"{list(result.qc.nonfinite_frames[:5])}) - expected finite floating-point samples. "
            "Check the recorder or the software that wrote the file."))
    return facts


def _probe_other(base: AudioFacts, head: bytes, block_frames: int) -> AudioFacts:
    """Probe FLAC, Ogg, MP3, AIFF and W64 through soundfile, decoding every frame."""
    try:
        info = sf.info(base.path)
    except sf.LibsndfileError as exc:
        return _quarantine(base, "unreadable", (
            f"looks like {base.detected_format} but libsndfile cannot open it "
            f"({exc.error_string}). The bytes are archived unchanged."))
    declared, notes = _declared_frames(base.detected_format, head, info.frames)
    facts = replace(
        base, sample_rate_hz=info.samplerate, channels=info.channels, subtype=info.subtype,
        bit_depth=INTEGER_BITS.get(info.subtype) or {"FLOAT": 32, "DOUBLE": 64}.get(info.subtype),
        frames_declared=declared,
        messages=base.messages + tuple(f"{os.path.basename(base.path)}: {n}" for n in notes),
    )
    return _decode(facts, None, block_frames)


def _declared_frames(detected: str, head: bytes, sf_frames: int) -> tuple[int | None, list[str]]:
    """Frames the header declares; lossy formats only estimate, so they declare None."""
    if detected in _LOSSY:
        return None, []
    if detected != "flac":
        return sf_frames, []
    start = head.find(b"fLaC")
    total, md5_known = flac_streaminfo(head[start:] if start >= 0 else b"")
    notes = [] if md5_known else ["FLAC MD5 signature is unset (unknown, not a failure)."]
    if total is None:
        notes.append("FLAC STREAMINFO total samples is 0 (unknown); frames were counted by "
                     "decoding every frame.")
    return total, notes
