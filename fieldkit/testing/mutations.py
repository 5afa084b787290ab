"""The inputs of the parser fuzzer (:mod:`fieldkit.testing.fuzz`): seeds and seeded mutations.

The seeds are the real third-party files in ``tests/data`` (WAV files and annotation tables)
plus a few files built with :mod:`fieldkit.testing.riffwriter` that carry every metadata chunk
the recorder parsers read (``guan``, ``LIST/INFO`` with an AudioMoth comment, ``wamd``,
``bext``, ``iXML``, RF64 ``ds64``). Every input is a pure function of ``(seed, index)``: a crash
found in a long run is reproduced by :func:`make_input` alone.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from fieldkit.testing import riffwriter as rw

__all__ = ["FuzzInput", "Seed", "load_seeds", "make_input"]

_WAV_EXT = (".wav",)
_TABLE_EXT = (".txt", ".csv")
_MAX_SEED_BYTES = 4 * 1024 * 1024
_INTERESTING_32 = (0, 1, 2, 3, 7, 8, 15, 16, 17, 39, 40, 255, 256, 4096, 0x7FFF, 0x8000, 0xFFFF,
                   0x10000, 0x00FFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
_CHUNK_IDS = (b"fmt ", b"data", b"LIST", b"guan", b"wamd", b"bext", b"iXML", b"ds64", b"junk",
              b"JUNK", b"fact", b"cue ", b"smpl", b"\x00\x00\x00\x00", b"zz\xff\x01")
_GUANO_KEYS = ("GUANO|Version", "Make", "Model", "Serial", "Firmware Version", "Timestamp",
               "Loc Position", "Loc Elevation", "Temperature Int", "Temperature Ext",
               "OAD|Battery Voltage", "OAD|Deployment ID", "Original Filename", "Note",
               "Samplerate", "Length", "ZZ|Unknown", "WA|Song Meter|Prefix", "Species Auto ID")
_TEXT_ATOMS = ("", " ", "\t", "\n", "\r\n", "\r", ":", "|", "\\", "\x00", "-", "+", ".", ",",
               ";", "\"", "'", "NaN", "inf", "-inf", "-1", "0", "1e308", "1e-320", "99999999999",
               "2019-02-29T25:61:61", "2026-01-20T10:00:00+14:01", "+05", "-5:00", "UTC",
               "UTC+5:30", "(UTC-3)", "1970-01-01", "9999-12-31T23:59:59", "\ufeff", "\u2028",
               "é", "\udcff", "\U0001f426", "%2e%2e/", "../../etc/passwd", "A" * 300,
               "4.2V", "< 3.6V", "> 4.9V", "gain setting 9", "-91.5 -181.2", "N 52.1 W 1.2")
_AUDIOMOTH_COMMENTS = (
    ("Recorded at 10:00:00 24/03/2019 (UTC) by AudioMoth 24E144055E080032 at gain setting 2 "
     "while battery state was 4.2V."),
    ("Recorded at 22:10:05 05/06/2021 (UTC+5:30) during deployment ABC123 by AudioMoth "
     "24F319055FDF2F5B using external microphone at medium gain while battery was 3.9V and "
     "temperature was 21.4C. Recording stopped due to low voltage."),
    ("Recorded at 00:00:00 01/01/2020 (UTC-3) by AudioMoth 243B1F075C7B2D4B at high gain "
     "setting while battery state was less than 3.6V and temperature was -2.5C. "
     "Band-pass filter applied with cut-off frequencies of 1.0kHz and 8.0kHz."),
)
_IXML_TEXTS = (
    ("<?xml version=\"1.0\"?><BWFXML><IXML_VERSION>1.5</IXML_VERSION><PROJECT>p</PROJECT>"
     "<SCENE>1</SCENE><TAKE>2</TAKE><NOTE>n</NOTE></BWFXML>"),
    ("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;\">]>"
     "<BWFXML><NOTE>&b;</NOTE></BWFXML>"),
    ("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
     "<BWFXML><NOTE>&e;</NOTE></BWFXML>"),
    "<BWFXML><NOTE>unclosed",
)


# --- seeds --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One starting input: ``kind`` is ``wav`` (RIFF bytes) or ``table`` (annotation text)."""

    name: str
    kind: str
    data: bytes


