"""A workspace whose archive, stores and exports roots are on the real S3 test server.

Built the way the issue's chain does until ingest and processing write to S3 themselves: the
demo runs on local disk, then its archive and stores folders are uploaded into a bucket (with
boto3, not with fieldkit's adapter, so a fault of the adapter cannot hide itself) and a copy of the
workspace - catalogue, settings, workflows, nothing else - points its roots at the bucket. The
local folders are not copied, so a service that still read the local disk would fail.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fieldkit.config.settings import CONFIG_FILENAME

#: Files of the local archive that are the ingest's own bookkeeping, not archived objects.
NOT_ARCHIVED = (".staging", ".ingest.lock")


def upload_folder(client, bucket: str, folder: Path, prefix: str) -> int:
    """Upload every file under ``folder`` to ``s3://bucket/prefix/...``; returns the count."""
    n = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.parts[0] not in NOT_ARCHIVED:
            client.upload_file(str(path), bucket, f"{prefix}/{rel.as_posix()}")
            n += 1
    return n


def s3_copy_of(local: Path, target: Path, server, bucket: str) -> Path:
    """A copy of the workspace ``local`` at ``target`` with every root in ``s3://bucket/``."""
    client = server.client()
    assert upload_folder(client, bucket, local / "archive", "archive") > 0
    assert upload_folder(client, bucket, local / "stores", "stores") > 0
    target.mkdir(parents=True)
    shutil.copy2(local / "catalogue.sqlite", target / "catalogue.sqlite")
    shutil.copytree(local / "workflows", target / "workflows")
    text = (local / CONFIG_FILENAME).read_text(encoding="utf-8")
    for key, name in (("archive_root", "archive"), ("stores_root", "stores"), ("exports_root", "exports")):
        text = text.replace(f'{key} = "{name}"', f'{key} = "s3://{bucket}/{name}"')
    text += f'\n[storage]\noptions = {{ endpoint_url = "{server.endpoint}" }}\n'
    (target / CONFIG_FILENAME).write_text(text, encoding="utf-8")
    return target


def object_bytes(client, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix/`` as ``relative name -> bytes``."""
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix.rstrip("/")) + 1:]
            out[name] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out
