"""File-name timestamps: exact patterns only (RELIABILITY B5)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from fieldkit.io.recorders import read_recorder_metadata
from fieldkit.io.recorders.filenames import parse_filename_time
from fieldkit.model.times import reconcile_times

CASES = [
    ("20240903_193130.WAV", "audiomoth", datetime(2024, 9, 3, 19, 31, 30), None, None, False),
    ("20240903_193130T.WAV", "audiomoth", datetime(2024, 9, 3, 19, 31, 30), None, None, True),
    ("24E144055E080032_20240903_193130T.WAV", "audiomoth", datetime(2024, 9, 3, 19, 31, 30), None,
     "24E144055E080032", True),
    ("20191125T000000+1000_REC.flac", "iso_offset", datetime(2019, 11, 25), timedelta(hours=10), None, False),
    ("SITE1_20191125T233000-0330.wav", "iso_offset", datetime(2019, 11, 25, 23, 30),
     -timedelta(hours=3, minutes=30), "SITE1", False),
    ("20191125T000000Z_REC.flac", "iso_offset", datetime(2019, 11, 25), timedelta(0), None, False),
    ("20191125T000000+14:00_REC.flac", "iso_offset", datetime(2019, 11, 25), timedelta(hours=14), None, False),
    ("S4A03895_20190522_060000.wav", "song_meter", datetime(2019, 5, 22, 6), None, "S4A03895", False),
    ("SM3_0_20150405$063000.wav", "song_meter", datetime(2015, 4, 5, 6, 30), None, "SM3", False),
    ("0166_20240531_223911.wav", "song_meter", datetime(2024, 5, 31, 22, 39, 11), None, "0166", False),
    ("20170701_213954-MYOMYS-LR_0_0.5.wav", "song_meter", datetime(2017, 7, 1, 21, 39, 54), None, None, False),
    ("/media/card/DATA/20240101/20240101_000000.WAV", "audiomoth", datetime(2024, 1, 1), None, None, False),
]


@pytest.mark.parametrize(("name", "pattern", "local", "offset", "prefix", "triggered"), CASES,
                         ids=[c[0] for c in CASES])
def test_patterns(name, pattern, local, offset, prefix, triggered):
    found = parse_filename_time(name)
    assert (found.pattern, found.local_time, found.utc_offset, found.prefix, found.triggered) == (
        pattern, local, offset, prefix, triggered)


@pytest.mark.parametrize("name", ["REC_0001.WAV", "MSD-0003_20180427_2minstart00.wav", "data",
                                  "20241301_000000.WAV", "20240230_120000.WAV", "recording.wav",
                                  "Tuesday morning 5am.wav", "5A3B2C1D.WAV", "12345678.WAV"])
@pytest.mark.reliability("B5")
def test_no_date_and_no_fuzzy_parsing(name):
    assert parse_filename_time(name) is None


@pytest.mark.reliability("B5")
def test_hex_names_only_for_audiomoth():
    assert parse_filename_time("5A3B2C1D.WAV") is None
    found = parse_filename_time("5A3B2C1D.WAV", audiomoth=True)
    assert found.pattern == "audiomoth_hex" and found.utc_offset == timedelta(0)
    assert found.local_time == datetime(2017, 12, 21, 3, 35, 57)
    assert parse_filename_time("REC_0001.WAV", audiomoth=True) is None


@pytest.mark.parametrize("zone", ["+2500", "-1430", "+0575"])
def test_iso_name_with_impossible_offset_keeps_local_time(zone):
    # Read before as a 25 h offset; now a warning naming it, and the time as a naive local time.
    name = f"20191125T000000{zone}_REC.flac"
    found = parse_filename_time(name)
    assert (found.pattern, found.local_time, found.utc_offset) == ("iso_offset", datetime(2019, 11, 25), None)
    assert len(found.warnings) == 1 and repr(zone) in found.warnings[0]
    meta = read_recorder_metadata(io.BytesIO(b"fLaC"), name, None)
    assert [w for w in meta.warnings if w.startswith("filename: ")] == [f"filename: {found.warnings[0]}"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert reconcile_times(meta.time_candidates, None, now=now).flags == ("no_offset",)
    deployed = reconcile_times(meta.time_candidates, "+10:00", now=now)
    assert deployed.start_time_utc == datetime(2019, 11, 24, 14, tzinfo=UTC)
