"""Bat listening: heterodyne tuned below the call, frequency division, high-pass before time
expansion, call-centred excerpts, and the manipulations (reverse, speed, pitch shift, echo).

Known answers on synthetic tones; the call detector checked on real bat recordings of
../shared/data (skipped when absent) against the calls batdetect2's authors annotated and by
the energy of the excerpts it centres.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fieldkit.catalogue.records import RecordingRow
from fieldkit.dsp import listening as kernels
from fieldkit.dsp import manipulate
from fieldkit.dsp.pitch_shift import pitch_shift
from fieldkit.dsp.call_energy import CallDetectorParams, band_energy_db, call_window, detect_calls
from fieldkit.errors import ConfigError
from fieldkit.listen.preview import CALL_EXCERPT_S, Excerpt, PreviewOptions, default_carrier_hz, render_preview
from fieldkit.testing.signals import peak_hz, tone, white_noise

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BATS = ("batdetect2/0166_20240531_223911.wav", "batdetect2/20170701_213954-MYOMYS-LR_0_0.5.wav",
        "birdnet-analyzer/ANPA-103486.wav", "batdetect2/Echometer.wav")
RATE = 192_000


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not available under {SHARED_DATA}")
    return path


def _call(freq_hz: float = 45_000, rate: float = RATE, at_s: float = 0.6, seconds: float = 1.0) -> np.ndarray:
    """Noise with one 5 ms call at ``at_s`` and low-frequency hum stronger than the call."""
    x = white_noise(seconds, rate, rms=0.002, seed=1) + tone(300, seconds, rate, amplitude=0.5)
    a = round(at_s * rate)
    x[a: a + round(0.005 * rate)] += tone(freq_hz, 0.005, rate, amplitude=0.2) * np.hanning(round(0.005 * rate))
    return x.astype(np.float32)


def _excerpt(x: np.ndarray, rate: float) -> Excerpt:
    """An excerpt of a synthetic recording, with the catalogue record such a file would have."""
    fields = {f.name: None for f in dataclasses.fields(RecordingRow)}
    fields.update(id=1, sha256="0" * 64, size_bytes=2 * x.size + 44, archive_path="card/call.wav", source_paths=(),
                  status="ok", format="wav", sample_rate_hz=int(rate), channels=1, bit_depth=16, subtype="PCM_16",
                  frames_declared=x.size, frames_present=x.size, duration_s=x.size / rate, times={}, metadata={})
    return Excerpt(RecordingRow(**fields), x[None, :], rate, 0.0)


# -- heterodyne and frequency division -----------------------------------------------------------

@pytest.mark.parametrize("freq", [45_000, 40_300, 80_000])
def test_heterodyne_with_the_default_offset_lands_a_call_at_a_few_khz(freq):
    x = _call(freq)
    start, call, _ = call_window(x, RATE, 0.05)
    assert call is not None and abs(call.peak_hz - freq) < 300  # the hum is louder but below the band
    carrier = default_carrier_hz(_excerpt(x, RATE), call)
    y, rate = kernels.heterodyne(x[round(start * RATE): round((start + 0.05) * RATE)], RATE, carrier)
    heard = peak_hz(y, rate)
    assert 2_000 <= heard <= 6_000, (carrier, heard)


def test_heterodyne_band_is_narrow():
    # 45 kHz carrier: a 49 kHz tone (4 kHz away) passes, a 57 kHz one (12 kHz away) does not
    x = tone(49_000, 0.5, RATE, 0.3) + tone(57_000, 0.5, RATE, 0.3)
    y, rate = kernels.heterodyne(x, RATE, 45_000)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    f = np.fft.rfftfreq(y.size, 1 / rate)
    near = lambda hz: spectrum[np.abs(f - hz) < 100].max()  # noqa: E731
    assert 20 * np.log10(near(4_000) / near(12_000)) > 40


def test_frequency_division_by_ten_maps_45_khz_to_4_5_khz():
    y, rate = kernels.frequency_divide(tone(45_000, 0.5, RATE, 0.3), RATE, 10)
    assert rate == 48_000 and y.size == pytest.approx(0.5 * 48_000, abs=2)
    assert peak_hz(y, rate) == pytest.approx(4_500, abs=5)
    y8, _ = kernels.frequency_divide(tone(60_000, 0.5, RATE, 0.3), RATE, 8)
    assert peak_hz(y8, 48_000) == pytest.approx(7_500, abs=5)
    with pytest.raises(ConfigError, match="divisor"):
        kernels.frequency_divide(tone(45_000, 0.1, RATE), RATE, 1)


def test_frequency_division_keeps_the_call_envelope():
    x = _call(45_000)
    y, rate = kernels.frequency_divide(x, RATE, 10)
    env = np.abs(y)
    at = round(0.6025 * rate)
    assert env[at - 200: at + 200].max() > 20 * np.median(env)  # the call stands out of the noise


def test_time_expansion_is_high_passed_first(tmp_path):
    x = _call(45_000)
    tmp = tmp_path
    doc = render_preview(_excerpt(x, RATE), "time-expansion", tmp, PreviewOptions(factor=10))
    assert doc["highpass_hz"] == 8_000.0
    y, rate = sf.read(doc["wav"])
    assert rate == 19_200 and peak_hz(y, rate) == pytest.approx(4_500, abs=20)  # not the 30 Hz hum
    raw = render_preview(_excerpt(x, RATE), "time-expansion", tmp, PreviewOptions(factor=10, highpass_hz=0))
    assert peak_hz(sf.read(raw["wav"])[0], rate) == pytest.approx(30, abs=2)


# -- call-centred previews on real bat recordings -----------------------------------------------

@pytest.mark.parametrize("relative", BATS)
def test_call_centred_excerpt_contains_the_loudest_call(relative):
    x, rate = sf.read(shared(relative), dtype="float32")
    params = CallDetectorParams()
    start, call, count = call_window(x, rate, CALL_EXCERPT_S, params)
    assert call is not None and count >= 1
    times, db = band_energy_db(x, rate, params)
    inside = (times >= start) & (times + params.frame_s <= start + CALL_EXCERPT_S)
    assert db[inside].max() >= db.max() - 0.5  # the loudest band frame of the file is in the excerpt
    assert db[inside].max() >= np.median(db) + params.threshold_db
    assert start <= call.peak_s <= start + CALL_EXCERPT_S


def test_detected_calls_are_annotated_calls():
    wav = shared("batdetect2/20170701_213954-MYOMYS-LR_0_0.5.wav")
    annotated = json.loads(wav.with_name(wav.name + ".json").read_text())["annotation"]
    x, rate = sf.read(wav, dtype="float32")
    events = detect_calls(x, rate)
    assert len(events) >= 8
    hits = [any(e.start_s <= a["end_time"] + 0.002 and a["start_time"] - 0.002 <= e.end_s for a in annotated)
            for e in events]
    assert sum(hits) / len(hits) >= 0.9
    assert all(25_000 <= e.peak_hz <= 115_000 for e in events)


def test_a_silent_recording_has_no_call():
    x, rate = sf.read(shared("batdetect2/AudiomothNoBatCalls.WAV"), dtype="float32")
    assert detect_calls(x, rate) == []
    assert call_window(x, rate, 0.05) == (0.0, None, 0)


# -- manipulations --------------------------------------------------------------------------------

def test_reverse_speed_pitch_shift_and_echo():
    rate = 22_050
    x = tone(440, 1.0, rate, 0.5)
    assert np.array_equal(manipulate.reverse(x), x[::-1])
    fast = manipulate.speed(x, rate, 2.0)
    assert fast.size == pytest.approx(x.size / 2, abs=2) and peak_hz(fast, rate) == pytest.approx(880, abs=1)
    slow = manipulate.speed(x, rate, 0.5)
    assert slow.size == pytest.approx(2 * x.size, abs=2) and peak_hz(slow, rate) == pytest.approx(220, abs=1)
    up = pitch_shift(x, rate, 12)
    assert up.size == x.size and peak_hz(up[2000:-2000], rate) == pytest.approx(880, rel=0.01)
    impulse = np.zeros(rate, np.float32)
    impulse[0] = 1.0
    y = manipulate.echo(impulse, rate, 0.25, 0.5)
    peaks = np.flatnonzero(np.abs(y) > 1e-4)
    d = round(0.25 * rate)
    assert peaks[:4].tolist() == [0, d, 2 * d, 3 * d]
    assert y[peaks[1]] == pytest.approx(0.5) and y[peaks[2]] == pytest.approx(0.25)
    assert y.size > impulse.size  # the tail of the echoes is kept


def test_manipulations_apply_to_a_preview(tmp_path):
    x = _call(45_000)
    m = manipulate.Manipulations(reverse=True, speed=2.0)
    doc = render_preview(_excerpt(x, RATE), "time-expansion", tmp_path, PreviewOptions(factor=10, manipulations=m))
    assert doc["manipulations"]["speed"] == 2.0
    y, rate = sf.read(doc["wav"])
    assert y.size == pytest.approx(RATE * 1.0 / 2, abs=4)  # 1 s x 10 (expansion) / 2 (speed), at 19.2 kHz
    assert peak_hz(y, rate) == pytest.approx(9_000, abs=40)
