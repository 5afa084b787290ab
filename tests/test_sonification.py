"""The data-to-music method's five dimensions, scales and MIDI, measured from the sound.

Known answers: synthetic feature series with a known order, scales whose pitches are written
down (the method's note list, 19-TET, a Scala file), and the samples measured independently of
how they were made (:mod:`fieldkit.testing.sound_measures`: Hilbert envelope onsets, FFT pitch and
partials, per-channel RMS). MIDI files are read back with mido.
"""

from __future__ import annotations

import itertools
import json
import math

import mido
import numpy as np
import pytest
import scipy.stats

from fieldkit.dsp import melody as mel
from fieldkit.dsp.scales import GRANVILLE_MIDI, midi_to_hz, parse_scale, parse_scl, positions
from fieldkit.errors import ConfigError, UnknownNameError, ValidationError
from fieldkit.io.render.midi import write_midi
from fieldkit.testing.sound_measures import balance, cents_off_grid, harmonic_profile, note_onsets, peak_hz

RATE = 22_050
FADE = 0.01


def _series(n: int = 40, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"pitch": np.cumsum(rng.standard_normal(n)), "duration": rng.uniform(0, 10, n),
            "volume": rng.gamma(2.0, 1.0, n), "pan": rng.normal(0, 3, n), "timbre": rng.integers(0, 3, n)}


def _body(samples: np.ndarray, note: dict) -> np.ndarray:
    """The steady part of a note (without its fades), channels summed."""
    x = samples.sum(axis=0) if samples.ndim == 2 else samples
    a = round((note["start_s"] + FADE) * RATE)
    b = round((note["start_s"] + note["duration_s"] - FADE) * RATE)
    return np.asarray(x[a:b], np.float64)


# -- scales ------------------------------------------------------------------------------------

def test_granville_is_the_methods_note_list():
    # MIDI 35..64 without the half tones k % 12 in {0, 2, 5, 7, 10}, written out by hand
    written = [35, 37, 39, 40, 42, 44, 45, 47, 49, 51, 52, 54, 56, 57, 59, 61, 63, 64]
    assert list(GRANVILLE_MIDI) == written
    freqs = mel.scale_frequencies("granville")
    assert freqs == pytest.approx(440.0 * 2 ** ((np.array(written) - 69) / 12), rel=1e-12)
    samples, notes = mel.melody(np.arange(18.0), np.ones(18), np.ones(18), scale="granville", rate_hz=RATE,
                                dur_range=(0.4, 0.4))
    heard = [69 + 12 * math.log2(peak_hz(_body(samples, n), RATE) / 440.0) for n in notes]
    assert [round(m) for m in heard] == written and max(abs(m - round(m)) for m in heard) * 100 <= 5


def test_19_tet_notes_sit_on_the_19_tet_grid():
    s = _series(60)
    samples, notes = mel.melody(s["pitch"], s["duration"] * 0 + 1, s["volume"], scale="19-tet", rate_hz=RATE,
                                dur_range=(0.3, 0.3), binning="quantile")
    assert len({n["note"] for n in notes}) >= 30  # quantile bins use most of the 36 notes
    errors = [cents_off_grid(peak_hz(_body(samples, n), RATE), 220.0, 19) for n in notes]
    assert max(errors) <= 5.0
    # and they are not 12-TET: a third of the notes lie >= 20 cents off the semitone grid
    off12 = [cents_off_grid(n["freq_hz"], 220.0, 12) for n in notes]
    assert sum(c >= 20 for c in off12) >= len(notes) / 3


SCL = """! just.scl
!
Ptolemy's intense diatonic, 5-limit just intonation
 7
!
 9/8
 5/4
 4/3
 701.955 ! a fifth in cents
 5/3
 15/8
 2/1
"""


def test_a_scala_scale_is_reproduced(tmp_path):
    scale = parse_scl(SCL, "just.scl")
    ratios = [1, 9 / 8, 5 / 4, 4 / 3, 2 ** (701.955 / 1200), 5 / 3, 15 / 8]
    expected = [220.0 * r * 2 ** octave for octave in range(2) for r in ratios] + [880.0]
    assert scale.frequencies(15, 220.0) == pytest.approx(expected, rel=1e-9)
    samples, notes = mel.melody(np.arange(15.0), np.ones(15), np.ones(15), rate_hz=RATE, dur_range=(0.4, 0.4),
                                scale_hz=scale.frequencies(15, 220.0))
    for note, want in zip(notes, expected):
        assert abs(1200 * math.log2(peak_hz(_body(samples, note), RATE) / want)) <= 5.0


