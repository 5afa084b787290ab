"""``fieldkit serve`` in Debian's Chromium (Playwright, never a downloaded browser), against a real
server started as its own process on a demo-like workspace: every page loads without a console
error, every picture loads, the audio plays, the filters narrow the table, and the markup-named
file stays text. Screenshots go to the test's temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fieldkit.testing.serving import SCRIPT_NAME, running_server
from tests.conftest import skip_unless_required

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Wait until every <audio> can play through (readyState 4), play it muted, report its state.
PLAY = """() => Promise.all(Array.from(document.querySelectorAll('audio')).map(a => new Promise(done => {
    const go = () => { a.muted = true; a.play().then(() => done([a.readyState, 'played']), e => done([a.readyState, String(e)])); };
    if (a.readyState === 4) return go();
    a.addEventListener('canplaythrough', go, {once: true});
    a.addEventListener('error', () => done([a.readyState, 'error ' + (a.error && a.error.code)]), {once: true});
    setTimeout(() => done([a.readyState, 'timeout']), 30000);
})))"""
IMAGES = "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.getAttribute('src')])"


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).is_file():
        skip_unless_required("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_unless_required("the playwright package is not installed (the test extra has it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    with running_server(served["root"], log_dir=tmp_path_factory.mktemp("logs")) as server:
        yield server


class Visit:
    """A browser page that records console errors, failed requests and dialogs."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # A media element cancels its own first request when it moves to range requests
        # (net::ERR_ABORTED): that is how Chromium streams audio, not a failure.
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url} {r.failure}")
                     if r.failure != "net::ERR_ABORTED" else None)
        self.page.on("response", lambda r: self.errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, target: str) -> None:
        self.page.goto(self.base + target.lstrip("/"), wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def rows(self) -> int:
        return self.page.locator("#recordings tr td a[href^='/recordings/']").count() // 2


def test_every_page_loads_without_a_console_error(browser, server, served, tmp_path):
    visit = Visit(browser, server.base)
    targets = ["/", "/recordings", f"/recordings/{served['ok']}", f"/recordings/{served['quarantined']}",
               "/runs", "/runs/1", "/datasets", "/quarantine", f"/recordings/{served['script']}"]
    try:
        for target in targets:
            visit.open(target)
            images = visit.page.evaluate(IMAGES)
            assert all(done and width > 0 for done, width, _ in images), (target, images)
            assert visit.page.locator("h1").first.inner_text().strip(), target
        # the header links reach every section
        visit.open("/")
        for name in ("Recordings", "Runs", "Datasets & exports", "Quarantine", "Overview"):
            visit.page.click(f"header >> text={name}")
            visit.page.wait_for_load_state("load")
        visit.page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    finally:
        visit.page.close()
    assert not visit.errors, visit.errors
    assert not visit.dialogs
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind, mode", [("annotated", None), ("bat", "time-expansion"), ("bat", "heterodyne")])
def test_a_recording_page_shows_its_spectrogram_and_plays(browser, server, served, tmp_path, kind, mode):
    visit = Visit(browser, server.base)
    try:
        visit.open(f"/recordings/{served[kind]}" + (f"?mode={mode}" if mode else ""))
        images = visit.page.evaluate(IMAGES)
        played = visit.page.evaluate(PLAY)
        shot = tmp_path / f"recording-{kind}-{mode or 'excerpt'}.png"
        visit.page.screenshot(path=str(shot), full_page=True)
        text = visit.page.inner_text("main")
    finally:
        visit.page.close()
    assert not visit.errors, visit.errors
    spectrograms = [i for i in images if i[2].startswith("/spectrogram/")]
    assert len(spectrograms) == 1 and spectrograms[0][0] and spectrograms[0][1] == 1000, images
    assert played == [[4, "played"]], played
    assert shot.stat().st_size > 20_000
    if kind == "annotated":
        assert "(chosen)" in text and "Lineage" in text and "run 1" in text
        assert "No run or dataset uses it yet." not in text
    else:
        assert f"Listen as: excerpt time-expansion heterodyne" in " ".join(text.split())


def test_the_filters_narrow_the_table(browser, server, served):
    visit = Visit(browser, server.base)
    try:
        visit.open("/recordings")
        everything = visit.rows()
        visit.page.select_option("select[name=status]", "ok")
        visit.page.click("form.filters button[type=submit]")
        visit.page.wait_for_load_state("load")
        ok = visit.rows()
        visit.page.select_option("select[name=rate]", "384000")
        visit.page.click("form.filters button[type=submit]")
        visit.page.wait_for_load_state("load")
        bats = visit.rows()
        url = visit.page.url
        visit.page.fill("input[name=q]", "alert")
        visit.page.select_option("select[name=rate]", "")
        visit.page.click("form.filters button[type=submit]")
        visit.page.wait_for_load_state("load")
        found, matches = visit.page.inner_text("#recordings"), visit.rows()
        visit.open("/recordings?per_page=25&sort=id&order=desc")
        first_ids = visit.page.locator("#recordings tr td.num a").all_inner_texts()
    finally:
        visit.page.close()
    assert not visit.errors, visit.errors
    statuses = {r.status for r in served["rows"]}
    assert everything == len(served["rows"]) and len(statuses) >= 3
    assert ok == sum(r.status == "ok" for r in served["rows"]) and 0 < ok < everything
    assert bats == 1 < ok and "status=ok" in url and "rate=384000" in url
    assert SCRIPT_NAME in found and matches == 1
    assert [int(i) for i in first_ids] == sorted((r.id for r in served["rows"]), reverse=True)


def test_the_script_named_file_is_inert_in_the_browser(browser, server, served):
    visit = Visit(browser, server.base)
    try:
        visit.open(f"/recordings/{served['script']}")
        scripts = visit.page.evaluate("document.scripts.length")
        text = visit.page.inner_text("main")
    finally:
        visit.page.close()
    assert scripts == 0 and not visit.dialogs and not visit.errors
    assert SCRIPT_NAME in text


def test_a_deployment_page_shows_its_soundscape_pictures(browser, server, served, tmp_path):
    dep = served["deployment"]
    visit = Visit(browser, server.base)
    try:
        visit.open("/")
        visit.page.click(f"a[href='/deployments/{dep}']")
        visit.page.wait_for_load_state("networkidle")
        images = visit.page.evaluate(IMAGES)
        visit.page.screenshot(path=str(tmp_path / "deployment.png"), full_page=True)
        visit.open(f"/deployments/{served['bare_deployment']}")
        bare_images, bare_text = visit.page.evaluate(IMAGES), visit.page.inner_text("main")
    finally:
        visit.page.close()
    assert not visit.errors, visit.errors
    assert [src.split("?")[0] for _, _, src in images] == [f"/deployments/{dep}/ldfc.png",
                                                          f"/deployments/{dep}/heatmap.png"], images
    assert all(done and width > 0 for done, width, _ in images), images
    assert bare_images == [] and "fieldkit process soundscape" in bare_text
