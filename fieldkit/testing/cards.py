"""Builders of fake recorder cards (real WAV bytes, AudioMoth layout and comments) for tests."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from fieldkit.testing.riffwriter import (
    audiomoth_comment,
    audiomoth_header_only,
    audiomoth_wav,
    wav_bytes,
)
from fieldkit.testing.signals import tone

__all__ = ["audiomoth_card", "add_broken_files", "BROKEN_EXPECTED", "snapshot", "write_file", "plain_wav"]

#: file name → (status, reason) fieldkit must give the files of :func:`add_broken_files`.
BROKEN_EXPECTED = {
    "20240501_230000.WAV": ("quarantined", "empty"),
    "20240501_230500.WAV": ("quarantined", "header_only"),
    "20240501_231000.WAV": ("truncated", None),
    "20240501_231500.WAV": ("quarantined", "not_audio"),
    "20240501_232000.WAV": ("quarantined", "null_bytes"),
}


def write_file(path: Path, data: bytes, mtime: dt.datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def _recording(start: dt.datetime, seconds: float, rate: int, serial: str, era: str, offset_min: int,
               freq_hz: float) -> bytes:
    samples = tone(freq_hz, seconds, rate, amplitude=0.25)
    comment = audiomoth_comment(era, time=start, utc_offset_minutes=offset_min, serial=serial)
    return audiomoth_wav(samples, rate, comment, serial)


def audiomoth_card(root: Path, *, start: dt.datetime, count: int, seconds: float = 1.0,
                   sample_rate_hz: int = 16_000, serial: str = "24E144055E080032", era: str = "1.6.0",
                   utc_offset_minutes: int = 0, interval_s: int = 300) -> list[Path]:
    """``count`` AudioMoth recordings named ``YYYYMMDD_HHMMSS.WAV`` (local time) plus CONFIG.TXT."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        local = start + dt.timedelta(seconds=i * interval_s)
        data = _recording(local, seconds, sample_rate_hz, serial, era, utc_offset_minutes, 440.0 * (1 + i % 7))
        paths.append(write_file(root / f"{local:%Y%m%d_%H%M%S}.WAV", data))
    config = (f"Device ID                       : {serial}\r\nFirmware                        : AudioMoth-Firmware-Basic "
              f"({era})\r\nTime zone                       : UTC\r\nSample rate (Hz)                : {sample_rate_hz}\r\n")
    write_file(root / "CONFIG.TXT", config.encode())
    return paths


def add_broken_files(root: Path, serial: str = "24E144055E080032") -> dict[str, tuple[str, str | None]]:
    """The broken files of :data:`BROKEN_EXPECTED`: empty, header-only, truncated, not audio, NUL."""
    when = dt.datetime(2024, 5, 1, 23, 5)
    comment = audiomoth_comment("1.6.0", time=when, serial=serial)
    full = _recording(dt.datetime(2024, 5, 1, 23, 10), 2.0, 16_000, serial, "1.6.0", 0, 1000.0)
    files = {
        "20240501_230000.WAV": b"",
        "20240501_230500.WAV": audiomoth_header_only(comment, serial, 16_000),
        "20240501_231000.WAV": full[: len(full) // 2 + 1],
        "20240501_231500.WAV": b"This is not audio; it is a note someone saved with a .WAV name.\n" * 8,
        "20240501_232000.WAV": b"\0" * 65536,
    }
    for name, data in files.items():
        write_file(root / name, data)
    return dict(BROKEN_EXPECTED)


def snapshot(root: Path) -> dict[bytes, tuple[int, int, str]]:
    """Every file under ``root``: (size, mtime_ns, sha256) by raw relative path — to prove a card unchanged."""
    out = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            digest = hashlib.sha256(open(full, "rb").read()).hexdigest() if os.path.isfile(full) else ""
            out[os.path.relpath(full, base)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def plain_wav(seconds: float = 1.0, rate: int = 16_000, freq_hz: float = 440.0) -> bytes:
    """A plain 16-bit mono WAV with a tone and no metadata."""
    return wav_bytes(tone(freq_hz, seconds, rate, amplitude=0.25), rate)