@pytest.mark.parametrize("text", ["", "desc\nseven\n", "desc\n3\n9/8\n", "desc\n1\nabc\n"])
def test_a_broken_scala_file_is_refused(text):
    with pytest.raises(ValidationError):
        parse_scl(text)


def test_scale_specs():
    assert parse_scale("31-TET").cents[1] == pytest.approx(1200 / 31)
    assert parse_scale("cents:200,400,700,1200").cents == (0.0, 200.0, 400.0, 700.0)
    assert parse_scale("whole-tone").frequencies(7, 100.0)[-1] == pytest.approx(200.0)
    with pytest.raises(UnknownNameError, match="granville"):
        parse_scale("dorian")
    with pytest.raises(ConfigError):
        parse_scale("cents:200,200")


def test_maps_linear_quantile_log_asinh_and_reverse():
    x = np.array([1.0, 10.0, 100.0, 1000.0, np.nan])
    assert positions(x, "log")[:4] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert positions(x, "linear")[1] == pytest.approx(9 / 999)
    assert positions(x, "quantile", reverse=True)[:4] == pytest.approx([1, 2 / 3, 1 / 3, 0])
    assert np.isnan(positions(x, "asinh")[4])
    signed = positions(np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0]), "asinh")
    assert signed[2] == pytest.approx(0.5) and np.all(np.diff(signed) > 0)
    with pytest.raises(ConfigError, match="log map needs values > 0"):
        positions(np.array([-1.0, 2.0]), "log")


def test_reversed_volume_makes_low_values_loud():
    _, notes = mel.melody([1, 2, 3], [1, 1, 1], [1.0, 2.0, 3.0], reverse=("volume",))
    assert [n["amplitude"] for n in notes] == pytest.approx([0.8, 0.45, 0.1])


# -- pan and timbre ----------------------------------------------------------------------------

def test_pan_follows_its_feature():
    s = _series(50)
    samples, notes = mel.melody(s["pitch"], s["duration"], s["volume"], pan_values=s["pan"], rate_hz=RATE)
    assert samples.shape[0] == 2
    measured = []
    for n in notes:
        a, b = round(n["start_s"] * RATE), round((n["start_s"] + n["duration_s"]) * RATE)
        measured.append(balance(samples[0, a:b], samples[1, a:b]))
    r = scipy.stats.spearmanr(measured, s["pan"][[n["index"] for n in notes]]).statistic
    assert r >= 0.95
    lowest, highest = int(np.argmin(s["pan"])), int(np.argmax(s["pan"]))
    assert measured[lowest] < 0.01 and measured[highest] > 0.99  # hard left, hard right


def test_each_instrument_has_its_own_measured_harmonic_profile():
    profiles = {}
    for name, spec in mel.INSTRUMENTS.items():
        samples, (note,) = mel.melody([1.0], [1.0], [1.0], scale_hz=[220.0], instruments=(name,), rate_hz=RATE,
                                      dur_range=(1.0, 1.0))
        profiles[name] = harmonic_profile(_body(samples, note), RATE, 220.0)
        recipe = np.zeros(8)
        recipe[: len(spec["harmonics"])] = spec["harmonics"]
        assert profiles[name] == pytest.approx(recipe / recipe.max(), abs=0.01), name
    for (a, pa), (b, pb) in itertools.combinations(profiles.items(), 2):
        assert np.linalg.norm(pa - pb) >= 0.25, (a, b)


