"""Lenient GUANO parsing: spec deviations seen in the field, timestamps, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.io.audio.probe import probe
from fieldkit.io.recorders import read_recorder_metadata
from fieldkit.io.recorders.guano import parse_guano, parse_guano_timestamp
from fieldkit.model.times import reconcile_times
from fieldkit.testing import riffwriter as rw


@pytest.mark.parametrize(
    ("text", "local", "offset"),
    [("2015-12-31T23:59:59", datetime(2015, 12, 31, 23, 59, 59), None),
     ("2024-09-03T19:31:30+01:00", datetime(2024, 9, 3, 19, 31, 30), timedelta(hours=1)),
     ("2022-08-15 21:34:14+0100", datetime(2022, 8, 15, 21, 34, 14), timedelta(hours=1)),
     ("2020-01-01T00:00:00Z", datetime(2020, 1, 1), timedelta(0)),
     ("2020-01-01T00:00:00.25-05:30", datetime(2020, 1, 1, 0, 0, 0, 250000), -timedelta(hours=5, minutes=30)),
     ("  2020-01-01T00:00:00-03  ", datetime(2020, 1, 1), -timedelta(hours=3))],
)
def test_timestamps(text, local, offset):
    assert parse_guano_timestamp(text) == (local, offset)


@pytest.mark.parametrize("bad", ["yesterday", "2020-13-01T00:00:00", "2020-01-01", "20200101T000000",
                                 "2020-01-01T00:00:00+1:0", "2020-01-01T00:00:00+15:00"])
def test_bad_timestamps_raise_value_error(bad):
    with pytest.raises(ValueError):
        parse_guano_timestamp(bad)


# Every offset form real firmware writes after the clock (issue #13: Song Meter Mini writes
# ``+1:00``, which was dropped and the file's time then read at the deployment's zone, UTC).
OFFSET_FORMS = [
    ("Z", timedelta(0)),
    ("UTC", timedelta(0)),
    ("+01:00", timedelta(hours=1)),
    ("+1:00", timedelta(hours=1)),
    ("-5:00", -timedelta(hours=5)),
    ("+0530", timedelta(hours=5, minutes=30)),
    ("+05", timedelta(hours=5)),
    ("-0330", -timedelta(hours=3, minutes=30)),
    ("+5:30", timedelta(hours=5, minutes=30)),
    ("+14:00", timedelta(hours=14)),
    ("-12:00", -timedelta(hours=12)),
]
# Malformed or beyond ±14:00: a warning naming the value, and the time kept without an offset.
BAD_OFFSETS = ["+1:0", "+15:00", "-14:30", "+05:60", "+25", "CET", "+01:00:00", "+1:00Z"]
LOCAL = datetime(2020, 10, 17, 13, 5)
SONG_METER_NAME = "SMM07257_20201017_130500.wav"


def guano_bytes(timestamp: str) -> bytes:
    return rw.guano_text({"GUANO|Version": "1.0", "Make": "Wildlife Acoustics", "Model": "Song Meter Mini",
                          "Timestamp": timestamp}).encode("utf-8")


def song_meter_file(tmp_path, timestamp: str):
    """A real WAV written as a Song Meter Mini does: a naive local-time name and a GUANO chunk."""
    path = tmp_path / SONG_METER_NAME
    path.write_bytes(rw.wav_bytes(np.zeros(480), 48000, after=[rw.guan_chunk(guano_bytes(timestamp))]))
    facts = probe(path)
    assert facts.status == "ok"
    return read_recorder_metadata(path, path.name, facts.layout)


@pytest.mark.parametrize(("zone", "offset"), OFFSET_FORMS, ids=[z for z, _ in OFFSET_FORMS])
@pytest.mark.parametrize("separator", ["T", " "])
def test_offset_forms_through_the_parser(zone, offset, separator):
    guano = parse_guano(guano_bytes(f"2020-10-17{separator}13:05:00{zone}"))
    assert (guano.typed["timestamp"], guano.typed["utc_offset"]) == (LOCAL, offset)
    assert guano.warnings == ()
    assert parse_guano_timestamp(f"2020-10-17{separator}13:05:00{zone}") == (LOCAL, offset)


@pytest.mark.parametrize(("zone", "offset"), OFFSET_FORMS, ids=[z for z, _ in OFFSET_FORMS])
def test_offset_forms_end_to_end(tmp_path, zone, offset):
    meta = song_meter_file(tmp_path, f"2020-10-17 13:05:00{zone}")
    # The deployment zone (UTC, the ingest default) must not override the offset GUANO states.
    result = reconcile_times(meta.time_candidates, "UTC", now=datetime(2026, 1, 1, tzinfo=UTC))
    assert result.start_time_utc == (LOCAL - offset).replace(tzinfo=UTC)
    assert (result.time_source, result.offset_kind) == ("guano", "stated")
    # The naive file name borrows GUANO's offset (same clock), so the two agree; a stated offset
    # other than the deployment's is reported, not overridden.
    assert result.max_discrepancy_s == 0.0
    assert result.flags == (() if offset == timedelta(0) else ("offset_disagrees_with_deployment",))
    assert meta.warnings == ()


@pytest.mark.parametrize("zone", BAD_OFFSETS)
@pytest.mark.reliability("B3")
def test_bad_offset_warns_and_keeps_local_time(zone):
    guano = parse_guano(guano_bytes(f"2020-10-17 13:05:00{zone}"))
    assert (guano.typed["timestamp"], guano.typed["utc_offset"]) == (LOCAL, None)
    assert len(guano.warnings) == 1 and repr(zone) in guano.warnings[0]


@pytest.mark.parametrize("zone", ["", *BAD_OFFSETS])
def test_bad_offset_end_to_end_is_never_utc(tmp_path, zone):
    meta = song_meter_file(tmp_path, f"2020-10-17 13:05:00{zone}")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    guano_time = meta.time_candidates[0]
    assert (guano_time.source, guano_time.local_time, guano_time.utc_offset) == ("guano", LOCAL, None)
    # Without a deployment zone the time stays unresolved, exactly as for no offset at all...
    unresolved = reconcile_times(meta.time_candidates, None, now=now)
    assert unresolved.start_time_utc is None and unresolved.flags == ("no_offset",)
    # ...and with one, that zone is applied to the local time.
    deployed = reconcile_times(meta.time_candidates, "+02:00", now=now)
    assert deployed.start_time_utc == datetime(2020, 10, 17, 11, 5, tzinfo=UTC)
    assert (deployed.time_source, deployed.offset_kind) == ("guano", "deployment")
    warnings = [w for w in meta.warnings if "Timestamp" in w]
    assert len(warnings) == (1 if zone else 0)
    assert all(repr(zone) in w and w.startswith("guano: ") for w in warnings)


@pytest.mark.reliability("B3")
def test_edge_cases_from_the_field():
    raw = (b"Make: Wildlife Acoustics\n"
           b"GUANO|Version:  1.0\n"
           b"Serial: \n"
           b"Loc Elevation:\n"
           b"Make: Duplicate Inc\n"
           b"this line has no colon\n"
           b"Note: first line\\nsecond line\n"
           b"WA|Song Meter|Audio settings: [{\"rate\":\"256000\"}]\n"
           b"X|Custom:  spaced value  \n"
           b"Loc Position: 50.7179417 -1.7611083\n"
           b"Timestamp:  2022-08-15 21:34:14+0100\n") + b"Site: K\xf6ln\n\x00\x00"
    guano = parse_guano(raw)
    assert guano.fields["GUANO|Version"] == "1.0"
    assert guano.fields["Make"] == "Wildlife Acoustics"
    assert guano.duplicates == (("Make", "Duplicate Inc"),)
    assert guano.unparsed_lines == ("this line has no colon",)
    assert guano.fields["Serial"] == "" and guano.get("Serial") is None
    assert guano.typed["elevation_m"] is None
    assert guano.typed["note"] == "first line\nsecond line"
    assert guano.fields["WA|Song Meter|Audio settings"] == '[{"rate":"256000"}]'
    assert guano.fields["X|Custom"] == "spaced value"
    assert guano.fields["Site"] == "Köln"
    assert (guano.typed["latitude_deg"], guano.typed["longitude_deg"]) == (50.7179417, -1.7611083)
    assert guano.typed["utc_offset"] == timedelta(hours=1)
    joined = " | ".join(guano.warnings)
    for needle in ("Latin-1", "not the first", "duplicate", "without", "'Loc Elevation' is empty"):
        assert needle in joined


def test_garbage_values_warn():
    guano = parse_guano(b"GUANO|Version:1.0\nTimestamp: soon\nLoc Position: north\nLength: long")
    assert "timestamp" not in guano.typed and guano.typed["length_s"] is None
    assert len(guano.warnings) == 3


_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{0,10}(\|[A-Za-z][A-Za-z0-9 ]{0,8}){0,2}", fullmatch=True).map(str.strip)
_values = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys.filter(lambda k: k and not k.endswith("|") and k != "GUANO|Version"), _values, max_size=8))
def test_round_trip_keeps_every_field(fields):
    ordered = {"GUANO|Version": "1.0", **fields}
    guano = parse_guano(rw.guano_text(ordered).encode("utf-8"))
    assert guano.fields == ordered


@pytest.mark.shared_data
def test_echometer_two_spaces(shared):
    from fieldkit.io.riff.chunks import read_chunk_body, walk_riff_path

    path = shared("batdetect2/Echometer.wav")
    layout = walk_riff_path(path)
    with open(path, "rb") as fileobj:
        guano = parse_guano(read_chunk_body(fileobj, layout.find("guan")[0]))
    assert guano.fields["GUANO|Version"] == "1.0"
    assert guano.typed["timestamp"] == datetime(2022, 8, 15, 21, 34, 14)
    assert guano.typed["length_s"] == 6983.0
