"""Layer 3: ``fieldkit demo`` — the whole job, end to end, on the bundled sample card.

Each stage of fieldkit adds itself here, so that the demo always shows everything fieldkit can
do on a fresh machine with the embedded defaults (SQLite, local Zarr, LocalCluster).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

from fieldkit.catalogue import queries
from fieldkit.config.workflow import load_workflow
from fieldkit.config.workflow_files import bundled_workflows_dir
from fieldkit.curate.annotations import import_annotations
from fieldkit.curate.datasets import DatasetRequest, create_dataset
from fieldkit.curate.handoff import export_catalogued_dataset
from fieldkit.errors import WorkspaceExistsError
from fieldkit.export.baseline import run_baseline
from fieldkit.export.tabular import hf_loader_line
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.listen.preview import preview_recording
from fieldkit.listen.report import build_report
from fieldkit.listen.night import ClockMap, sonify_deployment
from fieldkit.listen.sonify import sonify_run
from fieldkit.pipeline.driver import run_workflow
from fieldkit.workspace import Workspace, init_workspace

#: Files shipped inside the package: the sample card and its annotations.
_PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"

__all__ = ["run_demo", "DEMO_MARKER", "sample_card_path", "serve_command"]

DEMO_MARKER = ".fieldkit-demo"
DEMO_SITE = "demo-wood"
DEMO_DEPLOYMENT = "audiomoth-2020-04"


def sample_card_path() -> Path:
    """The sample recorder card shipped inside the package."""
    return _PACKAGE_DATA / "sample_card"


def _fresh_workspace(directory: Path) -> Workspace:
    """A new demo workspace; only a previous *demo* workspace is ever replaced."""
    directory = directory.expanduser().resolve()
    if directory.exists() and any(directory.iterdir()):
        if not (directory / DEMO_MARKER).is_file():
            raise WorkspaceExistsError(
                f"{directory} exists and is not a fieldkit demo workspace; the demo will not touch it.",
                hint="Pass another directory: 'fieldkit demo DIR'.",
            )
        shutil.rmtree(directory)
    ws = init_workspace(directory)
    (directory / DEMO_MARKER).write_text("created by 'fieldkit demo'; safe to delete\n", encoding="utf-8")
    return ws


def _catalogue_summary(ws: Workspace) -> dict[str, Any]:
    with ws.catalogue.read() as s:
        return {
            "sites": len(queries.list_sites(s)),
            "deployments": len(queries.list_deployments(s)),
            "recordings": len(queries.list_recordings(s)),
            "sessions": len(queries.list_sessions(s)),
        }


def _ingest_stage(ws: Workspace) -> dict[str, Any]:
    report = ingest_card(ws, IngestRequest(sample_card_path(), DEMO_SITE, DEMO_DEPLOYMENT, timezone="+00:00",
                                           card_id="demo-sample-card"))
    c = report.counts
    problems = [f"{f.path}: {f.status or f.state} ({f.reason})" for f in report.problems]
    return {"name": "ingest", "summary": f"{c['verified']} files verified into the archive "
            f"({c['ok']} ok, {c['truncated']} truncated, {c['quarantined']} quarantined, {c['ignored']} ignored); "
            f"safe to erase: {report.safe_to_erase}", "counts": c, "problems": problems,
            "manifest": report.manifest}


def demo_workflow_path() -> Path:
    """The demo's workflow file, shipped with the other workflows inside the package."""
    return bundled_workflows_dir() / "demo.yaml"


def _process_stage(ws: Workspace, progress: bool) -> dict[str, Any]:
    path = demo_workflow_path()
    report = run_workflow(ws, load_workflow(path), workflow_source=str(path))
    return {"name": "process", "summary": f"run {report.run_id}: {report.n_recordings} recordings → "
            f"{report.n_clips} clips in {report.store} ({report.x_realtime:.0f}× real time, {report.state})",
            "run_id": report.run_id, "store": report.store, "state": report.state, "n_clips": report.n_clips}


