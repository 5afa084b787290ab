"""One demo-like workspace for the ``fieldkit serve`` tests: the demo (ingest, run, annotations,
dataset, export) plus a bat-detector recording and a markup-named file (fieldkit.testing.serving)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.catalogue import queries
from fieldkit.cli.demo import DEMO_DEPLOYMENT
from fieldkit.testing.serving import SCRIPT_NAME, serve_workspace
from fieldkit.workspace import open_workspace


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The workspace root and the ids of the recordings the tests look at."""
    root = serve_workspace(tmp_path_factory.mktemp("serve") / "ws")
    with open_workspace(root) as ws, ws.catalogue.read() as s:
        rows, deployments = queries.list_recordings(s), queries.list_deployments(s)
    by = {r.id: r for r in rows}
    return {
        "root": root,
        "rows": rows,
        "ok": next(r.id for r in rows if r.status == "ok" and r.sample_rate_hz == 32_000 and r.start_time_utc),
        "bat": next(r.id for r in rows if r.sample_rate_hz == 384_000),
        "script": next(r.id for r in rows if any(p.endswith(SCRIPT_NAME) for p in r.source_paths)),
        "quarantined": next(r.id for r in rows if r.status == "quarantined"),
        "annotated": _annotated(root, by),
        # the demo deployment has the indices of run 2; the bat deployment has none
        "deployment": next(d.id for d in deployments if d.name == DEMO_DEPLOYMENT),
        "bare_deployment": next(d.id for d in deployments if d.name == "bat-detector-2024-05"),
    }


def _annotated(root: Path, by: dict) -> int:
    from fieldkit.catalogue import labels

    with open_workspace(root) as ws, ws.catalogue.read() as s:
        spans = labels.annotations_for(s, list(by))
    return next(i for i in sorted(spans) if spans[i] and by[i].status == "ok")
