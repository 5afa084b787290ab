"""Sonified previews: time expansion, heterodyne, loudness, melody, WAV+GUANO, PNGs, MP4.

Acceptance checks of the preview issue, on real files: real bat recordings from shared/data
(skipped when absent), synthetic signals with known answers, and the files the writers
produce, read back with independent readers (soundfile, the RIFF walker, the GUANO parser,
matplotlib's PNG reader, the bundled ffmpeg).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import matplotlib.image
import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.dsp import listening as preview
from fieldkit.dsp import melody as sonify
from fieldkit.errors import ConfigError, UnknownNameError, ValidationError
from fieldkit.io.audio.ffmpeg import parse_ffmpeg_info, video_codec
from fieldkit.io.recorders.guano import parse_guano
from fieldkit.io.render import media
from fieldkit.io.riff.chunks import read_chunk_body, walk_riff_path
from fieldkit.testing.signals import chirp, peak_hz, tone, white_noise

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Real ultrasonic recordings: (path under shared/data, expansion factor or None = default).
BAT_RECORDINGS = (
    ("batdetect2/20170701_213954-MYOMYS-LR_0_0.5.wav", None),  # 500 kHz, Myotis mystacinus
    ("birdnet-analyzer/ANPA-103486.wav", 10),  # 256 kHz Song Meter Mini Bat
)


def shared_file(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not available under {SHARED_DATA}")
    return path


def dominant_hz(x: np.ndarray, rate_hz: float) -> float:
    """Frequency of the largest FFT magnitude (Hann window, DC excluded)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(x.size, 1.0 / rate_hz)[np.argmax(spectrum)])


def lufs(x: np.ndarray, rate_hz: float) -> float:
    return float(pyloudnorm.Meter(int(rate_hz)).integrated_loudness(np.asarray(x, np.float64)))


# -- time expansion -------------------------------------------------------------------------

@pytest.mark.parametrize(("relative", "factor"), BAT_RECORDINGS)
def test_time_expansion_of_a_real_bat_recording(tmp_path, relative, factor):
    samples, rate = sf.read(shared_file(relative), dtype="float32")
    factor = factor or preview.default_expansion_factor(rate)
    original_hz = dominant_hz(samples, rate)
    assert original_hz > 20_000  # really ultrasonic
    expanded, out_rate = preview.time_expand(samples, rate, factor)
    path = media.write_wav(tmp_path / "te.wav", expanded, out_rate,
                           guano={"TE": factor, "Samplerate": rate})
    back, back_rate = sf.read(path, dtype="float32")
    assert back.size / back_rate == pytest.approx(factor * samples.size / rate, rel=1e-6)
    bin_hz = back_rate / back.size
    assert abs(dominant_hz(back, back_rate) - original_hz / factor) <= bin_hz
    assert parse_guano(_guan_body(path)).typed["time_expansion"] == factor


def test_time_expand_keeps_the_samples_and_divides_the_rate():
    x = chirp(30_000, 60_000, 0.01, 250_000)
    y, rate = preview.time_expand(x, 250_000, 10)
    assert rate == 25_000 and np.array_equal(y, x) and y is not x


@pytest.mark.parametrize(
    ("rate", "dominant", "factor"),
    [(250_000, None, 10), (256_000, None, 10), (312_500, None, 10), (384_000, None, 10),
     (500_000, None, 20), (96_000, None, 2), (48_000, None, 1), (44_100, None, 1),
     (192_000, 45_000, 5), (96_000, 40_000, 5)],
)
def test_default_expansion_factor_is_audible(rate, dominant, factor):
    got = preview.default_expansion_factor(rate, dominant)
    assert got == factor
    assert rate / got <= preview.MAX_PLAYBACK_RATE_HZ
    assert dominant is None or dominant / got <= preview.AUDIBLE_DOMINANT_HZ


@pytest.mark.parametrize("factor", [0, 2.5, -3, True])
def test_time_expand_rejects_a_bad_factor(factor):
    with pytest.raises(ConfigError, match="factor"):
        preview.time_expand(np.zeros(10, np.float32), 250_000, factor)


# -- heterodyne ---------------------------------------------------------------------------

