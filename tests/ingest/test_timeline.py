"""A10: overlaps and gaps between consecutive recordings of a deployment, from the samples.

Real AudioMoth files on a card, ingested into a real workspace; ``catalog deployments`` shows
what the catalogue computes at query time. The durations come from the frames present, so a file
longer than the schedule's interval (WA003) overlaps the next one, and a missing file is a gap.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fieldkit.testing.cards import audiomoth_card

pytestmark = pytest.mark.reliability("A10")
START = dt.datetime(2024, 5, 1, 22, 0)


def deployment(cli, name: str) -> dict:
    _, rows = cli.json("catalog", "deployments")
    return next(r for r in rows if r["name"] == name)


def test_files_longer_than_the_interval_are_flagged_as_overlaps(tmp_path, cli):
    card = tmp_path / "card"
    # 3 s of samples every 2 s: each file overlaps the next by 1 s
    audiomoth_card(card, start=START, count=4, seconds=3.0, interval_s=2)
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    row = deployment(cli, "N1")
    assert row["recordings"] == 5  # 4 recordings + CONFIG.TXT (a sidecar takes no part)
    assert [o["seconds"] for o in row["overlaps"]] == [1.0, 1.0, 1.0]
    assert row["gaps"] == []
    table = cli("catalog", "deployments").stdout + cli("catalog", "deployments").stderr
    assert "overlaps" in table


def test_a_missing_file_is_a_gap_and_a_regular_schedule_is_not(tmp_path, cli):
    card = tmp_path / "card"
    paths = audiomoth_card(card, start=START, count=6, seconds=1.0, interval_s=60)
    paths[3].unlink()  # the recorder skipped one slot
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N2")
    row = deployment(cli, "N2")
    assert row["overlaps"] == []
    assert len(row["gaps"]) == 1
    gap = row["gaps"][0]
    assert gap["seconds"] == 119.0 and gap["usual_interval_s"] == 60.0

    regular = tmp_path / "regular"
    audiomoth_card(regular, start=START + dt.timedelta(days=1), count=5, seconds=1.0, interval_s=60)
    cli("ingest", str(regular), "--site", "Wood", "--deployment", "N3")
    assert deployment(cli, "N3")["gaps"] == [] and deployment(cli, "N3")["overlaps"] == []