def _synthetic_seeds() -> list[Seed]:
    """WAV files carrying every metadata chunk the recorder parsers read."""
    tone = (np.sin(np.arange(480) / 7.0) * 0.3).astype(np.float64)
    stamp = datetime(2024, 5, 17, 4, 30, 0)
    guano = rw.guano_text([
        ("GUANO|Version", "1.0"), ("Make", "Open Acoustic Devices"), ("Model", "AudioMoth"),
        ("Serial", "24E144055E080032"), ("Firmware Version", "1.8.0"),
        ("Timestamp", "2024-05-17T04:30:00+02:00"), ("Loc Position", "52.1 -1.2"),
        ("Loc Elevation", "120"), ("Temperature Int", "21.5"), ("OAD|Battery Voltage", "4.1"),
        ("OAD|Deployment ID", "1234567890ABCDEF"), ("Note", "line one\\nline two")])
    seeds = [
        Seed("synthetic/audiomoth_guano.WAV", "wav", rw.audiomoth_wav(
            tone, 48_000, rw.audiomoth_comment("1.8.0", time=stamp, utc_offset_minutes=120,
                                               deployment_id="1234567890ABCDEF"),
            guano=guano)),
        Seed("synthetic/20190324_100000.WAV", "wav", rw.audiomoth_header_only(
            rw.audiomoth_comment("1.2.2", time=stamp, utc_offset_minutes=330))),
        Seed("synthetic/S4A03895_20190522_000000.wav", "wav", rw.wav_bytes(tone, 24_000, before=[
            rw.wamd_chunk([(0x0001, "SM4"), (0x0003, "S4A03895"), (0x0005, "2019-05-22 00:00:00-05:00"),
                           (0x0006, "WGS84,47.60000,N,122.30000,W,10.0"), (0x0099, b"\x01\x02raw")]),
        ])),
        Seed("synthetic/bwf_ixml.wav", "wav", rw.wav_bytes(tone, 48_000, before=[
            rw.bext_chunk(description="sTRK1=Mix\r\nsSCENE=1\r\n", originator="Sound Devices",
                          originator_reference="USSDVAA", date="2024-05-17", time="04:30:00",
                          time_reference=48_000 * 3600, version=2,
                          coding_history="A=PCM,F=48000,W=24,M=mono\r\n"),
            rw.ixml_chunk(_IXML_TEXTS[0]),
        ])),
        Seed("synthetic/rf64.wav", "wav", rw.rf64_bytes(tone, 48_000)),
        Seed("synthetic/CONFIG.TXT", "config", (
            "Device ID                       : 24E144055E080032\r\n"
            "Firmware                        : AudioMoth-Firmware-Basic (1.8.0)\r\n"
            "Time zone                       : UTC+2\r\n"
            "Sample rate (Hz)                : 48000\r\n"
            "Gain                            : Medium\r\n"
            "Sleep duration (s)              : 5\r\n"
            "Recording duration (s)          : 55\r\n"
            "Active recording periods        : 1\r\n"
            "Recording period 1 (UTC)        : 00:00 - 24:00\r\n").encode("ascii")),
    ]
    return seeds


def load_seeds(data_dir: str | Path) -> list[Seed]:
    """The seeds: every WAV and annotation table under ``data_dir`` plus the synthetic ones.

    Parameters
    ----------
    data_dir : path-like
        ``tests/data`` of the repository.

    Returns
    -------
    list of Seed
        Sorted by name, so a seed number means the same file on every machine.
    """
    root = Path(data_dir)
    seeds = []
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if not path.is_file() or path.stat().st_size > _MAX_SEED_BYTES:
            continue
        name = path.relative_to(root).as_posix()
        if suffix in _WAV_EXT:
            seeds.append(Seed(name, "wav", path.read_bytes()))
        elif suffix in _TABLE_EXT and path.name != "PROVENANCE.md":
            seeds.append(Seed(name, "table", path.read_bytes()))
    return sorted(seeds + _synthetic_seeds(), key=lambda s: s.name)


# --- mutations ----------------------------------------------------------------------------------


def _chunk_offsets(data: bytes) -> list[int]:
    """Offsets of plausible chunk headers (a naive walk from byte 12 that stops on nonsense)."""
    offsets, pos = [], 12
    while pos + 8 <= len(data) and len(offsets) < 64:
        offsets.append(pos)
        size = struct.unpack_from("<I", data, pos + 4)[0]
        pos += 8 + size + (size & 1)
    return offsets


