"""``fieldkit serve`` is safe to leave running: a real server in its own process, on a real
demo-like workspace. Token on every request, nothing outside the catalogue's recordings reachable
through a path, every card name shown as text, a Content-Security-Policy, and a catalogue that
cannot be written through the application (the database refuses, not fieldkit's manners)."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from fieldkit.catalogue import migrate
from fieldkit.catalogue.models import Site
from fieldkit.catalogue.readonly import read_only_engine
from fieldkit.errors import EXIT_CONFIG
from fieldkit.testing.serving import SCRIPT_NAME, running_server
from fieldkit.web.guard import CSP


def get(base: str, target: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, bytes]:
    """One request with ``target`` sent exactly as written (no client-side normalisation of ``..``)."""
    where = urlsplit(base)
    con = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        con.request(method, target, headers=headers or {})
        response = con.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        con.close()


def pages(served: dict) -> list[str]:
    """Every page and every kind of file the server offers, for recordings of each kind."""
    ok, bat, script, bad = served["ok"], served["bat"], served["script"], served["quarantined"]
    return ["/", "/recordings", "/recordings?status=ok&sort=duration&order=desc&qc=clipped", f"/recordings/{ok}",
            f"/recordings/{bat}?mode=heterodyne", f"/recordings/{script}", f"/recordings/{bad}", "/runs", "/runs/1",
            "/datasets", "/quarantine", f"/spectrogram/{ok}", f"/audio/{ok}", f"/audio/{bat}?mode=time-expansion",
            "/static/site.css", f"/deployments/{served['deployment']}", f"/deployments/{served['deployment']}/ldfc.png",
            f"/deployments/{served['deployment']}/heatmap.png"]


@pytest.fixture(scope="module")
def open_server(served, tmp_path_factory):
    """A server on 127.0.0.1 without a token."""
    with running_server(served["root"], log_dir=tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(served, tmp_path_factory):
    """A server that requires a generated token; the token from its one JSON document."""
    with running_server(served["root"], "--new-token", "--json", log_dir=tmp_path_factory.mktemp("logs")) as server:
        doc = json.loads(server.stdout.read_text())
        yield server, doc


def test_a_non_loopback_bind_without_a_token_refuses_to_start(served):
    argv = [sys.executable, "-c", "from fieldkit.cli import main; main()", "-w", str(served["root"]), "serve",
            "--host", "0.0.0.0", "--port", "9"]
    human = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert human.returncode == EXIT_CONFIG and human.stdout == "" and "Traceback" not in human.stderr
    assert human.stderr.startswith("error: refusing to serve the catalogue on 0.0.0.0 without a token")
    assert "serve.token" in human.stderr and "--new-token" in human.stderr
    machine = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=60)
    doc = json.loads(machine.stdout)
    assert machine.returncode == EXIT_CONFIG and doc["code"] == EXIT_CONFIG and "without a token" in doc["error"]


def test_a_port_in_use_is_one_clear_error(served):
    import socket

    from typer.testing import CliRunner

    from fieldkit.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["-w", str(served["root"]), "serve", "--port", str(port), "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == EXIT_CONFIG and f"cannot listen on 127.0.0.1:{port}" in doc["error"]
    assert "--port" in doc["hint"] and "Traceback" not in result.output


def test_every_request_without_the_token_is_401(served, token_server):
    server, doc = token_server
    token = doc["url"].split("?token=", 1)[1]
    assert doc["token_required"] and doc["read_only"] and len(token) >= 40
    for target in [*pages(served), "/no-such-page", "/audio/..%2F..%2Fetc%2Fpasswd"]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "fieldkit_token=wrong"},
                        {"Authorization": f"Bearer {token[:-1]}"}):
            status, head, body = get(server.base, target, headers)
            assert status == 401, (target, headers, status)
            assert head["content-security-policy"] == CSP and b"fieldkit" in body
        status, head, _ = get(server.base, target, {"Authorization": f"Bearer {token}"})
        assert status == (404 if "no-such" in target or ".." in target else 200), (target, status)
    # the printed address: ?token= sets an HttpOnly, SameSite=Strict cookie and drops the token from the address
    status, head, _ = get(server.base, f"/recordings?status=ok&token={token}")
    assert status == 303 and head["location"] == "/recordings?status=ok"
    cookie = head["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    status, head, _ = get(server.base, f"//attacker.example/x?token={token}")
    assert status == 303 and head["location"] == "/attacker.example/x"  # stays on this server
    status, _, body = get(server.base, "/recordings?status=ok", {"Cookie": cookie.split(";")[0]})
    assert status == 200 and b"Recordings" in body
    assert token not in server.stderr.read_text()  # never logged


def test_path_like_parameters_reach_no_file(served, open_server):
    rec = served["ok"]
    not_found = ["/audio/..%2F..%2Fetc%2Fpasswd", "/audio/../../etc/passwd", "/spectrogram/..%2F..%2Fetc%2Fpasswd",
                 "/recordings/..%2F..%2Fetc%2Fpasswd", "/runs/..%2Fcatalogue.sqlite", "/audio/%2Fetc%2Fpasswd",
                 "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/../../../../etc/passwd",
                 "/static/..%2Fpages.py", "/static/%2Fetc%2Fpasswd", "/audio/1.wav", "/audio/-1", "/audio/999999",
                 "/recordings/999999", "/runs/999999"]
    bad_request = [f"/audio/{rec}?mode=..%2F..%2Fetc%2Fpasswd", f"/audio/{rec}?start=..%2F..",
                   f"/audio/{rec}?duration=%2Fetc%2Fpasswd", f"/spectrogram/{rec}?start=-1",
                   f"/spectrogram/{rec}?duration=1e9", f"/spectrogram/{rec}?start=nan",
                   f"/recordings/{rec}?mode=../../etc/passwd", "/recordings?sort=..%2F..%2Fetc",
                   "/recordings?qc=..%2Fetc", "/recordings?per_page=..%2F", "/recordings?page=-1",
                   "/recordings?rate=..%2F", "/recordings?since=..%2F..%2Fetc%2Fpasswd",
                   f"/audio/{served['quarantined']}"]
    for target in not_found + bad_request:
        status, head, body = get(open_server.base, target)
        assert status == (404 if target in not_found else 400), (target, status, body[:200])
        assert b"root:x:0:0" not in body and b"import " not in body
        assert head["content-security-policy"] == CSP
    # a path in a filter is only text to match: no recording is called that
    status, _, body = get(open_server.base, "/recordings?site=..%2F..%2Fetc%2Fpasswd&q=..%2F..%2Fetc%2Fpasswd")
    assert status == 200 and b"0 match" in body


def test_the_script_named_file_renders_as_text(served, open_server):
    escaped = SCRIPT_NAME.replace("<", "&lt;").replace(">", "&gt;").encode()
    for target in (f"/recordings/{served['script']}", "/recordings?q=alert", "/recordings?q=%3Cscript%3E"):
        status, head, body = get(open_server.base, target)
        assert status == 200 and escaped in body, target
        assert b"<script" not in body.lower(), target  # no script element at all: the pages need none
        assert "script-src 'none'" in head["content-security-policy"]


def test_every_response_carries_the_security_headers(served, open_server):
    for target in [*pages(served), "/nothing-here"]:
        status, head, _ = get(open_server.base, target)
        assert status in (200, 404), (target, status)
        assert head["content-security-policy"] == CSP, target
        assert head["x-content-type-options"] == "nosniff" and head["referrer-policy"] == "no-referrer"
        assert "server" not in head
    # loopback without a token: a name rebound to 127.0.0.1 is not served
    status, _, _ = get(open_server.base, "/", {"Host": "attacker.example"})
    assert status == 400


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_browsing_writes_nothing_but_its_cache(served, tmp_path):
    root = served["root"]
    catalogue = hashlib.sha256((root / "catalogue.sqlite").read_bytes()).hexdigest()
    before = {name: _tree(root / name) for name in ("archive", "stores", "exports")}
    with running_server(root, log_dir=tmp_path) as server:
        for target in pages(served):
            assert get(server.base, target)[0] == 200, target
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert get(server.base, target, method=method)[0] == 405, (method, target)
    assert hashlib.sha256((root / "catalogue.sqlite").read_bytes()).hexdigest() == catalogue
    assert {name: _tree(root / name) for name in ("archive", "stores", "exports")} == before
    cached = sorted(p.name for p in (root / "cache" / "serve").iterdir())
    assert any(n.endswith(".png") for n in cached) and any(n.endswith(".wav") for n in cached)


def test_a_write_through_the_apps_catalogue_is_refused(served):
    from fieldkit.web.server import plan_serve
    from fieldkit.workspace import open_workspace

    plan = plan_serve(open_workspace(served["root"]), "127.0.0.1", 8000)
    try:
        with plan.workspace.catalogue.read() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Site)) >= 1  # it reads
        with pytest.raises(sa.exc.OperationalError, match="readonly database"):
            with plan.workspace.catalogue.write() as s:
                s.add(Site(name="written-by-the-web-app"))
        with pytest.raises(sa.exc.OperationalError, match="readonly database"):
            with plan.workspace.catalogue.engine.connect() as con:
                con.exec_driver_sql("PRAGMA query_only=OFF")  # even undoing the pragma: mode=ro holds
                con.exec_driver_sql("DELETE FROM site")
    finally:
        plan.workspace.close()


def test_the_read_only_engine_refuses_writes_on_each_backend(empty_catalogue_url):
    migrate.upgrade(empty_catalogue_url)
    engine = read_only_engine(empty_catalogue_url)
    try:
        with engine.connect() as con:
            assert con.scalar(sa.select(sa.func.count()).select_from(Site)) == 0
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction|readonly database"):
            with engine.begin() as con:
                con.execute(sa.insert(Site).values(name="x"))
    finally:
        engine.dispose()
