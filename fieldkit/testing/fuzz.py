"""A seeded mutation fuzzer for fieldkit's parsers of untrusted bytes (issue #14).

The seeds are the real third-party files in ``tests/data`` (WAV files and annotation tables)
plus a few files built with :mod:`fieldkit.testing.riffwriter` that carry every metadata chunk
the recorder parsers read (``guan``, ``LIST/INFO`` with an AudioMoth comment, ``wamd``,
``bext``, ``iXML``, RF64 ``ds64``), so that each parser sees well-formed input to mutate.
Every input is a pure function of ``(seed, index)``: a crash found in a long run is reproduced
by :func:`make_input` alone.

Targets and what each may raise (everything else is a crash):

``riff``         :func:`fieldkit.io.riff.chunks.walk_riff` + :func:`~fieldkit.io.riff.verdict.judge_layout`;
                 :class:`~fieldkit.errors.AudioFormatError` when the bytes are not RIFF at all
``recorders``    :func:`fieldkit.io.recorders.reader.read_recorder_metadata` (every registered
                 source), then each pure parser (GUANO, LIST/INFO, AudioMoth comment,
                 OpenSoundscape wrapper, ``wamd``, ``bext``, iXML, file names, CONFIG.TXT)
                 directly on the mutated chunk bodies and text; nothing may raise
``annotations``  the ``raven``, ``audacity`` and ``csv`` readers;
                 :class:`~fieldkit.errors.FieldkitError` subclasses (``AnnotationError``);
                 and the Song Meter summary parser on the same text (it never raises)

A parser may raise only fieldkit's own typed errors (:class:`~fieldkit.errors.FieldkitError`);
any other exception, or one input taking more than :data:`SLOW_S`, is reported with the input
written to the crash folder. Run it with ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import random
import signal
import struct
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from fieldkit.errors import FieldkitError
from fieldkit.testing import riffwriter as rw

__all__ = [
    "SLOW_S",
    "FuzzReport",
    "Seed",
    "load_seeds",
    "make_input",
    "minimise",
    "run_fuzz",
    "run_targets",
]

#: An input whose targets together take longer than this counts as slow. Measured as CPU time
#: of the process (``time.process_time``): the machine the fuzzer runs on is shared, and wall
#: time there measures the neighbours; the wall time is reported too.
SLOW_S = 1.0
#: A single input is stopped (and reported as a hang) after this many seconds.
HANG_S = 10.0
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


# --- targets ------------------------------------------------------------------------------------


def _decode_table(data: bytes) -> str:
    """Decode a table the way ``fieldkit.io.annotations.rows.load_text`` decodes a file."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _riff(data: bytes, name: str) -> object:
    from fieldkit.io.riff.chunks import walk_riff
    from fieldkit.io.riff.verdict import judge_layout

    layout = walk_riff(io.BytesIO(data), len(data))
    judge_layout(layout)
    return layout


def _recorders(data: bytes, name: str) -> None:
    from fieldkit.errors import AudioFormatError
    from fieldkit.io.recorders import audiomoth, bwf, filenames, guano, info, wamd
    from fieldkit.io.recorders.reader import read_recorder_metadata
    from fieldkit.io.riff.chunks import METADATA_BODY_CAP_BYTES, read_chunk_body, walk_riff

    try:
        layout = walk_riff(io.BytesIO(data), len(data))
    except AudioFormatError:
        layout = None
    stem = name.rsplit("/", 1)[-1]
    read_recorder_metadata(io.BytesIO(data), stem, layout)
    # the pure parsers directly, on every body, past the guards of the sources
    fileobj = io.BytesIO(data)
    for chunk in layout.chunks if layout is not None else ():
        body = read_chunk_body(fileobj, chunk, cap_bytes=METADATA_BODY_CAP_BYTES)
        if chunk.chunk_id == "guan":
            guano.parse_guano(body)
        elif chunk.chunk_id == "LIST":
            _, fields, _ = info.parse_list_info(body)
            for value in fields.values():
                audiomoth.parse_audiomoth_comment(value)
                audiomoth.parse_opso_metadata(value)
        elif chunk.chunk_id == "wamd":
            wamd.parse_wamd(body)
        elif chunk.chunk_id == "bext":
            bwf.parse_bext(body)
        elif chunk.chunk_id == "iXML":
            bwf.parse_ixml(body)
    text = data[:512].decode("latin-1")
    filenames.parse_filename_time(text[:40], audiomoth=True)
    filenames.parse_filename_time(text[:40] + ".WAV")
    audiomoth.parse_config_txt(data[:8192])
    try:  # documented: ValueError when the text is no ISO 8601 timestamp at all
        guano.read_guano_timestamp(text[:40])
    except ValueError:
        pass