def _random_text(rng: random.Random, base: str = "") -> str:
    parts = [base] if base else []
    for _ in range(rng.randint(1, 12)):
        parts.append(rng.choice(_TEXT_ATOMS) if rng.random() < 0.7
                     else "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 20))))
    rng.shuffle(parts)
    return "".join(parts)


def _random_guano(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 14)):
        key = rng.choice(_GUANO_KEYS) if rng.random() < 0.8 else _random_text(rng)
        value = _random_text(rng) if rng.random() < 0.6 else rng.choice(_TEXT_ATOMS)
        lines.append(f"{key}{rng.choice([':', ':', ': ', '', '::'])}{value}")
    text = rng.choice(["\n", "\r\n", "\r"]).join(lines)
    encoding = rng.choice(["utf-8", "latin-1", "utf-16"])
    return text.encode(encoding, errors="replace")


def _random_comment(rng: random.Random) -> bytes:
    base = rng.choice(_AUDIOMOTH_COMMENTS)
    words = base.split(" ")
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(words))
        action = rng.random()
        if action < 0.4:
            words[i] = rng.choice(_TEXT_ATOMS)
        elif action < 0.7:
            words.insert(i, _random_text(rng))
        else:
            del words[i]
            if not words:
                words = [""]
    text = " ".join(words)
    if rng.random() < 0.2:
        text = "{\"opensoundscape\": " + json.dumps(text)[: rng.randint(0, 400)] + "}"
    return text.encode("utf-8", errors="surrogatepass")[:384].ljust(384, b"\x00")


def _random_ixml(rng: random.Random) -> bytes:
    text = rng.choice(_IXML_TEXTS)
    cut = rng.randint(0, len(text))
    if rng.random() < 0.5:
        text = text[:cut] + _random_text(rng) + text[cut:]
    else:
        text = text[:cut]
    return text.encode("utf-8", errors="surrogatepass")


def _random_wamd(rng: random.Random) -> bytes:
    body = b""
    for _ in range(rng.randint(0, 8)):
        ident = rng.choice([0, 1, 2, 3, 5, 6, 0x12, 0x99, 0xFFFF, rng.randrange(65536)])
        value = _random_text(rng).encode("utf-8", errors="surrogatepass")
        declared = len(value) if rng.random() < 0.7 else rng.choice(_INTERESTING_32)
        body += struct.pack("<HI", ident, declared) + value
    return body


def _random_bext(rng: random.Random) -> bytes:
    fields = [_random_text(rng).encode("latin-1", errors="replace") for _ in range(5)]
    body = struct.pack("<256s32s32s10s8sQH64s5h180s", fields[0], fields[1], fields[2],
                       fields[3], fields[4], rng.choice(_INTERESTING_32) * rng.randint(0, 5),
                       rng.randint(0, 65535), b"", 0, 0, 0, 0, 0, b"")
    return body[: rng.randint(0, len(body))] if rng.random() < 0.3 else body + fields[0]


def _with_chunk(rng: random.Random, data: bytes, chunk_id: bytes, body: bytes) -> bytes:
    offsets = _chunk_offsets(data) or [min(len(data), 12)]
    at = rng.choice(offsets + [len(data)])
    pad = b"\x00" if len(body) % 2 and rng.random() < 0.5 else b""
    return data[:at] + chunk_id + struct.pack("<I", len(body)) + body + pad + data[at:]


def _bit_flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    if not out:
        return bytes([rng.randrange(256)])
    # most flips land in the header region, where the parsers look
    span = min(len(out), 4096) if rng.random() < 0.8 else len(out)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(span)] ^= 1 << rng.randrange(8)
    return bytes(out)


def _byte_set(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data or b"\x00")
    span = min(len(out), 4096)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(span)
        value = struct.pack("<I", rng.choice(_INTERESTING_32))
        out[at:at + 4] = value
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    cut = rng.choice([rng.randint(0, min(len(data), 600)), rng.randint(0, len(data)),
                      len(data) - rng.randint(1, min(len(data), 16))])
    return data[:cut]


