"""The fault filesystem itself, run in its own process by :class:`fieldkit.testing.faultfs.FaultFS`
(``python -m fieldkit.testing.faultfs_server BACKING MOUNTPOINT CONTROL [CACHE]``): the
passthrough with per-file faults (card mode), and the write-back disk whose unsynced state a
power cut loses (:class:`_Durable`). What each mode does: :mod:`fieldkit.testing.faultfs`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import sys
from pathlib import Path

__all__ = ["atomic_json", "serve"]


# --------------------------------------------------------------------------------------------

def atomic_json(path: Path, doc: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class _Durable:
    """The durable half of write-back mode: file contents by id, and directory entries by id."""

    def __init__(self, backing: Path, cache: Path) -> None:
        self.backing, self.cache = backing, cache
        self.inodes = backing / "inodes"
        self.inodes.mkdir(parents=True, exist_ok=True)
        self.ns_path = backing / "namespace.json"
        doc = json.loads(self.ns_path.read_text()) if self.ns_path.exists() else {"next": 1, "dirs": {"0": {}}}
        self.next_id: int = doc["next"]
        self.dirs: dict[str, dict[str, list]] = doc["dirs"]
        self.ids: dict[int, str] = {}  # st_ino in the cache → durable id
        self._materialise("0", cache, {})

    def _materialise(self, dir_id: str, folder: Path, first_path: dict[str, Path]) -> None:
        """Rebuild the visible tree from what is durable; hard links stay hard links."""
        self.ids[folder.stat().st_ino] = dir_id
        for name, (kind, ident) in self.dirs.get(dir_id, {}).items():
            target = folder / name
            if kind == "d":
                target.mkdir()
                self._materialise(ident, target, first_path)
            elif ident in first_path:
                os.link(first_path[ident], target)
            else:
                content = self.inodes / ident
                shutil.copyfile(content, target) if content.exists() else target.touch()
                first_path[ident] = target
                self.ids[target.stat().st_ino] = ident

    def _id(self, ino: int) -> str:
        if ino not in self.ids:
            self.ids[ino] = str(self.next_id)
            self.next_id += 1
        return self.ids[ino]

    def sync_file(self, path: Path) -> None:
        ident = self._id(path.stat().st_ino)
        tmp = self.inodes / f"{ident}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, self.inodes / ident)
        self._save()

    def sync_dir(self, path: Path) -> None:
        entries: dict[str, list] = {}
        for entry in os.scandir(path):
            st = entry.stat(follow_symlinks=False)
            ident = self._id(st.st_ino)
            if entry.is_dir(follow_symlinks=False):
                self.dirs.setdefault(ident, {})  # a new folder is durable empty until it is synced
                entries[entry.name] = ["d", ident]
            elif entry.is_file(follow_symlinks=False):
                entries[entry.name] = ["f", ident]  # content never synced: an empty file after a cut
        self.dirs[self._id(path.stat().st_ino)] = entries
        self._save()

    def sync_all(self) -> None:
        """Everything durable now (a clean ``sync`` of the whole disk, used to set a test up)."""
        for folder, _dirs, files in os.walk(self.cache):
            for name in files:
                self.sync_file(Path(folder) / name)
            self.sync_dir(Path(folder))

    def _save(self) -> None:
        atomic_json(self.ns_path, {"next": self.next_id, "dirs": self.dirs})


def _operations_class():
    import mfusepy

    class FaultOperations(mfusepy.Operations):
        use_ns = True

        def __init__(self, root: Path, control: Path, durable: _Durable | None) -> None:
            self.root = str(root)
            self.control = control
            self.status_path = control.with_name(control.name + ".status")
            self.durable = durable
            self.faults: dict[str, dict] = {}
            self.present = True
            self.freeze_after: int | None = None
            self.stamp: tuple | None = None
            self.status = {"syncs": 0, "durable_syncs": 0, "eio": {}, "opens": {}, "vanished": False,
                           "mutated": {}, "sync_all": 0}
            self._write_status()

        # -- control ---------------------------------------------------------------------------
        def _poll(self) -> None:
            try:
                st = os.stat(self.control)
            except FileNotFoundError:
                return
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self.stamp:
                return
            self.stamp = stamp
            doc = json.loads(self.control.read_text(encoding="utf-8") or "{}")
            self.faults = doc.get("files", {})
            self.freeze_after = doc.get("freeze_after_syncs")
            if doc.get("reinserted", 0) > self.status.get("reinserted", 0):  # only reinsert() brings it back
                self.present, self.status["vanished"] = True, False
                self.status["reinserted"] = doc["reinserted"]
            if doc.get("sync_all_serial", 0) > self.status["sync_all"] and self.durable is not None:
                self.durable.sync_all()
                self.status["sync_all"] = doc["sync_all_serial"]
            self.status["control_serial"] = doc.get("serial", 0)
            self._write_status()

        def _write_status(self) -> None:
            atomic_json(self.status_path, self.status)

        def _real(self, path: str) -> str:
            return self.root + path

        def _gate(self, path: str) -> None:
            self._poll()
            if not self.present:
                raise mfusepy.FuseOSError(errno.ENOENT)

        # -- metadata ---------------------------------------------------------------------------
        def getattr(self, path, fh=None):
            self._gate(path)
            try:
                st = os.fstat(fh) if fh is not None else os.lstat(self._real(path))
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno) from None
            keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino", "st_blocks")
            attrs = {k: getattr(st, k) for k in keys}
            attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            return attrs

        def readdir(self, path, fh):
            self._gate(path)
            # with use_ino the listing must carry the inode numbers: glibc skips an entry whose is 0
            listing = [(".", {"st_ino": os.stat(self._real(path)).st_ino, "st_mode": stat.S_IFDIR}, 0),
                       ("..", {"st_ino": 1, "st_mode": stat.S_IFDIR}, 0)]
            with os.scandir(self._real(path)) as entries:
                listing += [(e.name, {"st_ino": e.inode(), "st_mode": e.stat(follow_symlinks=False).st_mode}, 0)
                            for e in entries]
            return listing

        def statfs(self, path):
            st = os.statvfs(self._real(path))
            return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                 "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

        def access(self, path, amode):
            self._gate(path)
            if not os.access(self._real(path), amode):
                raise mfusepy.FuseOSError(errno.EACCES)
            return 0

        def readlink(self, path):
            self._gate(path)
            return os.readlink(self._real(path))

        # -- files ------------------------------------------------------------------------------
        def open(self, path, flags):
            self._gate(path)
            opens = self.status["opens"][path] = self.status["opens"].get(path, 0) + 1
            fault = self.faults.get(path, {})
            if fault.get("mutate") == "on_open" and not self.status["mutated"].get(path):
                self._rewrite(path)
            if fault.get("mutate") == "every_read":
                self.status["mutated"][path] = opens
            self._write_status()
            # O_APPEND would make pwrite ignore the offsets the kernel already computed
            return os.open(self._real(path), flags & ~(os.O_CREAT | os.O_APPEND))

        def _rewrite(self, path: str) -> None:
            """The card's file changes under fieldkit: same size, other bytes, a new mtime."""
            real = self._real(path)
            with open(real, "r+b") as fh:
                fh.seek(os.path.getsize(real) // 2)
                byte = fh.read(1)
                fh.seek(-1, os.SEEK_CUR)
                fh.write(bytes([byte[0] ^ 0xFF]) if byte else b"\xff")
            st = os.stat(real)
            os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
            self.status["mutated"][path] = 1

        def create(self, path, mode, flags=os.O_RDWR):
            self._gate(path)
            return os.open(self._real(path), (flags & ~os.O_APPEND) | os.O_CREAT, mode)

        def read(self, path, size, offset, fh):
            self._poll()
            if not self.present:
                raise mfusepy.FuseOSError(errno.ENODEV)
            fault = self.faults.get(path, {})
            end = offset + size
            if "vanish_after" in fault and end > fault["vanish_after"]:
                self.present = False
                self.status["vanished"] = True
                self._write_status()
                raise mfusepy.FuseOSError(errno.ENODEV)
            if "eio_after" in fault and end > fault["eio_after"]:
                served = self.status["eio"].get(path, 0)
                if fault.get("eio_times") is None or served < fault["eio_times"]:
                    self.status["eio"][path] = served + 1
                    self._write_status()
                    raise mfusepy.FuseOSError(errno.EIO)
            data = os.pread(fh, size, offset)
            opens = self.status["mutated"].get(path) if fault.get("mutate") == "every_read" else None
            if opens and data:
                # a different byte each opening, so no two reads of the file agree
                flip = (opens * 7919) % max(1, os.fstat(fh).st_size)
                if offset <= flip < offset + len(data):
                    i = flip - offset
                    data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
            return data

        def write(self, path, data, offset, fh):
            return os.pwrite(fh, data, offset)

        def truncate(self, path, length, fh=None):
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(self._real(path), length)
            return 0

        def flush(self, path, fh):
            return 0

        def release(self, path, fh):
            os.close(fh)
            return 0

        def _durable_op(self) -> bool:
            self.status["syncs"] += 1
            live = self.durable is not None and (self.freeze_after is None
                                                 or self.status["durable_syncs"] < self.freeze_after)
            if live:
                self.status["durable_syncs"] += 1
            return live

        def fsync(self, path, datasync, fh):
            self._poll()
            if self._durable_op():
                self.durable.sync_file(Path(self._real(path)))
            self._write_status()
            return 0

        def fsyncdir(self, path, datasync, fh):
            self._poll()
            if self._durable_op():
                self.durable.sync_dir(Path(self._real(path)))
            self._write_status()
            return 0

        # -- namespace --------------------------------------------------------------------------
        def mkdir(self, path, mode):
            self._gate(path)
            os.mkdir(self._real(path), mode)
            return 0

        def rmdir(self, path):
            self._gate(path)
            os.rmdir(self._real(path))
            return 0

        def unlink(self, path):
            self._gate(path)
            os.unlink(self._real(path))
            return 0

        def rename(self, old, new):
            self._gate(old)
            os.rename(self._real(old), self._real(new))
            return 0

        def link(self, target, source):
            self._gate(target)
            os.link(self._real(source), self._real(target))
            return 0

        def symlink(self, target, source):
            self._gate(target)
            os.symlink(source, self._real(target))
            return 0

        def chmod(self, path, mode):
            os.chmod(self._real(path), mode)
            return 0

        def chown(self, path, uid, gid):
            os.chown(self._real(path), uid, gid)
            return 0

        def utimens(self, path, times=None):
            os.utime(self._real(path), ns=times) if times else os.utime(self._real(path))
            return 0

    return FaultOperations


def _wrap_oserrors(cls):
    """OSError from the passthrough → the same errno to the kernel (never a crashed daemon)."""
    import functools

    import mfusepy

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            def wrapped(self, *args, _f=value, **kwargs):
                try:
                    return _f(self, *args, **kwargs)
                except mfusepy.FuseOSError:
                    raise
                except OSError as exc:
                    raise mfusepy.FuseOSError(exc.errno or errno.EIO) from None
            setattr(cls, name, functools.wraps(value)(wrapped))
    return cls


def serve(backing: Path, mountpoint: Path, control: Path, cache: Path | None) -> None:
    """Mount and serve until unmounted (``cache`` set: write-back mode over that volatile folder)."""
    import mfusepy

    durable = _Durable(backing, cache) if cache is not None else None
    ops = _wrap_oserrors(_operations_class())(cache if cache is not None else backing, control, durable)
    # direct_io on a card: every read reaches the faults (no page cache in between). Not on the
    # write-back disk: SQLite maps its -shm file, which direct_io would forbid.
    # Zero timeouts: a vanished card is seen at once, not after the kernel's 1 s attribute cache.
    options = {"attr_timeout": 0, "entry_timeout": 0, "negative_timeout": 0, "use_ino": True,
               "hard_remove": True, "fsname": "faultfs", "subtype": "faultfs"}
    if cache is None:
        options["direct_io"] = True
    mfusepy.FUSE(ops, str(mountpoint), foreground=True, nothreads=True, **options)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    args = [Path(a) for a in sys.argv[1:]]
    serve(args[0], args[1], args[2], args[3] if len(args) > 3 else None)
