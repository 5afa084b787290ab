"""The pages of ``fieldkit serve``: a Starlette application over one read-only workspace.

Every handler reads the catalogue through the workspace's read-only handle
(:mod:`fieldkit.catalogue.readonly`), validates its parameters (a bad one is 400, an unknown id
404), and renders a Jinja2 template with autoescaping, so every name from a card is text. Files
are reached by recording id only: the archive path comes from the catalogue, never from the
request. Handlers are plain functions; Starlette runs them in its thread pool.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from fieldkit import __version__
from fieldkit.catalogue import browse, queries
from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import DeploymentRow, DeploymentSpan, RecordingRow
from fieldkit.errors import FieldkitError, NotFoundError
from fieldkit.listen.preview import find_recording
from fieldkit.listen.report import find_gaps
from fieldkit.listen.soundscape import indices_run, ldfc_days
from fieldkit.web import renders
from fieldkit.web.guard import SecurityHeaders, TokenGuard

if TYPE_CHECKING:
    from fieldkit.workspace import Workspace

__all__ = ["create_app", "PER_PAGE"]

HERE = Path(__file__).resolve().parent
PER_PAGE = (25, 50, 100, 200)
TIMELINE_WIDTH = 1000


# -- parameters ---------------------------------------------------------------------------------

def _bad(name: str, value: str, expected: str) -> HTTPException:
    return HTTPException(400, f"parameter {name}={value!r} is invalid; expected {expected}.")


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _int(request: Request, name: str, default: int | None = None, low: int = 0) -> int | None:
    value = _text(request, name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < low:
        raise _bad(name, value, f"a whole number >= {low}")
    return int(value)


def _seconds(request: Request, name: str, default: float, low: float, high: float) -> float:
    value = _text(request, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise _bad(name, value, "seconds") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise _bad(name, value, f"seconds from {low:g} to {high:g}")
    return number


def _date(request: Request, name: str) -> dt.datetime | None:
    value = _text(request, name)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(name, value, "an ISO 8601 date or time, e.g. 2024-05-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _choice(request: Request, name: str, choices: Any, default: str | None = None) -> str | None:
    value = _text(request, name)
    if value is None:
        return default
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(map(str, choices)))
    return value


def _day(request: Request) -> dt.date | None:
    """``day=YYYY-MM-DD`` exactly (``date.fromisoformat`` alone would also take week dates)."""
    value = _text(request, "day")
    if value is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise _bad("day", value, "a local day YYYY-MM-DD, e.g. 2024-05-01")


def _window(request: Request) -> renders.Window:
    return renders.Window(_seconds(request, "start", 0.0, 0.0, 1e7),
                          _seconds(request, "duration", 10.0, 0.1, renders.MAX_EXCERPT_S))


# -- shared -------------------------------------------------------------------------------------

class Pages:
    """The handlers, bound to one workspace and its template environment."""

    def __init__(self, ws: Workspace, templates: Jinja2Templates) -> None:
        self.ws = ws
        self.templates = templates

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, {"version": __version__, "workspace": self.ws.root.name,
                                                               **context}, status_code=status_code)

    def recording(self, request: Request) -> RecordingRow:
        try:
            return find_recording(self.ws, request.path_params["recording_id"])
        except NotFoundError:
            raise HTTPException(404, f"no recording {request.path_params['recording_id']} in the catalogue.") from None

    # -- overview -------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        with self.ws.catalogue.read() as s:
            sites, deployments = queries.list_sites(s), queries.list_deployments(s)
            counts, spans = browse.status_counts(s), browse.deployment_spans(s)
        by_deployment: dict[tuple[str, str], list[DeploymentSpan]] = defaultdict(list)
        for span in spans:
            by_deployment[(span.site, span.deployment)].append(span)
        return self.page(request, "overview.html.j2", sites=sites, deployments=deployments, counts=counts,
                         total=sum(c.recordings for c in counts),
                         timelines=[_timeline(site, dep, rows) for (site, dep), rows in sorted(by_deployment.items())])

    # -- recordings -----------------------------------------------------------------------------

    def recordings(self, request: Request) -> Response:
        q = self.query(request)
        with self.ws.catalogue.read() as s:
            result, facets = browse.browse_recordings(s, q), browse.facet_values(s)
        pages = max(1, math.ceil(result.total / q.per_page))
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page" and v]

        def link(**change: Any) -> str:
            kept = [(k, v) for k, v in params if k not in change]
            return "/recordings?" + urlencode(kept + [(k, v) for k, v in change.items() if v is not None])

        return self.page(request, "recordings.html.j2", q=q, result=result, facets=facets, pages=pages,
                         link=link, qc_flags=list(browse.QC_FLAGS), sorts=list(browse.SORTS), per_page=PER_PAGE)

    @staticmethod
    def query(request: Request) -> browse.RecordingQuery:
        qc = tuple(request.query_params.getlist("qc"))
        for flag in qc:
            if flag not in browse.QC_FLAGS:
                raise _bad("qc", flag, "one of " + ", ".join(browse.QC_FLAGS))
        return browse.RecordingQuery(
            search=_text(request, "q"), site=_text(request, "site"), deployment=_text(request, "deployment"),
            status=_text(request, "status"), device=_text(request, "device"),
            sample_rate_hz=_int(request, "rate"), start=_date(request, "since"), end=_date(request, "until"),
            qc=qc, sort=_choice(request, "sort", browse.SORTS, "start"),
            descending=_choice(request, "order", ("asc", "desc"), "asc") == "desc",
            page=_int(request, "page", 1, low=1),
            per_page=int(_choice(request, "per_page", [str(n) for n in PER_PAGE], "50")))

    def recording_page(self, request: Request) -> Response:
        rec = self.recording(request)
        window = _window(request)
        modes = renders.modes_for(rec)
        mode = _choice(request, "mode", modes, modes[1] if len(modes) > 1 else modes[0])
        with self.ws.catalogue.read() as s:
            spans = label_rows.annotations_for(s, [rec.id]).get(rec.id, [])
            lineage = label_rows.recording_lineage(s, [rec.id]).get(rec.id)
            uses = browse.recording_uses(s, rec.id)
        media = {"start": f"{window.start_s:g}", "duration": f"{window.duration_s:g}"}
        playable = rec.status in ("ok", "truncated") and bool(rec.frames_present)
        return self.page(request, "recording.html.j2", rec=rec, window=window, modes=modes, mode=mode,
                         playable=playable, annotations=spans, lineage=lineage, uses=uses,
                         spectrogram_url=f"/spectrogram/{rec.id}?{urlencode(media)}",
                         audio_url=f"/audio/{rec.id}?{urlencode({**media, 'mode': mode})}",
                         candidates=(rec.times or {}).get("candidates", []))

    def spectrogram(self, request: Request) -> Response:
        rec = self.recording(request)
        return self._file(lambda: renders.spectrogram(self.ws, rec, _window(request)), "image/png")

    def audio(self, request: Request) -> Response:
        rec = self.recording(request)
        modes = renders.modes_for(rec)
        mode = _choice(request, "mode", modes, modes[0])
        return self._file(lambda: renders.audio(self.ws, rec, mode, _window(request)), "audio/wav")

    @staticmethod
    def _file(make: Any, media_type: str) -> Response:
        try:
            path = make()
        except FieldkitError as exc:  # no audio, or past its end: say so, as the CLI would
            raise HTTPException(404 if isinstance(exc, FileNotFoundError) else 400, exc.message) from None
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    # -- deployments: the pictures of their acoustic indices ------------------------------------

    def deployment(self, request: Request) -> DeploymentRow:
        wanted = request.path_params["deployment_id"]
        with self.ws.catalogue.read() as s:
            found = [d for d in queries.list_deployments(s) if d.id == wanted]
        if not found:
            raise HTTPException(404, f"no deployment {wanted} in the catalogue.")
        return found[0]

    def deployment_page(self, request: Request) -> Response:
        dep, day, run_id = self.deployment(request), _day(request), _int(request, "run", low=1)
        try:
            run, missing = indices_run(self.ws, f"{dep.site}/{dep.name}", run_id=run_id), None
        except FieldkitError as exc:  # str(exc): the message and its hint (the workflow to run)
            if run_id is not None:  # the run asked for does not exist or has no indices
                raise HTTPException(404, str(exc)) from None
            run, missing = None, str(exc)
        days, fits = ldfc_days(self.ws, f"{dep.site}/{dep.name}", run.id) if run else ([], False)
        if run and day is not None and day not in days:
            raise HTTPException(404, f"deployment {dep.site}/{dep.name} has no clip on {day} (local time) in run "
                                     f"{run.id}; days with clips: {', '.join(map(str, days))}.")
        with self.ws.catalogue.read() as s:
            spans = [x for x in browse.deployment_spans(s) if x.site == dep.site and x.deployment == dep.name]
        query = urlencode({k: v for k, v in (("run", run.id if run else None), ("day", day)) if v is not None})
        return self.page(request, "deployment.html.j2", dep=dep, day=day, run=run, missing=missing, days=days,
                         whole=day is not None or fits,
                         timeline=_timeline(dep.site, dep.name, spans) if spans else None,
                         recordings_url="/recordings?" + urlencode({"site": dep.site, "deployment": dep.name}),
                         ldfc_url=f"/deployments/{dep.id}/ldfc.png" + (f"?{query}" if query else ""),
                         heatmap_url=f"/deployments/{dep.id}/heatmap.png" + (f"?run={run.id}" if run else ""))

    def ldfc(self, request: Request) -> Response:
        dep, day, run_id = self.deployment(request), _day(request), _int(request, "run", low=1)
        return self._picture(lambda: renders.ldfc(self.ws, dep, day=day, run_id=run_id))

    def heatmap(self, request: Request) -> Response:
        dep, run_id = self.deployment(request), _int(request, "run", low=1)
        return self._picture(lambda: renders.heatmap(self.ws, dep, run_id=run_id))

    @staticmethod
    def _picture(make: Any) -> Response:
        try:
            path, _ = make()
        except FieldkitError as exc:  # no run with indices (404: says which workflow), no clip that day...
            raise HTTPException(404 if isinstance(exc, LookupError) else 400, str(exc)) from None
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    # -- runs, datasets, quarantine -------------------------------------------------------------

    def runs(self, request: Request) -> Response:
        with self.ws.catalogue.read() as s:
            runs = run_rows.list_runs(s)
        return self.page(request, "runs.html.j2", runs=runs)

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        with self.ws.catalogue.read() as s:
            try:
                run = run_rows.get_run(s, run_id)
            except NotFoundError:
                raise HTTPException(404, f"no processing run {run_id} in the catalogue.") from None
            failures = [d for d in run_rows.run_derivatives(s, run_id) if d.state == "failed" or d.error]
            exclusions = run_rows.run_exclusions(s, run_id)
        return self.page(request, "run.html.j2", run=run, failures=failures, exclusions=exclusions,
                         parameters=_pretty(run.parameters), versions=_pretty(run.versions))

    def datasets(self, request: Request) -> Response:
        with self.ws.catalogue.read() as s:
            rows = label_rows.list_datasets(s)
            details = [label_rows.get_dataset(s, d.name, d.version) for d in rows]
            exports = browse.list_exports(s)
        splits = [_split_counts(d.items) for d in details]
        cards = {e.id: self._card(e.path) for e in exports}
        return self.page(request, "datasets.html.j2", datasets=list(zip(rows, splits)), exports=exports, cards=cards)

    def _card(self, export_path: str) -> str | None:
        """The export's README (its card), found from the catalogue's path, never the request's."""
        from fieldkit.io.storage import is_url, open_root

        if is_url(export_path) and not export_path.startswith("file://"):  # an export on object storage
            storage = self.ws.settings.storage
            root = open_root(export_path, self.ws.root, storage.options, storage.block_bytes)
            try:
                return root.read_bytes("README.md").decode("utf-8", errors="replace")[:20_000]
            except FieldkitError:  # gone or unreachable: the page still lists the export, without its card
                return None
        card = self.ws.paths.resolve(export_path) / "README.md"
        return card.read_text(encoding="utf-8", errors="replace")[:20_000] if card.is_file() else None

    def quarantine(self, request: Request) -> Response:
        with self.ws.catalogue.read() as s:
            rows = queries.list_recordings(s, queries.RecordingFilter(status="quarantined"))
        return self.page(request, "quarantine.html.j2", rows=rows)


