"""The S3 server stops answering while `fieldkit process` runs on it (a real server, really
stopped: SIGSTOP): the run stops at once with exit 75, the URL and a resume hint, its row
``interrupted``, no traceback; resumed once the server answers, it computes only what its store
does not hold and equals an uninterrupted local run."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.errors import EXIT_OK, EXIT_TEMPFAIL
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline import runloop
from fieldkit.testing.cards import audiomoth_card
from fieldkit.testing.s3server import TEST_CREDENTIALS, start_s3_server
from fieldkit.workspace import init_workspace, open_workspace
from tests.pipeline.conftest import WORKFLOW, arrays_of, assert_same_arrays

runner = CliRunner()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    for key, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(key, value)

#: Short client timeouts and no client retries: an outage shows in seconds, not minutes.
FAST = {"config_kwargs": {"connect_timeout": 1, "read_timeout": 1,
                          "retries": {"max_attempts": 1, "mode": "standard"}}}


def _workspaces(tmp_path: Path, server) -> tuple[Path, Path, Path]:
    """One card ingested into a local workspace and into one whose archive and stores are on
    ``server``; the workflow file."""
    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=8, seconds=20.0,
                   sample_rate_hz=48_000, utc_offset_minutes=120, era="1.6.0")
    bucket = f"s3://{server.make_bucket()}"
    request = IngestRequest(tmp_path / "card", "Wood", "N1", timezone="+02:00")
    with init_workspace(tmp_path / "local") as local:
        ingest_card(local, request)
    with init_workspace(tmp_path / "s3", roots={"archive_root": f"{bucket}/archive", "stores_root": f"{bucket}/stores"},
                        storage_options={**server.storage_options, **FAST}) as remote:
        ingest_card(remote, request)
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(yaml.safe_dump(WORKFLOW))
    return tmp_path / "local", tmp_path / "s3", workflow


def _process(ws: Path, *args: str):
    result = runner.invoke(app, ["-w", str(ws), "process", *args, "--json", "--cluster", "inprocess"])
    return result.exit_code, json.loads(result.stdout), result.output


def _run_row(ws: Path) -> tuple[str, str]:
    with sqlite3.connect(ws / "catalogue.sqlite") as db:
        return db.execute("SELECT state, message FROM processing_run WHERE id = 1").fetchone()


def test_an_outage_mid_run_stops_the_run_with_75_and_resume_finishes_it(tmp_path):
    server = start_s3_server()  # a private server: pausing it must not stall other tests
    try:
        local, remote, workflow = _workspaces(tmp_path, server)
        passed = []

        def pause_after_the_first_task(name: str) -> None:  # the server really stops (SIGSTOP)
            passed.append(name)
            if name == "after_task" and passed.count("after_task") == 1:
                server.pause()

        t0 = time.perf_counter()
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(runloop, "crashpoint", pause_after_the_first_task)
                code, error, output = _process(remote, str(workflow))
        finally:
            server.resume()
        seconds = time.perf_counter() - t0
        assert code == EXIT_TEMPFAIL, output
        assert "Traceback" not in output
        assert set(error) == {"error", "code", "hint", "path"} and error["code"] == EXIT_TEMPFAIL
        assert "stopped answering" in error["error"] and "s3://" in error["error"]
        assert error["hint"] == f"fieldkit process {workflow} --resume 1"
        # the run stopped at the first failing task instead of waiting out every remaining one
        assert passed.count("after_task") <= 3, passed
        state, message = _run_row(remote)
        assert state == "interrupted" and "stopped answering" in message

        code, done, output = _process(remote, str(workflow), "--resume", "1")
        assert code == EXIT_OK, output
        assert done["state"] == "complete" and done["clips_skipped"] >= 8  # the first task's clips are kept
        assert done["clips_computed"] + done["clips_skipped"] == done["n_clips"]
        code, whole, output = _process(local, str(workflow))
        assert code == EXIT_OK, output
        with open_workspace(local) as a, open_workspace(remote) as b:
            assert_same_arrays(arrays_of(a, whole["store"]), arrays_of(b, done["store"]))
        print(f"stopped after {seconds:.1f} s")
    finally:
        server.stop()


def test_a_server_that_does_not_answer_when_the_run_begins_is_exit_75_without_a_traceback(tmp_path):
    server = start_s3_server()
    try:
        _, remote, workflow = _workspaces(tmp_path, server)
        server.pause()
        try:
            code, error, output = _process(remote, str(workflow))
        finally:
            server.resume()
        assert code == EXIT_TEMPFAIL, output
        assert "Traceback" not in output
        assert error["code"] == EXIT_TEMPFAIL and "s3://" in error["error"]
        state, message = _run_row(remote)
        assert state == "failed" and "could not be created" in message  # never ran: a new run is made next time
    finally:
        server.stop()


def test_a_ranged_read_cut_mid_recording_is_an_error_never_an_early_end(tmp_path):
    """libsndfile cannot receive a Python exception from its read callback: without the reader's
    check, a read that timed out ended the recording early and silently (the last clips padded)."""
    import numpy as np
    import soundfile as sf

    from fieldkit.io.audio.stream import read_blocks
    from fieldkit.io.storage import open_root
    from fieldkit.io.storage_errors import unreachable

    frames = 48_000 * 120
    sf.write(tmp_path / "long.wav", np.random.default_rng(1).integers(-2000, 2000, frames, dtype=np.int16),
             48_000, subtype="PCM_16")
    server = start_s3_server()
    try:
        bucket = server.make_bucket()
        root = open_root(f"s3://{bucket}/archive", base=tmp_path, options={**server.storage_options, **FAST},
                         block_bytes=1 << 20)
        root.put_new("long.wav", iter([(tmp_path / "long.wav").read_bytes()]))
        with root.open_read("long.wav", size=(tmp_path / "long.wav").stat().st_size) as handle:
            blocks = read_blocks(handle, frames, 24_000, subtype="PCM_16")
            read = next(blocks).shape[1]
            server.pause()
            try:
                with pytest.raises(Exception) as cut:  # noqa: PT011 - whatever the client raises, as raised
                    for block in blocks:
                        read += block.shape[1]
            finally:
                server.resume()
        assert unreachable(cut.value), repr(cut.value)
        assert 0 < read < frames
    finally:
        server.stop()
