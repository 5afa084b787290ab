"""A deployment's coverage picture: what was recorded when, the gaps, and the broken files.

Drawn with matplotlib's Agg canvas (no pyplot, no display), like :mod:`fieldkit.io.render.media`.
Times are UTC ``datetime64``; recordings are bars as long as their duration (with a tick at
each start, so that 5-second recordings stay visible on a month-long axis), gaps are shaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from fieldkit.errors import ValidationError

__all__ = ["coverage_png"]

_SECONDS_PER_DAY = 86_400.0


def _days(values: Any) -> np.ndarray:
    return date2num(np.asarray(values, dtype="datetime64[ns]"))


def _draw_gaps(ax: Any, gaps: list[tuple[Any, Any]]) -> None:
    for i, (start, end) in enumerate(gaps):
        a, b = _days([start, end])
        ax.axvspan(a, b, color="tab:red", alpha=0.15, label="gap" if i == 0 else None)


def coverage_png(path: str | os.PathLike[str], starts: Any, durations_s: Any, gaps: list[tuple[Any, Any]],
                 title: str, problems: Any = ()) -> Path:
    """Coverage timeline of one deployment.

    Parameters
    ----------
    path : path
        The PNG to write (1000 x 260 px).
    starts : array_like of datetime64
        Start of each recording (UTC).
    durations_s : array_like of float
        Duration of each recording, seconds.
    gaps : list of (datetime64, datetime64)
        Intervals without recordings that the schedule did not explain.
    problems : array_like of datetime64
        Start times of quarantined files, marked with a red cross.
    """
    t = _days(starts)
    d = np.asarray(durations_s, dtype=np.float64) / _SECONDS_PER_DAY
    if t.shape != d.shape or t.ndim != 1:
        raise ValidationError(f"starts and durations must be 1-D of one length; got {t.shape} and {d.shape}.")
    fig = Figure(figsize=(10, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.broken_barh(list(zip(t, d)), (0.2, 0.6), color="tab:blue")
    ax.plot(t, np.full(t.shape, 0.5), "|", color="tab:blue", markersize=14, label="recording")
    _draw_gaps(ax, gaps)
    bad = _days(problems) if len(problems) else np.empty(0)
    if bad.size:
        ax.plot(bad, np.full(bad.shape, 0.5), "x", color="tab:red", markersize=8, label="quarantined")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set(ylim=(0, 1), yticks=[], xlabel="Time (UTC)", title=title)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(Path(path), format="png")
    return Path(path)
