"""Write previews: WAV (with GUANO), spectrogram and series PNGs, and data videos.

A layer-2 adapter: soundfile for audio, matplotlib's Agg canvas for pictures (no pyplot, so no
global figure state and no display needed), and the ffmpeg binary bundled with the
imageio-ffmpeg wheel for video (:mod:`fieldkit.io.audio.ffmpeg`; :func:`probe_media` is re-exported
from there).

Pictures use real units: time in seconds (or dates), frequency in kHz. Samples are float
full-scale ``(frames,)`` or ``(channels, frames)``, as in :mod:`fieldkit.dsp`.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal
import soundfile as sf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fieldkit.dsp.bitdepth import to_int16
from fieldkit.dsp.channels import as_channels
from fieldkit.dsp.spectrogram_view import SpectrogramView, max_pool, spectrogram_dbfs, view_for_rate
from fieldkit.errors import ConfigError, ExportError, ValidationError
from fieldkit.io.audio.ffmpeg import (
    MediaProbe,
    MediaStream,
    ffmpeg_exe,
    pipe_frames,
    probe_media,
    video_codec,
)

__all__ = [
    "WAV_SUBTYPES",
    "MediaProbe",
    "MediaStream",
    "guano_text",
    "probe_media",
    "series_plot_png",
    "spectrogram_png",
    "series_video",
    "spectrogram_video",
    "timeline_png",
    "write_wav",
]

PathLike = str | os.PathLike[str]
#: ``"PCM_16"`` (TPDF-dithered, the default) or ``"FLOAT"`` (32-bit float, never clipped).
WAV_SUBTYPES = ("PCM_16", "FLOAT")
_VIDEO_SIZE_PX = (960, 540)  # even sizes: H.264 4:2:0 needs them
_SERIES_VIDEO_PX = (1280, 720)  # up to five panels, the notes and the legend
_SERIES_BREAK_S = 1.0  # twice the longest note: a longer silence in the melody is a gap in the data
_DPI = 100
_AUDIO_RATE_HZ = 48_000  # AAC has a fixed list of rates; expanded previews rarely match one


# -- WAV and GUANO ---------------------------------------------------------------------------

def _guano_value(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"GUANO field {key!r} = {value!r} is invalid; expected text, "
                              "a number or a datetime.")
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and key in ("TE", "Samplerate"):
        return str(int(value))  # the spec declares both integers
    return str(value).replace("\r\n", "\n").replace("\n", "\\n")  # multiline strings


def guano_text(fields: Mapping[str, Any]) -> str:
    """GUANO metadata text: ``GUANO|Version:1.0`` first, then ``Key:Value`` lines.

    UTF-8 text with ``\\n`` line ends (the GUANO 1.0 spec); newlines inside a value are
    written as the two characters backslash-n; a given ``GUANO|Version`` replaces 1.0.
    Keys may not contain ``:`` or a newline.
    """
    version = str(fields.get("GUANO|Version", "1.0"))
    lines = [f"GUANO|Version:{version}"]
    for key, value in fields.items():
        if key == "GUANO|Version":
            continue
        if not key or ":" in key or "\n" in key:
            raise ValidationError(f"GUANO key {key!r} is invalid; keys are non-empty and "
                                  "contain neither ':' nor a newline.")
        lines.append(f"{key}:{_guano_value(key, value)}")
    return "\n".join(lines) + "\n"


def _append_guano(path: Path, fields: Mapping[str, Any]) -> None:
    """Append a ``guan`` chunk (space-padded to even length) and fix the RIFF size."""
    body = guano_text(fields).encode("utf-8")
    body += b" " * (len(body) % 2)
    with open(path, "r+b") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ExportError(f"{path} is not a RIFF/WAVE file; cannot add a GUANO chunk.")
        f.seek(0, os.SEEK_END)
        if f.tell() % 2:  # chunks start on even offsets
            f.write(b"\x00")
        f.write(b"guan" + struct.pack("<I", len(body)) + body)
        size = f.tell() - 8
        f.seek(4)
        f.write(struct.pack("<I", size))


def write_wav(
    path: PathLike,
    samples: np.ndarray,
    rate_hz: float,
    guano: Mapping[str, Any] | None = None,
    subtype: str = "PCM_16",
) -> Path:
    """Write a WAV file, with a GUANO ``guan`` chunk when ``guano`` is given.

    Parameters
    ----------
    path : path
    samples : ndarray, float, shape (frames,) or (channels, frames)
        Full-scale units; ``PCM_16`` needs ``|x| <= 1`` (use
        :func:`fieldkit.dsp.listening.loudness_normalise`).
    rate_hz : float
        Playback rate in Hz, rounded to an integer (a WAV header holds an integer; for a
        time-expanded preview, the exact factor is in GUANO ``TE``).
    guano : mapping, optional
        GUANO fields, e.g. ``{"TE": 10, "Samplerate": 312500, "Length": 4.03}`` (for time
        expansion the spec wants ``Samplerate`` = TE x WAV rate and ``Length`` the real
        duration). Written after the data; see :func:`guano_text`.
    subtype : str
        One of :data:`WAV_SUBTYPES`.

    Returns
    -------
    Path
    """
    x = as_channels(np.asarray(samples))
    if subtype not in WAV_SUBTYPES or x.dtype.kind != "f" or not np.all(np.isfinite(x)):
        raise ValidationError(f"write_wav takes finite float samples and subtype one of "
                              f"{', '.join(WAV_SUBTYPES)}; got {x.dtype}, {subtype!r}.")
    if subtype == "PCM_16" and x.size and float(np.max(np.abs(x))) > 1.0:
        raise ValidationError(f"samples peak at {float(np.max(np.abs(x))):.3f} > 1.0 (full "
                              "scale) would clip in PCM_16; normalise them or write FLOAT.")
    data = to_int16(x) if subtype == "PCM_16" else x.astype(np.float32)
    target = Path(path)
    sf.write(target, data.T, round(rate_hz), subtype=subtype, format="WAV")
    if guano is not None:
        _append_guano(target, guano)
    return target


# -- pictures ------------------------------------------------------------------------------

def _figure(size_px: tuple[int, int]) -> Figure:
    fig = Figure(figsize=(size_px[0] / _DPI, size_px[1] / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _draw_spectrogram(fig: Figure, samples: np.ndarray, rate_hz: float, title: str,
                      fmax_hz: float | None, view: SpectrogramView | None = None,
                      te_factor: int | None = None, start_s: float = 0.0) -> Any:
    """Spectrogram in real units on one axes (see :mod:`fieldkit.dsp.spectrogram_view`)."""
    view = view or view_for_rate(rate_hz)
    freqs, _, db = spectrogram_dbfs(samples, rate_hz, view)
    duration_s = np.asarray(samples).shape[-1] / rate_hz
    top_hz = min(fmax_hz or rate_hz / 2, rate_hz / 2)
    db = db[freqs <= top_hz]
    ax = fig.add_subplot(1, 1, 1)
    box = ax.get_window_extent()  # the axes in pixels: never more cells than pixels
    pooled = max_pool(db, max(1, int(box.height)), max(1, int(box.width)))
    image = ax.imshow(pooled, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                      extent=(start_s, start_s + duration_s, 0.0, top_hz / 1000.0), vmin=db.max() - view.range_db,
                      vmax=db.max())
    ax.set_xlim(start_s, start_s + duration_s)
    xlabel = "Time in the recording (s)"
    if te_factor and te_factor > 1:
        xlabel += f"; the preview is time-expanded ×{te_factor} (plays {te_factor}× longer, {te_factor}× lower)"
    window_ms = 1000 * view.n_window / rate_hz
    detail = f"Hann {view.n_window} ({window_ms:.2f} ms), hop {view.hop}, {view.range_db:g} dB range"
    ax.set(xlabel=xlabel, ylabel="Frequency (kHz)", title=f"{title}\n{detail}" if title else detail)
    fig.colorbar(image, ax=ax, label="Level (dB re full scale)")
    return ax


def spectrogram_png(
    path: PathLike, samples: np.ndarray, rate_hz: float, title: str,
    fmax_hz: float | None = None, *, view: SpectrogramView | None = None, te_factor: int | None = None,
    start_s: float = 0.0, boxes: tuple[tuple[float, float, float | None, float | None, str], ...] = (),
) -> Path:
    """Spectrogram picture a scientist can trust (:mod:`fieldkit.dsp.spectrogram_view`).

    Time in seconds of the recording (``te_factor`` notes a time-expanded preview), frequency
    in kHz up to ``fmax_hz`` (default Nyquist), colour in dB re full scale over ``view.range_db``
    (80 dB), window and hop from the sample rate unless ``view`` gives them, columns and rows
    max-pooled to the pixels. For a time-expanded preview, pass the original samples and rate;
    ``start_s`` is where the excerpt begins in the recording (the time axis starts there).
    ``boxes`` are labelled annotations ``(begin_s, end_s, low_hz, high_hz, label)`` in the
    picture's own time (seconds from its first sample); a missing band spans every frequency.
    """
    fig = _figure((1000, 500))
    ax = _draw_spectrogram(fig, samples, rate_hz, title, fmax_hz, view, te_factor, start_s)
    _draw_boxes(ax, boxes, (fmax_hz if fmax_hz else rate_hz / 2) / 1000.0, start_s)
    fig.tight_layout()
    fig.savefig(Path(path), format="png")
    return Path(path)


def _draw_boxes(ax: Any, boxes: tuple, top_khz: float, start_s: float = 0.0) -> None:
    for begin_s, end_s, low_hz, high_hz, label in boxes:
        begin_s, end_s = begin_s + start_s, end_s + start_s  # the axis shows recording time
        low = (low_hz or 0.0) / 1000.0
        high = top_khz if high_hz is None else high_hz / 1000.0
        ax.add_patch(Rectangle((begin_s, low), end_s - begin_s, high - low, fill=False, edgecolor="cyan", linewidth=1.5))
        ax.text(begin_s, min(high, top_khz), label, color="cyan", fontsize=8, va="top", ha="left", clip_on=True)


def series_plot_png(
    path: PathLike, starts_s: Any, series: list[tuple[str, Any]], notes: list[dict[str, Any]], title: str,
    legend_lines: list[str] | None = None, marks: list[tuple[float, str]] | None = None,
) -> Path:
    """The sonified series over melody time, the notes played below them, and the legend.

    Parameters
    ----------
    path : path
    starts_s : array_like, shape (points,)
        Where each data point starts in the melody, seconds (the shared time axis).
    series : list of (label, values)
        One panel each, e.g. ``("pitch ← centroid (Hz)", values)``; NaN points (rests) show
        as gaps.
    notes : list of dict
        The notes played (``start_s``, ``duration_s``, ``midi``, ``instrument``): drawn as
        bars at their MIDI pitch, one colour per instrument.
    title : str
    legend_lines : list of str, optional
        The sonification legend (which feature drives what), printed in the picture.
    marks : list of (seconds, label), optional
        Clock marks (hours) drawn as dotted lines on every panel.
    """
    fig = _figure((1100, 240 * (len(series) + 1) + 14 * len(legend_lines or []) + 30))
    _draw_series(fig, starts_s, series, notes, title, legend_lines, marks)
    fig.savefig(Path(path), format="png")
    return Path(path)


def _draw_series(fig: Figure, starts_s: Any, series: list[tuple[str, Any]], notes: list[dict[str, Any]],
                 title: str, legend_lines: list[str] | None, marks: list[tuple[float, str]] | None,
                 end_s: float | None = None) -> list[Any]:
    x = np.asarray(starts_s, dtype=np.float64)
    breaks = np.flatnonzero(np.diff(x) > _SERIES_BREAK_S) + 1  # a rest longer than 1 s: no line across it
    axes = fig.subplots(len(series) + 1, 1, sharex=True, squeeze=False)[:, 0]
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")
    for ax, (label, values), colour in zip(axes, series, colours):
        y = np.asarray(values, dtype=np.float64)
        ax.plot(np.insert(x, breaks, np.nan), np.insert(y, breaks, np.nan), color=colour, marker=".", linewidth=1)
        ax.set_ylabel(label, fontsize=8)
    _draw_notes(axes[-1], notes)
    for ax in axes:
        for second, _ in marks or []:
            ax.axvline(second, color="0.6", linestyle=":", linewidth=0.8)
    for second, text in marks or []:
        axes[0].annotate(f" {text}", (second, 0.97), xycoords=("data", "axes fraction"), fontsize=7, color="0.3",
                         ha="left", va="top")
    if end_s is not None:
        axes[-1].set_xlim(0.0, end_s)
    axes[-1].set_xlabel("Time in the melody (s)")
    axes[0].set_title(title)
    legend_px = 14 * len(legend_lines or []) + 30  # 8-point lines are about 11 px; room for the x label
    if legend_lines:
        fig.text(0.01, 0.005, "\n".join(legend_lines), fontsize=8, family="monospace", va="bottom")
    fig.tight_layout(rect=(0, legend_px / (fig.get_figheight() * fig.dpi), 1, 1))
    return list(axes)


def _draw_notes(ax: Any, notes: list[dict[str, Any]]) -> None:
    """Notes as horizontal bars: x = start and duration (s), y = MIDI pitch."""
    names = list(dict.fromkeys(n.get("instrument", "") for n in notes))
    palette = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:olive", "tab:cyan")
    for k, name in enumerate(names):
        mine = [n for n in notes if n.get("instrument", "") == name]
        ax.barh([n["midi"] for n in mine], [n["duration_s"] for n in mine], left=[n["start_s"] for n in mine],
                height=0.8, color=palette[k % len(palette)], label=name or None, edgecolor="white", linewidth=0.6)
    if any(names):
        ax.legend(loc="best", fontsize=7, title="instrument", title_fontsize=7, framealpha=0.6)
    ax.set_ylabel("note played (MIDI)", fontsize=8)


def timeline_png(path: PathLike, times: Any, values: Any, title: str,
                 ylabel: str = "value") -> Path:
    """A deployment's timeline: ``values`` against ``times`` (datetime64), in time order."""
    t = np.asarray(times, dtype="datetime64[ns]")
    y = np.asarray(values, dtype=np.float64)
    if t.shape != y.shape or t.ndim != 1:
        raise ValidationError(f"times and values must be 1-D of one length; got {t.shape} "
                              f"and {y.shape}.")
    order = np.argsort(t, kind="stable")
    fig = _figure((1000, 400))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t[order], y[order], marker=".", linewidth=1)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set(xlabel="Time", ylabel=ylabel, title=title)
    fig.tight_layout()
    fig.savefig(Path(path), format="png")
    return Path(path)


