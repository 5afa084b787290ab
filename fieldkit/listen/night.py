"""Clock-true "night in a minute": a deployment's clips as a melody on a clock.

Time in the melody is clock time scaled: :data:`SECONDS_PER_HOUR` seconds of melody per hour
(7.5 s: an 8-hour night in a minute). The clock is cut into slots as long as the longest note
(0.5 s of melody, 4 minutes of clock time by default); the clips of one slot make one note, their
features averaged and their number available as the ``count`` feature (activity), and the note
starts at its slot's start, so onsets follow clock time and a silence in the recordings is a
rest of proportional length (a 6 h gap: 45 s). A gap longer than ``max_gap_h`` (a month between
two deployments' visits) is played as ``max_gap_h`` hours and reported. Clips without a start
time cannot be placed: they are counted and their recordings listed in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.errors import ConfigError
from fieldkit.listen.points import Points, merge_groups
from fieldkit.listen.sonify import (
    DUR_RANGE_S,
    SonifyOptions,
    deployment_filter,
    run_points,
    run_with_deployment,
    write_melody,
)

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["MAX_GAP_H", "SECONDS_PER_HOUR", "ClockMap", "clock_groups", "clock_hours", "sonify_deployment",
           "sonify_deployment_plot"]

SECONDS_PER_HOUR = 7.5
MAX_GAP_H = 24.0
#: Longest melody a clock-true sonification may make (its samples are held in memory).
MAX_MELODY_S = 1200.0
_HOUR = np.timedelta64(3600, "s")


@dataclass(frozen=True)
class ClockMap:
    """Seconds of melody per clock hour, the slot (one note) in melody seconds, the longest gap
    played at its length (hours)."""

    seconds_per_hour: float = SECONDS_PER_HOUR
    slot_s: float = DUR_RANGE_S[1]
    max_gap_h: float = MAX_GAP_H

    def check(self) -> None:
        for name in ("seconds_per_hour", "slot_s", "max_gap_h"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} = {value!r} is invalid; expected a number > 0.")


def clock_hours(times: np.ndarray, max_gap_h: float) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Hours since the first time (sorted input), each step longer than ``max_gap_h`` shortened
    to it; and those shortened gaps (from, to, hours)."""
    hours = (times - times[0]) / _HOUR
    steps = np.diff(hours)
    long = np.flatnonzero(steps > max_gap_h)
    gaps = [{"from": str(times[i]), "to": str(times[i + 1]), "hours": float(steps[i]), "played_as_h": max_gap_h}
            for i in long]
    return np.concatenate([[0.0], np.cumsum(np.minimum(steps, max_gap_h))]), gaps


def clock_groups(points: Points, clock: ClockMap = ClockMap()) -> tuple[Points, np.ndarray, dict[str, Any]]:
    """Group timed points (time order) by clock slot.

    Returns
    -------
    grouped : Points
        One point per occupied slot (features averaged, clips summed).
    onsets_s : ndarray
        Start of each point's note in the melody, seconds: ``slot index * slot_s``.
    info : dict
        ``slot_minutes`` (clock time of a slot), ``compressed_gaps``, ``marks`` (melody second,
        ``HH:MM`` label) of clock hours, ``clip_onsets_s`` (the onset of each clip's note).
    """
    clock.check()
    hours, gaps = clock_hours(points.times, clock.max_gap_h)
    slot_h = clock.slot_s / clock.seconds_per_hour
    slot = np.floor(hours / slot_h + 1e-9).astype(np.int64)
    starts = np.flatnonzero(np.diff(slot, prepend=-1))
    groups = np.split(np.arange(slot.size), starts[1:])
    onsets = slot[starts] * clock.slot_s
    if onsets.size and onsets[-1] + clock.slot_s > MAX_MELODY_S:
        span_h = float(hours[-1])
        raise ConfigError(f"{span_h:.0f} hours of clock time at {clock.seconds_per_hour:g} s per hour make a "
                          f"{onsets[-1] / 60:.0f}-minute melody; the longest is {MAX_MELODY_S / 60:.0f} minutes.",
                          hint=f"Lower --seconds-per-hour (e.g. {MAX_MELODY_S / 2 / max(span_h, 1):.2g}) or "
                               "--max-gap-h, or sonify one night at a time.")
    gap_marks = [(float(hours[i] * clock.seconds_per_hour), f"{steps_h:.0f} h gap played as {clock.max_gap_h:g} h")
                 for i, steps_h in ((int(np.searchsorted(points.times, np.datetime64(g["from"]))), g["hours"])
                                    for g in gaps)]
    marks = sorted(_hour_marks(points.times, hours, clock) + gap_marks)
    info = {"slot_minutes": 60 * slot_h, "compressed_gaps": gaps, "marks": marks,
            "clip_onsets_s": slot * clock.slot_s}
    return merge_groups(points, groups), onsets.astype(np.float64), info


