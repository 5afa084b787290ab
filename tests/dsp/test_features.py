"""Features agree with librosa 0.11 (synthetic signals always, real recordings when present)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf

from fieldkit.config.params import FeatureParams
from fieldkit.dsp import features as F
from fieldkit.dsp import filters
from fieldkit.dsp.stft import frame_count, frames, stft_power
from fieldkit.errors import ValidationError
from fieldkit.testing import signals

from .helpers import RECORDINGS, max_rel_err, rel_err, shared_file

TOL = 1e-5  # the agreement fieldkit promises; observed errors are ~1e-7
ALL = ("stft", "mel", "logmel", "mfcc", "centroid", "bandwidth", "chroma", "rms")


def librosa_features(y: np.ndarray, sr: float, p: FeatureParams) -> dict[str, np.ndarray]:
    """The reference: one librosa call per feature, transposed to (frames, n)."""
    kw = dict(sr=sr, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
              window=p.window, center=p.center, pad_mode=p.pad_mode)
    mel_kw = dict(n_mels=p.n_mels, fmin=p.fmin_hz, fmax=p.fmax_hz, power=p.power)
    mel = librosa.feature.melspectrogram(y=y, **mel_kw, **kw)
    stft_kw = {k: v for k, v in kw.items() if k != "sr"}
    logmel = librosa.power_to_db(mel, top_db=p.top_db)
    if p.top_db == 80.0:  # librosa's own default: the whole path from y
        mfcc = librosa.feature.mfcc(y=y, n_mfcc=p.n_mfcc, **mel_kw, **kw)
    else:
        mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=p.n_mfcc)
    return {
        "stft": np.abs(librosa.stft(y, **stft_kw)).T,
        "mel": mel.T,
        "logmel": logmel.T,
        "mfcc": mfcc.T,
        "centroid": librosa.feature.spectral_centroid(y=y, **kw)[0],
        "bandwidth": librosa.feature.spectral_bandwidth(y=y, **kw)[0],
        "chroma": librosa.feature.chroma_stft(y=y, tuning=p.tuning, n_chroma=p.n_chroma, **kw).T,
        "rms": librosa.feature.rms(y=y, frame_length=p.n_fft, hop_length=p.hop_length,
                                   center=p.center, pad_mode=p.pad_mode)[0],
    }


def assert_agrees(y: np.ndarray, sr: float, p: FeatureParams, tol: float = TOL) -> dict:
    ours = F.compute_features(y, sr, p)
    ref = librosa_features(y, sr, p)
    errors = {}
    for name in p.compute:
        assert ours[name].dtype == np.float32, name
        assert ours[name].shape == ref[name].shape, name
        errors[name] = rel_err(ours[name], ref[name])
    assert max(errors.values()) <= tol, errors
    return errors


SR = 16000
NOISE = signals.white_noise(2.0, SR, rms=0.1, seed=3)
CHIRP = signals.chirp(100.0, 7000.0, 2.0, SR, amplitude=0.6) + signals.white_noise(
    2.0, SR, rms=1e-3, seed=4)


@pytest.mark.parametrize("y", [NOISE, CHIRP], ids=["noise", "chirp"])
def test_default_features_agree_with_librosa_on_synthetic_signals(y):
    assert_agrees(y, SR, FeatureParams(compute=ALL))


@pytest.mark.parametrize(
    "p",
    [
        FeatureParams(n_fft=2048, hop_length=512, n_mels=128, compute=ALL),
        FeatureParams(n_fft=512, hop_length=160, win_length=400, window="hamming", compute=ALL),
        FeatureParams(n_fft=1024, hop_length=300, center=False, compute=ALL),  # hop ∤ n_fft
        FeatureParams(pad_mode="reflect", fmin_hz=300.0, fmax_hz=6000.0, n_mels=40, n_mfcc=13,
                      compute=ALL),
        FeatureParams(power=1.0, tuning=-0.25, n_chroma=24, top_db=None, compute=ALL),
        FeatureParams(power=1.5, window="blackman", pad_mode="edge", compute=ALL),
    ],
    ids=["2048", "win400-hamming", "uncentred", "reflect-band", "magnitude-24chroma", "p1.5"],
)
def test_parameter_variants_agree_with_librosa(p):
    assert_agrees(CHIRP, SR, p)


def test_float64_fft_agrees_even_on_a_noiseless_pure_tone():
    # A float32 FFT's noise floor (~1e-7 of the peak) would move the bandwidth of a pure
    # tone, which depends on sidelobes 140 dB down; float64 is librosa's own precision.
    y = signals.tone(440.0, 1.0, SR, amplitude=0.5)
    assert_agrees(y, SR, FeatureParams(compute=ALL, fft_precision="float64"))


def test_float32_fft_agrees_on_a_pure_tone_except_the_sidelobe_driven_bandwidth():
    y = signals.tone(440.0, 1.0, SR, amplitude=0.5)
    names = ("mel", "mfcc", "centroid", "chroma", "rms")
    assert_agrees(y, SR, FeatureParams(compute=names))


def test_batch_equals_clip_by_clip():
    clips = np.stack([NOISE[:8000], CHIRP[:8000], CHIRP[8000:16000]])
    p = FeatureParams(compute=ALL)
    batch = F.compute_features(clips, SR, p)
    for i, clip in enumerate(clips):
        one = F.compute_features(clip, SR, p)
        for name in ALL:
            np.testing.assert_allclose(batch[name][i], one[name], rtol=1e-6, atol=1e-7)


def test_batch_processed_in_several_groups_equals_one_group(monkeypatch):
    clips = np.stack([CHIRP[i : i + 4000] for i in range(0, 28000, 4000)])
    p = FeatureParams(compute=ALL)
    one_group = F.compute_features(clips, SR, p)
    monkeypatch.setattr(F, "FEATURE_GROUP_FRAMES", 40)  # 16 frames per clip: groups of 2 clips
    groups = F.compute_features(clips, SR, p)
    for name in ALL:
        np.testing.assert_array_equal(groups[name], one_group[name])


def test_batch_of_long_clips_is_split_into_blocks_and_still_agrees():
    clips = np.stack([CHIRP, NOISE])  # 126 frames each at hop 256: one clip per block
    p = FeatureParams(hop_length=64, compute=("mel", "centroid"))  # 501 frames: split
    batch = F.compute_features(clips, SR, p)
    for i in range(2):
        ref = librosa_features(clips[i], SR, p)
        assert rel_err(batch["mel"][i], ref["mel"]) < TOL
        assert rel_err(batch["centroid"][i], ref["centroid"]) < TOL


def test_output_names_order_shapes_and_dtypes():
    p = FeatureParams(compute=("rms", "chroma", "mel", "centroid"))
    out = F.compute_features(NOISE, SR, p)
    frames = frame_count(len(NOISE), p)
    assert list(out) == ["rms", "chroma", "mel", "centroid"]
    assert out["mel"].shape == (frames, 64) and out["chroma"].shape == (frames, 12)
    assert out["rms"].shape == (frames,) and out["centroid"].shape == (frames,)
    batch = F.compute_features(np.stack([NOISE, NOISE]), SR, p)
    assert batch["mel"].shape == (2, frames, 64) and batch["rms"].shape == (2, frames)
    assert all(v.dtype == np.float32 for v in (*out.values(), *batch.values()))


def test_an_empty_batch_gives_empty_outputs():
    out = F.compute_features(np.zeros((0, 4000), np.float32), SR, FeatureParams(compute=ALL))
    frames = frame_count(4000, FeatureParams())
    assert out["mfcc"].shape == (0, frames, 20) and out["rms"].shape == (0, frames)


def test_individual_kernels_agree_with_compute_features():
    p = FeatureParams(compute=ALL)
    power = stft_power(CHIRP, p)
    out = F.compute_features(CHIRP, SR, p)
    mel = F.mel(power, SR, p)
    np.testing.assert_allclose(mel, out["mel"], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(F.mfcc(mel, p), out["mfcc"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(F.spectral_centroid(power, SR, p.n_fft), out["centroid"], rtol=1e-6)
    np.testing.assert_allclose(F.spectral_bandwidth(power, SR, p.n_fft), out["bandwidth"],
                               rtol=1e-6)
    np.testing.assert_allclose(F.chroma(power, SR, p), out["chroma"], rtol=1e-6)
    np.testing.assert_array_equal(F.rms(CHIRP, p), out["rms"])
    np.testing.assert_allclose(np.sqrt(power), out["stft"], rtol=1e-6)


def test_stft_power_equals_librosa():
    p = FeatureParams()
    ref = np.abs(librosa.stft(CHIRP, n_fft=p.n_fft, hop_length=p.hop_length)).T ** 2
    assert rel_err(stft_power(CHIRP, p), ref) < TOL


def test_centroid_of_a_pure_tone_is_its_frequency():
    for freq in (250.0, 1000.0, 3000.0):
        y = signals.tone(freq, 1.0, SR, amplitude=0.5)
        centroid = F.compute_features(y, SR, FeatureParams(compute=("centroid",)))["centroid"]
        inner = centroid[4:-4]  # away from the zero-padded edges
        np.testing.assert_allclose(inner, freq, rtol=0.01)


def test_chroma_of_a440_peaks_at_a_and_a_tuning_offset_moves_it():
    y = signals.tone(440.0, 1.0, SR, amplitude=0.5)
    p = FeatureParams(n_fft=4096, hop_length=1024, compute=("chroma",))
    chroma = F.compute_features(y, SR, p)["chroma"][2:-2]
    assert np.all(chroma.argmax(axis=1) == 9)  # C C# D D# E F F# G G# A: A is bin 9
    np.testing.assert_allclose(chroma.max(axis=1), 1.0)
    detuned = signals.tone(440.0 * 2 ** (1 / 12), 1.0, SR)  # A#
    chroma = F.compute_features(detuned, SR, p)["chroma"][2:-2]
    assert np.all(chroma.argmax(axis=1) == 10)


@pytest.mark.parametrize(("n_fft", "hop", "center"), [(1024, 320, True), (1024, 320, False), (1024, 256, True),
                                                  (512, 160, True), (2048, 441, True), (256, 100, False)])
def test_frame_energy_by_segments_equals_every_frame_multiplied_out(n_fft, hop, center):
    """rms adds the energies of gcd(n_fft, hop)-sample segments (16 of 64 samples a frame at
    hop 320) instead of multiplying out every frame (einsum over the strided frames, the
    fallback for frames of over 32 segments, e.g. hop 441): the same sums in another order,
    within float64 rounding, hence the same float32 rms; and the same as librosa's."""
    p = FeatureParams(n_fft=n_fft, hop_length=hop, center=center, compute=("rms",))
    clips = np.stack([NOISE, CHIRP, np.zeros_like(NOISE)]).astype(np.float32)
    framed = frames(clips, p)
    multiplied_out = np.einsum("ctn,ctn->ct", framed, framed, dtype=np.float64)
    np.testing.assert_allclose(F._frame_energy(clips, p), multiplied_out, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(F.rms(clips, p), np.sqrt(multiplied_out / n_fft).astype(np.float32))
    ref = librosa.feature.rms(y=clips[1], frame_length=n_fft, hop_length=hop, center=center, pad_mode="constant")[0]
    assert rel_err(F.rms(clips[1], p), ref) <= TOL


def test_rms_of_a_sine_and_of_silence():
    y = signals.tone(1000.0, 1.0, SR, amplitude=0.5)
    rms = F.compute_features(y, SR, FeatureParams(compute=("rms",)))["rms"][4:-4]
    np.testing.assert_allclose(rms, 0.5 / np.sqrt(2), rtol=1e-3)
    zeros = F.compute_features(signals.silence(0.5, SR), SR, FeatureParams(compute=ALL))
    for name in ("rms", "centroid", "bandwidth", "chroma", "mel"):
        assert not np.any(zeros[name]), name
    np.testing.assert_allclose(zeros["mfcc"][:, 1:], 0.0, atol=1e-4)  # flat -100 dB log-mel


def test_inputs_are_not_changed():
    y = CHIRP.copy()
    F.compute_features(y, SR, FeatureParams(compute=ALL))
    np.testing.assert_array_equal(y, CHIRP)


def test_bad_inputs_raise_validation_errors():
    with pytest.raises(ValidationError, match="float samples"):
        F.compute_features(np.zeros(100, np.int16), SR)
    with pytest.raises(ValidationError, match="shape"):
        F.compute_features(np.zeros((2, 2, 100)), SR)
    with pytest.raises(ValidationError, match="sample_rate_hz"):
        F.compute_features(NOISE, 0)
    with pytest.raises(ValidationError, match="shorter than n_fft"):
        F.compute_features(NOISE[:100], SR, FeatureParams(center=False))


@pytest.mark.shared_data
@pytest.mark.parametrize("relative", RECORDINGS)
def test_agrees_with_librosa_on_real_recordings(relative):
    y, sr = sf.read(shared_file(relative), dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y[: 20 * sr, 0])  # first channel, at most 20 s
    errors = assert_agrees(y, sr, FeatureParams(compute=ALL))
    assert errors["centroid"] < 1e-6 and errors["bandwidth"] < 1e-6
    ours = F.compute_features(y, sr, FeatureParams(hop_length=256, compute=("centroid",)))["centroid"]
    ref = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=1024, hop_length=256)[0]
    assert max_rel_err(ours, ref) < 1e-5  # frame by frame, not only overall


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"), [
    (16000, 1024, 64, 0.0, None), (16000, 1024, 64, 150.0, 8000.0), (48000, 2048, 128, 0.0, None),
    (384000, 512, 40, 15000.0, 120000.0), (8000, 256, 128, 0.0, None), (22050, 512, 3, 0.0, None)])
def test_mel_by_band_groups_equals_the_dense_product(sr, n_fft, n_mels, fmin, fmax):
    """The banded product skips the mel bank's zeros; it must add the same terms as the dense
    one (the 8 kHz / 128-band case has empty filters)."""
    params = FeatureParams(n_fft=n_fft, n_mels=n_mels, n_mfcc=min(20, n_mels), fmin_hz=fmin, fmax_hz=fmax)
    power = np.random.default_rng(1).random((2, 7, n_fft // 2 + 1), dtype=np.float32)
    dense = power @ np.ascontiguousarray(filters.mel_basis(float(sr), n_fft, n_mels, fmin, fmax).T)
    banded = F._apply_bank(power, F._mel_groups(sr, params))
    np.testing.assert_allclose(banded, dense, rtol=2e-6, atol=1e-12)
    assert banded.dtype == np.float32
