"""PNG pictures of acoustic indices: long-duration false-colour spectrograms and heat maps.

Matplotlib's object API (no pyplot state), as the other pictures of :mod:`fieldkit.io.render`.
Each function writes one PNG and returns what it drew (pixel size, axis labels, ticks), read
back from the figure, so callers and tests see the axes without parsing pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fieldkit.errors import ValidationError

__all__ = ["heatmap_png", "ldfc_png"]

_DPI = 100
_MISSING = (0.5, 0.5, 0.5)  # grey: minutes or hours without a recording (Towsey's convention)


def _drawn(fig: Figure, ax: Any, path: Path) -> dict[str, Any]:
    width, height = fig.canvas.get_width_height()
    return {"png": str(path), "width_px": int(width), "height_px": int(height),
            "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "ylim": [float(v) for v in ax.get_ylim()],
            "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
            "yticklabels": [t.get_text() for t in ax.get_yticklabels()]}


def ldfc_png(path: str | os.PathLike[str], rgb: np.ndarray, top_khz: float, ticks: Sequence[tuple[int, str]],
             title: str, caption: str, breaks: Sequence[int] = (), xlabel: str = "local time") -> dict[str, Any]:
    """A false-colour spectrogram: one pixel column per time step, frequency upwards in kHz.

    Parameters
    ----------
    path : path
        The PNG to write.
    rgb : ndarray, shape (bins, columns, 3)
        Colours in [0, 1], row 0 the lowest bin; NaN (a column without data) is drawn grey.
    top_khz : float
        Frequency of the top of the picture (Nyquist), kHz.
    ticks : sequence of (int, str)
        Column index and clock-time label of each x tick.
    breaks : sequence of int
        Columns that do not follow the previous one in time (a gap left out): a white line.
    """
    rgb = np.asarray(rgb, np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValidationError(f"expected an RGB picture shaped (bins, columns, 3); got {rgb.shape}.")
    shown = np.where(np.isnan(rgb), np.array(_MISSING), rgb)
    n_cols = rgb.shape[1]
    fig = Figure(figsize=(float(np.clip(2.0 + n_cols / _DPI, 8, 18)), 5.0), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(shown, origin="lower", aspect="auto", interpolation="nearest", extent=(0, n_cols, 0, top_khz))
    for column in breaks:
        ax.axvline(column, color="white", linewidth=1.0)
    ax.set_xticks([c + 0.5 for c, _ in ticks], [label for _, label in ticks])
    ax.set(xlabel=xlabel, ylabel="frequency (kHz)", title=title)
    fig.text(0.01, 0.01, caption, fontsize="small", color="0.3")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(Path(path), format="png")
    return _drawn(fig, ax, Path(path))


def heatmap_png(path: str | os.PathLike[str], grid: np.ndarray, day_labels: Sequence[str], title: str,
                index_label: str, xlabel: str = "hour (local time)") -> dict[str, Any]:
    """A 24 h heat map: one row per day, one column per hour; grey where there was no clip.

    ``grid`` is (days, 24), NaN where no clip; the colour bar is labelled ``index_label``.
    """
    grid = np.asarray(grid, np.float64)
    if grid.ndim != 2 or grid.shape[1] != 24 or grid.shape[0] != len(day_labels) or not grid.size:
        raise ValidationError(f"expected a (days, 24) grid with one label per day; got {grid.shape} "
                              f"and {len(day_labels)} labels.")
    fig = Figure(figsize=(9.0, float(np.clip(1.6 + 0.3 * grid.shape[0], 3, 14))), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps["viridis"].with_extremes(bad=_MISSING)
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest", cmap=cmap,
                      extent=(0, 24, grid.shape[0], 0))
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_yticks([i + 0.5 for i in range(grid.shape[0])], list(day_labels))
    ax.set(xlabel=xlabel, ylabel="day", title=title)
    fig.colorbar(image, ax=ax, label=index_label)
    fig.tight_layout()
    fig.savefig(Path(path), format="png")
    return _drawn(fig, ax, Path(path))
