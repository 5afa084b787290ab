"""Time reconciliation: priority, offsets, discrepancy, DST refusals (RELIABILITY B2, B5, B6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldkit.errors import TimeReconciliationError
from fieldkit.model.metadata import TimeCandidate
from fieldkit.model.times import parse_utc_offset, reconcile_times

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def cand(source, local, offset=None, raw=None):
    return TimeCandidate(source, raw or str(local), local, offset)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("Z", 0), ("UTC", 0), ("GMT", 0), ("+10:00", 600), ("+1000", 600), ("-03", -180),
     ("UTC+5:30", 330), ("UTC-3:30", -210), ("UTC+12:45", 765), (" -0300 ", -180)],
)
def test_parse_utc_offset(text, minutes):
    assert parse_utc_offset(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("bad", ["", "10", "+25:00", "+05:75", "Europe/Berlin", "UTC+"])
def test_parse_utc_offset_rejects(bad):
    with pytest.raises(ValueError):
        parse_utc_offset(bad)


def test_guano_with_offset_wins_and_agreement_is_quiet():
    local = datetime(2024, 9, 3, 19, 31, 30)
    result = reconcile_times([cand("filename", local), cand("audiomoth_comment", local, timedelta(hours=1)),
                              cand("guano", local, timedelta(hours=1))], None, now=NOW)
    assert result.start_time_utc == datetime(2024, 9, 3, 18, 31, 30, tzinfo=UTC)
    assert (result.time_source, result.offset_kind, result.max_discrepancy_s) == ("guano", "stated", 0.0)
    assert result.flags == ()
    filename = result.candidates[0]
    assert (filename.offset_kind, filename.utc) == ("file", result.start_time_utc)


def test_fixed_deployment_offset_for_naive_times():
    result = reconcile_times([cand("filename", datetime(2019, 5, 22, 6))], "+10:00", now=NOW)
    assert result.start_time_utc == datetime(2019, 5, 21, 20, tzinfo=UTC)
    assert (result.time_source, result.offset_kind) == ("filename", "deployment")


def test_no_offset_is_not_guessed():
    result = reconcile_times([cand("guano", datetime(2019, 8, 6, 23, 7, 49))], None, now=NOW)
    assert result.start_time_utc is None and result.flags == ("no_offset",)
    assert reconcile_times([], None, now=NOW).flags == ("no_time",)


@pytest.mark.reliability("B2")
def test_fractional_zone_comment_bug_prefers_the_filename():
    # OAD004: firmware 1.2.2 wrote the header time 3600 s off with a fractional zone.
    comment = cand("audiomoth_comment", datetime(2019, 10, 15, 6, 30), timedelta(hours=5, minutes=30))
    filename = cand("filename", datetime(2019, 10, 15, 5, 30))
    result = reconcile_times([comment, filename], None, now=NOW)
    assert result.time_source == "filename"
    assert result.start_time_utc == datetime(2019, 10, 15, 0, 0, tzinfo=UTC)
    assert result.max_discrepancy_s == 3600.0 and "time_discrepancy" in result.flags
    assert "3600" in result.messages[0]


def test_small_disagreement_is_not_flagged():
    a = cand("guano", datetime(2024, 1, 1, 0, 0, 0), timedelta(0))
    b = cand("filename", datetime(2024, 1, 1, 0, 0, 2))
    assert "time_discrepancy" not in reconcile_times([a, b], None, now=NOW).flags


@pytest.mark.parametrize("local", [datetime(1970, 1, 1, 0, 0, 5), datetime(2014, 12, 31), datetime(2030, 1, 1)])
@pytest.mark.reliability("B5")
def test_suspect_times(local):
    result = reconcile_times([cand("audiomoth_comment", local, timedelta(0))], None, now=NOW)
    assert "time_suspect" in result.flags and result.candidates[0].suspect


@pytest.mark.reliability("B6")
def test_dst_nonexistent_time_refused():
    with pytest.raises(TimeReconciliationError, match="does not exist in Europe/Berlin") as err:
        reconcile_times([cand("filename", datetime(2024, 3, 31, 2, 30), raw="20240331_023000")],
                        "Europe/Berlin", now=NOW)
    assert "fixed offset" in str(err.value) and "20240331_023000" in str(err.value)


@pytest.mark.reliability("B6")
def test_dst_ambiguous_time_refused():
    with pytest.raises(TimeReconciliationError, match="ambiguous in Europe/Berlin") as err:
        reconcile_times([cand("filename", datetime(2024, 10, 27, 2, 30), raw="20241027_023000")],
                        "Europe/Berlin", now=NOW)
    assert "00:30Z" in str(err.value) and "01:30Z" in str(err.value)


@pytest.mark.reliability("B6")
def test_dst_same_names_with_fixed_offset_are_fine():
    for local in (datetime(2024, 3, 31, 2, 30), datetime(2024, 10, 27, 2, 30)):
        result = reconcile_times([cand("filename", local)], "+01:00", now=NOW)
        assert result.start_time_utc == (local - timedelta(hours=1)).replace(tzinfo=UTC)


def test_iana_zone_outside_transitions():
    result = reconcile_times([cand("bext", datetime(2024, 7, 1, 12))], "Europe/Berlin", now=NOW)
    assert result.start_time_utc == datetime(2024, 7, 1, 10, tzinfo=UTC)


def test_unknown_zone_name():
    with pytest.raises(TimeReconciliationError, match="unknown deployment time zone"):
        reconcile_times([], "Mars/Olympus", now=NOW)


@pytest.mark.reliability("B2")
def test_file_offset_beats_deployment_and_disagreement_is_flagged():
    local = datetime(2024, 9, 3, 19, 31, 30)
    result = reconcile_times([cand("filename", local), cand("audiomoth_comment", local, timedelta(hours=1))],
                             "+02:00", now=NOW)
    assert result.start_time_utc == datetime(2024, 9, 3, 18, 31, 30, tzinfo=UTC)
    assert "offset_disagrees_with_deployment" in result.flags


def test_to_dict_is_json_ready():
    import json

    result = reconcile_times([cand("guano", datetime(2024, 1, 1), timedelta(hours=2))], None, now=NOW)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["start_time_utc"] == "2023-12-31T22:00:00+00:00"
    assert data["candidates"][0]["utc_offset_s"] == 7200.0
