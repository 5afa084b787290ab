"""``fieldkit preview | sonify | video | report`` on a real, processed workspace.

The workspace: the pipeline tests' card (AudioMoth tones, real recordings, files with known
clipping) plus the broken files of the ingest tests, ingested and processed once on a real
LocalCluster, labelled and split into a dataset; then an "ultrasonic" card: a synthetic 45 kHz
tone at 192 kHz (known answers) and, when ../shared/data is present, a real 312.5 kHz bat
recording. Outputs are read back with independent readers (soundfile, pyloudnorm, the RIFF
walker and GUANO parser, matplotlib's PNG reader, ffmpeg) and the report is opened in headless
Chromium (Debian's, driven by Playwright; skipped only when it is not installed).
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import soundfile as sf
from typer.testing import CliRunner

from fieldkit.catalogue.queries import list_recordings
from fieldkit.cli import app
from fieldkit.config.workflow import Workflow
from fieldkit.curate.annotations import import_labels_from_names
from fieldkit.curate.datasets import DatasetRequest, create_dataset
from fieldkit.dsp.melody import SCALES
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.io.recorders.guano import parse_guano
from fieldkit.io.render.media import probe_media
from fieldkit.io.riff.chunks import read_chunk_body, walk_riff_path
from fieldkit.listen.preview import PEAK_DBFS, TARGET_LUFS
from fieldkit.pipeline.driver import run_workflow
from fieldkit.store.zarr_store import open_store
from fieldkit.testing.cards import add_broken_files
from fieldkit.testing.signals import peak_hz, tone, white_noise
from fieldkit.workspace import init_workspace
from tests.conftest import skip_unless_required
from tests.pipeline.conftest import WORKFLOW, build_card

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BAT_FILE = SHARED_DATA / "batdetect2" / "0166_20240531_223911.wav"  # 312.5 kHz, 4.03 s
CEILING = 10 ** (PEAK_DBFS / 20)
runner = CliRunner()


@pytest.fixture(scope="module")
def listening(tmp_path_factory, module_catalogue_backend):
    """(workspace root, run id, {card file name: recording id}) of a processed, labelled workspace,
    on each catalogue backend."""
    base = tmp_path_factory.mktemp("listen")
    ws = init_workspace(base / "ws", catalogue_url=module_catalogue_backend)
    card = build_card(base / "card")
    add_broken_files(card)
    ingest_card(ws, IngestRequest(card, "Wood", "N1", timezone="+02:00"))
    report = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="test", workers=2)
    assert report.state == "complete", report.failures
    import_labels_from_names(ws, r"(?P<label>clip|birds|rugr)")
    create_dataset(ws, DatasetRequest("calls", report.run_id, background="other", split_by="recording"))
    ingest_card(ws, IngestRequest(_ultrasonic_card(base / "batcard"), "Cave", "B1", timezone="+00:00"))
    with ws.catalogue.read() as session:
        ids = {Path(r.archive_path).name: r.id for r in list_recordings(session)}
    ws.close()
    return base / "ws", report.run_id, ids


def _ultrasonic_card(root: Path) -> Path:
    root.mkdir()
    x = tone(45_000, 2.0, 192_000, amplitude=0.3) + white_noise(2.0, 192_000, rms=0.003, seed=3)
    sf.write(root / "tone45k.wav", x, 192_000, subtype="PCM_16")
    if BAT_FILE.is_file():
        shutil.copyfile(BAT_FILE, root / BAT_FILE.name)
    return root


def cli(root: Path, *args: str):
    return runner.invoke(app, ["-w", str(root), *args], catch_exceptions=False)


def cli_json(root: Path, *args: str) -> dict:
    result = cli(root, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def lufs(x: np.ndarray, rate: float) -> float:
    return float(pyloudnorm.Meter(int(rate)).integrated_loudness(np.asarray(x, np.float64)))


def guano_of(path: Path):
    layout = walk_riff_path(str(path))
    (chunk,) = [c for c in layout.chunks if c.chunk_id == "guan"]
    with open(path, "rb") as f:
        return parse_guano(read_chunk_body(f, chunk))


def assert_loud_and_unclipped(wav: Path) -> tuple[np.ndarray, int]:
    y, rate = sf.read(wav, dtype="float64")
    assert abs(lufs(y, rate) - TARGET_LUFS) <= 0.5
    assert np.max(np.abs(y)) <= CEILING + 2 / 32_768 < 1.0  # 16-bit dither: at most 1 LSB
    return y, rate


# -- preview ------------------------------------------------------------------------------------

def test_excerpt_is_loudness_normalised_and_read_from_the_right_frames(listening, tmp_path):
    root, _, ids = listening
    doc = cli_json(root, "preview", str(ids["20240501_220000.WAV"]), "--start", "2", "--duration", "1.5",
                   "--out", str(tmp_path))
    assert doc["mode"] == "excerpt" and doc["excerpt_s"] == pytest.approx(1.5)
    y, rate = assert_loud_and_unclipped(Path(doc["wav"]))
    assert rate == 48_000 and y.size == 72_000
    original, _ = sf.read(root / "archive" / "Wood" / "N1" / "20240501_220000.WAV", dtype="float64",
                          start=96_000, frames=72_000)
    assert np.corrcoef(original, y)[0, 1] > 0.9999  # the same frames, only louder
    assert matplotlib.image.imread(doc["png"]).shape == (500, 1000, 4)


def test_stereo_24_bit_excerpt_keeps_its_channels(listening, tmp_path):
    root, _, ids = listening
    doc = cli_json(root, "preview", str(ids["A101_3.WAV"]), "--out", str(tmp_path))
    y, rate = assert_loud_and_unclipped(Path(doc["wav"]))
    assert y.shape == (48_044, 2) and doc["channels"] == 2 and rate == 48_000


def test_time_expansion_is_n_times_longer_and_says_so_in_guano(listening, tmp_path):
    root, _, ids = listening
    doc = cli_json(root, "preview", str(ids["tone45k.wav"]), "--duration", "0.5", "--out", str(tmp_path))
    assert doc["mode"] == "time-expansion" and doc["factor"] == 5  # 192 kHz, 45 kHz: 5 brings both to 38.4 / 9 kHz
    wav = Path(doc["wav"])
    assert wav.name == f"rec{ids['tone45k.wav']}-time-expansion.wav"
    y, rate = assert_loud_and_unclipped(wav)
    assert rate == 38_400 and y.size / rate == pytest.approx(5 * 0.5)
    assert peak_hz(y, rate) == pytest.approx(9_000, abs=20)
    guano = guano_of(wav)
    assert guano.typed["time_expansion"] == 5 and guano.typed["samplerate_hz"] == 192_000


def test_explicit_factor(listening, tmp_path):
    root, _, ids = listening
    doc = cli_json(root, "preview", str(ids["tone45k.wav"]), "--mode", "time-expansion", "--factor", "20",
                   "--duration", "0.25", "--out", str(tmp_path))
    info = sf.info(doc["wav"])
    assert info.samplerate == 9_600 and info.duration == pytest.approx(20 * 0.25)
    assert guano_of(Path(doc["wav"])).typed["time_expansion"] == 20


def test_heterodyne_defaults_to_the_dominant_ultrasonic_frequency(listening, tmp_path):
    root, _, ids = listening
    doc = cli_json(root, "preview", str(ids["tone45k.wav"]), "--mode", "heterodyne", "--out", str(tmp_path))
    assert doc["carrier_hz"] == 41_000 and doc["playback_rate_hz"] == 48_000  # 4 kHz below the peak
    y, rate = sf.read(doc["wav"], dtype="float64")
    assert 2_000 <= peak_hz(y, rate) <= 6_000
    tuned = cli_json(root, "preview", str(ids["tone45k.wav"]), "--mode", "heterodyne", "--carrier-hz", "40000",
                     "--out", str(tmp_path))
    y, rate = assert_loud_and_unclipped(Path(tuned["wav"]))
    assert y.size / rate == pytest.approx(2.0, abs=1e-3)
    assert peak_hz(y, rate) == pytest.approx(5_000, abs=20)  # |45 kHz - 40 kHz|


def test_real_bat_recording_is_time_expanded_by_ten(listening, tmp_path):
    root, _, ids = listening
    if BAT_FILE.name not in ids:
        pytest.skip(f"{BAT_FILE} is not available")
    doc = cli_json(root, "preview", str(ids[BAT_FILE.name]), "--duration", "1", "--out", str(tmp_path))
    assert doc["mode"] == "time-expansion" and doc["factor"] == 10
    y, rate = assert_loud_and_unclipped(Path(doc["wav"]))
    assert rate == 31_250 and y.size == 312_500  # 1 s of 312.5 kHz, played 10 times slower
    assert guano_of(Path(doc["wav"])).typed["time_expansion"] == 10
    het = cli_json(root, "preview", str(ids[BAT_FILE.name]), "--mode", "heterodyne", "--duration", "1",
                   "--out", str(tmp_path))
    assert het["carrier_hz"] % 1000 == 0 and 15_000 < het["carrier_hz"] < 156_250
    called = cli_json(root, "preview", str(ids[BAT_FILE.name]), "--call", "--mode", "heterodyne", "--out", str(tmp_path))
    call = called["call"]
    assert called["excerpt_s"] == pytest.approx(0.5) and called["start_s"] <= call["peak_s"] <= called["start_s"] + 0.5
    assert call["detector"]["threshold_db"] == 12.0 and call["calls_found"] >= 1
    assert called["carrier_hz"] == round((call["peak_hz"] - 4_000) / 1000) * 1000
    y, rate = sf.read(called["wav"], dtype="float64")
    f, p = scipy.signal.welch(y, rate, nperseg=2048)
    assert p[f > 7_000].sum() < 0.01 * p.sum()  # a narrow band: the 6 kHz either side of the carrier
    fd = cli_json(root, "preview", str(ids[BAT_FILE.name]), "--call", "--mode", "frequency-division", "--out",
                  str(tmp_path))
    assert fd["divisor"] == 10 and fd["preview_s"] == pytest.approx(0.5, abs=1e-3)  # real time


def test_a_truncated_file_previews_only_the_frames_present(listening, tmp_path):
    root, _, ids = listening
    doc = cli_json(root, "preview", str(ids["20240501_231000.WAV"]), "--out", str(tmp_path))
    assert doc["excerpt_s"] == pytest.approx(15_878 / 16_000)  # the header declares 2 s
    assert sf.info(doc["wav"]).frames == 15_878


def test_a_quarantined_file_is_refused_with_its_reason(listening):
    root, _, ids = listening
    result = cli(root, "preview", str(ids["20240501_230000.WAV"]))  # the empty file
    assert result.exit_code == 65
    assert "quarantined" in result.stderr and "no audio to preview" in result.stderr


def test_unknown_recording_and_bad_mode(listening):
    root, _, ids = listening
    assert cli(root, "preview", "99999").exit_code == 66
    bad = cli(root, "preview", str(ids["20240501_220000.WAV"]), "--mode", "chipmunk")
    assert bad.exit_code == 2 and "excerpt, frequency-division, heterodyne, time-expansion" in bad.stderr


# -- sonify -------------------------------------------------------------------------------------

def _real_clips(root: Path, run_id: int, deployment: str | None = None, timed: bool = False) -> int:
    ds = open_store(next((root / "stores").glob(f"run-{run_id:04d}-*.zarr")), chunks=None)
    keep = ds["recording_id"].values >= 0
    if deployment:
        keep &= ds["deployment"].values == deployment
    if timed:
        keep &= ~np.isnat(ds["start_time"].values)
    ds.close()
    return int(keep.sum())


def assert_notes_on_scale(doc: dict, scale: str) -> None:
    samples, rate = sf.read(doc["wav"], dtype="float64")
    samples = samples.sum(axis=1) if samples.ndim == 2 else samples  # one note at a time: pan only scales it
    pitch_classes = set(SCALES[scale])
    for note in doc["notes"]:
        a = round((note["start_s"] + 0.01) * rate)
        b = round((note["start_s"] + note["duration_s"] - 0.01) * rate)
        heard = peak_hz(samples[a:b], rate)
        semitones = 12 * math.log2(heard / 220.0)
        assert abs(semitones - round(semitones)) <= 0.05, (note, heard)
        assert round(semitones) % 12 in pitch_classes
        assert 0.1 <= note["duration_s"] <= 0.5


def test_sonify_a_run_one_note_per_clip_on_the_scale(listening, tmp_path):
    root, run_id, _ = listening
    doc = cli_json(root, "sonify", str(run_id), "--out", str(tmp_path / "run.wav"))
    clips = _real_clips(root, run_id)
    assert doc["points"] == doc["clips"] == clips and len(doc["notes"]) + doc["rests"] == clips
    assert [n["index"] for n in doc["notes"]] == sorted(n["index"] for n in doc["notes"])
    assert_notes_on_scale(doc, "pentatonic")
    assert matplotlib.image.imread(doc["series_png"]).shape[1] == 1100
    assert sf.info(doc["wav"]).duration == pytest.approx(doc["duration_s"])


def test_sonify_with_other_features_and_scale(listening, tmp_path):
    root, run_id, _ = listening
    doc = cli_json(root, "sonify", str(run_id), "--pitch", "mfcc:1", "--duration", "bandwidth", "--volume", "rms",
                   "--scale", "minor", "--notes", "7", "--out", str(tmp_path / "minor.wav"))
    assert doc["features"] == {"pitch": "mfcc:1", "duration": "bandwidth", "volume": "rms", "pan": "mfcc:3",
                               "timbre": "site"}  # pan's default mfcc:1 is taken: the next one
    assert_notes_on_scale(doc, "minor")
    assert max(n["note"] for n in doc["notes"]) == 6 and min(n["note"] for n in doc["notes"]) == 0


def test_sonify_defaults_five_dimensions_with_a_legend_and_midi(listening, tmp_path):
    root, run_id, _ = listening
    doc = cli_json(root, "sonify", str(run_id), "--midi", "--scale", "19-tet", "--reverse", "volume",
                   "--map", "pitch=quantile", "--out", str(tmp_path / "five.wav"))
    assert doc["features"] == {"pitch": "centroid", "duration": "bandwidth", "volume": "rms", "pan": "mfcc:1",
                               "timbre": "site"}  # five different pieces of information
    assert sf.info(doc["wav"]).channels == 2 and doc["channels"] == 2
    legend = json.loads(Path(doc["legend"]).read_text())
    assert legend["dimensions"]["pitch"]["unit"] == "Hz" and legend["dimensions"]["pitch"]["map"] == "quantile"
    assert legend["dimensions"]["volume"]["reverse"] is True
    assert legend["dimensions"]["timbre"]["kind"] == "category" and legend["scale"]["name"] == "19-tet"
    low, high = legend["dimensions"]["pitch"]["range"]
    assert low == pytest.approx(min(_clip_feature(root, run_id, "centroid")), rel=1e-6) and high > low
    import mido

    midi = mido.MidiFile(doc["midi"])
    assert sum(m.type == "note_on" for t in midi.tracks for m in t) == len(doc["notes"])
    mono = cli_json(root, "sonify", str(run_id), "--mono", "--timbre", "none", "--out", str(tmp_path / "mono.wav"))
    assert sf.info(mono["wav"]).channels == 1 and set(mono["features"]) == {"pitch", "duration", "volume"}


def test_sonify_with_a_scala_file(listening, tmp_path):
    root, run_id, _ = listening
    scl = tmp_path / "slendro.scl"
    scl.write_text("! slendro, 5 equal-ish steps\nslendro\n5\n240.0\n480.0\n720.0\n960.0\n2/1\n")
    doc = cli_json(root, "sonify", str(run_id), "--scale", str(scl), "--out", str(tmp_path / "s.wav"))
    for note in doc["notes"]:
        cents = 1200 * math.log2(note["freq_hz"] / 220.0)
        assert abs(cents / 240 - round(cents / 240)) < 1e-9
    bad = cli(root, "sonify", str(run_id), "--scale", str(tmp_path / "missing.scl"))
    assert bad.exit_code == 66 and "missing.scl" in bad.stderr


def _clip_feature(root: Path, run_id: int, name: str) -> np.ndarray:
    ds = open_store(next((root / "stores").glob(f"run-{run_id:04d}-*.zarr")), chunks=None)
    keep = ds["recording_id"].values >= 0
    values = np.nanmean(ds[name].values[keep].reshape(int(keep.sum()), -1), axis=1)
    ds.close()
    return values


def test_sonify_a_dataset(listening, tmp_path):
    root, _, _ = listening
    doc = cli_json(root, "sonify", "calls", "--out", str(tmp_path / "calls.wav"))
    items = cli_json(root, "dataset", "list")
    assert doc["points"] == next(d["clips"] for d in items if d["name"] == "calls")
    assert_notes_on_scale(doc, "pentatonic")


def test_a_night_in_a_minute_is_clock_true(listening, tmp_path):
    root, run_id, _ = listening
    timed = _real_clips(root, run_id, "N1", timed=True)
    doc = cli_json(root, "sonify", "--deployment", "N1", "--run", str(run_id), "--seconds-per-hour", "60",
                   "--max-gap-h", "1", "--out", str(tmp_path / "night.wav"))
    assert doc["run_id"] == run_id and doc["clips"] == timed
    assert doc["clips_without_time"] == _real_clips(root, run_id, "N1") - timed > 0  # reported, not dropped
    assert doc["recordings_without_time"]
    # 60 s per hour: a 0.5 s slot is 30 s of clock time; the AudioMoth files start 5 min apart
    starts = {round(n["start_s"], 6) for n in doc["notes"]}
    assert any({s + 5.0, s + 10.0, s + 15.0} <= starts for s in starts)
    # the real files' dates lie days or years apart: each such gap is played as 1 h and reported
    assert doc["clock"]["compressed_gaps"] and all(g["hours"] > 1 for g in doc["clock"]["compressed_gaps"])
    assert doc["duration_s"] <= 60 * (len(doc["clock"]["compressed_gaps"]) + 3)
    too_long = cli(root, "sonify", "--deployment", "N1", "--seconds-per-hour", "3600")
    assert too_long.exit_code == 78 and "--seconds-per-hour" in too_long.stderr
    assert matplotlib.image.imread(doc["series_png"]).shape[1] == 1100
    legend = json.loads(Path(doc["legend"]).read_text())
    assert legend["clock"]["seconds_per_hour"] == 60.0
    elsewhere = cli(root, "sonify", "--deployment", "N1", "--run", "999")
    assert elsewhere.exit_code == 66


def test_sonify_names_the_features_it_has(listening):
    root, run_id, _ = listening
    result = cli(root, "sonify", str(run_id), "--pitch", "loudness")
    assert result.exit_code == 2
    assert "unknown feature 'loudness'" in result.stderr and "centroid" in result.stderr
    assert cli(root, "sonify").exit_code == 2
    assert cli(root, "sonify", "--deployment", "B1").exit_code == 66  # ingested after the run


# -- video --------------------------------------------------------------------------------------

def _assert_av(mp4: Path, seconds: float) -> None:
    probe = probe_media(mp4)
    assert len(probe.of_kind("video")) == 1 and len(probe.of_kind("audio")) == 1
    assert probe.duration_s == pytest.approx(seconds, abs=0.2)


def test_video_of_a_recording_and_of_a_run(listening, tmp_path):
    root, run_id, ids = listening
    doc = cli_json(root, "video", str(ids["20240501_220000.WAV"]), "--out", str(tmp_path / "rec.mp4"))
    _assert_av(Path(doc["mp4"]), 5.0)
    assert doc["title"].startswith(f"recording {ids['20240501_220000.WAV']} (20240501_220000.WAV)")
    bat = cli_json(root, "video", str(ids["tone45k.wav"]), "--duration", "0.5", "--out", str(tmp_path / "te.mp4"))
    assert bat["mode"] == "time-expansion"
    _assert_av(Path(bat["mp4"]), 2.5)  # 0.5 s expanded 5 times
    run = cli_json(root, "video", f"run:{run_id}", "--out", str(tmp_path / "run.mp4"))
    _assert_av(Path(run["mp4"]), run["audio_s"])
    assert run["notes"] == _real_clips(root, run_id)
    assert run["features"]["pan"] == "mfcc:1" and run["shows"].startswith("the sonified feature series")


def _frame(mp4: Path, at_s: float) -> np.ndarray:
    """One decoded frame (H, W, 3) of an MP4, by ffmpeg."""
    import subprocess

    from fieldkit.io.audio.ffmpeg import ffmpeg_exe

    (stream,) = probe_media(mp4).of_kind("video")
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-ss", str(at_s), "-i", str(mp4), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(stream.height, stream.width, 3)


def test_a_video_frame_shows_the_recordings_spectrogram(listening, tmp_path):
    from fieldkit.io.render.media import _spectrogram_frame

    root, _, ids = listening
    doc = cli_json(root, "video", str(ids["tone45k.wav"]), "--mode", "heterodyne", "--carrier-hz", "41000",
                   "--duration", "1", "--out", str(tmp_path / "het.mp4"))
    assert doc["carrier_hz"] == 41_000 and doc["duration_s"] == pytest.approx(1.0, abs=0.1)
    frame = _frame(Path(doc["mp4"]), 0.5).astype(np.float64)
    # where the axes are: the same figure drawn directly (the known 45 kHz tone of the card)
    x = tone(45_000, 2.0, 192_000, amplitude=0.3) + white_noise(2.0, 192_000, rms=0.003, seed=3)
    base, (x0, x1, top, bottom) = _spectrogram_frame(x[:192_000], 192_000, doc["title"])
    inner = frame[top + 2: bottom - 2, round(x0) + 4: round(x1) - 4].mean(axis=2)
    row = int(np.argmax(inner.mean(axis=1)))  # the brightest row of the plot: the tone
    khz = 96.0 * (bottom - 2 - (top + 2 + row)) / (bottom - top)
    assert khz == pytest.approx(45.0, abs=2.0)  # the data's 45 kHz, not the 4 kHz of the sound
    bright = frame[top + 5: bottom - 5, round(x0) + 4: round(x1) - 4].mean(axis=2) > 180  # the white cursor
    cursor_x = round(x0) + 4 + int(np.argmax(bright.sum(axis=0)))  # the column bright from top to bottom
    assert cursor_x == pytest.approx(x0 + 0.5 * (x1 - x0), abs=8)  # half-way at half time
    night = cli_json(root, "video", "deployment:N1", "--seconds-per-hour", "60", "--max-gap-h", "0.05",
                     "--out", str(tmp_path / "n1.mp4"))
    run_frames = [_frame(Path(night["mp4"]), t) for t in (1.0, 3.0)]
    moved = np.abs(run_frames[0].astype(int) - run_frames[1].astype(int)).sum(axis=2) > 200
    columns = np.flatnonzero(moved.sum(axis=0) > 100)
    assert columns.size and columns.max() - columns.min() > 20  # the cursor moved across the series


# -- report -------------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
AUDIO_STATES = """() => Promise.all(Array.from(document.querySelectorAll('audio')).map(a => new Promise(done => {
    if (a.readyState >= 2) return done(a.readyState);
    a.addEventListener('canplay', () => done(a.readyState), {once: true});
    a.addEventListener('error', () => done('error ' + (a.error && a.error.code)), {once: true});
    setTimeout(() => done('timeout ' + a.readyState), 15000);
})))"""
PLAY_MUTED = """() => Promise.all(Array.from(document.querySelectorAll('audio')).map(a => {
    a.muted = true;
    return a.play().then(() => { a.pause(); return 'played'; }, e => String(e));
}))"""


@pytest.fixture(scope="module")
def report_doc(listening, tmp_path_factory):
    root, _, _ = listening
    return cli_json(root, "report", "--out", str(tmp_path_factory.mktemp("report")))


def test_report_content(report_doc, listening):
    html = Path(report_doc["html"]).read_text(encoding="utf-8")
    assert report_doc["deployments"] == 2 and report_doc["runs"] == 1 and report_doc["datasets"] == 1
    assert report_doc["problems"] >= 4 and report_doc["clipped"] == 3 and report_doc["previews"] == 8
    for text in ("Wood/N1", "Cave/B1", "quarantined", "truncated", "clip16.wav", "calls v1", "test-16k",
                 "&#34;target_rate_hz&#34;: 16000", "other", "time-expansion", "centred on a call at"):
        assert text in html, text
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    for uri in html.split('src="')[1:]:
        uri = uri.split('"', 1)[0]
        assert uri.startswith("data:")
        assert len(base64.b64decode(uri.split(",", 1)[1])) < 1_000_000


def test_report_renders_in_headless_chromium(report_doc, tmp_path):
    executable = shutil.which("chromium")
    if executable is None:
        skip_unless_required("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors, requests = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(report_doc["html"]).resolve().as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
            audio = page.evaluate(AUDIO_STATES)
            played = page.evaluate(PLAY_MUTED)
            shot = page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert all(r.startswith(("file://", "data:")) for r in requests), requests
    assert len(images) == Path(report_doc["html"]).read_text(encoding="utf-8").count("<img ")
    assert len(images) >= 1 + report_doc["previews"]  # a coverage timeline, and a spectrogram per preview
    assert all(done and width > 0 for done, width, _ in images), images
    assert len(audio) == report_doc["previews"] and all(state in (2, 3, 4) for state in audio), audio
    assert played == ["played"] * report_doc["previews"]
    assert len(shot) > 10_000 and (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
