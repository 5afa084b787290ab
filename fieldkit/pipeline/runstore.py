"""A run's store and its row: a new run's row and store template (a local folder, or an object
store's, sent whole), the run an identical workflow finds again, what a resumed run has left to
do, and the row of a run that stopped before its end."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.records import RunDetail
from fieldkit.catalogue.retry import write_with_retry
from fieldkit.config.workflow import Workflow
from fieldkit.errors import ProcessingError
from fieldkit.pipeline.plan import RunPlan, selection_hash
from fieldkit.pipeline.spec import TaskSpec
from fieldkit.store.zarr_store import create_store, done_mask

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["RESUMABLE", "abandon", "identical_run", "library_versions", "open_or_create", "pending_tasks",
           "store_exists", "store_matches", "store_of", "store_path_for"]


VERSIONED = ("fieldkit", "numpy", "scipy", "soxr", "soundfile", "librosa", "zarr", "xarray", "dask", "distributed")


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run's results depend on (looked up once per process)."""
    return dict(_versions())


def pending_tasks(plan: RunPlan, store: Any) -> list[TaskSpec]:
    done = done_mask(store)  # one read for the whole plan
    return [t for t in plan.tasks if not np.all(done[t.region_start:t.region_stop] == 1)]


def store_matches(plan: RunPlan, store: Any) -> bool:
    from fieldkit.store.zarr_store import open_store

    existing = open_store(store)
    try:
        return existing.sizes["clip"] == plan.layout.n_clips and np.array_equal(
            existing["recording_id"].values, plan.coords["recording_id"])
    finally:
        existing.close()


#: The states of a run an identical re-run resumes: stopped by a signal (interrupted), killed while
#: running (running), or failed.
RESUMABLE = ("running", "interrupted", "failed")


def identical_run(ws: Workspace, workflow: Workflow, selection: str) -> RunDetail | None:
    """The newest run with this workflow's parameters hash and this planned selection whose store
    is still there and that is complete or resumable, else None."""
    with ws.catalogue.read() as s:
        candidates = run_rows.runs_with_params(s, workflow.params_hash())
    for row in candidates:
        if ((row.parameters or {}).get("selection_hash") == selection and row.store_path
                and row.state in ("complete", *RESUMABLE) and store_exists(ws, row.store_path)):
            return row
    return None


def store_exists(ws: Workspace, store_path: str) -> bool:
    """Whether a run's store is still there (a local folder, or the group document at its URL)."""
    root = ws.store_root(store_path)
    return root.local_path.exists() if root.is_local else root.exists("zarr.json")


def store_of(ws: Workspace, store_path: str) -> tuple[Any, Any]:
    """``(what the store layer opens here, the Root a task carries or None)`` for ``store_path``:
    a local store is opened by path on every worker, a URL store by its Root (no secret pickled)."""
    root = ws.store_root(store_path)
    return (str(root.local_path), None) if root.is_local else (root.zarr_store(""), root)


def store_path_for(ws: Workspace, run_id: int, workflow: Workflow) -> str:
    """A new run's store as the catalogue names it: workspace-relative on a local stores root, else its URL."""
    stores, name = ws.roots.stores, f"run-{run_id:04d}-{workflow.name}.zarr"
    return ws.relative(stores.local_path / name) if stores.is_local else stores.uri(name)


def open_or_create(ws: Workspace, workflow: Workflow, plan: RunPlan, resume: int | None,
                    workflow_source: str) -> tuple[int, str]:
    """The run's id and its store's catalogue name (workspace-relative, or a URL), the store created."""
    if resume is not None:
        with ws.catalogue.read() as s:
            row = run_rows.get_run(s, resume)
        if row.params_hash != workflow.params_hash():
            raise ProcessingError(f"run {resume} was made with other parameters (hash {row.params_hash[:12]}…, "
                                  f"this workflow {workflow.params_hash()[:12]}…).",
                                  hint="Resume with the same workflow file, or start a new run without --resume.")
        if not store_matches(plan, store_of(ws, row.store_path)[0]):
            raise ProcessingError(f"the catalogue changed since run {resume} was planned (its store {row.store_path} "
                                  "holds other recordings).", hint="Start a new run without --resume.")
        return resume, row.store_path
    started = utcnow()  # with the parameters hash, the new row's natural key (H4: found again, not doubled)

    def create(s) -> int:
        run_id = run_rows.create_run(s, name=workflow.name, workflow={**workflow.to_dict(), "source": workflow_source,
                                                                         "selection_hash": selection_hash(plan)},
                                     params_hash=workflow.params_hash(), versions=library_versions(),
                                     store_path="", n_clips=plan.layout.n_clips, started_at=started)
        run_rows.update_run(s, run_id, store_path=store_path_for(ws, run_id, workflow))
        return run_id

    run_id = write_with_retry(ws.catalogue, create, what="new run",
                              landed=lambda s: run_rows.run_started(s, workflow.params_hash(), started))
    store_path = store_path_for(ws, run_id, workflow)
    attrs = {"parameters": workflow.to_dict(), "params_hash": workflow.params_hash(), "versions": library_versions(),
             "run_id": run_id, "created_by": "fieldkit process"}
    root = ws.store_root(store_path)
    try:
        if root.is_local:
            create_store(str(root.local_path), plan.layout, plan.coords, attrs)
        else:
            _create_remote_store(root, plan, attrs)
    except Exception as exc:
        # no run stays "planned": this one never ran (its store has no group document, so an
        # identical run later makes a new one instead of resuming it)
        with contextlib.suppress(Exception):  # the catalogue's own fault must not hide the store's
            abandon(ws, run_id, "failed", f"its store {root.uri()} could not be created: {type(exc).__name__}: {exc}")
        raise
    return run_id, store_path


def _create_remote_store(root, plan: RunPlan, attrs: dict[str, Any]) -> None:
    """Write a new store's template at an object-store ``root``: made by the same code in a local
    folder, then sent concurrently (create-only), the group's ``zarr.json`` last so that a store
    found by it is whole. zarr writes the ~30 documents and coordinate objects one after the
    other, each after a HEAD and a LIST of what is there: 2.9 s of a 1 h run on the S3 test
    server against 0.1 s on a local disk (docs/scaling.md)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="fieldkit-store-") as tmp:
        folder = Path(tmp) / "store.zarr"
        create_store(str(folder), plan.layout, plan.coords, attrs)
        group = (folder / "zarr.json").read_bytes()
        (folder / "zarr.json").unlink()
        root.put_tree("", folder)
        root.put_bytes("zarr.json", group)


def abandon(ws: Workspace, run_id: int, state: str, message: str) -> None:
    """Mark a run that stopped before its end, so that no run stays ``running``."""
    with ws.catalogue.write() as s:
        run_rows.update_run(s, run_id, state=state, message=message, finished=True)
