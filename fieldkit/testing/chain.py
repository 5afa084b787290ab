"""The demo chain on any workspace: ingest → verify → process → annotations → dataset → export → lineage.

One helper, called by the backend-equivalence tests with different roots and catalogues (SQLite +
local disk, PostgreSQL + local disk, PostgreSQL + object storage for every root): each call returns the
arrays of the run's store and of the exported dataset, value for value, and the export's manifests,
so that the callers compare the results of the same work on different backends.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

__all__ = ["ChainResult", "run_chain", "VARYING_KEYS", "TIME_DEPENDENT_FILES", "normalised_manifest"]

#: What must differ between two runs of the same chain, and nothing else: when the export was made
#: (``created_utc`` of ``export.json``) and when the card was ingested (``ingested_at`` in lineage);
#: hence also the SHA-256 of the files that hold them (``export.json``, and ``croissant.json``,
#: which lists ``export.json``'s hash), as listed in ``manifest.json`` and ``croissant.json``.
#: Catalogue ids need no exemption: each fresh catalogue hands out the same ones.
VARYING_KEYS = frozenset({"created_utc", "ingested_at"})
TIME_DEPENDENT_FILES = frozenset({"export.json", "croissant.json"})


@dataclass
class ChainResult:
    """What one run of the chain produced."""

    run_id: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # "run/NAME", "export/PATH/NAME"
    manifests: dict[str, Any] = field(default_factory=dict)  # export file name → parsed JSON or text
    lineage: dict[str, Any] = field(default_factory=dict)
    verified: int = 0
    reports: dict[str, Any] = field(default_factory=dict)


def _arrays(store: Any, prefix: str, into: dict[str, np.ndarray]) -> None:
    """Every array of the group at ``store`` (a local folder or a zarr store object), recursively."""
    _group_arrays(zarr.open_group(str(store) if isinstance(store, Path) else store, mode="r"), prefix, into)


def _group_arrays(group: Any, prefix: str, into: dict[str, np.ndarray]) -> None:
    for path, array in group.arrays():
        into[f"{prefix}/{path}"] = array[...]
    for name, sub in group.groups():
        _group_arrays(sub, f"{prefix}/{name}", into)


def _local_copy(ws: Any, out_dir: str | Path, scratch: Path) -> Path:
    """The export folder as files: itself when local, else its objects downloaded into ``scratch``."""
    exports = ws.roots.exports
    if exports.is_local:
        return Path(out_dir)
    prefix = str(out_dir)[len(exports.uri()):].strip("/")
    for name in exports.list(prefix, recursive=True):
        target = scratch / name[len(prefix):].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(exports.read_bytes(name))
    return scratch


def run_chain(ws: Any, *, workers: int = 1) -> ChainResult:
    """Run the demo chain on the open workspace ``ws``; returns its arrays and manifests.

    Parameters
    ----------
    ws
        An open :class:`~fieldkit.workspace.Workspace` (any catalogue backend, any roots).
    workers
        Dask worker processes of the LocalCluster that processes the sample card.
    """
    from fieldkit.cli.demo import DEMO_DEPLOYMENT, DEMO_SITE, demo_workflow_path, sample_card_path
    from fieldkit.config.workflow import load_workflow
    from fieldkit.curate.annotations import import_annotations
    from fieldkit.curate.datasets import DatasetRequest, create_dataset
    from fieldkit.curate.handoff import export_catalogued_dataset
    from fieldkit.curate.lineage import clip_lineage
    from fieldkit.ingest.service import IngestRequest, ingest_card
    from fieldkit.ingest.verify import verify_archive
    from fieldkit.pipeline.driver import run_workflow

    ingest = ingest_card(ws, IngestRequest(sample_card_path(), DEMO_SITE, DEMO_DEPLOYMENT, timezone="+00:00",
                                           card_id="demo-sample-card"))
    verify = verify_archive(ws)
    if not verify.passed:
        raise AssertionError(f"verify failed after ingest: {verify.to_dict()}")
    path = demo_workflow_path()
    run = run_workflow(ws, load_workflow(path), workflow_source=str(path), workers=workers)
    import_annotations(ws, sorted((sample_card_path().parent / "sample_annotations").iterdir()))
    dataset = create_dataset(ws, DatasetRequest("demo", run.run_id, background="background", split_by="recording",
                                                ratios=(0.5, 0.25, 0.25), single_label=True))
    exported = export_catalogued_dataset(ws, "demo", fmt="zarr")
    result = ChainResult(run_id=run.run_id, verified=verify.ok,
                         reports={"ingest": ingest.counts, "run_state": run.state, "dataset": dataset})
    _arrays(ws.store_location(run.store), "run", result.arrays)
    with tempfile.TemporaryDirectory(prefix="fieldkit-chain-") as scratch:
        out_dir = _local_copy(ws, exported.out_dir, Path(scratch))
        for file in sorted(out_dir.rglob("*")):
            rel = file.relative_to(out_dir).as_posix()
            if file.is_dir() or "/" in rel and file.suffix not in (".json", ".csv", ".md"):
                continue
            if file.suffix == ".json":
                result.manifests[rel] = json.loads(file.read_text(encoding="utf-8"))
            elif file.suffix in (".csv", ".md", ".txt", ".jsonl"):
                result.manifests[rel] = file.read_text(encoding="utf-8")
        for sub in sorted(out_dir.rglob("*.zarr")):
            _arrays(sub, f"export/{sub.relative_to(out_dir).as_posix()}", result.arrays)
    result.lineage = clip_lineage(ws, f"{run.run_id}:0")
    return result


def normalised_manifest(value: Any) -> Any:
    """``value`` with what :data:`VARYING_KEYS` and :data:`TIME_DEPENDENT_FILES` name replaced by
    ``"<varies>"`` (recursively); everything else is kept as it is, to be compared exactly."""
    if isinstance(value, dict):
        named = {value.get("name"), value.get("@id"), value.get("contentUrl")} & TIME_DEPENDENT_FILES
        out = {}
        for k, v in value.items():
            if k in VARYING_KEYS or (named and k == "sha256"):
                out[k] = "<varies>"
            elif k in TIME_DEPENDENT_FILES and isinstance(v, dict):
                out[k] = {**normalised_manifest(v), "sha256": "<varies>"}
            else:
                out[k] = normalised_manifest(v)
        return out
    if isinstance(value, list):
        return [normalised_manifest(v) for v in value]
    return value
