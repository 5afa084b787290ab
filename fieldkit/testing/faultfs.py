"""A FUSE filesystem that fails on demand, for the reliability tests (docs/reliability.md C1, C2, C3, D2).

It runs in its own process (``python -m fieldkit.testing.faultfs_server``), mounted over a folder with
Debian's ``fuse3``, and is steered through a small JSON control file that it re-reads whenever
the file changes. Two modes:

**Card mode** (a passthrough of ``backing``), with per-file faults keyed by the path inside the
mount (``"/DIR/FILE.WAV"``):

- ``eio_after=N`` (with ``eio_times=k``): a read that reaches past byte ``N`` fails with EIO — the
  first ``k`` times only when ``k`` is given (a flaky card that reads on the next try), always
  otherwise (a bad sector);
- ``vanish_after=N``: once a read reaches past byte ``N`` the whole card is gone — reads of open
  files fail with ENODEV, every lookup with ENOENT — until :meth:`FaultFS.reinsert` (the card
  pulled out, then re-inserted);
- ``mutate="every_read"``: each opening of the file reads different bytes (one byte changed,
  a different one each time: two reads never agree); ``mutate="on_open"``: the first opening
  rewrites the file on the card (same size, new content and mtime): a change between the
  inventory and the copy.

**Write-back mode** (D2): the mount behaves like a disk whose cache is lost at a power cut.
Every operation works on a volatile copy (a temporary folder, the "page cache"); only an
``fsync`` of a file makes that file's *content* durable, and only an ``fsync`` of a directory
makes its *entries* durable (POSIX promises nothing more). ``backing`` holds the durable state as
``inodes/<id>`` (content) and ``namespace.json`` (directory id → name → entry); a new mount
rebuilds the visible tree from it, so unmounting without a flush (killing the process) is a power
cut: what was never synced is gone, including files whose directory entry was never synced.
``freeze_after_syncs=K`` makes every durable operation after the K-th a no-op (power lost at that
instant while the programs run on), so a test can cut at every sync boundary deterministically.

The binding is ``mfusepy`` (ISC; ctypes bindings of libfuse 2 and 3, maintained, a fork of the
unmaintained ``fusepy`` API): it needs only the ``fuse3`` runtime library, no compiler and no
``libfuse3-dev``, unlike ``pyfuse3`` (a Cython build against libfuse3 headers, plus trio), and
unlike ``fusepy`` it speaks libfuse 3, which is what Debian 12 installs by default.
Single-threaded on purpose: the faults and the sync counter are then exactly ordered.

Tests use :func:`fault_fs`::

    with fault_fs(card_folder, mountpoint) as fs:
        fs.set("/20240501_220000.WAV", eio_after=4096)
        ...  # ingest mountpoint
    # always unmounted here (fusermount3 -u), even when the block failed
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fieldkit.testing.faultfs_server import atomic_json

__all__ = ["FaultFS", "fault_fs", "fuse_available"]

MOUNT_TIMEOUT_S = 20.0


def fuse_available() -> str | None:
    """Why a FUSE mount cannot be made here, or None when it can (``/dev/fuse``, ``fusermount3``, mfusepy)."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse3 is not installed (Debian package fuse3)"
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # mfusepy would take libfuse 2 when both are there
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: libfuse itself is missing
        return f"mfusepy cannot be loaded: {exc}"
    return None


# --------------------------------------------------------------------------------------------
# The controller (runs in the test)
# --------------------------------------------------------------------------------------------