def test_heterodyne_of_a_45_khz_tone_with_a_40_khz_carrier_is_heard_at_5_khz():
    y, rate = preview.heterodyne(tone(45_000, 0.5, 192_000), 192_000, 40_000, cutoff_hz=8_000)
    assert rate == 48_000
    assert y.size == pytest.approx(0.5 * 48_000, abs=2)
    assert abs(dominant_hz(y, rate) - 5_000) <= 100
    # the difference tone keeps the input amplitude (0.5); the sum (85 kHz) is gone
    assert np.sqrt(2 * np.mean(y[2_000:-2_000] ** 2)) == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("relative", [r for r, _ in BAT_RECORDINGS])
def test_heterodyne_of_a_real_recording_folds_the_band_around_the_carrier(relative):
    samples, rate = sf.read(shared_file(relative), dtype="float32")
    carrier = dominant_hz(samples, rate) - 5_000
    y, out_rate = preview.heterodyne(samples, rate, carrier)
    assert y.size / out_rate == pytest.approx(samples.size / rate, abs=1e-3)
    # a mixer sends both carrier + d and carrier - d to d: predict the output spectrum
    # from the input's (Welch, 250 Hz bins) and compare where the peaks are
    f_in, p_in = scipy.signal.welch(samples, rate, nperseg=int(rate // 250))
    f_out, p_out = scipy.signal.welch(y, out_rate, nperseg=out_rate // 250)
    band = (f_out >= 500) & (f_out <= 12_000)
    predicted = np.interp(carrier + f_out, f_in, p_in) + np.interp(carrier - f_out, f_in, p_in)
    assert abs(f_out[band][np.argmax(predicted[band])] - f_out[band][np.argmax(p_out[band])]) <= 500
    assert p_out[f_out > 20_000].sum() < 1e-3 * p_out.sum()  # low-passed at 15 kHz


def test_heterodyne_rejects_a_carrier_above_nyquist():
    with pytest.raises(ConfigError, match="Nyquist"):
        preview.heterodyne(np.zeros(100, np.float32), 48_000, 30_000)


# -- loudness ------------------------------------------------------------------------------

def _loud_inputs() -> dict[str, tuple[np.ndarray, int]]:
    rate = 48_000
    clicks = white_noise(2.0, rate, rms=0.01)
    clicks[:: rate // 10] = 0.9  # clicks over a quiet floor: the target needs peaks >> 1
    return {
        "quiet tone": (tone(1_000, 2.0, rate, amplitude=0.01), rate),
        "over full scale": (tone(440, 2.0, rate, amplitude=3.0), rate),
        "noise": (white_noise(2.0, rate, rms=0.05), rate),
        "clicks over noise": (clicks, rate),
        "stereo": (np.stack([tone(300, 1.0, rate, 0.05), tone(500, 1.0, rate, 0.02)]), rate),
    }


@pytest.mark.parametrize("name", list(_loud_inputs()))
@pytest.mark.parametrize("target", [-23.0, -14.0])
def test_loudness_normalised_clip_meets_the_target_and_never_clips(name, target):
    x, rate = _loud_inputs()[name]
    y, info = preview.loudness_normalise(x, rate, target_lufs=target, peak_dbfs=-1.0)
    measured = lufs(y.T if y.ndim == 2 else y, rate)
    assert abs(measured - target) <= 0.5
    assert np.max(np.abs(y)) <= 10 ** (-1.0 / 20) + 1e-6 <= 1.0
    assert preview.true_peak(y) <= 10 ** (-1.0 / 20) + 1e-6
    assert info["method"] == "bs1770" and info["target_lufs"] == target
    assert info["measured_lufs"] == pytest.approx(lufs(x.T if x.ndim == 2 else x, rate), abs=1e-6)
    assert y.shape == x.shape and y.dtype == np.float32


def test_a_clip_that_would_clip_is_limited_not_clipped():
    rate = 48_000
    clicks = _loud_inputs()["clicks over noise"][0]
    y, info = preview.loudness_normalise(clicks, rate, target_lufs=-14.0)
    plain_gain_peak_dbfs = 20 * math.log10(0.9) + info["gain_db"]
    assert info["limited"] and plain_gain_peak_dbfs > 15  # gain alone: peaks at +17 dBFS
    assert abs(lufs(y, rate) + 14.0) <= 0.5 and np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-6
    assert info["true_peak_dbfs"] <= -1.0 + 1e-9 and "note" not in info


def test_a_real_bat_call_is_limited_to_reach_the_target():
    samples, rate = sf.read(shared_file(BAT_RECORDINGS[0][0]), dtype="float32")
    y, info = preview.loudness_normalise(samples, rate, target_lufs=-23.0)
    assert info["limited"] and abs(lufs(y, rate) + 23.0) <= 0.5
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-6


def test_isolated_clicks_cannot_reach_the_target_and_say_so():
    clicks = np.zeros(96_000, np.float32)
    clicks[::4_800] = 0.9  # one-sample clicks: limiting holds each at the ceiling
    y, info = preview.loudness_normalise(clicks, 48_000, target_lufs=-14.0)
    assert "not reachable" in info["note"] and info["output_lufs"] < -20
    assert info["output_lufs"] == pytest.approx(lufs(y, 48_000), abs=0.1)
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-6


def test_real_recording_excerpt_is_normalised():
    samples, rate = sf.read(shared_file("birdnet-analyzer/soundscape.wav"), dtype="float32")
    excerpt = samples[: 5 * rate] if samples.ndim == 1 else samples[: 5 * rate].T
    y, _ = preview.loudness_normalise(excerpt, rate, target_lufs=-16.0)
    assert abs(lufs(y.T if y.ndim == 2 else y, rate) - (-16.0)) <= 0.5
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-6


def test_a_clip_shorter_than_the_bs1770_block_falls_back_to_rms():
    x = tone(1_000, 0.2, 48_000, amplitude=0.05)
    y, info = preview.loudness_normalise(x, 48_000, target_lufs=-20.0)
    assert info["method"] == "rms" and "0.4 s" in info["note"]
    rms_lufs = -0.691 + 10 * math.log10(np.mean(y.astype(np.float64) ** 2))
    assert rms_lufs == pytest.approx(-20.0, abs=0.1)


def test_silence_is_returned_unchanged():
    y, info = preview.loudness_normalise(np.zeros(48_000, np.float32), 48_000)
    assert info["method"] == "silent" and not np.any(y)


# -- sonification -------------------------------------------------------------------------

def _features(points: int = 40, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pitch = np.cumsum(rng.standard_normal(points))  # a random walk, like a feature over time
    duration = rng.uniform(0, 10, points)
    volume = rng.gamma(2.0, 1.0, points)
    pitch[7 % points], volume[19 % points], duration[23 % points] = np.nan, np.nan, np.nan
    return pitch, duration, volume


@pytest.mark.parametrize("scale", list(sonify.SCALES))
def test_every_note_is_on_the_scale_and_follows_the_features(scale):
    pitch, duration, volume = _features()
    rate = 22_050
    samples, notes = sonify.melody(pitch, duration, volume, scale=scale, rate_hz=rate)
    assert [n["index"] for n in notes] == [i for i in range(40) if i not in (7, 19, 23)]
    expected_dur = sonify.rescale(duration, 0.1, 0.5)
    expected_amp = sonify.rescale(volume, 0.1, 0.8)
    pitch_classes = set(sonify.SCALES[scale])
    for note in notes:
        i = note["index"]
        assert note["duration_s"] == expected_dur[i] and 0.1 <= note["duration_s"] <= 0.5
        assert note["amplitude"] == expected_amp[i] and 0.1 <= note["amplitude"] <= 0.8
        a = round(note["start_s"] * rate)
        b = round((note["start_s"] + note["duration_s"]) * rate)
        body = samples[a + round(0.01 * rate) : b - round(0.01 * rate)]  # without the fades
        semitones = 12 * math.log2(peak_hz(body, rate) / 220.0)
        assert abs(semitones - round(semitones)) * 100 <= 5  # cents
        assert round(semitones) % 12 in pitch_classes
        assert peak_hz(body, rate) == pytest.approx(note["freq_hz"], rel=0.003)
        assert math.sqrt(2 * np.mean(body.astype(np.float64) ** 2)) == pytest.approx(
            note["amplitude"], rel=0.01)
    assert samples.size == round(np.nansum(np.where(np.isnan(duration), 0.1, expected_dur)) * rate)
    assert np.max(np.abs(samples)) <= 0.8 + 1e-6


def test_pitch_extremes_get_the_lowest_and_highest_notes():
    pitch, duration, volume = _features()
    _, notes = sonify.melody(pitch, duration, volume)  # pentatonic, 3 octaves: 15 notes
    by_index = {n["index"]: n for n in notes}
    assert by_index[int(np.nanargmin(pitch))]["freq_hz"] == pytest.approx(220.0)
    assert by_index[int(np.nanargmax(pitch))]["freq_hz"] == pytest.approx(220.0 * 2 ** (33 / 12))


def test_notes_have_short_fades_so_joins_do_not_click():
    samples, notes = sonify.melody([1, 5, 2], [1, 1, 1], [1, 1, 1], rate_hz=22_050)
    for note in notes:
        a = round(note["start_s"] * 22_050)
        assert abs(samples[a]) < 0.01 and abs(samples[a + round(note["duration_s"] * 22_050) - 1]) < 0.01


def test_scale_frequencies_span_several_octaves():
    freqs = sonify.scale_frequencies("pentatonic", 11, base_hz=220.0)
    semis = np.round(12 * np.log2(freqs / 220.0)).astype(int).tolist()
    assert semis == [0, 2, 4, 7, 9, 12, 14, 16, 19, 21, 24]
    with pytest.raises(UnknownNameError, match="chromatic, granville, harmonic-minor, major, minor, pentatonic"):
        sonify.scale_frequencies("dorian", 5)


def test_binning_and_rescaling():
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, np.nan])
    assert sonify.bin_to_scale(values, 5).tolist() == [0, 1, 2, 3, 4, -1]
    assert sonify.bin_to_scale([0, 0, 0, 100], 4, "quantile").tolist() == [0, 1, 2, 3]
    assert sonify.bin_to_scale([3, 3, 3], 5).tolist() == [2, 2, 2]
    assert sonify.rescale([2, 2], 0.1, 0.5).tolist() == pytest.approx([0.3, 0.3])
    assert sonify.rescale([0, 5, 10], 0.1, 0.5).tolist() == pytest.approx([0.1, 0.3, 0.5])


def test_melody_rejects_series_of_different_lengths():
    with pytest.raises(ValidationError, match="one value per data point"):
        sonify.melody([1, 2, 3], [1, 2], [1, 2, 3])


# -- WAV and GUANO -------------------------------------------------------------------------

def _guan_body(path: Path) -> bytes:
    layout = walk_riff_path(str(path))
    assert not layout.issues, layout.issues
    (chunk,) = [c for c in layout.chunks if c.chunk_id == "guan"]
    with open(path, "rb") as f:
        return read_chunk_body(f, chunk)


def test_wav_with_guano_round_trips(tmp_path):
    x = chirp(2_000, 8_000, 0.5, 31_250)
    fields = {"TE": 10, "Samplerate": 312_500, "Length": 0.05,
              "Timestamp": datetime(2024, 5, 31, 22, 39, 11), "Note": "line one\nline two",
              "fieldkit|Preview": "time expansion"}
    path = media.write_wav(tmp_path / "te.wav", x, 31_250, guano=fields)
    body = _guan_body(path)
    assert body.startswith(b"GUANO|Version:1.0\n") and len(body) % 2 == 0
    guano = parse_guano(body)
    assert guano.fields["TE"] == "10" and guano.fields["Samplerate"] == "312500"
    assert guano.typed["time_expansion"] == 10 and guano.typed["samplerate_hz"] == 312_500
    assert guano.typed["timestamp"] == datetime(2024, 5, 31, 22, 39, 11)
    assert guano.fields["fieldkit|Preview"] == "time expansion" and not guano.warnings
    back, rate = sf.read(path, dtype="float32")
    assert rate == 31_250 and back.size == x.size
    assert np.max(np.abs(back - x)) <= 2 / 32_768  # 16-bit with TPDF dither


def test_float_wav_without_guano(tmp_path):
    x = np.stack([tone(440, 0.1, 8_000), tone(660, 0.1, 8_000)])
    path = media.write_wav(tmp_path / "f.wav", x, 8_000, subtype="FLOAT")
    back, _ = sf.read(path, dtype="float32")
    assert np.array_equal(back.T, x)
    assert "guan" not in [c.chunk_id for c in walk_riff_path(str(path)).chunks]


def test_pcm_wav_refuses_samples_that_would_clip(tmp_path):
    with pytest.raises(ValidationError, match="would clip"):
        media.write_wav(tmp_path / "x.wav", np.full(10, 1.5, np.float32), 8_000)


_KEY = st.text(st.characters(codec="utf-8", exclude_characters=":\n\r|",
                             exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
               min_size=1, max_size=12)
_VALUE = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                 max_size=30).map(str.strip)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_KEY.filter(lambda k: k != "GUANO|Version"), _VALUE, max_size=6))
def test_guano_text_round_trips_through_the_parser(fields):
    parsed = parse_guano(media.guano_text(fields).encode("utf-8"))
    assert parsed.fields == {"GUANO|Version": "1.0", **fields}


def test_guano_keys_with_a_colon_are_refused():
    with pytest.raises(ValidationError, match="key"):
        media.guano_text({"a:b": 1})


# -- pictures and video ---------------------------------------------------------------------

def test_pngs_are_valid(tmp_path):
    x = chirp(20_000, 80_000, 0.05, 250_000)
    spec = media.spectrogram_png(tmp_path / "s.png", x, 250_000, "chirp", fmax_hz=100_000)
    pitch, duration, volume = _features()
    samples, notes = sonify.melody(pitch, duration, volume)
    starts = np.interp(np.arange(40), [n["index"] for n in notes], [n["start_s"] for n in notes])
    series = media.series_plot_png(tmp_path / "f.png", starts, [("pitch ← a (Hz)", pitch), ("duration ← b", duration),
                                                                ("volume ← c", volume)], notes, "features",
                                   legend_lines=["pitch: a → 15 notes"], marks=[(1.0, "22:00")])
    times = np.datetime64("2024-05-31T21:00") + np.arange(40) * np.timedelta64(15, "m")
    timeline = media.timeline_png(tmp_path / "t.png", times[::-1], np.arange(40.0), "night")
    for path, shape in ((spec, (500, 1000, 4)), (series, (1004, 1100, 4)),
                        (timeline, (400, 1000, 4))):
        image = matplotlib.image.imread(path)
        assert image.shape == shape and image.std() > 0


def test_spectrogram_video_has_a_video_and_an_audio_stream(tmp_path):
    pitch, duration, volume = _features(points=12)
    samples, _ = sonify.melody(pitch, duration, volume, rate_hz=22_050)
    audio = media.write_wav(tmp_path / "melody.wav", samples, 22_050)
    mp4 = media.spectrogram_video(tmp_path / "melody.mp4", samples, 22_050, audio, fps=10)
    probe = media.probe_media(mp4)
    (video,), (sound,) = probe.of_kind("video"), probe.of_kind("audio")
    assert video.codec == {"libx264": "h264"}.get(video_codec(), "mpeg4") and (video.width, video.height) == (960, 540)
    assert sound.codec == "aac"
    assert abs(probe.duration_s - samples.size / 22_050) <= 0.2


def test_video_of_a_time_expanded_preview_lasts_as_long_as_its_audio(tmp_path):
    x = chirp(30_000, 60_000, 0.2, 250_000)
    y, rate = preview.time_expand(x, 250_000, 10)
    audio = media.write_wav(tmp_path / "te.wav", y, rate, guano={"TE": 10})
    mp4 = media.spectrogram_video(tmp_path / "te.mp4", x, 250_000, audio, fps=10)
    assert abs(media.probe_media(mp4).duration_s - 2.0) <= 0.2


def test_probe_parses_ffmpeg_text():
    text = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':\n"
        "  Duration: 00:01:02.50, start: 0.000000, bitrate: 183 kb/s\n"
        "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive),"
        " 960x540, 50 kb/s, 10 fps, 10 tbr, 10240 tbn (default)\n"
        "  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, mono, fltp,"
        " 69 kb/s (default)\n"
    )
    probe = parse_ffmpeg_info(text)
    assert probe.duration_s == 62.5
    assert [(s.kind, s.codec) for s in probe.streams] == [("video", "h264"), ("audio", "aac")]
    assert probe.streams[0].fps == 10 and probe.streams[1].sample_rate_hz == 48_000
    assert probe.streams[1].channel_layout == "mono"


def test_probe_refuses_a_file_ffmpeg_cannot_read(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValidationError, match="ffmpeg cannot read"):
        media.probe_media(bad)