# -- video -------------------------------------------------------------------------------

def _rgb_and_cursor(fig: Figure, top_ax: Any, bottom_ax: Any) -> tuple[np.ndarray, tuple]:
    """The figure as RGB (H, W, 3) and the cursor geometry in pixels: (x at the left of the x
    axis, x at its right, top row of ``top_ax``, bottom row of ``bottom_ax``)."""
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    height = rgb.shape[0]
    top, bottom = top_ax.get_window_extent(), bottom_ax.get_window_extent()
    return rgb, (bottom.x0, bottom.x1, int(height - top.y1), math.ceil(height - bottom.y0))


def _spectrogram_frame(samples: np.ndarray, rate_hz: float, title: str = "",
                       te_factor: int | None = None, start_s: float = 0.0) -> tuple[np.ndarray, tuple]:
    """The spectrogram as an RGB image (H, W, 3) and the cursor geometry in pixels."""
    fig = _figure(_VIDEO_SIZE_PX)
    ax = _draw_spectrogram(fig, samples, rate_hz, title, None, te_factor=te_factor, start_s=start_s)
    fig.tight_layout()
    return _rgb_and_cursor(fig, ax, ax)


def _frames(base: np.ndarray, geometry: tuple, audio_s: float, fps: int,
            colour: tuple[int, int, int] = (255, 255, 255)) -> Iterator[np.ndarray]:
    """Yield each frame: the base image with a 2-pixel cursor at the frame's time."""
    x0, x1, top, bottom = geometry
    for i in range(max(1, math.ceil(audio_s * fps))):
        frame = base.copy()
        progress = min(1.0, i / fps / audio_s) if audio_s > 0 else 0.0
        x = round(x0 + (x1 - x0) * progress)
        frame[top:bottom, max(0, x - 1) : x + 1] = colour
        yield frame