class FaultFS:
    """A mounted fault filesystem: :meth:`set` faults, read :meth:`status`, :meth:`power_cut`."""

    def __init__(self, backing: Path, mountpoint: Path, *, write_back: bool = False) -> None:
        self.backing, self.mountpoint, self.write_back = Path(backing), Path(mountpoint), write_back
        self._control_dir = Path(tempfile.mkdtemp(prefix="faultfs-"))
        self.control = self._control_dir / "control.json"
        self._doc: dict = {"files": {}}
        self._serial = 0
        self._proc: subprocess.Popen | None = None
        self._cache: Path | None = None
        self._log = self._control_dir / "faultfs.log"

    # -- mount lifecycle ------------------------------------------------------------------------
    def mount(self) -> FaultFS:
        """Start the filesystem process and wait until the mount is live."""
        why = fuse_available()
        if why:
            raise RuntimeError(f"cannot mount a FUSE filesystem here: {why}")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self._write_control()
        argv = [sys.executable, "-m", "fieldkit.testing.faultfs_server", str(self.backing), str(self.mountpoint),
                str(self.control)]
        if self.write_back:
            self._cache = Path(tempfile.mkdtemp(prefix="faultfs-cache-"))
            argv.append(str(self._cache))
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                          env={**os.environ, "FUSE_LIBRARY_NAME": "fuse3"})
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not os.path.ismount(self.mountpoint):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._stop(signal.SIGKILL)
                raise RuntimeError(f"faultfs did not mount {self.mountpoint}: {self._log.read_text()[-2000:]}")
            time.sleep(0.02)
        return self

    def unmount(self) -> None:
        """A clean unmount (``fusermount3 -u``); in write-back mode unsynced data is still dropped."""
        if self._proc is None:
            return
        subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True, check=False)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._stop(signal.SIGKILL)
        self._finish()

    def power_cut(self) -> None:
        """Kill the filesystem process (nothing flushed), detach the dead mount, drop the cache."""
        self._stop(signal.SIGKILL)

    def _stop(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, sig)
            self._proc.wait(timeout=10)
        self._finish()

    def _finish(self) -> None:
        if os.path.ismount(self.mountpoint) or self._dead_mount():
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True, check=False)
        if self._cache is not None:
            shutil.rmtree(self._cache, ignore_errors=True)
            self._cache = None
        self._proc = None

    def _dead_mount(self) -> bool:
        try:
            os.stat(self.mountpoint)
        except OSError as exc:
            return exc.errno == errno.ENOTCONN
        return False

    def close(self) -> None:
        """Unmount if mounted and remove the control folder."""
        self.unmount()
        shutil.rmtree(self._control_dir, ignore_errors=True)

    # -- control --------------------------------------------------------------------------------
    def _write_control(self) -> None:
        atomic_json(self.control, self._doc)

    def set(self, path: str, **fault) -> None:
        """Faults of one file (path inside the mount, e.g. ``"/A.WAV"``); ``set(path)`` clears them."""
        key = "/" + path.lstrip("/")
        if fault:
            self._doc["files"][key] = fault
        else:
            self._doc["files"].pop(key, None)
        self._commit()

    def reinsert(self) -> None:
        """The vanished card is back (its faults cleared)."""
        self._doc["reinserted"], self._doc["files"] = self._doc.get("reinserted", 0) + 1, {}
        self._commit()

    def freeze_after(self, syncs: int | None) -> None:
        """Write-back mode: durable operations after the ``syncs``-th are dropped (the power is gone)."""
        self._doc["freeze_after_syncs"] = syncs
        self._commit()

    def sync_all(self) -> None:
        """Write-back mode: make everything durable now (the state a test starts from)."""
        self._serial += 1
        self._doc["sync_all_serial"] = self._serial
        self._commit()
        self._wait(lambda s: s.get("sync_all", 0) >= self._serial)

    def _commit(self) -> None:
        """Write the control file and wait until the filesystem has read it (any operation polls it)."""
        self._doc["serial"] = self._doc.get("serial", 0) + 1
        self._write_control()
        self._wait(lambda s: s.get("control_serial") == self._doc["serial"])

    def _wait(self, ready, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # a vanished card answers ENOENT, and still polls
                os.stat(self.mountpoint)
            if ready(self.status()):
                return
            time.sleep(0.01)
        raise TimeoutError("faultfs did not take the new control file")

    def status(self) -> dict:
        """Counters of the filesystem: ``syncs``, ``durable_syncs``, ``eio`` and ``opens`` per path, ``vanished``."""
        path = self.control.with_name(self.control.name + ".status")
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@contextlib.contextmanager
def fault_fs(backing: os.PathLike[str] | str, mountpoint: os.PathLike[str] | str, *,
             write_back: bool = False) -> Iterator[FaultFS]:
    """Mount a :class:`FaultFS` for the block; always unmounted afterwards, even on failure.

    Parameters
    ----------
    backing : path-like
        Card mode: the folder passed through. Write-back mode: the folder holding the durable
        state (created empty or reused from an earlier mount).
    mountpoint : path-like
        An empty folder to mount on.
    write_back : bool
        Hold writes until ``fsync`` (D2) instead of passing them through.
    """
    fs = FaultFS(Path(backing), Path(mountpoint), write_back=write_back).mount()
    try:
        yield fs
    finally:
        fs.close()

