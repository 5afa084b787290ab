"""Write a sonification's notes as a Standard MIDI File (mido).

One track per instrument (type-1 file; track 0 holds the tempo), each on its own channel with
the instrument's General MIDI program; every note is preceded by its pan (controller 10) and,
for pitches off the 12-tone grid (N-TET, cents lists, Scala scales), a pitch bend in a range
of +-2 semitones set by RPN 0 at the start of the track (1/4096 semitone steps: far below the
5 cents a listener can tell). Velocity follows the note's amplitude, ``round(127 * amplitude)``
(at least 1), so a synthesizer plays the loud data points loud.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mido

from fieldkit.errors import ValidationError

__all__ = ["BEND_RANGE_SEMITONES", "TICKS_PER_BEAT", "write_midi"]

TICKS_PER_BEAT = 960
_TEMPO_US = 500_000  # 120 bpm: one tick is 0.52 ms, well inside the 10 ms a listener hears
BEND_RANGE_SEMITONES = 2
_DRUM_CHANNEL = 9  # General MIDI: channel 10 plays percussion, never pitched notes


def _ticks(seconds: float) -> int:
    return round(seconds * TICKS_PER_BEAT * 1e6 / _TEMPO_US)


def _track_head(name: str, channel: int, program: int) -> list[tuple[int, int, Any]]:
    """Name, program and the pitch-bend range (RPN 0,0 = BEND_RANGE_SEMITONES semitones)."""
    cc = [(101, 0), (100, 0), (6, BEND_RANGE_SEMITONES), (38, 0), (101, 127), (100, 127)]
    events: list[tuple[int, int, Any]] = [(0, 0, mido.MetaMessage("track_name", name=name)),
                                          (0, 0, mido.Message("program_change", channel=channel, program=program))]
    events += [(0, 0, mido.Message("control_change", channel=channel, control=c, value=v)) for c, v in cc]
    return events


def _note_events(note: Mapping[str, Any], channel: int) -> list[tuple[int, int, Any]]:
    """(tick, order, message): at one tick, note-offs (order 0) come before the next note's
    controllers (1) and note-on (2)."""
    key = round(note["midi"])
    if not 0 <= key <= 127:
        raise ValidationError(f"note {note['freq_hz']:.1f} Hz is outside the MIDI range (MIDI {note['midi']:.1f}).")
    bend = round((note["midi"] - key) / BEND_RANGE_SEMITONES * 8192)
    on, off = _ticks(note["start_s"]), _ticks(note["start_s"] + note["duration_s"])
    pan = round((note.get("pan", 0.0) + 1.0) / 2.0 * 127)
    velocity = max(1, min(127, round(127 * note["amplitude"])))
    return [(on, 1, mido.Message("control_change", channel=channel, control=10, value=pan)),
            (on, 1, mido.Message("pitchwheel", channel=channel, pitch=max(-8192, min(8191, bend)))),
            (on, 2, mido.Message("note_on", channel=channel, note=key, velocity=velocity)),
            (max(off, on + 1), 0, mido.Message("note_off", channel=channel, note=key, velocity=0))]


def write_midi(path: str | os.PathLike[str], notes: Sequence[Mapping[str, Any]],
               programs: Mapping[str, int]) -> Path:
    """Write ``notes`` (as returned by :func:`fieldkit.dsp.melody.melody`) to a MIDI file.

    Parameters
    ----------
    path : path
    notes : sequence of mapping
        Each with ``midi`` (fractional MIDI number), ``start_s``, ``duration_s``,
        ``amplitude`` (0-1), ``pan`` (-1 .. 1) and ``instrument``.
    programs : mapping
        General MIDI program (0-127) of each instrument name; the tracks follow its order.

    Returns
    -------
    Path
    """
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=_TEMPO_US, time=0)]))
    used = [name for name in programs if any(n["instrument"] == name for n in notes)]
    channels = [c for c in range(16) if c != _DRUM_CHANNEL]
    if len(used) > len(channels):
        raise ValidationError(f"{len(used)} instruments need more than the {len(channels)} pitched MIDI channels.")
    for name, channel in zip(used, channels):
        events = _track_head(name, channel, programs[name])
        for note in (n for n in notes if n["instrument"] == name):
            events += _note_events(note, channel)
        events.sort(key=lambda e: (e[0], e[1]))
        track, now = mido.MidiTrack(), 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    target = Path(path)
    midi.save(target)
    return target
