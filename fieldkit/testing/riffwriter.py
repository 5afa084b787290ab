"""Build WAV bytes with arbitrary chunks and deliberate faults, for tests.

Everything returns ``bytes`` so tests can write files wherever they like::

    from fieldkit.testing import riffwriter as rw
    body = rw.wav_bytes(samples, 48_000, before=[rw.info_list(ICMT="...")],
                        after=[rw.guan_chunk("GUANO|Version:1.0\\n...")])
    header_only = rw.audiomoth_header_only(rw.audiomoth_comment("1.6.0", time=...))

Faults on purpose: ``data_size=`` (a wrong declared size), ``riff_size=``, ``pad=False`` (an
odd chunk without its pad byte), :func:`audiomoth_header_only` (the 488-byte file a recorder
leaves after power loss), :func:`rf64_bytes` with a wrong 32-bit data size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

__all__ = [
    "AUDIOMOTH_ERAS",
    "audiomoth_comment",
    "audiomoth_header_only",
    "audiomoth_wav",
    "bext_chunk",
    "chunk",
    "data_chunk",
    "fmt_chunk",
    "guan_chunk",
    "guano_text",
    "info_list",
    "ixml_chunk",
    "pcm_bytes",
    "rf64_bytes",
    "riff_file",
    "wamd_chunk",
    "wav_bytes",
]

_EXTENSIBLE_TAIL = bytes.fromhex("000000001000800000aa00389b71")
AUDIOMOTH_ERAS = ("1.0", "1.0.1", "1.2.0", "1.2.1", "1.2.2", "1.4.0", "1.5.0", "1.6.0",
                  "1.7.0", "1.8.0")
_GAIN_NAMES = ("low", "low-medium", "medium", "medium-high", "high")


def chunk(chunk_id: str | bytes, body: bytes, *, size: int | None = None, pad: bool = True) -> bytes:
    """One chunk: id, size (``size`` overrides the true length), body and pad byte if odd."""
    raw_id = chunk_id.encode("latin-1") if isinstance(chunk_id, str) else chunk_id
    declared = len(body) if size is None else size
    pad_byte = b"\x00" if pad and len(body) % 2 else b""
    return raw_id + struct.pack("<I", declared) + body + pad_byte


def fmt_chunk(
    sample_rate_hz: int = 48_000,
    channels: int = 1,
    bits: int = 16,
    *,
    format_tag: int = 1,
    extensible: bool = False,
    block_align: int | None = None,
) -> bytes:
    """A ``fmt `` chunk (16 bytes, or 40 for WAVE_FORMAT_EXTENSIBLE with ``format_tag`` inside)."""
    align = channels * ((bits + 7) // 8) if block_align is None else block_align
    tag = 0xFFFE if extensible else format_tag
    body = struct.pack("<HHIIHH", tag, channels, sample_rate_hz, sample_rate_hz * align, align, bits)
    if extensible:
        body += struct.pack("<HHIH", 22, bits, 0, format_tag) + _EXTENSIBLE_TAIL
    return chunk("fmt ", body)


def data_chunk(sample_bytes: bytes, *, size: int | None = None, pad: bool = True) -> bytes:
    """The ``data`` chunk; ``size`` declares a different (wrong) size."""
    return chunk("data", sample_bytes, size=size, pad=pad)


def info_list(pad_to: dict[str, int] | None = None, **fields: str) -> bytes:
    """A ``LIST``/``INFO`` chunk, e.g. ``info_list(ICMT="...", IART="AudioMoth ...")``.

    ``pad_to`` NUL-pads named fields to a fixed size (AudioMoth: ICMT 384, IART 32).
    """
    body = b"INFO"
    for key, text in fields.items():
        value = text.encode("utf-8") + b"\x00"
        width = (pad_to or {}).get(key)
        if width:
            value = value[:width].ljust(width, b"\x00")
        body += chunk(key, value)
    return chunk("LIST", body)


def guano_text(fields: dict[str, str] | Sequence[tuple[str, str]], *, separator: str = ":") -> str:
    """GUANO text: one ``Key<separator>value`` per line, in the given order."""
    items = fields.items() if isinstance(fields, dict) else fields
    return "\n".join(f"{key}{separator}{value}" for key, value in items)


def guan_chunk(text: str | bytes, *, pad: bool = False) -> bytes:
    """A ``guan`` chunk; by default *without* a pad byte, as AudioMoth writes it."""
    body = text.encode("utf-8") if isinstance(text, str) else text
    return chunk("guan", body, pad=pad)


def wamd_chunk(entries: Iterable[tuple[int, bytes | str]]) -> bytes:
    """A ``wamd`` chunk of ``(id, value)`` records (text is UTF-8 encoded)."""
    body = b""
    for ident, value in entries:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        body += struct.pack("<HI", ident, len(raw)) + raw
    return chunk("wamd", body)


def bext_chunk(
    *,
    description: str = "",
    originator: str = "",
    originator_reference: str = "",
    date: str = "",
    time: str = "",
    time_reference: int = 0,
    version: int = 1,
    umid: bytes = b"",
    coding_history: str = "",
) -> bytes:
    """A ``bext`` chunk (EBU Tech 3285 v0-v2 layout, 602 bytes + coding history)."""
    body = struct.pack(
        "<256s32s32s10s8sQH64s5h180s",
        description.encode("latin-1"), originator.encode("latin-1"),
        originator_reference.encode("latin-1"), date.encode("ascii"), time.encode("ascii"),
        time_reference, version, umid, 0, 0, 0, 0, 0, b"",
    )
    return chunk("bext", body + coding_history.encode("latin-1"))


def ixml_chunk(xml: str | bytes) -> bytes:
    """An ``iXML`` chunk."""
    return chunk("iXML", xml.encode("utf-8") if isinstance(xml, str) else xml)


def riff_file(chunks: Iterable[bytes], *, container: str = "RIFF", riff_size: int | None = None) -> bytes:
    """``RIFF`` + size + ``WAVE`` + the chunks; ``riff_size`` overrides the true size."""
    body = b"WAVE" + b"".join(chunks)
    size = len(body) if riff_size is None else riff_size
    endian = ">" if container == "RIFX" else "<"
    return container.encode("ascii") + struct.pack(endian + "I", size) + body


def pcm_bytes(samples: np.ndarray, bits: int = 16, *, sample_format: str = "int") -> bytes:
    """Encode samples (full scale 1.0, shape ``(frames,)`` or ``(frames, channels)``).

    ``sample_format="int"`` rounds to signed ``bits`` PCM (8 bits are unsigned, as in WAV) and
    clips at full scale; ``"float"`` writes IEEE float32/float64 unchanged (NaN, > 1.0 kept).
    """
    values = np.asarray(samples, dtype=np.float64)
    if sample_format == "float":
        return values.astype("<f4" if bits == 32 else "<f8").tobytes()
    top = 2 ** (bits - 1)
    codes = np.clip(np.round(values * top), -top, top - 1).astype(np.int64)
    if bits == 8:
        return (codes + 128).astype(np.uint8).tobytes()
    if bits == 24:
        raw = codes.astype("<i4").tobytes()
        return b"".join(raw[i:i + 3] for i in range(0, len(raw), 4))
    return codes.astype({16: "<i2", 32: "<i4"}[bits]).tobytes()


def wav_bytes(
    samples: np.ndarray,
    sample_rate_hz: int,
    *,
    bits: int = 16,
    sample_format: str = "int",
    extensible: bool = False,
    before: Iterable[bytes] = (),
    after: Iterable[bytes] = (),
    data_size: int | None = None,
    riff_size: int | None = None,
    truncate_to: int | None = None,
) -> bytes:
    """A complete WAV file; ``truncate_to`` cuts the result to that many bytes."""
    channels = 1 if np.ndim(samples) == 1 else np.shape(samples)[1]
    tag = 3 if sample_format == "float" else 1
    chunks = [*before, fmt_chunk(sample_rate_hz, channels, bits, format_tag=tag, extensible=extensible),
              data_chunk(pcm_bytes(samples, bits, sample_format=sample_format), size=data_size),
              *after]
    out = riff_file(chunks, riff_size=riff_size)
    return out if truncate_to is None else out[:truncate_to]


def rf64_bytes(
    samples: np.ndarray, sample_rate_hz: int, *, bits: int = 16, data_size_32: int = 0xFFFFFFFF,
    ds64_data_size: int | None = None,
) -> bytes:
    """An RF64 file with a ``ds64`` chunk; ``data_size_32`` may be set to a wrong value."""
    channels = 1 if np.ndim(samples) == 1 else np.shape(samples)[1]
    payload = pcm_bytes(samples, bits)
    data_size = len(payload) if ds64_data_size is None else ds64_data_size
    frames = data_size // (channels * ((bits + 7) // 8))
    rest = fmt_chunk(sample_rate_hz, channels, bits) + chunk("data", payload, size=data_size_32)
    riff_size = 4 + 36 + len(rest)  # "WAVE" + ds64 chunk (8 + 28) + the rest
    ds64 = chunk("ds64", struct.pack("<QQQI", riff_size, data_size, frames, 0))
    return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + ds64 + rest


def _era(era: str) -> tuple[int, ...]:
    if era not in AUDIOMOTH_ERAS:
        raise ValueError(f"unknown AudioMoth era {era!r}; known: {', '.join(AUDIOMOTH_ERAS)}")
    return tuple(int(p) for p in era.split("."))


def _zone(offset_minutes: int) -> str:
    if offset_minutes == 0:
        return "UTC"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def _battery(version: tuple[int, ...], volts: float, bound: str | None) -> str:
    """Battery wording: ``< 3.6V``/``> 5.0V`` before 1.4, ``less than 2.5V`` after."""
    if bound == "low":
        return "< 3.6V" if version < (1, 4) else "less than 2.5V"
    if bound == "high":
        return "> 5.0V" if version < (1, 4) else "greater than 4.9V"
    return f"{volts:.1f}V"


def audiomoth_comment(
    era: str,
    *,
    time: datetime,
    utc_offset_minutes: int = 0,
    serial: str = "24E144055E080032",
    deployment_id: str | None = None,
    external_mic: bool = False,
    gain: int = 2,
    battery_v: float = 4.2,
    battery_bound: str | None = None,
    temperature_c: float = 18.9,
    filter_text: str | None = None,
    trigger_text: str | None = None,
    stop_reason: str | None = None,
) -> str:
    """The literal ICMT comment AudioMoth firmware of ``era`` writes (see AUDIOMOTH_ERAS).

    ``gain`` is the index 0-4 (low..high); ``battery_bound`` ``"low"``/``"high"`` writes the
    firmware's out-of-range wording; ``deployment_id`` and ``external_mic`` apply from 1.5.0,
    temperature, filter and trigger text from 1.4.0, a stop reason from 1.2.1.
    """
    version = _era(era)
    text = f"Recorded at {time:%H:%M:%S %d/%m/%Y}"
    if version > (1, 0):
        text += f" ({_zone(utc_offset_minutes)})"
    if deployment_id and version >= (1, 5):
        text += f" during deployment {deployment_id}"
    else:
        text += f" by AudioMoth {serial}"
    if external_mic and version >= (1, 5):
        text += " using external microphone"
    text += _gain_and_battery(version, gain, battery_v, battery_bound)
    if version >= (1, 4):
        text += f" and temperature was {temperature_c:.1f}C"
    text += "." if version >= (1, 2) else ""
    return text + _tail(version, filter_text, trigger_text, stop_reason)


def _gain_and_battery(version: tuple[int, ...], gain: int, volts: float, bound: str | None) -> str:
    battery = _battery(version, volts, bound)
    if version < (1, 4):
        return f" at gain setting {gain} while battery state was {battery}"
    if version < (1, 6):
        return f" at {_GAIN_NAMES[gain]} gain setting while battery state was {battery}"
    return f" at {_GAIN_NAMES[gain]} gain while battery was {battery}"


def _tail(version: tuple[int, ...], filter_text: str | None, trigger_text: str | None,
          stop_reason: str | None) -> str:
    tail = ""
    if version >= (1, 4):
        tail += "".join(f" {t}." for t in (filter_text, trigger_text) if t)
    if stop_reason and version >= (1, 2, 1):
        verb = "stopped" if version >= (1, 7) else "cancelled before completion"
        tail += f" Recording {verb} due to {stop_reason}."
    return tail


def audiomoth_header_only(comment: str, serial: str = "24E144055E080032",
                          sample_rate_hz: int = 48_000) -> bytes:
    """The 488-byte file a recorder leaves after power loss: data size 0, RIFF size 480."""
    return audiomoth_wav(np.zeros(0), sample_rate_hz, comment, serial)


def audiomoth_wav(samples: np.ndarray, sample_rate_hz: int, comment: str,
                  serial: str = "24E144055E080032", *, guano: str | None = None) -> bytes:
    """An AudioMoth-layout WAV: fmt, LIST (ICMT 384 + IART 32), data, optional odd ``guan``."""
    info = info_list(pad_to={"ICMT": 384, "IART": 32}, ICMT=comment, IART=f"AudioMoth {serial}")
    chunks = [fmt_chunk(sample_rate_hz, 1, 16), info, data_chunk(pcm_bytes(samples, 16))]
    if guano is not None:
        chunks.append(guan_chunk(guano))
    return riff_file(chunks)
