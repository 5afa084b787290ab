"""A real FAT32 file system for destination tests (docs/reliability.md C4).

A sparse image made by ``mkfs.vfat -F 32`` (dosfstools), mounted through the kernel's ``vfat``
(``mount -o loop``) or, on a kernel without it, through the FUSE driver ``fusefat``: either way a
real FAT file system that fieldkit finds in ``/proc/self/mountinfo``, nothing mocked. Skipped
where neither can mount (a failure under FIELDKIT_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import skip_unless_required


def _mount(image: Path, mountpoint: Path) -> list[str] | None:
    """Mount ``image`` at ``mountpoint``; the command that unmounts it, or None if neither driver could."""
    tried = subprocess.run(["mount", "-o", "loop", "-t", "vfat", str(image), str(mountpoint)],
                           capture_output=True, check=False)
    if tried.returncode == 0:
        return ["umount", str(mountpoint)]
    if shutil.which("fusefat"):
        tried = subprocess.run(["fusefat", "-o", "rw+", str(image), str(mountpoint)], capture_output=True,
                               check=False)
        if tried.returncode == 0:
            return ["fusermount", "-u", str(mountpoint)]
    return None


@contextlib.contextmanager
def fat32_mounted(base: Path, size_mib: int = 64) -> Iterator[Path]:
    """A freshly formatted FAT32 volume of ``size_mib`` MiB mounted at ``base/fat`` for the block."""
    if not shutil.which("mkfs.vfat"):
        skip_unless_required("mkfs.vfat (dosfstools) is not installed")
    image, mountpoint = base / "fat32.img", base / "fat"
    with image.open("wb") as f:
        f.truncate(size_mib * 1024 * 1024)  # sparse
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "FIELDKIT", str(image)], capture_output=True, check=True)
    mountpoint.mkdir()
    unmount = _mount(image, mountpoint)
    if unmount is None:
        skip_unless_required("cannot mount a FAT32 image here (mount -t vfat and fusefat both failed; needs root)")
    try:
        yield mountpoint
    finally:
        subprocess.run(unmount, check=True, capture_output=True)
