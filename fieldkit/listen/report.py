"""The workspace report: one static, self-contained HTML page that opens offline.

Sections: workspace summary; per-deployment timeline with coverage and gaps; QC tables
(quarantined and truncated files with reasons, clipping); processing runs with their
parameters; datasets with label counts per split; spectrograms with ``<audio>`` previews.
Pictures are base64 PNG ``data:`` URIs and previews short mono WAV ``data:`` URIs (5 s, at most
16 kHz, or a time-expanded bat call at its playback rate: each well under 1 MB), the CSS is
inline, and nothing is fetched from the network, so the page can be mailed, archived with a
dataset or opened in the field (docs/architecture.md, "Previews").
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from fieldkit import __version__
from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import queries
from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import RecordingRow, RunDetail
from fieldkit.dsp.listening import default_expansion_factor
from fieldkit.errors import FieldkitError
from fieldkit.io.render.coverage import coverage_png
from fieldkit.listen.preview import ULTRASONIC_RATE_HZ, preview_recording

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["GAP_FACTOR", "build_report", "find_gaps"]

#: A pause longer than this many times the usual start-to-start interval is a gap.
GAP_FACTOR = 1.5
PREVIEW_S = 5.0
PREVIEW_RATE_HZ = 16_000
MAX_PREVIEWS = 8
PLAYABLE = ("ok", "truncated")


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _utc(text: str) -> np.datetime64:
    return np.datetime64(dt.datetime.fromisoformat(text).astimezone(dt.UTC).replace(tzinfo=None), "ns")


def _fmt(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="s")).replace("T", " ")


# -- deployments: coverage and gaps -----------------------------------------------------------

def find_gaps(starts: np.ndarray, durations_s: np.ndarray) -> list[tuple[np.datetime64, np.datetime64]]:
    """Silences the schedule does not explain, as (end of a recording, start of the next).

    Recordings sorted by start; a pause is a gap when the start-to-start interval exceeds
    :data:`GAP_FACTOR` times the median one (a duty-cycled recorder's regular pauses are not
    gaps) and the next recording starts after the previous one ended.
    """
    order = np.argsort(starts, kind="stable")
    t, d = starts[order], durations_s[order]
    if t.size < 3:
        return []
    step = np.diff(t).astype("timedelta64[ns]").astype(np.float64)
    ends = t[:-1] + (d[:-1] * 1e9).astype("timedelta64[ns]")
    is_gap = (step > GAP_FACTOR * np.median(step)) & (t[1:] > ends)
    return [(ends[i], t[i + 1]) for i in np.flatnonzero(is_gap)]


def _deployment(name: str, recs: list[RecordingRow], png_path: Path) -> dict[str, Any]:
    playable = [r for r in recs if r.status in PLAYABLE and r.duration_s]
    timed = [r for r in playable if r.start_time_utc]
    starts = np.array([_utc(r.start_time_utc) for r in timed], dtype="datetime64[ns]")
    durations = np.array([float(r.duration_s) for r in timed])
    recorded_s = float(durations.sum())
    gaps = find_gaps(starts, durations)
    out = {"name": name, "recordings": len(recs), "playable": len(playable), "timed": len(timed),
           "untimed": len(playable) - len(timed), "hours": sum(float(r.duration_s) for r in playable) / 3600,
           "gaps": [{"from": _fmt(a), "to": _fmt(b), "hours": float((b - a) / np.timedelta64(1, "h"))}
                    for a, b in gaps]}
    if not timed:
        return out
    end = max(s + np.timedelta64(int(d * 1e9), "ns") for s, d in zip(starts, durations))
    span_s = float((end - starts.min()) / np.timedelta64(1, "s"))
    bad = [_utc(r.start_time_utc) for r in recs if r.status == "quarantined" and r.start_time_utc]
    png = coverage_png(png_path, starts, durations, gaps,
                       f"{name}: coverage", problems=np.array(bad, dtype="datetime64[ns]"))
    out.update(first=_fmt(starts.min()), last=_fmt(end), coverage_pct=100 * recorded_s / span_s if span_s else 100.0,
               timeline=_data_uri(png, "image/png"))
    return out


def _deployments(recordings: list[RecordingRow], assets: Path) -> list[dict[str, Any]]:
    by_name: dict[str, list[RecordingRow]] = defaultdict(list)
    for r in recordings:
        if r.status != "sidecar":
            by_name[f"{r.site or '(no site)'}/{r.deployment or '(no deployment)'}"].append(r)
    return [_deployment(name, recs, assets / f"coverage-{i}.png") for i, (name, recs) in enumerate(sorted(by_name.items()))]


# -- summary, QC, runs, datasets ----------------------------------------------------------------

def _summary(session: Any, recordings: list[RecordingRow]) -> dict[str, Any]:
    status = Counter(r.status for r in recordings)
    playable = [r for r in recordings if r.status in PLAYABLE]
    return {"recordings": len(recordings), "status": dict(sorted(status.items())),
            "hours": sum(float(r.duration_s or 0) for r in playable) / 3600,
            "archive_gb": sum(r.size_bytes or 0 for r in recordings) / 1e9,
            "sites": len(queries.list_sites(session)), "deployments": len(queries.list_deployments(session)),
            "ingest_sessions": len(queries.list_sessions(session)),
            "sample_rates_hz": sorted({r.sample_rate_hz for r in playable if r.sample_rate_hz})}


def _qc(recordings: list[RecordingRow]) -> dict[str, list[RecordingRow]]:
    problems = [r for r in recordings if r.status in ("quarantined", "truncated")]
    clipped = [r for r in recordings if (r.clipped_samples or 0) > 0]
    return {"problems": problems, "clipped": sorted(clipped, key=lambda r: -r.clipped_samples)}


def _run_summary(run: RunDetail) -> dict[str, Any]:
    params = run.parameters or {}
    features = params.get("features") or {}
    return {**run.to_dict(), "target_rate_hz": (params.get("resample") or {}).get("target_rate_hz"),
            "clip_s": (params.get("clips") or {}).get("length_s"),
            "features": ", ".join(features.get("compute") or []),
            "parameters_json": json.dumps(params, indent=2, sort_keys=True, default=str)}


def _runs(session: Any) -> list[dict[str, Any]]:
    return [_run_summary(run_rows.get_run(session, r.id)) for r in run_rows.list_runs(session)]


def _datasets(session: Any) -> list[dict[str, Any]]:
    out = []
    for row in label_rows.list_datasets(session):
        items = label_rows.get_dataset(session, row.name, row.version).items
        counts: dict[str, Counter] = defaultdict(Counter)
        for item in items:
            counts[item.split].update(item.labels)
        labels = sorted({label for c in counts.values() for label in c})
        splits = [{"split": s, "clips": sum(1 for i in items if i.split == s),
                   "counts": [counts[s][label] for label in labels]} for s in sorted(counts)]
        out.append({**row.to_dict(), "labels": labels, "splits": splits})
    return out


# -- previews -----------------------------------------------------------------------------------

def _pick_previews(recordings: list[RecordingRow], limit: int) -> list[RecordingRow]:
    """One playable recording per deployment (the first in time), then more, up to ``limit``."""
    playable = [r for r in recordings if r.status in PLAYABLE and r.frames_present]
    firsts = list({(r.site, r.deployment): r for r in reversed(playable)}.values())[::-1]
    chosen = {r.id for r in firsts}
    rest = [r for r in playable if r.id not in chosen]
    return (firsts + rest)[:limit]


def _preview(ws: Workspace, rec: RecordingRow, assets: Path) -> dict[str, Any]:
    rate = float(rec.sample_rate_hz)
    factor = default_expansion_factor(rate) if rate >= ULTRASONIC_RATE_HZ else None
    seconds = PREVIEW_S / factor if factor else PREVIEW_S
    try:  # a bat file is previewed around its loudest call: its first 0.5 s may hold none
        result = preview_recording(ws, rec.id, duration_s=seconds, factor=factor, out_dir=assets,
                                   max_rate_hz=PREVIEW_RATE_HZ, mono=True, call=factor is not None)
    except FieldkitError as exc:  # one unreadable file must not stop the report: say why instead
        return {"recording": rec, "error": str(exc)}
    return {"recording": rec, "mode": result["mode"], "factor": result.get("factor"),
            "excerpt_s": result["excerpt_s"], "preview_s": result["preview_s"], "start_s": result["start_s"],
            "call": (result.get("call") or {}) if "peak_s" in (result.get("call") or {}) else None,
            "lufs": result["loudness"]["output_lufs"], "png": _data_uri(result["png"], "image/png"),
            "audio": _data_uri(result["wav"], "audio/wav"), "audio_bytes": result["wav"].stat().st_size}


# -- the page -----------------------------------------------------------------------------------

def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("fieldkit", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda v, digits=1: "" if v is None else f"{v:,.{digits}f}"
    return env


def _context(ws: Workspace, assets: Path, max_previews: int) -> dict[str, Any]:
    with ws.catalogue.read() as session:
        recordings = queries.list_recordings(session)
        context = {"summary": _summary(session, recordings), "runs": _runs(session),
                   "datasets": _datasets(session)}
    context.update(deployments=_deployments(recordings, assets), qc=_qc(recordings),
                   previews=[_preview(ws, r, assets) for r in _pick_previews(recordings, max_previews)])
    return context


def build_report(ws: Workspace, out_dir: Path | str | None = None, max_previews: int = MAX_PREVIEWS) -> dict[str, Any]:
    """Write ``index.html``, a self-contained report of the workspace.

    Parameters
    ----------
    ws : Workspace
    out_dir : path, optional
        Default ``<workspace>/exports/report``.
    max_previews : int
        Recordings with an embedded spectrogram and audio preview (one per deployment first).

    Returns
    -------
    dict
        ``html`` (path), ``bytes``, and the counts of what it shows: ``recordings``,
        ``deployments``, ``problems``, ``clipped``, ``runs``, ``datasets``, ``previews``.
    """
    with tempfile.TemporaryDirectory(prefix="fieldkit-report-") as tmp:
        context = _context(ws, Path(tmp), max_previews)
    context.update(workspace=str(ws.root), version=__version__,
                   generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    with ws.default_output("report", out_dir) as target:
        out = Path(out_dir) if out_dir is not None else target.folder
        out.mkdir(parents=True, exist_ok=True)
        html = out / "index.html"
        html.write_text(_environment().get_template("report.html.j2").render(**context), encoding="utf-8")
        return target.publish({
            "html": html, "bytes": html.stat().st_size, "recordings": context["summary"]["recordings"],
            "deployments": len(context["deployments"]), "problems": len(context["qc"]["problems"]),
            "clipped": len(context["qc"]["clipped"]), "runs": len(context["runs"]),
            "datasets": len(context["datasets"]), "previews": len(context["previews"])})