def test_timbre_picks_the_instrument_of_each_point():
    s = _series(30)
    samples, notes = mel.melody(s["pitch"], s["duration"], s["volume"], instrument_index=s["timbre"],
                                instruments=("sine", "clarinet", "strings"), rate_hz=RATE)
    for n in notes:
        assert n["instrument"] == ("sine", "clarinet", "strings")[s["timbre"][n["index"]]]
        profile = harmonic_profile(_body(samples, n), RATE, n["freq_hz"], 3)
        if n["instrument"] == "sine":
            assert profile[1] < 0.02 and profile[2] < 0.02
        elif n["instrument"] == "clarinet":  # odd harmonics only
            assert profile[1] < 0.05 and profile[2] == pytest.approx(0.6, abs=0.05)
        else:
            assert profile[1] == pytest.approx(0.5, abs=0.05)


# -- MIDI --------------------------------------------------------------------------------------

def _midi_notes(path) -> list[dict]:
    """Notes of a MIDI file: start (s), pitch (fractional MIDI with the bend), velocity, pan, track."""
    midi = mido.MidiFile(path)
    tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
    out = []
    for k, track in enumerate(midi.tracks[1:], start=1):
        tick, bend, pan = 0, 0, 64
        for m in track:
            tick += m.time
            if m.type == "pitchwheel":
                bend = m.pitch
            elif m.type == "control_change" and m.control == 10:
                pan = m.value
            elif m.type == "note_on" and m.velocity > 0:
                out.append({"start_s": mido.tick2second(tick, midi.ticks_per_beat, tempo),
                            "midi": m.note + 2 * bend / 8192, "velocity": m.velocity, "pan": pan, "track": k})
    return sorted(out, key=lambda n: n["start_s"])


def test_midi_notes_equal_the_wav_notes(tmp_path):
    s = _series(40)
    samples, notes = mel.melody(s["pitch"], s["duration"], s["volume"], scale="19-tet", rate_hz=RATE,
                                dur_range=(0.15, 0.4), pan_values=s["pan"], instrument_index=s["timbre"] % 2,
                                instruments=("sine", "flute"))
    path = write_midi(tmp_path / "m.mid", notes, {n: mel.INSTRUMENTS[n]["program"] for n in ("sine", "flute")})
    played = _midi_notes(path)
    assert len(played) == len(notes) and len(mido.MidiFile(path).tracks) == 3  # tempo + one per instrument
    onsets = note_onsets(samples, RATE)
    assert len(onsets) == len(notes)
    for m, wav_onset, note in zip(played, onsets, notes):
        assert abs(m["start_s"] - wav_onset) <= 0.010
        heard = 69 + 12 * math.log2(peak_hz(_body(samples, note), RATE) / 440.0)
        assert abs(m["midi"] - heard) * 100 <= 5.0
        assert m["velocity"] == max(1, round(127 * note["amplitude"]))
        assert m["pan"] == round((note["pan"] + 1) / 2 * 127)
    tracks = {m["track"] for m in played}
    assert tracks == {1, 2}


def test_melody_checks_its_dimensions():
    with pytest.raises(ValidationError, match="one value per data point"):
        mel.melody([1, 2], [1, 2], [1, 2], pan_values=[1, 2, 3])
    with pytest.raises(UnknownNameError, match="flute"):
        mel.melody([1], [1], [1], instruments=("kazoo",))
    with pytest.raises(UnknownNameError):
        mel.melody([1], [1], [1], maps={"colour": "log"})
    with pytest.raises(ValidationError, match="increasing"):
        mel.melody([1, 2], [1, 2], [1, 2], onsets_s=[1.0, 0.5])


def test_clock_onsets_place_the_notes_and_cut_overlaps():
    samples, notes = mel.melody([1, 2, 3], [10, 10, 10], [1, 1, 1], onsets_s=[0.0, 0.3, 5.0], rate_hz=RATE)
    assert [n["start_s"] for n in notes] == [0.0, 0.3, 5.0]
    assert notes[0]["duration_s"] == pytest.approx(0.3) and notes[2]["duration_s"] == pytest.approx(0.3)
    assert note_onsets(samples, RATE) == pytest.approx([0.0, 0.3, 5.0], abs=0.002)
    assert json.dumps(notes)  # plain data


# -- clock-true "night in a minute" ---------------------------------------------------------------

