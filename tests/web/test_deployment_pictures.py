"""The pictures of a deployment's acoustic indices in ``fieldkit serve``: a real server in its own
process over the serve workspace, whose run 2 (the shipped soundscape workflow, 5 s clips) stored
the indices of the demo deployment. The pictures served are the ones ``fieldkit picture`` draws
for the same run, cached in ``cache/serve/``, reached by deployment id and validated numbers only."""

from __future__ import annotations

import io
import json

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.cli.demo import DEMO_DEPLOYMENT, DEMO_SITE
from fieldkit.testing.serving import running_server
from fieldkit.web.guard import CSP
from tests.web.test_serve_security import get

INDICES_RUN = 2  # run 1: the demo workflow (no indices); run 2: soundscape_5s
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    with running_server(served["root"], log_dir=tmp_path_factory.mktemp("logs")) as server:
        yield server


def pixels(data: bytes) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def drawn_by_the_cli(root, tmp_path, *args: str) -> tuple[dict, np.ndarray]:
    out = tmp_path / "cli.png"
    result = CliRunner().invoke(app, ["--workspace", str(root), "picture", *args, "--deployment",
                                      f"{DEMO_SITE}/{DEMO_DEPLOYMENT}", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), matplotlib.image.imread(out)


def a_local_day(root) -> str:
    """A local day with clips in run 2, read from the store itself."""
    from fieldkit.listen.soundscape import _clips, _find_deployment, indices_run
    from fieldkit.workspace import open_workspace

    with open_workspace(root) as ws:
        dep = _find_deployment(ws, f"{DEMO_SITE}/{DEMO_DEPLOYMENT}")
        _, local, _ = _clips(ws, indices_run(ws, f"{DEMO_SITE}/{DEMO_DEPLOYMENT}"), dep)
    return str(local.date[0])


def test_the_deployment_page_shows_both_pictures_of_the_newest_run_with_indices(served, server):
    dep = served["deployment"]
    status, head, body = get(server.base, "/")
    assert status == 200 and f'href="/deployments/{dep}"'.encode() in body
    status, head, body = get(server.base, f"/deployments/{dep}")
    page = body.decode()
    assert status == 200 and head["content-security-policy"] == CSP and "<script" not in page
    assert f'src="/deployments/{dep}/ldfc.png?run={INDICES_RUN}"' in page
    assert f'src="/deployments/{dep}/heatmap.png?run={INDICES_RUN}"' in page
    assert f'href="/runs/{INDICES_RUN}"' in page and DEMO_DEPLOYMENT in page
    day = a_local_day(served["root"])
    assert f'href="/deployments/{dep}?run={INDICES_RUN}&amp;day={day}"' in page  # the days with clips


def test_a_deployment_too_long_for_one_picture_asks_for_a_day(served, monkeypatch):
    """In process, with a one-column limit: the page offers the days instead of the whole picture."""
    from starlette.testclient import TestClient

    from fieldkit.listen import soundscape
    from fieldkit.testing.serving import free_port
    from fieldkit.web.pages import create_app
    from fieldkit.web.server import plan_serve
    from fieldkit.workspace import open_workspace

    monkeypatch.setattr(soundscape, "MAX_COLUMNS", 1)
    plan = plan_serve(open_workspace(served["root"]), "127.0.0.1", free_port())
    dep, day = served["deployment"], a_local_day(served["root"])
    try:
        with TestClient(create_app(plan.workspace), base_url="http://127.0.0.1") as client:
            whole = client.get(f"/deployments/{dep}").text
            one_day = client.get(f"/deployments/{dep}?day={day}").text
    finally:
        plan.workspace.close()
    assert "too wide for one picture" in whole and f"/deployments/{dep}/ldfc.png" not in whole
    assert f"/deployments/{dep}/heatmap.png" in whole and f"day={day}" in whole
    assert f'src="/deployments/{dep}/ldfc.png?run={INDICES_RUN}&amp;day={day}"' in one_day


@pytest.mark.parametrize("kind, args", [("ldfc", ("ldfc",)), ("heatmap", ("heatmap", "--index", "aci"))])
def test_a_served_picture_is_the_one_fieldkit_picture_draws_for_the_same_run(served, server, tmp_path, kind, args):
    root, dep = served["root"], served["deployment"]
    status, head, body = get(server.base, f"/deployments/{dep}/{kind}.png")
    assert status == 200 and head["content-type"] == "image/png" and body[:8] == PNG
    result, expected = drawn_by_the_cli(root, tmp_path, *args)
    assert result["run_id"] == INDICES_RUN
    served_pixels = pixels(body)
    assert served_pixels.shape == expected.shape == (result["height_px"], result["width_px"], 4)
    np.testing.assert_array_equal(served_pixels, expected)
    # the same file again, from the cache, under a name of the deployment id, the run and the version
    suffix = "ldfc-run2-all" if kind == "ldfc" else "heatmap-aci-run2-all"
    cached = root / "cache" / "serve" / f"deployment-{dep}-{suffix}-v1.png"
    assert cached.read_bytes() == body
    before = cached.stat().st_mtime_ns
    assert get(server.base, f"/deployments/{dep}/{kind}.png?run={INDICES_RUN}")[2] == body
    assert cached.stat().st_mtime_ns == before


def test_one_local_day_is_the_cli_s_day_picture(served, server, tmp_path):
    root, dep = served["root"], served["deployment"]
    day = a_local_day(root)
    status, _, body = get(server.base, f"/deployments/{dep}/ldfc.png?day={day}&run={INDICES_RUN}")
    assert status == 200
    result, expected = drawn_by_the_cli(root, tmp_path, "ldfc", "--day", day, "--run", str(INDICES_RUN))
    assert result["columns"] == 1440 and result["day"] == day
    np.testing.assert_array_equal(pixels(body), expected)
    assert (root / "cache" / "serve" / f"deployment-{dep}-ldfc-run2-{day}-v1.png").is_file()
    page = get(server.base, f"/deployments/{dep}?day={day}")[2].decode()
    assert f'src="/deployments/{dep}/ldfc.png?run={INDICES_RUN}&amp;day={day}"' in page


def test_without_a_run_with_indices_the_answer_names_the_workflow(served, server):
    bare, dep = served["bare_deployment"], served["deployment"]
    for target in (f"/deployments/{bare}/ldfc.png", f"/deployments/{bare}/heatmap.png",
                   f"/deployments/{dep}/ldfc.png?run=1", f"/deployments/{dep}/heatmap.png?run=1",
                   f"/deployments/{dep}?run=1", f"/deployments/{dep}/ldfc.png?run=999999"):
        status, head, body = get(server.base, target)
        assert status == 404 and head["content-type"].startswith("text/html"), (target, status)
        assert head["content-security-policy"] == CSP
        if "999999" not in target:
            assert b"fieldkit process soundscape" in body, (target, body[:400])
    # the deployment page itself stays: its facts, and what to run for the pictures
    status, _, body = get(server.base, f"/deployments/{bare}")
    assert status == 200 and b"fieldkit process soundscape" in body and b"<img" not in body


def test_path_like_and_bad_parameters_reach_no_file(served, server):
    dep = served["deployment"]
    not_found = ["/deployments/..%2F..%2Fetc%2Fpasswd", "/deployments/../../etc/passwd/ldfc.png",
                 "/deployments/..%2Fcatalogue.sqlite/ldfc.png", "/deployments/%2Fetc%2Fpasswd/heatmap.png",
                 "/deployments/-1/ldfc.png", "/deployments/999999", "/deployments/999999/ldfc.png",
                 f"/deployments/{dep}/..%2F..%2Fcatalogue.sqlite", f"/deployments/{dep}/ldfc.png%2F..%2F..",
                 f"/deployments/{dep}/ldfc.png?day=1999-01-01", f"/deployments/{dep}?day=1999-01-01"]  # no clips
    bad_request = [f"/deployments/{dep}/ldfc.png?day=..%2F..%2Fetc%2Fpasswd", f"/deployments/{dep}/ldfc.png?day=2024-5-1",
                   f"/deployments/{dep}/ldfc.png?day=2024-W18-3", f"/deployments/{dep}/ldfc.png?day=20240501",
                   f"/deployments/{dep}/ldfc.png?day=2024-02-30", f"/deployments/{dep}/ldfc.png?day=2024-05-01T00:00",
                   f"/deployments/{dep}?day=%3Cscript%3E", f"/deployments/{dep}/ldfc.png?run=..%2F",
                   f"/deployments/{dep}/ldfc.png?run=0", f"/deployments/{dep}/ldfc.png?run=-2",
                   f"/deployments/{dep}/heatmap.png?run=2.5", f"/deployments/{dep}?run=%2Fetc%2Fpasswd"]
    for target in not_found + bad_request:
        status, head, body = get(server.base, target)
        assert status == (404 if target in not_found else 400), (target, status, body[:300])
        assert b"root:x:0:0" not in body and body[:8] != PNG and b"<script>" not in body
        assert head["content-security-policy"] == CSP
    cached = {p.name for p in (served["root"] / "cache" / "serve").iterdir()}
    assert not any("passwd" in n or "script" in n or "W18" in n for n in cached), cached
