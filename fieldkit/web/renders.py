"""Spectrograms, listening previews and deployment pictures rendered on demand and kept in the workspace's cache.

A picture or a sound is made the first time it is asked for, from the archived copy (read, never
written), and kept under ``<workspace>/cache/serve/`` - never in the archive or the stores. Its
file name comes from the recording's sha256 (from the catalogue) and the validated numbers of
the request (a deployment picture: the deployment's id and the run it was drawn from), never
from text the request supplied, so a request cannot name a file. A render is
written next to its final name and renamed into place, and one lock per name keeps two requests
from rendering the same thing at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue.records import DeploymentRow, RecordingRow
from fieldkit.io.render.media import spectrogram_png
from fieldkit.listen import soundscape
from fieldkit.listen.preview import MODES, ULTRASONIC_RATE_HZ, PreviewOptions, read_recording_excerpt, render_preview

if TYPE_CHECKING:
    from fieldkit.workspace import Workspace

__all__ = ["CACHE_DIR", "MAX_EXCERPT_S", "PLAYBACK_RATE_HZ", "Window", "modes_for", "spectrogram", "audio",
           "ldfc", "heatmap"]

#: Relative to the workspace root.
CACHE_DIR = Path("cache") / "serve"
#: The longest excerpt a page shows or plays, seconds.
MAX_EXCERPT_S = 60.0
#: Excerpts and heterodyne are played at no more than this rate (browsers play it everywhere).
PLAYBACK_RATE_HZ = 48_000
#: Bumped when a picture or a sound would come out differently, so that old files are not served.
RENDER_VERSION = 1

_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Window:
    """The part of a recording shown and played: start and length in seconds (validated by the caller)."""

    start_s: float = 0.0
    duration_s: float = 10.0

    def key(self) -> str:
        return f"{round(self.start_s * 1000)}-{round(self.duration_s * 1000)}"


def modes_for(rec: RecordingRow) -> tuple[str, ...]:
    """The listening modes a recording offers: time expansion, heterodyne and frequency division for ultrasonic files."""
    if (rec.sample_rate_hz or 0) >= ULTRASONIC_RATE_HZ:
        return MODES
    return ("excerpt",)


def _lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks[name]


def _cached(ws: Workspace, name: str, make) -> Path:
    """``<cache>/name``, made by ``make(tmp_dir) -> path`` the first time it is asked for."""
    target = ws.root / CACHE_DIR / name
    if target.is_file():
        return target
    with _lock(name):
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".render-") as tmp:
            os.replace(make(Path(tmp)), target)
    return target


def spectrogram(ws: Workspace, rec: RecordingRow, window: Window) -> Path:
    """The PNG spectrogram of ``window`` of a recording, its annotations drawn as labelled boxes.

    The annotations are part of the cached file's name, so a re-import draws afresh.
    """
    with ws.catalogue.read() as session:
        spans = label_rows.annotations_for(session, [rec.id]).get(rec.id, [])
    end_s = window.start_s + window.duration_s
    boxes = tuple((max(a.begin_s, window.start_s) - window.start_s, min(a.end_s, end_s) - window.start_s,
                   a.low_hz, a.high_hz, a.label) for a in spans if a.end_s > window.start_s and a.begin_s < end_s)

    def make(tmp: Path) -> Path:
        ex = read_recording_excerpt(ws, rec, window.start_s, window.duration_s)
        title = f"recording {rec.id}: {window.start_s:g}-{window.start_s + ex.duration_s:g} s"
        return spectrogram_png(tmp / "spectrogram.png", ex.samples, ex.rate_hz, title, boxes=boxes)

    drawn = hashlib.sha256(repr(boxes).encode()).hexdigest()[:12]
    return _cached(ws, f"{rec.sha256}-spectrogram-{window.key()}-{drawn}-v{RENDER_VERSION}.png", make)


def audio(ws: Workspace, rec: RecordingRow, mode: str, window: Window) -> Path:
    """A loudness-normalised WAV of ``window`` in ``mode`` (see :mod:`fieldkit.listen.preview`)."""
    def make(tmp: Path) -> Path:
        ex = read_recording_excerpt(ws, rec, window.start_s, window.duration_s)
        return render_preview(ex, mode, tmp, PreviewOptions(max_rate_hz=PLAYBACK_RATE_HZ))["wav"]

    return _cached(ws, f"{rec.sha256}-{mode}-{window.key()}-v{RENDER_VERSION}.wav", make)


def _deployment_picture(ws: Workspace, dep: DeploymentRow, kind: str, variables: tuple[str, ...],
                        run_id: int | None, suffix: str, draw) -> tuple[Path, int]:
    """``draw(name, run_id, out)`` cached under the deployment's id and the run that has ``variables``.

    The run is resolved first (the newest complete one with the indices, or ``run_id``), so a new
    run draws afresh; a complete run's store does not change, so its picture never goes stale.
    """
    name = f"{dep.site}/{dep.name}"
    run = soundscape.indices_run(ws, name, variables, run_id)

    def make(tmp: Path) -> Path:
        return Path(draw(name, run.id, tmp / f"{kind}.png")["png"])

    return _cached(ws, f"deployment-{dep.id}-{kind}-run{run.id}-{suffix}-v{RENDER_VERSION}.png", make), run.id


def ldfc(ws: Workspace, dep: DeploymentRow, *, day: dt.date | None = None,
         run_id: int | None = None) -> tuple[Path, int]:
    """The deployment's false-colour spectrogram (one local day, or every minute with data).

    Drawn by :func:`fieldkit.listen.soundscape.ldfc_picture`, as ``fieldkit picture ldfc`` does.

    Returns
    -------
    tuple
        The cached PNG and the run it was drawn from.
    """
    def draw(name: str, run: int, out: Path) -> dict:
        return soundscape.ldfc_picture(ws, name, day=day, run_id=run, out=out)

    return _deployment_picture(ws, dep, "ldfc", soundscape.LDFC_CHANNELS, run_id, str(day or "all"), draw)


def heatmap(ws: Workspace, dep: DeploymentRow, *, run_id: int | None = None) -> tuple[Path, int]:
    """The deployment's 24 h heat map of ACI (mean per clip by local hour and day), and its run."""
    def draw(name: str, run: int, out: Path) -> dict:
        return soundscape.index_heatmap(ws, name, "aci", run_id=run, out=out)

    return _deployment_picture(ws, dep, "heatmap-aci", ("aci",), run_id, "all", draw)
