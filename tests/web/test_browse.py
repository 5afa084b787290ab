"""The recordings table's SQL (``catalogue/browse.py``) against the same question answered in
Python over every row of ``queries.list_recordings``, on the served demo-like workspace."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from fieldkit.catalogue import browse
from fieldkit.catalogue.readonly import open_read_only
from fieldkit.workspace import open_workspace

REFERENCE_QC = {
    "clipped": lambda r: (r.clipped_samples or 0) > 0,
    "silent": lambda r: r.silent_fraction is not None and r.silent_fraction >= 0.5,
    "dc-offset": lambda r: r.dc_offset is not None and abs(r.dc_offset) >= 0.01,
    "time-discrepancy": lambda r: r.time_discrepancy_s is not None and abs(r.time_discrepancy_s) >= 2.0,
    "undated": lambda r: r.start_time_utc is None,
}


@pytest.fixture(scope="module")
def session(served):
    with open_workspace(served["root"]) as ws:
        catalogue = open_read_only(ws.paths.catalogue_url)
        with catalogue.read() as s:
            yield s
        catalogue.dispose()


def ids(session, **query) -> list[int]:
    page = browse.browse_recordings(session, browse.RecordingQuery(per_page=1000, **query))
    assert page.total == len(page.rows)
    return [r.id for r in page.rows]


def test_each_filter_matches_the_reference(served, session):
    rows = served["rows"]
    start = lambda r: dt.datetime.fromisoformat(r.start_time_utc) if r.start_time_utc else None  # noqa: E731
    since = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    cases = {
        "status=ok": ({"status": "ok"}, lambda r: r.status == "ok"),
        "deployment": ({"deployment": "bat-detector-2024-05"}, lambda r: r.deployment == "bat-detector-2024-05"),
        "site": ({"site": "demo-wood"}, lambda r: r.site == "demo-wood"),
        "rate": ({"sample_rate_hz": 32_000}, lambda r: r.sample_rate_hz == 32_000),
        "since": ({"start": since}, lambda r: start(r) is not None and start(r) >= since),
        "until": ({"end": since}, lambda r: start(r) is not None and start(r) < since),
        "search card path": ({"search": "alert(1)"}, lambda r: any("alert(1)" in p for p in r.source_paths)),
        "search sha256": ({"search": rows[0].sha256[:10]}, lambda r: r.sha256.startswith(rows[0].sha256[:10])),
        "search %": ({"search": "%"}, lambda r: "%" in r.archive_path or any("%" in p for p in r.source_paths)),
    }
    for name, (query, keep) in cases.items():
        assert sorted(ids(session, sort="id", **query)) == sorted(r.id for r in rows if keep(r)), name
    for flag, keep in REFERENCE_QC.items():
        assert sorted(ids(session, qc=(flag,))) == sorted(r.id for r in rows if keep(r)), flag
    assert any(ids(session, qc=(flag,)) for flag in REFERENCE_QC)  # the demo has undated files at least
    devices = {r.device_serial for r in rows if r.device_serial}
    for serial in devices:
        assert sorted(ids(session, device=serial)) == sorted(r.id for r in rows if r.device_serial == serial)


def test_sorting_and_paging_cover_every_row_once_in_order(served, session):
    rows = served["rows"]
    for key, attribute in (("id", "id"), ("duration", "duration_s"), ("path", "archive_path"), ("rate", "sample_rate_hz")):
        for descending in (False, True):
            pages = [browse.browse_recordings(session, browse.RecordingQuery(sort=key, descending=descending,
                                                                             page=n, per_page=3)) for n in range(1, 7)]
            seen = [r for p in pages for r in p.rows]
            if key == "id" and not descending:
                assert [r.id for r in seen] == sorted(r.id for r in rows)
            assert len({r.id for r in seen}) == len(rows) and all(p.total == len(rows) for p in pages)
            values = [getattr(r, attribute) for r in seen if getattr(r, attribute) is not None]
            assert values == sorted(values, reverse=descending), (key, descending)
            assert all(getattr(r, attribute) is None for r in seen[len(values):])  # missing values last
    assert browse.browse_recordings(session, browse.RecordingQuery(page=99)).rows == ()


def test_combined_filters_are_an_intersection(served, session):
    for status, rate in itertools.product(("ok", "quarantined"), (32_000, 384_000)):
        expected = sorted(r.id for r in served["rows"] if r.status == status and r.sample_rate_hz == rate)
        assert sorted(ids(session, status=status, sample_rate_hz=rate)) == expected


def test_the_coverage_timeline_marks_gaps_and_overlaps():
    from fieldkit.catalogue.records import DeploymentSpan
    from fieldkit.web.pages import TIMELINE_WIDTH, _timeline

    t = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    rows = [DeploymentSpan("s", "d", i, "ok", t + dt.timedelta(minutes=5 * i), 60.0) for i in range(2000)]
    rows.append(DeploymentSpan("s", "d", 9999, "ok", t + dt.timedelta(minutes=50, seconds=30), 60.0))  # over #10
    rows = sorted(rows, key=lambda r: r.start_time_utc)
    del rows[500:700]  # 200 missing files: an unexplained silence
    line = _timeline("s", "d", rows)
    assert line["recordings"] == 1801 and line["first"] == "2024-05-01 00:00:00 UTC"
    assert [(a, b) for _, _, a, b in line["gaps"]] == [("2024-05-02 17:31:00 UTC", "2024-05-03 10:15:00 UTC")]
    assert len(line["overlaps"]) == 1 and line["overlaps"][0][0] < line["gaps"][0][0]
    assert len(line["blocks"]) == 2  # a file every 5 min is the schedule: one block each side of the gap
    assert line["blocks"][0][0] + line["blocks"][0][1] <= line["gaps"][0][0] + 0.5 <= line["blocks"][1][0]  # 0.5: min width
    assert all(0 <= x <= TIMELINE_WIDTH and w > 0 for x, w in line["blocks"])