def _chunk_size_lie(rng: random.Random, data: bytes) -> bytes:
    # the size fields: the RIFF size at 4, then each chunk's at its header + 4
    at = rng.choice([4] + [offset + 4 for offset in _chunk_offsets(data)])
    if at + 4 > len(data):
        return _truncate(rng, data)
    true = struct.unpack_from("<I", data, at)[0]
    lie = rng.choice([*_INTERESTING_32, (true + 1) & 0xFFFFFFFF, max(true - 1, 0),
                      (true * 2) & 0xFFFFFFFF, true ^ 0x80000000])
    return data[:at] + struct.pack("<I", lie) + data[at + 4:]


def _insert_chunk(rng: random.Random, data: bytes) -> bytes:
    chunk_id = rng.choice(_CHUNK_IDS)
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 16, 40, 200])))
    return _with_chunk(rng, data, chunk_id, body)


def _guano_text(rng: random.Random, data: bytes) -> bytes:
    return _with_chunk(rng, data, b"guan", _random_guano(rng))


def _comment_text(rng: random.Random, data: bytes) -> bytes:
    icmt = b"ICMT" + struct.pack("<I", 384) + _random_comment(rng)
    iart = _random_text(rng, "AudioMoth ").encode("utf-8", errors="surrogatepass")[:32]
    iart = b"IART" + struct.pack("<I", len(iart)) + iart + (b"\x00" if len(iart) % 2 else b"")
    return _with_chunk(rng, data, b"LIST", b"INFO" + icmt + iart)


def _ixml_text(rng: random.Random, data: bytes) -> bytes:
    return _with_chunk(rng, data, b"iXML", _random_ixml(rng))


def _vendor_chunk(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.5:
        return _with_chunk(rng, data, b"wamd", _random_wamd(rng))
    return _with_chunk(rng, data, b"bext", _random_bext(rng))


def _splice(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 4:
        return data + data
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 512))
    at = rng.randrange(len(data))
    return data[:at] + data[a:b] + data[at:]


def _text_lines(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(lines))
        action = rng.random()
        if action < 0.3:
            cells = lines[i].split(rng.choice(["\t", ","]))
            cells[rng.randrange(len(cells))] = rng.choice(_TEXT_ATOMS)
            lines[i] = rng.choice(["\t", ","]).join(cells)
        elif action < 0.5:
            lines.insert(i, _random_text(rng))
        elif action < 0.65 and len(lines) > 1:
            del lines[i]
        elif action < 0.8:
            lines.insert(i, lines[i])
        else:
            lines[i] = lines[i] + rng.choice(["\t", ",", "\"", "\t\t\t", ";"]) + _random_text(rng)
    encoding = rng.choice(["utf-8", "utf-8", "cp1252", "utf-16"])
    return rng.choice(["\n", "\r\n", "\r"]).join(lines).encode(encoding, errors="replace")


_WAV_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "bit_flip": _bit_flip, "byte_set": _byte_set, "truncate": _truncate,
    "chunk_size_lie": _chunk_size_lie, "insert_chunk": _insert_chunk, "guano_text": _guano_text,
    "comment_text": _comment_text, "ixml_text": _ixml_text, "vendor_chunk": _vendor_chunk,
    "splice": _splice,
}
_TEXT_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "bit_flip": _bit_flip, "truncate": _truncate, "text_lines": _text_lines, "splice": _splice,
}


@dataclass(frozen=True)
class FuzzInput:
    """One generated input: where it came from, how it was made, and its bytes."""

    index: int
    seed_name: str
    kind: str
    mutations: tuple[str, ...]
    data: bytes


def make_input(seeds: list[Seed], seed: int, index: int) -> FuzzInput:
    """The ``index``-th input of the run seeded with ``seed`` (1-3 stacked mutations).

    Parameters
    ----------
    seeds : list of Seed
        From :func:`load_seeds`.
    seed, index : int
        The run's seed and the input's number; the same pair always gives the same bytes.

    Returns
    -------
    FuzzInput
    """
    rng = random.Random(f"{seed}:{index}")
    base = seeds[rng.randrange(len(seeds))]
    table = _WAV_MUTATIONS if base.kind == "wav" else _TEXT_MUTATIONS
    names = tuple(rng.choice(sorted(table)) for _ in range(rng.choice([1, 1, 1, 2, 3])))
    data = base.data
    for name in names:
        data = table[name](rng, data)
    return FuzzInput(index, base.name, base.kind, names, data)
