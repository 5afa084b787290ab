"""Real filesystem faults under a real ``fieldkit ingest`` process (docs/reliability.md C1, C2, C3, D2, D4).

The card is mounted through :mod:`fieldkit.testing.faultfs` (FUSE, its own process): the kernel
returns EIO partway through a file, the whole card vanishes mid-copy, or a file reads differently
each time, exactly as a failing SD card or reader would, and fieldkit sees nothing but errno.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldkit.testing.cards import audiomoth_card, snapshot
from tests.conftest import fuse_mounted
from tests.ingest.conftest import catalogue

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
GOOD = [f"20240501_22{m:02d}00.WAV" for m in range(0, 30, 5)]  # the card fixture's 6 good recordings
BAD = GOOD[2]


def run_ingest(ws: Path, card: Path, *extra: str, **settings: str) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    env["FIELDKIT_INGEST__BATCH_FILES"] = "4"
    env.update({f"FIELDKIT_INGEST__{k.upper()}": v for k, v in settings.items()})
    done = subprocess.run([FIELDKIT, "-w", str(ws), "ingest", str(card), "--site", "Wood", "--deployment", "N1",
                           "--json", *extra], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def by_path(report: dict) -> dict[str, dict]:
    return {f["path"]: f for f in report["files"]}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.reliability("C1")
def test_eio_partway_through_a_file_fails_it_after_bounded_retries(card, workspace, tmp_path):
    ws, before = workspace.root, snapshot(card)
    size = (card / BAD).stat().st_size
    with fuse_mounted(card, tmp_path / "mnt") as fs:
        fs.set(BAD, eio_after=size // 2)  # a bad sector in the middle: every read of it fails
        code, report, _ = run_ingest(ws, fs.mountpoint, read_retries="2")
        tries = fs.status()["eio"]["/" + BAD]
    assert tries == 3  # the first read and ingest.read_retries=2 more, then it gives up: bounded
    files = by_path(report)
    assert files[BAD]["state"] == "failed" and files[BAD]["reason"] == "read_error"
    assert BAD in files[BAD]["message"] and "errno 5" in files[BAD]["message"]
    assert "after 3 reads" in files[BAD]["message"]
    assert code == 3 and report["state"] == "incomplete" and report["safe_to_erase"] is False
    for name in GOOD:  # everything else in the batch carried on, verified against the card
        if name != BAD:
            assert files[name]["state"] == "verified"
            assert sha(workspace.paths.archive / files[name]["archive_path"]) == sha(card / name)
    assert catalogue(ws, "SELECT state, safe_to_erase FROM ingest_session") == [("incomplete", 0)]
    assert not list(workspace.paths.archive.rglob("*.partial"))
    assert snapshot(card) == before  # the card is never written

    # The sector reads again (another reader): the same command retries only the failed file.
    code, report, _ = run_ingest(ws, card)
    assert by_path(report)[BAD]["state"] == "verified" and report["safe_to_erase"] is True


@pytest.mark.slow
@pytest.mark.reliability("C1")
def test_a_read_error_that_clears_on_retry_is_verified(card, workspace, tmp_path):
    size = (card / BAD).stat().st_size
    with fuse_mounted(card, tmp_path / "mnt") as fs:
        fs.set(BAD, eio_after=size // 2, eio_times=1)  # fails once, then reads
        _, report, _ = run_ingest(workspace.root, fs.mountpoint)
        assert fs.status()["eio"]["/" + BAD] == 1
    files = by_path(report)
    assert files[BAD]["state"] == "verified" and files[BAD]["sha256"] == sha(card / BAD)
    assert report["state"] == "complete" and report["safe_to_erase"] is True


@pytest.mark.slow
@pytest.mark.reliability("C2")
def test_a_card_pulled_out_mid_copy_stops_cleanly_and_resumes(card, workspace, tmp_path):
    ws = workspace.root
    size = (card / BAD).stat().st_size
    with fuse_mounted(card, tmp_path / "mnt") as fs:
        fs.set(BAD, vanish_after=size // 2)
        code, report, _ = run_ingest(ws, fs.mountpoint)
        assert fs.status()["vanished"]
        assert code == 75 and report["code"] == 75, (code, report)  # temporary: re-insert and retry
        assert BAD in report["error"] and "vanished" in report["error"] and "resume" in report["hint"]
        # the batch's copies staged before the card went stay as partials until the next start
        assert list(workspace.paths.archive.rglob("*.partial"))
        state = dict(catalogue(ws, "SELECT id, state FROM ingest_session"))
        assert list(state.values()) != ["complete"]
        archived = catalogue(ws, "SELECT archive_path, sha256 FROM recording")
        for rel, digest in archived:  # what was committed before the card went is really there
            assert sha(workspace.paths.archive / rel) == digest

        fs.reinsert()  # the same card, back in the reader
        code, report, _ = run_ingest(ws, fs.mountpoint)
    assert not list(workspace.paths.archive.rglob("*.partial"))
    files = by_path(report)
    assert report["state"] == "complete" and report["safe_to_erase"] is True
    assert report["session_id"] in state  # the same session, resumed
    for name in GOOD:
        assert files[name]["state"] == "verified", files[name]
        assert sha(workspace.paths.archive / files[name]["archive_path"]) == sha(card / name)


@pytest.mark.slow
@pytest.mark.reliability("C3")
def test_two_reads_that_disagree_are_source_unstable_with_both_hashes(card, workspace, tmp_path):
    with fuse_mounted(card, tmp_path / "mnt") as fs:
        fs.set(BAD, mutate="every_read")
        code, report, _ = run_ingest(workspace.root, fs.mountpoint)
    bad = by_path(report)[BAD]
    assert bad["state"] == "failed" and bad["reason"] == "source_unstable"
    hashes = [w for w in bad["message"].replace("(", " ").replace(")", " ").split() if len(w) == 64]
    assert len(set(hashes)) == 2, bad["message"]  # both digests, in full
    assert code == 3 and report["state"] == "incomplete" and not report["safe_to_erase"]
    assert catalogue(workspace.root, f"SELECT count(*) FROM source_file WHERE raw_path = x'{BAD.encode().hex()}' "
                                     "AND state = 'verified'") == [(0,)]
    assert all(by_path(report)[n]["state"] == "verified" for n in GOOD if n != BAD)


@pytest.mark.slow
@pytest.mark.reliability("C3")
def test_a_file_changed_between_inventory_and_copy_is_never_verified(card, workspace, tmp_path):
    with fuse_mounted(card, tmp_path / "mnt") as fs:
        fs.set(BAD, mutate="on_open")  # the card's file is rewritten as fieldkit starts copying it
        code, report, _ = run_ingest(workspace.root, fs.mountpoint)
        assert fs.status()["mutated"] == {"/" + BAD: 1}
    bad = by_path(report)[BAD]
    assert bad["state"] == "failed" and bad["reason"] == "source_unstable", bad
    assert BAD in bad["message"] and "inventory" in bad["message"]
    assert code == 3 and not report["safe_to_erase"]


# --------------------------------------------------------------------------------------------
# D2: power loss. The whole workspace (archive and SQLite catalogue) sits on the write-back
# layer; only what fieldkit fsynced (files) and fsynced the folder of (names) survives the cut.
# --------------------------------------------------------------------------------------------

def _pristine_disk(tmp_path: Path) -> Path:
    """A durable disk holding a freshly initialised workspace (synced, then cleanly unmounted)."""
    from fieldkit.workspace import init_workspace

    disk = tmp_path / "disk0"
    with fuse_mounted(disk, tmp_path / "mnt", write_back=True) as fs:
        with init_workspace(fs.mountpoint / "ws"):
            pass
        fs.sync_all()
    return disk


def _verified_rows_hold(ws: Path) -> int:
    """Every file the catalogue calls verified is in the archive with its hash; returns their number."""
    rows = catalogue(ws, "SELECT r.archive_path, r.sha256 FROM source_file s JOIN recording r "
                         "ON r.id = s.recording_id WHERE s.state = 'verified'")
    rows += catalogue(ws, "SELECT archive_path, sha256 FROM recording")
    for rel, digest in rows:
        path = ws / "archive" / rel
        assert path.is_file(), f"the catalogue calls {rel} verified, but it is not in the archive after the cut"
        assert sha(path) == digest, f"{rel} is in the archive with other bytes than catalogued after the cut"
    return len(set(rows))


@pytest.mark.slow
@pytest.mark.reliability("D2")
def test_power_cut_at_sync_boundaries_keeps_every_verified_file(card, tmp_path):
    pristine = _pristine_disk(tmp_path)
    card_hashes = {sha(card / n) for n in GOOD}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    env["FIELDKIT_INGEST__BATCH_FILES"] = "4"  # three batches: cuts land between and inside them
    argv = [FIELDKIT, "-w", None, "ingest", str(card), "--site", "Wood", "--deployment", "N1", "--json"]

    # How many durable operations (fsync of a file or a folder) does a whole ingest make?
    shutil.copytree(pristine, tmp_path / "disk_full")
    with fuse_mounted(tmp_path / "disk_full", tmp_path / "mnt", write_back=True) as fs:
        argv[2] = str(fs.mountpoint / "ws")
        assert subprocess.run(argv, capture_output=True, env=env, timeout=300, check=False).returncode == 3
        total = fs.status()["durable_syncs"]
    assert total > 20
    # a spread over the copy, and every one of the last syncs: the seal (manifest, chain, session)
    cuts = sorted({1, 3, total // 5, total // 3, total // 2, 2 * total // 3, *range(total - 7, total)})
    survived = []
    for k in cuts:
        disk = tmp_path / f"disk_{k}"
        shutil.copytree(pristine, disk)
        with fuse_mounted(disk, tmp_path / "mnt", write_back=True) as fs:
            ws = fs.mountpoint / "ws"
            argv[2] = str(ws)
            fs.freeze_after(k)  # the power goes after the k-th durable operation ...
            ingest = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            while ingest.poll() is None and fs.status()["syncs"] <= k:
                time.sleep(0.005)
            if ingest.poll() is None:  # ... and the machine with it: the ingest dies at once
                ingest.send_signal(signal.SIGKILL)
            ingest.communicate(timeout=300)
            fs.power_cut()  # everything not synced is gone
            fs.mount()
            survived.append(_verified_rows_hold(ws))
            assert not any(f.stat().st_size == 0 and f.name != "20240501_230000.WAV"
                           for f in (ws / "archive").rglob("*.WAV"))  # no name without its bytes

            # After the power is back, the same command finishes the ingest.
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
            assert "Traceback" not in done.stderr, done.stderr
            report = json.loads(done.stdout)
            assert done.returncode == 3 and report["state"] == "complete" and report["safe_to_erase"], (k, report)
            assert _verified_rows_hold(ws) == 12
            assert card_hashes <= {r[0] for r in catalogue(ws, "SELECT sha256 FROM recording")}
            verify = subprocess.run([FIELDKIT, "-w", str(ws), "verify", "--json"], capture_output=True, text=True,
                                    env=env, timeout=300, check=False)
            assert verify.returncode == 0 and json.loads(verify.stdout)["passed"], (k, verify.stdout)
    print(f"D2: {total} durable operations per ingest; cut after {cuts}: {survived} files catalogued and intact")
    # the cuts really fell at different moments: from nothing catalogued to everything catalogued
    assert survived[0] == 0 and max(survived) == 12 and len(set(survived)) >= 3, survived


# --------------------------------------------------------------------------------------------
# D4: resuming an unfinished session (here: left by a card pulled out mid-copy) with another card
# in the same reader, or with the same card after the recorder wrote more files.
# --------------------------------------------------------------------------------------------

def _unfinished_session(card: Path, ws: Path, mountpoint: Path) -> int:
    """Ingest ``card`` through ``mountpoint`` until the card is pulled out; returns the session id."""
    with fuse_mounted(card, mountpoint) as fs:
        fs.set(BAD, vanish_after=1024)
        code, report, _ = run_ingest(ws, fs.mountpoint)
    assert code == 75 and "resume" in report["hint"], report
    (session_id, state), = catalogue(ws, "SELECT id, state FROM ingest_session")
    assert state != "complete"
    return session_id


@pytest.mark.slow
@pytest.mark.reliability("D4")
def test_resuming_with_a_different_card_is_refused_with_an_explanation(card, workspace, tmp_path):
    ws, mnt = workspace.root, tmp_path / "mnt"
    first = _unfinished_session(card, ws, mnt)
    other = tmp_path / "other_card"  # another card in the same reader: same mount point, other files
    audiomoth_card(other, start=dt.datetime(2024, 6, 2, 21, 0), count=3, serial="24E144055E0800AA")
    with fuse_mounted(other, mnt) as fs:
        code, report, _ = run_ingest(ws, fs.mountpoint)
        assert code == 65 and report["code"] == 65, report
        assert f"unfinished ingest session {first}" in report["error"] and str(mnt) in report["error"]
        assert "--card-id" in report["hint"]
        assert catalogue(ws, "SELECT count(*) FROM ingest_session") == [(1,)]  # nothing written for it
        # Told apart by an identity of its own, the other card is ingested; the first session waits.
        code, report, _ = run_ingest(ws, fs.mountpoint, "--card-id", "card-B")
    assert report["state"] == "complete" and report["resumed_from"] is None and report["session_id"] != first
    assert dict(catalogue(ws, "SELECT id, state FROM ingest_session"))[first] != "complete"


@pytest.mark.slow
@pytest.mark.reliability("D4")
def test_the_same_card_with_new_files_gets_a_new_session_linked_to_the_old_one(card, workspace, tmp_path):
    ws, mnt = workspace.root, tmp_path / "mnt"
    first = _unfinished_session(card, ws, mnt)
    # The recorder went on recording before the card came back: two more files on it.
    added = audiomoth_card(tmp_path / "more", start=dt.datetime(2024, 5, 2, 22, 0), count=2)
    for path in added[:2]:
        shutil.copy2(path, card / path.name)
    with fuse_mounted(card, mnt) as fs:
        _, report, _ = run_ingest(ws, fs.mountpoint)
    assert report["resumed_from"] == first and report["session_id"] != first
    assert report["state"] == "complete" and report["safe_to_erase"] is True
    files = by_path(report)
    for name in [*GOOD, *(p.name for p in added[:2])]:
        assert files[name]["state"] in ("verified", "duplicate"), files[name]
        rel = files[name]["archive_path"]
        assert sha(workspace.paths.archive / rel) == sha(card / name)
    assert {p.name for p in added[:2]} <= {n for n, f in files.items() if f["state"] == "verified"}
    assert catalogue(ws, f"SELECT resumed_from_id FROM ingest_session WHERE id = {report['session_id']}") == [(first,)]


def test_the_write_back_layer_keeps_exactly_what_was_synced(tmp_path):
    """The D2 layer itself: file content needs a file fsync, a name needs its folder's fsync."""
    with fuse_mounted(tmp_path / "disk", tmp_path / "mnt", write_back=True) as fs:
        top = fs.mountpoint / "d"
        top.mkdir()
        (top / "kept").write_bytes(b"old")
        fs.sync_all()
        for name, data in (("kept", b"new bytes"), ("named_only", b"lost bytes"), ("unsynced", b"x")):
            fd = os.open(top / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.write(fd, data)
            if name == "kept":
                os.fsync(fd)
            os.close(fd)
        dfd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        os.close(os.open(top / "unsynced2", os.O_WRONLY | os.O_CREAT))
        os.fsync(dfd)  # names: kept, named_only, unsynced, unsynced2 become durable (contents not)
        os.close(dfd)
        (top / "after").write_bytes(b"never synced")
        (top / "sub").mkdir()  # a folder whose name is never synced
        (top / "sub" / "f").write_bytes(b"data")
        fd = os.open(top / "sub" / "f", os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.sync()  # neither sync(2) nor syncfs(2) reaches a FUSE filesystem
        assert fs.status()["durable_syncs"] == 3
        fs.power_cut()
        fs.mount()
        found = {p.name: p.read_bytes() for p in top.iterdir()}
    assert found == {"kept": b"new bytes", "named_only": b"", "unsynced": b"", "unsynced2": b""}