def _encode(path_mp4: PathLike, base: np.ndarray, geometry: tuple, audio_path: PathLike, fps: int,
            colour: tuple[int, int, int] = (255, 255, 255)) -> Path:
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ConfigError(f"fps = {fps!r} is invalid; expected an integer >= 1.")
    audio_s = sf.info(str(audio_path)).duration
    height, width = base.shape[:2]
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
           "-i", "-", "-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0",
           "-c:v", video_codec(), "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-ar", str(_AUDIO_RATE_HZ), "-shortest", str(path_mp4)]
    pipe_frames(cmd, _frames(base, geometry, audio_s, fps, colour))
    return Path(path_mp4)


def spectrogram_video(
    path_mp4: PathLike, samples: np.ndarray, rate_hz: float, audio_path: PathLike,
    fps: int = 10, *, title: str = "", te_factor: int | None = None, start_s: float = 0.0,
) -> Path:
    """MP4 of the spectrogram with a moving cursor and ``audio_path`` as the sound track.

    The spectrogram of ``samples`` (as :func:`spectrogram_png`: titled, labelled axes in s and
    kHz, colour bar in dB re full scale) is drawn once; frames with a cursor sweeping it over
    the duration of the audio file are piped as raw RGB to the bundled ffmpeg, encoded H.264
    (``libx264``, else ``mpeg4``) at ``fps`` with AAC audio at 48 kHz, ending with the shorter
    stream. ``samples`` may be the original recording while the audio is its time-expanded
    or heterodyned preview: the cursor maps progress, so both axes stay in real units.

    Parameters
    ----------
    path_mp4 : path
    samples : ndarray, float, shape (frames,) or (channels, frames)
    rate_hz : float
        Sample rate of ``samples`` in Hz (the spectrogram's real time and frequency axes).
    audio_path : path
        The sound track (any file soundfile reads); it sets the video's duration.
    fps : int
        Frames per second (>= 1) of the cursor animation.
    title, te_factor, start_s
        The picture's title; the time-expansion factor noted on the time axis; where the
        excerpt starts in the recording.
    """
    base, geometry = _spectrogram_frame(samples, rate_hz, title, te_factor, start_s)
    return _encode(path_mp4, base, geometry, audio_path, fps)


def series_video(
    path_mp4: PathLike, starts_s: Any, series: list[tuple[str, Any]], notes: list[dict[str, Any]], title: str,
    audio_path: PathLike, fps: int = 10, *, legend_lines: list[str] | None = None,
    marks: list[tuple[float, str]] | None = None,
) -> Path:
    """MP4 of the sonified feature series (:func:`series_plot_png`) with a red cursor moving
    across every panel in step with the melody, the melody as the sound track (encoded as
    :func:`spectrogram_video`)."""
    audio_s = sf.info(str(audio_path)).duration
    fig = _figure(_SERIES_VIDEO_PX)
    axes = _draw_series(fig, starts_s, series, notes, title, legend_lines, marks, end_s=audio_s)
    base, geometry = _rgb_and_cursor(fig, axes[0], axes[-1])
    return _encode(path_mp4, base, geometry, audio_path, fps, colour=(214, 39, 40))  # red on white
