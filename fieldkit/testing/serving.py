"""Test kit for ``fieldkit serve``: a demo-like workspace with hostile names and a run with the
acoustic indices, and a real server started as its own process (``fieldkit serve``) on a free port, stopped when done."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fieldkit.testing.cards import write_file
from fieldkit.testing.riffwriter import wav_bytes
from fieldkit.testing.signals import chirp, tone

__all__ = ["SCRIPT_NAME", "BAT_RATE_HZ", "hostile_card", "soundscape_5s", "serve_workspace", "free_port", "Server", "running_server"]

#: A card file whose path is markup: the web pages must show it as text. A file name cannot hold
#: ``/``, so the card has a folder ``<script>alert(1)<`` holding ``script>.wav``; the card path
#: (and the archive path below the deployment) reads exactly ``<script>alert(1)</script>.wav``.
SCRIPT_NAME = "<script>alert(1)</script>.wav"
BAT_RATE_HZ = 384_000


def hostile_card(root: Path) -> Path:
    """A card with a bat-detector recording (384 kHz, a 60-30 kHz sweep) and a markup-named file."""
    bat = np.zeros(BAT_RATE_HZ, dtype=np.float32)
    for k in range(5):  # five 5 ms calls, 150 ms apart
        call = chirp(60_000, 30_000, 0.005, BAT_RATE_HZ, amplitude=0.6)
        start = int((0.1 + 0.15 * k) * BAT_RATE_HZ)
        bat[start:start + call.size] = call
    write_file(root / "BAT_20240501_220000.wav", wav_bytes(bat[:, None], BAT_RATE_HZ),
               dt.datetime(2024, 5, 1, 22, 0))
    write_file(root / SCRIPT_NAME, wav_bytes(tone(1_000, 2.0, 16_000, amplitude=0.3)[:, None], 16_000),
               dt.datetime(2024, 5, 1, 22, 5))
    return root


def soundscape_5s():
    """The shipped ``soundscape`` workflow (acoustic indices) with clips short enough for the
    demo card's 5-15 s recordings."""
    from fieldkit.config.workflow import Workflow, load_workflow
    from fieldkit.config.workflow_files import bundled_workflows_dir

    data = load_workflow(bundled_workflows_dir() / "soundscape.yaml").to_dict()
    data.update(name="soundscape-5s", clips={"length_s": 5.0, "min_valid_fraction": 0.5})
    data["selection"]["min_duration_s"] = 0.0
    return Workflow.from_dict(data)


def serve_workspace(directory: Path) -> Path:
    """The demo workspace (ingest, run 1, annotations, dataset, export), run 2 of
    :func:`soundscape_5s` over the demo deployment (its indices: the LDFC pictures), then a second
    deployment ingested from :func:`hostile_card` (no indices). Returns the workspace root."""
    from fieldkit.cli.demo import run_demo
    from fieldkit.ingest.service import IngestRequest, ingest_card
    from fieldkit.pipeline.driver import run_workflow
    from fieldkit.workspace import open_workspace

    root = Path(run_demo(directory, progress=False)["workspace"])
    card = hostile_card(directory.parent / f"{directory.name}-hostile-card")
    with open_workspace(root) as ws:
        report = run_workflow(ws, soundscape_5s(), workflow_source="test", workers=1)
        if report.state != "complete":
            raise RuntimeError(f"the soundscape run of the serve workspace failed: {report.failures}")
        ingest_card(ws, IngestRequest(card, "demo-wood", "bat-detector-2024-05", timezone="+00:00",
                                      card_id="hostile-card"))
    return root


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running ``fieldkit serve``: its base address (no token in it), process and output files."""

    base: str
    process: subprocess.Popen
    stdout: Path
    stderr: Path


def _wait_until_up(base: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fieldkit serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(base + "static/site.css", timeout=2).close()
            return
        except urllib.error.HTTPError:  # 401: it is up, it just wants its token
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"fieldkit serve did not answer within {timeout_s:g} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_server(workspace: Path, *args: str, log_dir: Path, timeout_s: float = 60.0) -> Iterator[Server]:
    """Run ``fieldkit -w WORKSPACE serve --port FREE ARGS`` in its own process until the block ends.

    Its stdout and stderr go to files in ``log_dir``. The server is asked to stop with SIGINT
    (uvicorn's graceful shutdown) and killed if it has not stopped after 10 s, so no server
    outlives the block.
    """
    port = free_port()
    out, err = log_dir / f"serve-{port}.out", log_dir / f"serve-{port}.err"
    argv = [sys.executable, "-c", "from fieldkit.cli import main; main()", "-w", str(workspace), "serve",
            "--port", str(port), *args]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=dict(os.environ))
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/", process, err, timeout_s)
        yield Server(f"http://127.0.0.1:{port}/", process, out, err)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