def _annotations(data: bytes, name: str) -> None:
    from fieldkit.io.annotations.readers import read_annotations
    from fieldkit.io.annotations.rows import ReadOptions

    from fieldkit.io.recorders.songmeter import parse_songmeter_summary

    parse_songmeter_summary(data)  # a comma-separated table, as a Song Meter summary is
    text = _decode_table(data)
    # strict or lenient by the input (both paths are fuzzed, each input pays for one)
    options = ReadOptions(skip_bad_rows=len(data) % 2 == 0)
    for fmt in ("raven", "audacity", "csv"):
        try:
            read_annotations(text, fmt, options)
        except FieldkitError:
            pass


def _config(data: bytes, name: str) -> None:
    from fieldkit.io.recorders.audiomoth import parse_config_txt
    from fieldkit.io.recorders.songmeter import parse_songmeter_summary

    parse_config_txt(data)
    parse_config_txt(_decode_table(data))
    parse_songmeter_summary(data)


#: Targets per seed kind; a target may raise only what its name maps to.
_TARGETS: dict[str, dict[str, Callable[[bytes, str], object]]] = {
    "wav": {"riff": _riff, "recorders": _recorders},
    "table": {"annotations": _annotations},
    "config": {"recorders": _config},
}
_ALLOWED: dict[str, tuple[type[BaseException], ...]] = {
    "riff": (FieldkitError,), "recorders": (), "annotations": (FieldkitError,),
}


class _Hang(Exception):
    """Raised by the alarm when one input runs longer than :data:`HANG_S`."""


def _alarm(signum: int, frame: object) -> None:
    raise _Hang(f"input ran longer than {HANG_S} s")


@dataclass
class Outcome:
    """What running the targets on one input gave."""

    seconds: float
    wall_seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    crashes: list[tuple[str, str, str]] = field(default_factory=list)  # target, type, traceback


def run_targets(kind: str, data: bytes, name: str) -> Outcome:
    """Run every target of ``kind`` on ``data``; an exception not allowed is a crash.

    Parameters
    ----------
    kind : str
        ``wav``, ``table`` or ``config``.
    data : bytes
        The input.
    name : str
        The seed's name (the recorder parsers read the file name too).

    Returns
    -------
    Outcome
    """
    out = Outcome(0.0)
    start, wall = time.process_time(), time.perf_counter()
    for target, func in _TARGETS[kind].items():
        out.counts[target] += 1
        try:
            func(data, name)
        except _ALLOWED[target]:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of a fuzzer: report, never stop
            out.crashes.append((target, type(exc).__name__, traceback.format_exc()))
    out.seconds = time.process_time() - start
    out.wall_seconds = time.perf_counter() - wall
    return out


# --- driver -------------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """Counts of one run (the fields :func:`format_report` prints)."""

    seed: int
    inputs: int = 0
    per_target: Counter[str] = field(default_factory=Counter)
    per_mutation: Counter[str] = field(default_factory=Counter)
    crashes: list[dict[str, object]] = field(default_factory=list)
    slow: list[dict[str, object]] = field(default_factory=list)
    slowest: dict[str, object] = field(default_factory=dict)
    max_wall_s: float = 0.0
    seconds: float = 0.0

    def merge(self, other: FuzzReport) -> None:
        self.inputs += other.inputs
        self.per_target.update(other.per_target)
        self.per_mutation.update(other.per_mutation)
        self.crashes += other.crashes
        self.slow += other.slow
        self.max_wall_s = max(self.max_wall_s, other.max_wall_s)
        if other.slowest.get("seconds", -1.0) > self.slowest.get("seconds", -1.0):  # type: ignore[operator]
            self.slowest = other.slowest


_WORKER_SEEDS: list[Seed] = []


def _init_worker(seeds: list[Seed]) -> None:
    _WORKER_SEEDS[:] = seeds
    signal.signal(signal.SIGALRM, _alarm)
    # warm up: the first call of a reader imports pandas/pandera/scipy lazily (seconds), which
    # is no property of the input that happens to come first
    for item in seeds:
        run_targets(item.kind, item.data, item.name)


def _run_range(args: tuple[int, int, int, str | None]) -> FuzzReport:
    seed, first, stop, crash_dir = args
    report = FuzzReport(seed)
    for index in range(first, stop):
        item = make_input(_WORKER_SEEDS, seed, index)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        try:
            outcome = run_targets(item.kind, item.data, item.seed_name)
        except _Hang as exc:
            outcome = Outcome(HANG_S, Counter({"hang": 1}),
                              [("hang", type(exc).__name__, traceback.format_exc())])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        report.inputs += 1
        report.per_target.update(outcome.counts)
        report.per_mutation.update(item.mutations)
        report.max_wall_s = max(report.max_wall_s, outcome.wall_seconds)
        where = {"index": index, "seed_file": item.seed_name, "mutations": list(item.mutations),
                 "seconds": round(outcome.seconds, 4),
                 "wall_seconds": round(outcome.wall_seconds, 4), "bytes": len(item.data)}
        if outcome.seconds > report.slowest.get("seconds", -1.0):  # type: ignore[operator]
            report.slowest = where
        if outcome.seconds > SLOW_S:
            report.slow.append(where)
            _save(crash_dir, item, {**where, "problem": "slow"})
        for target, exc_type, trace in outcome.crashes:
            found = {**where, "target": target, "exception": exc_type, "traceback": trace}
            report.crashes.append(found)
            _save(crash_dir, item, found)
    return report