def _pretty(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str)


def _split_counts(items: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in items:
        for label in item.labels or ("(none)",):
            out[item.split][label] += 1
    return {split: dict(sorted(labels.items())) for split, labels in sorted(out.items())}


# -- the coverage timeline ----------------------------------------------------------------------

def _timeline(site: str, deployment: str, rows: list[DeploymentSpan]) -> dict[str, Any]:
    """A deployment's recordings on one line: covered spans, unexplained gaps and overlaps (SVG units)."""
    import numpy as np

    starts = np.array([r.start_time_utc.replace(tzinfo=None) for r in rows], dtype="datetime64[ns]")
    durations = np.array([r.duration_s for r in rows])
    ends = starts + (durations * 1e9).astype("timedelta64[ns]")
    t0, t1 = starts.min(), max(ends.max(), starts.min() + np.timedelta64(1, "s"))
    scale = TIMELINE_WIDTH / float((t1 - t0) / np.timedelta64(1, "ns"))

    def x(t: Any) -> Any:  # vectorised: 10 000 recordings in a few milliseconds
        return np.round((t - t0) / np.timedelta64(1, "ns") * scale, 2)

    xa, xe = x(starts), x(ends)
    gaps = find_gaps(starts, durations)
    # A block runs from one gap to the next: a duty-cycled recorder's regular pauses are its
    # schedule, not missing coverage, and 10 000 files stay a handful of shapes.
    breaks = np.isin(starts, np.array([b for _, b in gaps], dtype="datetime64[ns]")).tolist()
    blocks: list[list[float]] = []
    for a, b, new_block in zip(xa.tolist(), np.maximum(xe, xa + 0.5).tolist(), breaks):
        if blocks and not new_block:
            blocks[-1][1] = max(blocks[-1][1], b)
        else:
            blocks.append([a, b])
    overlapping = np.flatnonzero(starts[1:] < ends[:-1])
    return {"site": site, "deployment": deployment, "recordings": len(rows),
            "first": _utc_text(t0), "last": _utc_text(t1), "width": TIMELINE_WIDTH,
            "blocks": [(a, round(b - a, 2)) for a, b in blocks],
            "gaps": [(float(x(a)), round(max(float(x(b) - x(a)), 1.0), 2), _utc_text(a), _utc_text(b)) for a, b in gaps],
            "overlaps": [(float(xa[i + 1]), round(max(float(xe[i] - xa[i + 1]), 1.0), 2)) for i in overlapping]}


def _utc_text(t: Any) -> str:
    import numpy as np

    return str(np.datetime_as_string(t, unit="s")).replace("T", " ") + " UTC"


# -- the application ----------------------------------------------------------------------------

def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda v, digits=1: "" if v is None else f"{v:,.{digits}f}"
    return env


async def _error(request: Request, exc: HTTPException) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html.j2", {"status": exc.status_code, "detail": exc.detail,
                                                                  "version": __version__, "workspace": ""},
                                      status_code=exc.status_code)


