"""B4: Song Meter ``*_Summary.txt`` parsed by header; repeated headers are restart events.

The files are written from the documented layout (Wildlife Acoustics, Song Meter SM5 user guide,
"Summary File Format"; Mini 2 / Micro 2 guides; summarised in
``shared/reference/formats-and-faults.md``, "Summary files"): comma-separated, a
``DATE,TIME,LAT,NS,LON,EW,POWER(V),TEMP(C),#ACFILES`` header, ``2026-Jan-20`` dates, positive
coordinates with N/S and E/W columns, and the header written again at every restart.
``/work/shared/data`` holds no real Summary.txt (checked), so there is no real-file test.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fieldkit.io.recorders.songmeter import parse_songmeter_summary
from fieldkit.testing.cards import audiomoth_card

pytestmark = pytest.mark.reliability("B4")

HEADER = "DATE,TIME,LAT,NS,LON,EW,POWER(V),TEMP(C),#ACFILES"
MINI2 = "\r\n".join([
    HEADER,
    "2026-Jan-20,18:00:00,41.12345,S,072.54321,W,4.9,21.5,0",
    "2026-Jan-20,18:01:00,41.12345,S,072.54321,W,4.8,21.0,3",
    "2026-Jan-20,18:02:00,41.12345,S,072.54321,W,4.8,20.25,7",
    HEADER,  # power lost, batteries changed: the recorder restarted
    "2026-Jan-21,07:15:00,41.12346,S,072.54320,W,5.6,12.0,0",
    "2026-Jan-21,07:16:00,,,,,5.6,11.5,2",
    HEADER,
    "2026-Jan-22,07:15:00,41.12346,S,072.54320,W,5.5,9.0,0",
]) + "\r\n"


def test_rows_gps_battery_and_temperature_are_read_by_header() -> None:
    s = parse_songmeter_summary(MINI2.encode("ascii"))
    assert s.columns == tuple(HEADER.split(","))
    assert s.rows == 6 and s.warnings == ()
    assert s.first_time == dt.datetime(2026, 1, 20, 18, 0)
    assert s.last_time == dt.datetime(2026, 1, 22, 7, 15)
    # positive numbers with hemisphere columns: south and west are negative
    assert (s.latitude_deg, s.longitude_deg) == (-41.12345, -72.54321)
    assert s.battery_v == {"first": 4.9, "last": 5.5, "min": 4.8, "max": 5.6}
    assert s.temperature_c == {"min": 9.0, "max": 21.5}


def test_each_repeated_header_is_a_restart_event_with_the_time_after_it() -> None:
    s = parse_songmeter_summary(MINI2)
    assert s.restarts == ({"line": 5, "time": "2026-01-21T07:15:00"},
                          {"line": 8, "time": "2026-01-22T07:15:00"})
    doc = s.to_dict()
    assert doc["restarts"][0]["time"] == "2026-01-21T07:15:00" and doc["rows"] == 6


def test_a_different_column_set_in_another_order_is_read_by_name() -> None:
    # an SM3BAT-like summary: other columns, another order, a drift column kept out of the typed values
    text = ("DATE,TIME,TEMP(C),POWER(V),LON,EW,LAT,NS,RTC DRIFT(s)\n"
            "2025-Sep-03,23:59:00,7.5,3.9,10.5,E,52.25,N,-0.4\n")
    s = parse_songmeter_summary(text)
    assert (s.latitude_deg, s.longitude_deg) == (52.25, 10.5)
    assert s.battery_v == {"first": 3.9, "last": 3.9, "min": 3.9, "max": 3.9}
    assert s.temperature_c == {"min": 7.5, "max": 7.5} and s.restarts == ()
    assert "RTC DRIFT(s)" in s.columns


def test_bad_cells_are_warnings_naming_the_line_never_exceptions() -> None:
    text = (f"junk before the header\n{HEADER}\n"
            "2026-Foo-20,18:00:00,91.0,N,072.5,W,n/a,21,0\n"
            "2026-Feb-30,18:01:00,41.1,N,072.5,W,4.8,,0\n")
    s = parse_songmeter_summary(text)
    assert s.rows == 2 and s.first_time is None
    joined = "\n".join(s.warnings)
    assert "line 1: data before any DATE,TIME header" in joined
    assert "line 3: date/time '2026-Foo-20'" in joined
    assert "line 3: position '91.0'" in joined
    assert "line 3: POWER(V) 'n/a' is not a number" in joined
    assert "line 4: date/time '2026-Feb-30'" in joined
    assert s.latitude_deg == 41.1  # the first readable fix
    assert parse_songmeter_summary(b"\xff\xfe\x00garbage").warnings  # not a summary: a warning


def test_the_ingested_summary_is_in_the_deployments_sidecar_record(tmp_path, cli) -> None:
    card = tmp_path / "card"
    audiomoth_card(card, start=dt.datetime(2026, 1, 20, 18, 0), count=1)
    (card / "S4A12345_Summary.txt").write_bytes(MINI2.encode("ascii"))
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    _, recs = cli.json("catalog", "recordings", "--status", "sidecar")
    by_name = {r["source_paths"][0].rsplit(":", 1)[-1]: r for r in recs}
    meta = by_name["S4A12345_Summary.txt"]["metadata"]
    assert meta["sidecar"] == "songmeter_summary"
    assert [r["time"] for r in meta["summary"]["restarts"]] == ["2026-01-21T07:15:00",
                                                               "2026-01-22T07:15:00"]
    assert meta["summary"]["latitude_deg"] == -41.12345
    assert (by_name["S4A12345_Summary.txt"]["site"], by_name["S4A12345_Summary.txt"]["deployment"]) \
        == ("Wood", "N1")


@pytest.mark.parametrize(("text", "rows"), [
    ("DATE,TIME,POWER(V)\r2026-Jan-20,18:00:00,4.9\r", 1),  # classic Mac line ends: one CR
    ('DATE,TIME\n"2026-Jan-20\r,18:00:00\n', 2),  # from the fuzzer: a CR inside a quoted field
    ('DATE,TIME,"open quote\n2026-Jan-20,18:00:00\n', 1),
])
def test_lone_carriage_returns_and_open_quotes_never_raise(text: str, rows: int) -> None:
    """Found by benchmarks/fuzz.py (seed 14, 4 647 inputs): csv.reader over the whole text raised
    ``csv.Error: new-line character seen in unquoted field`` on a lone CR."""
    s = parse_songmeter_summary(text)
    assert s.rows == rows
    assert s.rows == 1 or s.warnings  # a CR that cut a row is named as a line not read