def _hour_marks(times: np.ndarray, hours: np.ndarray, clock: ClockMap) -> list[tuple[float, str]]:
    """Whole clock hours between clips (not inside a shortened gap), at most ~24 of them."""
    if times.size == 0:
        return []
    first = times[0].astype("datetime64[h]") + np.timedelta64(1, "h")
    span_h = float((times[-1] - first) / _HOUR)
    step = max(1, math.ceil(span_h / 24))
    marks = []
    for k in range(0, max(0, int(span_h)) + 1, step):
        t = first + np.timedelta64(k, "h")
        i = int(np.searchsorted(times, t)) - 1
        if i < 0 or i + 1 >= times.size or (times[i + 1] - times[i]) / _HOUR > clock.max_gap_h:
            continue
        h = hours[i] + float((t - times[i]) / _HOUR)
        marks.append((h * clock.seconds_per_hour, str(t.astype("datetime64[m]"))[11:16]))
    return marks


def sonify_deployment(ws: Workspace, name: str, opt: SonifyOptions = SonifyOptions(),
                      out: Path | str | None = None, *, run_id: int | None = None,
                      clock: ClockMap = ClockMap()) -> dict[str, Any]:
    """"A night in a minute": a deployment's clips on a clock-true melody (module docstring).

    Parameters
    ----------
    ws : Workspace
    name : str
        Deployment name, or ``SITE/NAME`` when names repeat across sites.
    opt : SonifyOptions
        As for :func:`fieldkit.listen.sonify.sonify_run`; ``count`` (clips per slot) is an
        activity measure any dimension can take.
    out : path, optional
        Default ``<workspace>/exports/sonify/deployment-<NAME>.wav``.
    run_id : int, optional
        The run whose features are played (default: the latest complete run with clips of
        the deployment; the result names the run).
    clock : ClockMap
        Seconds per hour, slot and longest gap played in full.

    Returns
    -------
    dict
        As :func:`~fieldkit.listen.sonify.sonify_run`, plus ``run_id``, ``clock`` (the map and
        the shortened gaps), ``clips_without_time`` and ``recordings_without_time``.
    """
    return sonify_deployment_plot(ws, name, opt, out, run_id=run_id, clock=clock)[0]


def sonify_deployment_plot(ws: Workspace, name: str, opt: SonifyOptions = SonifyOptions(),
                           out: Path | str | None = None, *, run_id: int | None = None,
                           clock: ClockMap = ClockMap()) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`sonify_deployment`, also returning the series picture's arguments (for the video)."""
    run = run_with_deployment(ws, name, run_id)
    points, dims = run_points(ws.store_location(run.store_path), opt, where=deployment_filter(name),
                              also=("recording",))
    timed = ~np.isnat(points.times)
    untimed = points.take(~timed)
    grouped, onsets, info = clock_groups(points.take(timed), clock) if timed.any() else (points.take(timed), None, {})
    span = (f", {str(points.times[timed][0])[:16].replace('T', ' ')} to {str(points.times[timed][-1])[:16].replace('T', ' ')}"
            if timed.any() else "")
    title = f"deployment {name} (run {run.id}), {clock.seconds_per_hour:g} s of melody per clock hour{span}"
    with ws.default_output("sonify", out) as target:
        result, _, plot = write_melody(grouped, opt, out, target.folder / f"deployment-{name.replace('/', '-')}.wav",
                                       title, dims=dims, onsets_s=onsets, marks=info.get("marks"),
                                       extra_legend={"clock": {"seconds_per_hour": clock.seconds_per_hour,
                                                               "slot_minutes": info.get("slot_minutes")}})
        result = target.publish(result)
    without = sorted({int(r) for r in untimed.categories.get("recording", np.array([], str))}) if untimed.clips.size else []
    return {"deployment": name, "run_id": run.id, **result,
            "clock": {"seconds_per_hour": clock.seconds_per_hour, "slot_s": clock.slot_s,
                      "slot_minutes": info.get("slot_minutes"), "max_gap_h": clock.max_gap_h,
                      "compressed_gaps": info.get("compressed_gaps", []),
                      "clip_onsets_s": info.get("clip_onsets_s", np.array([])).tolist()},
            "clips_without_time": int(untimed.clips.sum()), "recordings_without_time": without}, plot
