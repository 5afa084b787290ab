"""Lenient GUANO parsing: spec deviations seen in the field, timestamps, round trips."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.io.recorders.guano import parse_guano, parse_guano_timestamp
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


@pytest.mark.parametrize("bad", ["yesterday", "2020-13-01T00:00:00", "2020-01-01", "20200101T000000"])
def test_bad_timestamps_raise_value_error(bad):
    with pytest.raises(ValueError):
        parse_guano_timestamp(bad)


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
