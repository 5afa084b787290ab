"""End to end through `fieldkit ingest`: the real recorder files of ../shared/data, one card per
time zone, against the expected-values table worked out from the files (tests/io)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1].parent / "shared" / "data"


def _table():
    spec = importlib.util.spec_from_file_location("io_table", HERE.parent / "io" / "test_io_recorder_metadata.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TABLE


TABLE = _table()


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory):
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    from typer.testing import CliRunner

    from fieldkit.cli import app
    from fieldkit.workspace import init_workspace

    base = tmp_path_factory.mktemp("real")
    ws = init_workspace(base / "ws")
    by_zone = defaultdict(list)
    for relative, zone, *_ in TABLE:
        by_zone[zone or "+00:00"].append(relative)
    runner = CliRunner()
    for i, (zone, files) in enumerate(sorted(by_zone.items())):
        card = base / f"card{i}"
        for relative in files:
            target = card / relative.replace("/", "__")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHARED / relative, target)
        result = runner.invoke(app, ["-w", str(ws.root), "ingest", str(card), "--site", "lab",
                                     "--deployment", f"tz{i}", "--timezone", zone, "--json"])
        assert result.exit_code in (0, 3), result.stderr
    rows = json.loads(runner.invoke(app, ["-w", str(ws.root), "catalog", "recordings", "--json"]).stdout)
    return {r["archive_path"].rsplit("/", 1)[-1].replace("__", "/"): r for r in rows}


@pytest.mark.shared_data
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_ingested_facts_times_and_serials(catalogued, row):
    relative, _zone, fields, start, source, (rate, channels, bits, frames) = row
    rec = catalogued[relative]
    assert (rec["sample_rate_hz"], rec["channels"], rec["bit_depth"], rec["frames_present"]) == (rate, channels, bits, frames)
    assert rec["start_time_utc"] == (start.isoformat().replace("+00:00", "Z") if start else None)
    assert rec["time_source"] == source
    if "serial" in fields:
        assert rec["device_serial"] == fields["serial"]
    if fields.get("make"):
        assert rec["device_make"] == fields["make"]