def _save(crash_dir: str | None, item: FuzzInput, found: dict[str, object]) -> None:
    if crash_dir is None:
        return
    folder = Path(crash_dir)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(item.data).hexdigest()[:16]
    stem = f"{item.kind}-{found.get('target', found.get('problem'))}-{digest}"
    (folder / f"{stem}.bin").write_bytes(item.data)
    (folder / f"{stem}.json").write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")


def _ranges(seed: int, first: int, count: int, crash_dir: str | None,
            step: int = 250) -> Iterator[tuple[int, int, int, str | None]]:
    for start in range(first, first + count, step):
        yield seed, start, min(start + step, first + count), crash_dir


def run_fuzz(data_dir: str | Path, *, seed: int = 14, count: int = 100_000, first: int = 0,
             workers: int = 1, crash_dir: str | Path | None = None,
             progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Generate ``count`` inputs from ``(seed, first...)`` and run every target on each.

    Parameters
    ----------
    data_dir : path-like
        ``tests/data`` (the seeds).
    seed : int
        The run's seed.
    count, first : int
        How many inputs, starting at which index.
    workers : int
        Processes (1: in this process).
    crash_dir : path-like, optional
        Where each crashing or slow input is written (``.bin`` + ``.json``).
    progress : callable, optional
        Called with the number of inputs done after each batch.

    Returns
    -------
    FuzzReport
    """
    seeds = load_seeds(data_dir)
    folder = None if crash_dir is None else str(crash_dir)
    report = FuzzReport(seed)
    start = time.perf_counter()
    jobs = list(_ranges(seed, first, count, folder))
    if workers <= 1:
        _init_worker(seeds)
        results: Iterator[FuzzReport] = map(_run_range, jobs)
        for part in results:
            report.merge(part)
            if progress:
                progress(report.inputs)
    else:
        with multiprocessing.get_context("fork").Pool(
                workers, initializer=_init_worker, initargs=(seeds,)) as pool:
            for part in pool.imap_unordered(_run_range, jobs):
                report.merge(part)
                if progress:
                    progress(report.inputs)
    report.seconds = time.perf_counter() - start
    return report


def minimise(kind: str, data: bytes, name: str, target: str, exception: str,
             budget: int = 2000) -> bytes:
    """Shrink a crashing input while it still raises ``exception`` in ``target`` (ddmin-style).

    Parameters
    ----------
    kind, data, name : as for :func:`run_targets`.
    target, exception : str
        The crash to keep.
    budget : int
        At most this many runs.

    Returns
    -------
    bytes
        The smallest input found that still crashes the same way.
    """
    def crashes(candidate: bytes) -> bool:
        out = run_targets(kind, candidate, name)
        return any(t == target and e == exception for t, e, _ in out.crashes)

    chunk = max(len(data) // 2, 1)
    runs = 0
    while chunk >= 1 and runs < budget:
        pos, shrunk = 0, False
        while pos < len(data) and runs < budget:
            candidate = data[:pos] + data[pos + chunk:]
            runs += 1
            if candidate != data and crashes(candidate):
                data, shrunk = candidate, True
            else:
                pos += chunk
        if not shrunk:
            chunk //= 2
    return data


def format_report(report: FuzzReport) -> str:
    """The run's figures as the lines ``benchmarks/fuzz.py`` prints."""
    lines = [(f"seed {report.seed}: {report.inputs} inputs in {report.seconds:.1f} s "
              f"({report.inputs / max(report.seconds, 1e-9):.0f}/s)"),
             "per target: " + ", ".join(f"{k} {v}" for k, v in sorted(report.per_target.items())),
             "per mutation: " + ", ".join(f"{k} {v}"
                                          for k, v in sorted(report.per_mutation.items())),
             f"uncaught exceptions: {len(report.crashes)}",
             (f"inputs over {SLOW_S:g} s (CPU): {len(report.slow)}; "
              f"longest wall time of one input: {report.max_wall_s:.3f} s"),
             f"slowest input: {json.dumps(report.slowest)}"]
    for crash in report.crashes[:20]:
        lines.append(f"  CRASH #{crash['index']} {crash['target']} {crash['exception']} "
                     f"seed={crash['seed_file']} mutations={crash['mutations']}")
    return "\n".join(lines)