def create_app(ws: Workspace, *, token: str | None = None) -> Starlette:
    """The web application over ``ws`` (whose catalogue the caller opened read-only).

    Parameters
    ----------
    ws : Workspace
        Its catalogue should be :func:`fieldkit.catalogue.readonly.open_read_only`.
    token : str, optional
        When given, every request must carry it (:class:`fieldkit.web.guard.TokenGuard`);
        without one, only loopback ``Host`` headers are served.

    Returns
    -------
    Starlette
        An ASGI application; run it with uvicorn (:func:`fieldkit.web.server.serve`).
    """
    templates = Jinja2Templates(env=_environment())
    pages = Pages(ws, templates)
    routes = [
        Route("/", pages.overview), Route("/recordings", pages.recordings),
        Route("/recordings/{recording_id:int}", pages.recording_page),
        Route("/spectrogram/{recording_id:int}", pages.spectrogram), Route("/audio/{recording_id:int}", pages.audio),
        Route("/deployments/{deployment_id:int}", pages.deployment_page),
        Route("/deployments/{deployment_id:int}/ldfc.png", pages.ldfc),
        Route("/deployments/{deployment_id:int}/heatmap.png", pages.heatmap),
        Route("/runs", pages.runs), Route("/runs/{run_id:int}", pages.run), Route("/datasets", pages.datasets),
        Route("/quarantine", pages.quarantine),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _error})
    app.state.templates = templates
    app.add_middleware(TokenGuard, token=token)
    app.add_middleware(SecurityHeaders)  # added last, so outermost: a 401 carries the headers too
    return app
