"""Pictures a scientist trusts: window from the sample rate, dB re full scale, 80 dB range,
max-pooled columns (a short call never vanishes), labelled axes; checked on known signals and
on the drawn PNG itself."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import soundfile as sf

from fieldkit.dsp.spectrogram_view import max_pool, spectrogram_dbfs, view_for_rate
from fieldkit.io.render import media
from fieldkit.testing.signals import tone, white_noise

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.parametrize(("rate", "window"), [(16_000, 256), (22_050, 512), (48_000, 1024), (192_000, 256),
                                              (312_500, 256), (500_000, 512)])
def test_window_follows_the_sample_rate(rate, window):
    view = view_for_rate(rate)
    assert view.n_window == window and view.hop == window // 4 and view.range_db == 80.0
    seconds = window / rate
    assert (0.010 <= seconds <= 0.030) if rate < 96_000 else (0.0005 <= seconds <= 0.0017)


def test_a_full_scale_sine_reads_0_db_re_full_scale():
    rate = 48_000
    view = view_for_rate(rate)
    freq = 100 * rate / view.n_window  # on a bin
    _, _, db = spectrogram_dbfs(tone(freq, 1.0, rate, amplitude=1.0), rate, view)
    assert db.max() == pytest.approx(0.0, abs=0.05)
    _, _, quiet = spectrogram_dbfs(tone(freq, 1.0, rate, amplitude=0.1), rate, view)
    assert quiet.max() == pytest.approx(-20.0, abs=0.05)
    assert quiet.min() == pytest.approx(quiet.max() - 80.0)  # the 80 dB range


def test_max_pooling_keeps_a_short_call_that_nearest_neighbour_drops():
    rate = 312_500
    x = white_noise(4.0, rate, rms=0.001, seed=2)
    a = round(2.0005 * rate)
    x[a: a + round(0.002 * rate)] += tone(45_000, 0.002, rate, amplitude=0.3)
    view = view_for_rate(rate)
    _, _, db = spectrogram_dbfs(x, rate, view)
    pooled = max_pool(db, 400, 730)
    assert pooled.shape[1] <= 730 and pooled.shape[0] <= 400
    assert pooled.max() == db.max()  # the call's cell survives
    step = db.shape[1] / 730
    nearest = db[:, np.floor(np.arange(730) * step).astype(int)]
    assert nearest.max() < db.max() - 10  # the call lies between the columns nearest-neighbour keeps


def test_spectrogram_png_shows_the_call_in_khz_and_the_te_factor(tmp_path):
    rate = 312_500
    x = white_noise(4.0, rate, rms=0.001, seed=2)
    a = round(2.0005 * rate)
    x[a: a + round(0.002 * rate)] += tone(45_000, 0.002, rate, amplitude=0.3)
    fig = media._figure((1000, 500))
    ax = media._draw_spectrogram(fig, x, rate, "bat", None, te_factor=10)
    assert ax.get_ylabel() == "Frequency (kHz)" and "time-expanded ×10" in ax.get_xlabel()
    assert ax.get_ylim() == pytest.approx((0, 156.25))
    colourbar = fig.axes[1]
    assert colourbar.get_ylabel() == "Level (dB re full scale)"
    image = ax.get_images()[0].get_array()
    rows, cols = image.shape
    assert cols <= 1000
    hot = np.unravel_index(np.argmax(image), image.shape)
    assert hot[0] / rows * 156.25 == pytest.approx(45, abs=156.25 / rows + 1)  # the call at 45 kHz
    assert hot[1] / cols * 4.0 == pytest.approx(2.0, abs=0.02)  # at 2 s
    path = media.spectrogram_png(tmp_path / "s.png", x, rate, "bat", te_factor=10)
    assert matplotlib.image.imread(path).shape == (500, 1000, 4)


def test_real_bat_spectrogram(tmp_path):
    wav = SHARED_DATA / "batdetect2" / "0166_20240531_223911.wav"
    if not wav.is_file():
        pytest.skip("../shared/data is not present")
    x, rate = sf.read(wav, dtype="float32")
    view = view_for_rate(rate)
    assert 1000 * view.n_window / rate < 1.0  # 256 points: 0.82 ms, not 1024 (3.3 ms)
    path = media.spectrogram_png(tmp_path / "bat.png", x, rate, wav.name, te_factor=10)
    assert matplotlib.image.imread(path).std() > 0


def test_series_video_sweeps_a_cursor_over_the_series_in_step_with_the_melody(tmp_path):
    import subprocess

    from fieldkit.dsp import melody as mel
    from fieldkit.io.audio.ffmpeg import ffmpeg_exe

    rng = np.random.default_rng(1)
    p, d, v = rng.normal(size=30), rng.uniform(size=30), rng.uniform(size=30)
    samples, notes = mel.melody(p, d, v, pan_values=v)
    wav = media.write_wav(tmp_path / "m.wav", samples, 22_050)
    mp4 = media.series_video(tmp_path / "m.mp4", [n["start_s"] for n in notes], [("a", p), ("b", d), ("c", v)],
                             notes, "melody", wav, legend_lines=["pitch: a"])
    probe = media.probe_media(mp4)
    (video,) = probe.of_kind("video")
    assert probe.duration_s == pytest.approx(samples.shape[-1] / 22_050, abs=0.2)

    def frame(t: float) -> np.ndarray:
        raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-ss", str(t), "-i", str(mp4), "-frames:v", "1",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(video.height, video.width, 3).astype(int)

    fig = media._figure((1280, 720))
    axes = media._draw_series(fig, [n["start_s"] for n in notes], [("a", p), ("b", d), ("c", v)], notes, "melody",
                              ["pitch: a"], None, end_s=samples.shape[-1] / 22_050)
    _, (x0, x1, _, _) = media._rgb_and_cursor(fig, axes[0], axes[-1])
    red = [np.flatnonzero(((f[:, :, 0] > 150) & (f[:, :, 1] < 100) & (f[:, :, 2] < 100)).sum(axis=0) > 300)
           for f in (frame(1.0), frame(3.0))]
    for t, columns in zip((1.0, 3.0), red):
        assert columns.size and abs(columns.mean() - (x0 + (x1 - x0) * t * 22_050 / samples.shape[-1])) <= 6