def _handoff_stages(ws: Workspace, run_id: int) -> list[dict[str, Any]]:
    files = sorted((_PACKAGE_DATA / "sample_annotations").iterdir())
    imported = import_annotations(ws, files)
    summary = create_dataset(ws, DatasetRequest("demo", run_id, background="background", split_by="recording",
                                                ratios=(0.5, 0.25, 0.25), single_label=True))
    exported = export_catalogued_dataset(ws, "demo", fmt="zarr")
    metrics = run_baseline(exported.out_dir)
    splits = ", ".join(f"{k} {n}" for k, n in summary["splits"].items())  # words, not a dict's repr
    return [
        {"name": "annotations", "summary": f"{sum(f.imported for f in imported.files)} annotations from "
         f"{len(files)} files (Raven, Audacity, CSV)", "files": [f.file for f in imported.files]},
        {"name": "dataset", "summary": f"dataset demo v{summary['version']}: {summary['clips']} clips, split by "
         f"recording ({splits}), manifest {summary['manifest_hash'][:12]}…", "dataset": summary},
        {"name": "export", "summary": f"{exported.n_clips} clips as zarr with README, croissant.json and lineage in "
         f"{ws.relative(exported.out_dir)}", "out_dir": ws.relative(exported.out_dir)},
        {"name": "baseline", "summary": _baseline_summary(metrics), "metrics": metrics},
    ]


def _baseline_summary(metrics: dict[str, Any]) -> str:
    """The baseline's figure against chance, or why there is none (the sample card is tiny)."""
    if not metrics["evaluable"]:
        return metrics["message"]
    split = metrics["confusion_matrix"]["split"]
    scores = metrics["splits"][split]
    return (f"{split} accuracy {scores['accuracy']:.2f} on {scores['n_clips']} clips "
            f"(majority-class chance {scores['chance_majority_accuracy']:.2f})")


def _hf_export_stage(ws: Workspace) -> dict[str, Any]:
    """The Parquet-with-audio export, and the one line that loads it in Hugging Face datasets."""
    exported = export_catalogued_dataset(ws, "demo", fmt="parquet")
    loader = hf_loader_line(exported.out_dir)
    return {"name": "export-hf", "summary": f"{exported.n_clips} clips with FLAC audio as Hugging Face Parquet in "
            f"{ws.relative(exported.out_dir)}; load it: {loader}", "out_dir": ws.relative(exported.out_dir),
            "loader": loader}


def _listen_stages(ws: Workspace, run_id: int) -> list[dict[str, Any]]:
    with ws.catalogue.read() as s:
        playable = [r for r in queries.list_recordings(s) if r.status == "ok"]
    preview = preview_recording(ws, playable[0].id, duration_s=5.0)
    melody = sonify_run(ws, run_id)
    # the sample card's files lie hours to months apart: gaps over 2 h are played as 2 h (and reported)
    night = sonify_deployment(ws, DEMO_DEPLOYMENT, clock=ClockMap(max_gap_h=2.0))
    report = build_report(ws)
    return [
        {"name": "preview", "summary": f"{ws.relative(Path(preview['wav']))} + spectrogram "
         f"{ws.relative(Path(preview['png']))}", "preview": preview},
        {"name": "sonify", "summary": f"{melody['points']} clips as a pentatonic melody (5 dimensions) in "
         f"{ws.relative(Path(melody['wav']))}; the deployment clock-true ({night['clock']['seconds_per_hour']:g} s per "
         f"hour, {len(night['clock']['compressed_gaps'])} long gaps shortened) in {night['duration_s']:.0f} s in "
         f"{ws.relative(Path(night['wav']))}", "wav": melody["wav"]},
        {"name": "report", "summary": f"open {report['html']} in a browser (offline, self-contained)",
         "html": report["html"]},
    ]


def run_demo(directory: Path, *, progress: bool = True) -> dict[str, Any]:
    """Build the demo workspace and run every stage; returns a JSON-ready report."""
    stages: list[dict[str, Any]] = []
    with _fresh_workspace(Path(directory)) as ws:
        stages.append({"name": "workspace", "summary": f"created {ws.root}"})
        stages.append(_ingest_stage(ws))
        stages.append(_process_stage(ws, progress))
        run_id = stages[-1]["run_id"]
        stages.extend(_handoff_stages(ws, run_id))
        stages.append(_hf_export_stage(ws))
        stages.extend(_listen_stages(ws, run_id))
        counts = _catalogue_summary(ws)
        stages.append({"name": "catalogue", "summary": ", ".join(f"{v} {k}" for k, v in counts.items()),
                       "counts": counts})
        # The last thing the demo says: how to browse what it built (fieldkit serve, read-only).
        return {"workspace": str(ws.root), "stages": stages, "serve": serve_command(ws.root)}


def serve_command(root: Path) -> str:
    """The command that opens the workspace at ``root`` in a browser (``fieldkit serve``)."""
    return f"fieldkit -w {shlex.quote(str(root))} serve"
