"""F3: two recorders with the same configuration and no device prefix write the same names.

Both cards are real AudioMoth-layout files with different serials (so different content under
the same names and times); both are kept, told apart by serial, and the second ingest warns.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fieldkit.testing.cards import audiomoth_card

pytestmark = pytest.mark.reliability("F3")
START = dt.datetime(2024, 5, 1, 22, 0)


def test_twin_recorders_are_both_kept_by_serial_with_a_collision_warning(tmp_path, cli, workspace):
    a, b = tmp_path / "a", tmp_path / "b"
    audiomoth_card(a, start=START, count=2, serial="24E144055E080032")
    audiomoth_card(b, start=START, count=2, serial="24E144055E08BEEF")
    _, first = cli.json("ingest", str(a), "--site", "Wood", "--deployment", "N1")
    _, second = cli.json("ingest", str(b), "--site", "Wood", "--deployment", "N1")
    assert not any("name collision" in m for m in first["messages"])
    warnings = [m for m in second["messages"] if m.startswith("name collision: ")]
    # the two recordings and CONFIG.TXT (it names the other serial)
    assert sorted(w.split(" ")[2] for w in warnings) == ["20240501_220000.WAV", "20240501_220500.WAV",
                                                        "CONFIG.TXT"], second["messages"]
    assert all("both are kept" in w and "__" in w for w in warnings)
    _, recs = cli.json("catalog", "recordings", "--status", "ok")
    by_name: dict[str, set[str]] = {}
    for r in recs:
        by_name.setdefault(r["source_paths"][0].rsplit(":", 1)[-1], set()).add(r["device_serial"])
    assert by_name == {"20240501_220000.WAV": {"24E144055E080032", "24E144055E08BEEF"},
                       "20240501_220500.WAV": {"24E144055E080032", "24E144055E08BEEF"}}
    archived = {r["archive_path"] for r in recs}
    assert len(archived) == 4  # never merged, never overwritten
    for r in recs:
        assert (workspace.paths.archive / r["archive_path"]).is_file()
