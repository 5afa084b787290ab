"""Point a workspace's roots at an S3 server, for tests and benchmarks.

Until ingest writes to object storage itself, an S3 archive is made the way an operator would
move one: ingest into the local archive, copy the archive folder into the bucket object for
object (the catalogue's ``archive_path`` values are relative to the archive root, so they stay
valid), then set ``archive_root`` (and ``stores_root``) to the bucket's URLs with a ``[storage]``
table naming the endpoint. Credentials stay in the environment (the AWS_* variables).
"""

from __future__ import annotations

import re
from pathlib import Path

from fieldkit.config.settings import CONFIG_FILENAME
from fieldkit.io.storage import open_root
from fieldkit.workspace import toml_inline_table

__all__ = ["copy_archive_to", "use_s3_roots"]


def copy_archive_to(archive: Path, url: str, options: dict[str, str]) -> int:
    """Copy every file under the local ``archive`` to ``url`` (create-only); return the count."""
    root = open_root(url, base=archive, options=options)
    count = 0
    for path in sorted(p for p in archive.rglob("*") if p.is_file() and not p.name.startswith(".ingest")):
        rel = path.relative_to(archive).as_posix()
        with open(path, "rb") as fh:
            root.put_new(rel, iter(lambda fh=fh: fh.read(8 << 20), b""))
        count += 1
    return count


def use_s3_roots(workspace: Path, options: dict[str, str], *, archive: str | None = None,
                 stores: str | None = None) -> None:
    """Rewrite ``fieldkit.toml`` of ``workspace``: the given roots as URLs, ``[storage] options``."""
    config = workspace / CONFIG_FILENAME
    text = config.read_text()
    for key, url in (("archive_root", archive), ("stores_root", stores)):
        if url is not None:
            text = re.sub(rf"^{key} = .*$", f'{key} = "{url}"', text, count=1, flags=re.MULTILINE)
    config.write_text(f"{text.rstrip()}\n\n[storage]\noptions = {toml_inline_table(options)}\n")
