"""A team catalogue on PostgreSQL: every service on both backends, and the same results on each.

The PostgreSQL cases each get a fresh database (``catalogue_backend`` in conftest.py); they skip
without ``FIELDKIT_TEST_PG`` unless ``FIELDKIT_REQUIRE_SERVICES=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from fieldkit.catalogue import migrate
from fieldkit.cli.demo import sample_card_path
from fieldkit.config.settings import redact_url
from fieldkit.errors import EXIT_CONFIG, EXIT_PARTIAL
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.listen.preview import preview_recording
from fieldkit.listen.report import build_report
from fieldkit.listen.sonify import sonify_run
from fieldkit.testing.catalogue import PG_ENV, postgres_database
from fieldkit.testing.chain import normalised_manifest, run_chain
from fieldkit.workspace import init_workspace
from tests.conftest import skip_unless_required

FIELDKIT = Path(sys.executable).parent / "fieldkit"


def fieldkit(*argv: str, json_out: bool = True) -> tuple[int, Any, str]:
    """``fieldkit ARGV --json`` in its own process: exit code, the JSON document (the text
    without ``json_out``), stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    done = subprocess.run([str(FIELDKIT), *argv, *(["--json"] if json_out else [])], capture_output=True,
                          text=True, env=environ, check=False, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if json_out else done.stdout, done.stderr


def test_every_service_runs_on_each_backend(backend_workspace) -> None:
    """ingest, verify, process, annotations, dataset, export, lineage, report, preview, sonify."""
    ws = backend_workspace
    chain = run_chain(ws)
    assert chain.reports["ingest"]["verified"] == 11 and chain.reports["ingest"]["failed"] == 0
    assert chain.verified == 11
    assert chain.reports["run_state"] == "complete"
    clips = chain.arrays["run/recording_id"]
    assert (clips >= 0).sum() == chain.reports["dataset"]["clips"] > 0
    assert chain.lineage["recording"]["sources"][0]["card"] == "id:demo-sample-card"
    assert set(chain.manifests["manifest.json"]["files"]) >= {"README.md", "croissant.json", "index.csv"}
    report = build_report(ws)
    assert Path(report["html"]).read_text(encoding="utf-8").count("demo-wood") >= 1
    recording = chain.lineage["recording"]["recording_id"]
    preview = preview_recording(ws, recording, duration_s=2.0)
    assert Path(preview["wav"]).stat().st_size > 44 and Path(preview["png"]).stat().st_size > 0
    melody = sonify_run(ws, chain.run_id)
    assert melody["points"] == int((clips >= 0).sum())


def test_the_cli_on_each_backend(tmp_path: Path, catalogue_backend: str | None) -> None:
    """The commands as a user types them: init, ingest, verify, catalog recordings, lineage."""
    ws = tmp_path / "ws"
    init = ["init", str(ws)] + (["--catalogue-url", catalogue_backend] if catalogue_backend else [])
    code, doc, err = fieldkit(*init)
    assert code == 0, err
    code, doc, err = fieldkit("-w", str(ws), "ingest", str(sample_card_path()), "--site", "demo-wood",
                              "--deployment", "d1", "--timezone", "+00:00", "--card-id", "sample")
    assert code == EXIT_PARTIAL, err  # the sample card holds truncated and quarantined files, on purpose
    assert doc["state"] == "complete" and doc["counts"]["verified"] == 11 and doc["safe_to_erase"]
    code, doc, err = fieldkit("-w", str(ws), "verify")
    assert code == 0 and doc["passed"] and doc["ok"] == 11, err
    code, doc, err = fieldkit("-w", str(ws), "catalog", "recordings")
    assert code == 0, err
    assert len(doc) == 11 and {r["site"] for r in doc} == {"demo-wood"}


def test_sqlite_postgresql_and_object_storage_give_the_same_arrays_and_manifests(tmp_path: Path, s3_server,
                                                                                 s3_bucket: str) -> None:
    """The acceptance's (a), (b) and (c): the whole demo chain on SQLite + local disk, on PostgreSQL +
    local disk, and on PostgreSQL + S3 for every root (archive, stores, exports on the S3 server);
    the Zarr stores and the exported arrays equal value for value, the export manifests equal except
    what :data:`fieldkit.testing.chain.VARYING_KEYS` names (timestamps of the export and the ingest)."""
    if not os.environ.get(PG_ENV):
        skip_unless_required(f"{PG_ENV} is not set (no PostgreSQL server for this run)")
    with init_workspace(tmp_path / "sqlite") as ws:
        local = run_chain(ws)
    with postgres_database() as url, init_workspace(tmp_path / "pg", catalogue_url=url) as ws:
        team = run_chain(ws)
    roots = {"archive_root": f"{s3_bucket}/archive", "stores_root": f"{s3_bucket}/stores",
             "exports_root": f"{s3_bucket}/exports"}
    with postgres_database() as url, init_workspace(tmp_path / "pg-s3", catalogue_url=url, roots=roots,
                                                    storage_options=s3_server.storage_options) as ws:
        cloud = run_chain(ws)
        assert not (tmp_path / "pg-s3" / "archive").exists() and not (tmp_path / "pg-s3" / "stores").exists()
    assert len(local.arrays) > 20
    for other in (team, cloud):
        assert sorted(local.arrays) == sorted(other.arrays)
        for name, array in local.arrays.items():
            theirs = other.arrays[name]
            assert array.dtype == theirs.dtype and array.shape == theirs.shape, name
            assert np.array_equal(array, theirs, equal_nan=array.dtype.kind in "fc"), name
        assert sorted(local.manifests) == sorted(other.manifests)
        for name, manifest in local.manifests.items():
            assert normalised_manifest(manifest) == normalised_manifest(other.manifests[name]), name
        # the README shows the workflow in its declared order on both (jsonb keeps no key order)
        assert local.manifests["README.md"] == other.manifests["README.md"]
    assert normalised_manifest(local.lineage) == normalised_manifest(team.lineage)
    # on S3 the lineage names the store (and any archived file) by its URL, all else equal
    assert cloud.lineage["processing"]["store"].startswith(f"{s3_bucket}/stores/")
    assert _without_locations(local.lineage) == _without_locations(cloud.lineage)


def _without_locations(value):
    """Lineage with where things are (store, archive file) blanked, at any depth."""
    if isinstance(value, dict):
        return {k: "<where>" if k in ("store", "store_path", "archive_uri") else _without_locations(v)
                for k, v in normalised_manifest(value).items()}
    if isinstance(value, list):
        return [_without_locations(v) for v in value]
    return value


def test_a_second_workspace_joins_the_shared_catalogue(tmp_path: Path, pg_url: str) -> None:
    """init creates the schema once; the next init joins it (nothing re-created or wiped) and says
    so with the number of recordings; the password is never printed."""
    code, doc, err = fieldkit("init", str(tmp_path / "alice"), "--catalogue-url", pg_url)
    assert code == 0, err
    assert doc["catalogue"] == {"state": "created", "revision": migrate.head(), "previous_revision": None,
                                "recordings": 0}
    with init_workspace(tmp_path / "unused", catalogue_url=pg_url) as alice:  # a third workspace: also joins
        assert alice.shared is not None and alice.shared.state == "joined"
        ingest_card(alice, IngestRequest(sample_card_path(), "demo-wood", "d1", timezone="+00:00", card_id="c1"))
    code, text, err = fieldkit("init", str(tmp_path / "bob"), "--catalogue-url", pg_url, json_out=False)
    assert code == 0, err
    assert f"joined catalogue at {redact_url(pg_url)}, 11 recordings" in " ".join((text + err).split())
    password = sa.make_url(pg_url).password
    assert password and f":{password}@" not in text + err and ":***@" in err
    code, doc, err = fieldkit("-w", str(tmp_path / "bob"), "catalog", "recordings")
    assert code == 0 and len(doc) == 11, err  # Bob sees what Alice ingested
    code, doc, err = fieldkit("-w", str(tmp_path / "bob"), "config", "show")
    assert code == 0 and doc["settings"]["catalogue_url"] == redact_url(pg_url)


def test_joining_migrates_a_catalogue_that_is_behind(tmp_path: Path, pg_url: str) -> None:
    migrate.upgrade(pg_url, "0003")
    code, doc, err = fieldkit("init", str(tmp_path / "ws"), "--catalogue-url", pg_url)
    assert code == 0, err
    assert doc["catalogue"]["state"] == "migrated" and doc["catalogue"]["previous_revision"] == "0003"
    assert migrate.status(pg_url).ok


def test_joining_refuses_a_catalogue_newer_than_this_fieldkit(tmp_path: Path, pg_url: str) -> None:
    migrate.upgrade(pg_url)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # as if a teammate's newer fieldkit had migrated it
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    code, doc, _ = fieldkit("init", str(tmp_path / "ws"), "--catalogue-url", pg_url)
    assert code == EXIT_CONFIG
    assert "9999_from_the_future" in doc["error"] and "Upgrade fieldkit" in doc["hint"]
    assert not (tmp_path / "ws").exists()  # nothing half-made: the same command works after the upgrade


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://ana:s3cr%40t@db.lab:5432/fk", "postgresql+psycopg://ana:***@db.lab:5432/fk"),
    ("postgresql+psycopg://ana@db.lab/fk", "postgresql+psycopg://ana@db.lab/fk"),  # libpq finds the password
    ("sqlite:///catalogue.sqlite", "sqlite:///catalogue.sqlite"),
    ("postgresql://ana:pw@db.lab:notaport/fk", "postgresql://ana:***@db.lab:notaport/fk"),
])
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