def _night_points():
    """Two nights of clips every 10 min (20:00-04:00), 6 h apart... and a clip without a time."""
    from fieldkit.listen.points import Points

    first = np.datetime64("2024-06-01T20:00") + np.arange(49) * np.timedelta64(10, "m")  # to 04:00
    second = np.datetime64("2024-06-02T10:00") + np.arange(13) * np.timedelta64(10, "m")  # 6 h later
    times = np.concatenate([first, second]).astype("datetime64[ns]")
    rng = np.random.default_rng(3)
    values = {"centroid": rng.uniform(1000, 5000, times.size), "rms": rng.uniform(0.01, 0.1, times.size)}
    return Points(times, np.ones(times.size, np.int64), values, {"site": np.array(["A"] * times.size)})


def test_night_onsets_follow_clock_time_and_a_6_h_gap_is_a_proportional_rest():
    from fieldkit.listen.night import ClockMap, clock_groups

    points = _night_points()
    clock = ClockMap(seconds_per_hour=7.5)
    grouped, onsets, info = clock_groups(points, clock)
    hours = (points.times - points.times[0]) / np.timedelta64(1, "h")
    night = slice(0, 49)
    r = np.corrcoef(hours[night], info["clip_onsets_s"][night])[0, 1]
    assert r >= 0.999
    assert np.abs(info["clip_onsets_s"] - 7.5 * hours).max() <= clock.slot_s  # within one slot
    samples, notes = mel.melody(grouped.values["centroid"], grouped.values["rms"], grouped.values["rms"],
                                onsets_s=onsets, rate_hz=RATE)
    heard = note_onsets(samples, RATE)
    assert heard == pytest.approx([n["start_s"] for n in notes], abs=0.003)
    # the rest between 04:00 and 10:00 lasts 6 h x 7.5 s, less the last note of the night
    last_night, first_morning = notes[48], notes[49]
    rest = first_morning["start_s"] - (last_night["start_s"] + last_night["duration_s"])
    assert first_morning["start_s"] - last_night["start_s"] == pytest.approx(6 * 7.5, abs=clock.slot_s)
    assert rest == pytest.approx(6 * 7.5 - last_night["duration_s"], abs=clock.slot_s)
    a, b = round((last_night["start_s"] + last_night["duration_s"]) * RATE), round(first_morning["start_s"] * RATE)
    assert np.abs(samples[a:b]).max() == 0.0  # silence


def test_a_long_gap_is_shortened_and_reported():
    from fieldkit.listen.night import ClockMap, clock_groups

    points = _night_points()
    _, onsets, info = clock_groups(points, ClockMap(seconds_per_hour=7.5, max_gap_h=2.0))
    (gap,) = info["compressed_gaps"]
    assert gap["hours"] == pytest.approx(6.0) and gap["played_as_h"] == 2.0
    assert onsets[49] - onsets[48] == pytest.approx(2 * 7.5, abs=0.5)
    assert [text for _, text in info["marks"]][:3] == ["21:00", "22:00", "23:00"]


def test_activity_count_can_drive_a_dimension():
    from fieldkit.listen.night import ClockMap, clock_groups
    from fieldkit.listen.points import Points
    from fieldkit.listen.sonify import SonifyOptions, melody_points

    # 1, 3 and 2 clips in three 4-minute slots (7.5 s per hour, 0.5 s slots)
    minutes = np.array([0, 8, 9, 10, 16, 17])
    times = (np.datetime64("2024-06-01T22:00") + minutes * np.timedelta64(1, "m")).astype("datetime64[ns]")
    points = Points(times, np.ones(6, np.int64), {"centroid": np.arange(6.0)}, {"site": np.array(["A"] * 6)})
    grouped, onsets, _ = clock_groups(points, ClockMap())
    assert grouped.clips.tolist() == [1, 3, 2] and onsets.tolist() == [0.0, 1.0, 2.0]
    opt = SonifyOptions(pitch="centroid", duration="centroid", volume="count", pan="count", timbre="site")
    _, notes, legend = melody_points(grouped, opt, onsets_s=onsets)
    assert [n["amplitude"] for n in notes] == pytest.approx([0.1, 0.8, 0.45])  # the busiest slot is loudest
    assert legend["dimensions"]["volume"] == {"feature": "count", "reverse": False, "to": "0.1-0.8 peak",
                                              "kind": "feature", "unit": "clips", "map": "linear", "range": [1.0, 3.0]}
