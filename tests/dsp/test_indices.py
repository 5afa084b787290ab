"""Acoustic indices agree with scikit-maad 1.5.2 on real recordings, and give known answers.

The reference is maad's own function for each index, called on the same power spectrogram
(maad's spectrograms are (bins, frames): ours transposed) and, for Ht, on the same samples;
fieldkit's values come through :func:`fieldkit.dsp.features.compute_features`, the path the
pipeline takes, so the block-wise STFT (a long clip's frames are split into blocks: the ACI's
frame-to-frame differences cross them) is covered too. Where fieldkit follows the paper rather
than maad (the NDSI's band edges), the test shows both: maad's default bands are fieldkit's
with the ranges maad actually sums.
"""

from __future__ import annotations

import maad.features as maad_features
import numpy as np
import pytest
import soundfile as sf
from maad.features.alpha_indices import (
    _acoustic_events,  # spectral_events' core, without its list bug
)
from maad.sound import median_equalizer
from maad.util import power2dB

from fieldkit.config.params import INDEX_SPECTRA, INDICES, FeatureParams, IndexParams
from fieldkit.dsp import indices as I
from fieldkit.dsp.features import compute_features
from fieldkit.dsp.filters import fft_frequencies
from fieldkit.dsp.stft import frame_count, stft_power
from fieldkit.testing import signals

from .helpers import shared_file

#: Relative agreement promised for every per-clip index (float32 output; observed <= 4.8e-8).
RTOL = 1e-5
#: Absolute agreement of the per-bin spectra (values in [0, 1] or events/s; observed <= 4.6e-7).
ATOL_SPECTRUM = 1e-5
#: Real recordings, in tests/data or ../shared/data: several rates (16, 22.05, 32, 44.1 kHz),
#: dawn chorus, night, insects, a drumming grouse, a spinetail, an urban soundscape.
RECORDINGS = (
    "scikit-maad/S4A03895_20190522_000000.wav",
    "opensoundscape/birds_10s.wav",
    "opensoundscape/rugr_drum.wav",
    "scikit-maad/spinetail.wav",
    "scikit-maad/S4A03895_20190522_060000.wav",
    "birdnet-analyzer/soundscape.wav",
    "avianz/Crickets_2000.wav",
    "avianz/Weta_1000.wav",
)
ALL = INDICES + INDEX_SPECTRA


def maad_indices(y: np.ndarray, sr: int, p: FeatureParams) -> dict[str, np.ndarray]:
    """Every index by scikit-maad's functions, with fieldkit's bands (cut at Nyquist)."""
    sxx = stft_power(y, p).T.astype(np.float64)  # maad: (bins, frames)
    amp, fn, ip = np.sqrt(sxx), fft_frequencies(sr, p.n_fft), p.indices
    nyq = sr / 2
    _, aci_per_bin, aci = maad_features.acoustic_complexity_index(amp)
    hf, ht_per_bin = maad_features.frequency_entropy(sxx, compatibility="QUT")
    ht = maad_features.temporal_entropy(y.astype(np.float64), compatibility="QUT", mode="fast",
                                        Nt=ip.envelope_frame)
    db = power2dB(median_equalizer(sxx))
    frame_s = p.hop_length / sr
    return {
        "aci": aci, "aci_spectrum": aci_per_bin, "hf": hf, "ht": ht, "h": hf * ht,
        "ent_spectrum": 1 - np.asarray(ht_per_bin),
        "adi": maad_features.acoustic_diversity_index(
            amp.copy(), fn, ip.adi_band_hz[0], min(ip.adi_band_hz[1], nyq), ip.adi_step_hz, ip.adi_db_threshold),
        "aei": maad_features.acoustic_eveness_index(
            amp.copy(), fn, ip.aei_band_hz[0], min(ip.aei_band_hz[1], nyq), ip.aei_step_hz, ip.aei_db_threshold),
        "bi": maad_features.bioacoustics_index(amp.copy(), fn, ip.bi_band_hz, R_compatible="soundecology"),
        # maad's defaults (1000, 10000) and (0, 1000) sum the bands starting in [1000, 10000] and
        # [0, 1000]: fieldkit's half-open ranges (1000, 11000) and (0, 2000), given below.
        "ndsi": maad_features.soundscape_index(sxx, fn, (1000, 10000), (0, 1000))[0],
        "act_spectrum": np.asarray(maad_features.spectral_activity(db, ip.activity_db_threshold)[0]),
        "evn_spectrum": np.asarray(_acoustic_events(db, frame_s, ip.activity_db_threshold)[2]),
    }


def load(relative: str, seconds: float = 20.0) -> tuple[np.ndarray, int]:
    y, sr = sf.read(shared_file(relative), dtype="float32", always_2d=True)
    return np.ascontiguousarray(y[: int(seconds * sr), 0]), sr


@pytest.mark.shared_data
@pytest.mark.parametrize("relative", RECORDINGS)
def test_every_index_agrees_with_scikit_maad_on_real_recordings(relative):
    y, sr = load(relative)
    maad_bands = IndexParams(ndsi_bio_hz=(1000.0, 11000.0), ndsi_anthro_hz=(0.0, 2000.0))
    p = FeatureParams(n_fft=512, hop_length=512, compute=ALL, indices=maad_bands)
    ours = compute_features(y, sr, p)
    ref = maad_indices(y, sr, p)
    for name in INDICES:
        assert np.isfinite(ours[name]), name
        np.testing.assert_allclose(ours[name], ref[name], rtol=RTOL, err_msg=f"{name} of {relative}")
    for name in INDEX_SPECTRA:
        assert ours[name].shape == (257,)
        np.testing.assert_allclose(ours[name], ref[name], rtol=0, atol=ATOL_SPECTRUM,
                                   err_msg=f"{name} of {relative}")
    assert ours["evn_spectrum"].max() > 0 and ours["act_spectrum"].max() > 0  # events were found


@pytest.mark.shared_data
def test_overlapping_frames_and_blocks_agree_too():
    """hop < n_fft and 1025 bins: more frames than one STFT block (128), so the ACI's sums run
    across blocks; short events discarded (maad's ``rejectDuration``)."""
    y, sr = load("scikit-maad/spinetail.wav")
    p = FeatureParams(n_fft=2048, hop_length=256, compute=ALL, indices=IndexParams(event_min_s=0.05))
    ours, ref = compute_features(y, sr, p), maad_indices(y, sr, p)
    for name in ("aci", "adi", "aei", "bi", "hf", "ht"):
        np.testing.assert_allclose(ours[name], ref[name], rtol=RTOL, err_msg=name)
    db = power2dB(median_equalizer(stft_power(y, p).T.astype(np.float64)))
    evn = _acoustic_events(db, 256 / sr, 6.0, rejectDuration=0.05)[2]  # short events removed
    np.testing.assert_allclose(ours["evn_spectrum"], evn, atol=ATOL_SPECTRUM)
    assert 0 < ours["evn_spectrum"].sum() < ref["evn_spectrum"].sum()


@pytest.mark.shared_data
def test_the_ndsi_follows_the_paper_where_maad_counts_a_band_twice():
    """maad's default anthrophony (0, 1000) sums the 0-1 and 1-2 kHz bands, and its biophony
    (1000, 10000) the 1-11 kHz bands: the 1-2 kHz band is in both. fieldkit's defaults are
    Kasten et al.'s disjoint bands; they give a different value on a real recording."""
    y, sr = load("scikit-maad/spinetail.wav")
    paper = compute_features(y, sr, FeatureParams(n_fft=512, hop_length=512, compute=("ndsi",)))["ndsi"]
    p = FeatureParams(n_fft=512, hop_length=512)
    ref = maad_indices(y, sr, p)["ndsi"]
    assert abs(paper - ref) > 1e-4
    fn, sxx = fft_frequencies(sr, 512), stft_power(y, p).T
    bands = [sxx[(fn >= b) & (fn < b + 1000)].mean(axis=0).sum() for b in range(0, 11000, 1000)]
    bio, anthro = sum(bands[1:10]), bands[0]
    assert paper == pytest.approx((bio - anthro) / (bio + anthro), rel=1e-5)


SR = 22050


def indices_of(y: np.ndarray, **kw) -> dict[str, np.ndarray]:
    return compute_features(y, SR, FeatureParams(n_fft=512, hop_length=512, compute=ALL, **kw))


def test_spectral_entropy_of_white_noise_is_near_one_and_of_a_tone_near_zero():
    noise = indices_of(signals.white_noise(10.0, SR, rms=0.1, seed=1))
    pure = indices_of(signals.tone(3000, 10.0, SR, amplitude=0.5))
    assert noise["hf"] > 0.99
    # the Hann window's main lobe (4 of 257 bins) holds the energy; its sidelobes and the
    # float32 FFT's floor spread a little over the rest
    assert pure["hf"] < 0.2
    assert noise["ht"] > 0.99 and pure["ht"] > 0.999  # both stationary
    assert pure["h"] == pytest.approx(pure["hf"] * pure["ht"], rel=1e-6)


def test_temporal_entropy_of_one_click_is_near_zero():
    y = signals.white_noise(10.0, SR, rms=1e-4, seed=2)
    y[SR * 5: SR * 5 + 100] = 0.9
    assert indices_of(y)["ht"] < 0.1


def test_ndsi_is_one_with_energy_only_in_the_bio_band_and_minus_one_in_the_anthro_band():
    bio = indices_of(signals.tone(5000, 5.0, SR))["ndsi"]
    anthro = indices_of(signals.tone(400, 5.0, SR))["ndsi"]
    # up to the Hann window's leakage (>= 4 kHz away from the band edge: < -100 dB)
    assert bio == pytest.approx(1.0, abs=1e-5)
    assert anthro == pytest.approx(-1.0, abs=1e-5)


def test_events_per_second_count_the_bursts_of_a_tone_in_its_bin():
    """Five 0.5 s bursts of 4 kHz over a quiet noise floor, in 10 s: 5 events in the tone's bin,
    none far from it; ACT is the bursts' share of the time."""
    y = signals.white_noise(10.0, SR, rms=0.001, seed=3)
    burst = signals.tone(4000, 0.5, SR, amplitude=0.3)
    for k in range(5):
        start = int((1 + 2 * k) * SR)
        y[start: start + burst.size] += burst
    out = indices_of(y)
    frame_s = 512 / SR
    duration_s = (frame_count(y.size, FeatureParams(n_fft=512, hop_length=512)) - 1) * frame_s
    tone_bin = round(4000 / (SR / 512))
    assert out["evn_spectrum"][tone_bin] == pytest.approx(5 / duration_s, rel=1e-6)
    # 2.5 s of 10 s, plus the frames that straddle a burst's edges (2 of ~22 per burst)
    assert out["act_spectrum"][tone_bin] == pytest.approx(2.5 / 10.0, abs=0.02)
    # white noise crosses 6 dB above its median in short flickers (maad's EVN counts them);
    # discarding events shorter than 0.1 s leaves the five bursts alone
    assert out["evn_spectrum"][tone_bin + 40:].mean() > 1.0
    steady = indices_of(y, indices=IndexParams(event_min_s=0.1))
    assert steady["evn_spectrum"][tone_bin] == pytest.approx(5 / duration_s, rel=1e-6)
    assert steady["evn_spectrum"][tone_bin + 40:].max() < 0.25
    # the ACI measures change relative to intensity: noise flickers from frame to frame, the
    # bursts change at their ten edges only
    assert out["aci_spectrum"][tone_bin] < 0.3 * np.median(out["aci_spectrum"])


def test_diversity_and_evenness_have_their_known_values():
    assert I.gini(np.array([[0.0, 0.0, 0.0, 1.0]]))[0] == pytest.approx(0.75)
    assert I.gini(np.array([[0.2, 0.2, 0.2]]))[0] == pytest.approx(0.0)
    assert I.gini(np.zeros((1, 5)))[0] == 0.0
    assert I.shannon(np.array([[0.3] * 8]))[0] == pytest.approx(np.log(8))
    assert I.shannon(np.array([[0.0, 0.0, 0.7, 0.0]]))[0] == pytest.approx(0.0)
    # white noise fills every band evenly: ADI = ln(bands), AEI = 0; a tone fills one band
    noise = indices_of(signals.white_noise(5.0, SR, rms=0.1, seed=4))
    assert noise["adi"] == pytest.approx(np.log(11), rel=1e-3)  # 0-11 kHz, cut at Nyquist
    assert noise["aei"] < 0.01
    # mid-band: the main lobe and every sidelobe above -50 dB stay in the 5-5.5 kHz band (frames
    # uncentred: a zero-padded edge frame would spread the cut tone over every band)
    pure = indices_of(signals.tone(5250, 5.0, SR, amplitude=0.5) + signals.white_noise(5.0, SR, rms=1e-6),
                      center=False)
    assert pure["adi"] == pytest.approx(0.0, abs=1e-6)
    assert pure["aei"] == pytest.approx(1 - 1 / 22, abs=1e-6)  # Gini of one non-zero of 22 bands


def test_silence_gives_defined_values():
    out = indices_of(np.zeros(SR * 2, np.float32))
    assert out["aci"] == 0 and np.all(out["aci_spectrum"] == 0)
    assert out["hf"] == 1.0 and out["aei"] == 0.0  # maad: an all-zero distribution is even
    assert np.isnan(out["ndsi"])  # 0 / 0: no energy in either band


def test_index_params_are_validated_and_round_trip():
    p = FeatureParams(compute=("aci", "mel"), indices=IndexParams(bi_band_hz=(1000.0, 8000.0)))
    assert FeatureParams.from_dict(p.to_dict()) == p
    assert p.to_dict()["indices"]["bi_band_hz"] == [1000.0, 8000.0]
    assert "indices" not in FeatureParams(compute=("mel",)).to_dict()  # unused: not stored
    assert "indices" in FeatureParams(compute=("ndsi",)).to_dict()  # used: stored, defaults too
    with pytest.raises(Exception, match="bi_band_hz.*low < high"):
        IndexParams(bi_band_hz=(8000.0, 2000.0))


def test_a_batch_equals_clip_by_clip():
    rng = np.random.default_rng(5)
    batch = (rng.standard_normal((3, SR * 2)) * np.array([[0.1], [0.01], [0.3]])).astype(np.float32)
    together = compute_features(batch, SR, FeatureParams(n_fft=512, hop_length=256, compute=ALL))
    for i in range(3):
        alone = compute_features(batch[i], SR, FeatureParams(n_fft=512, hop_length=256, compute=ALL))
        for name in ALL:
            np.testing.assert_allclose(together[name][i], alone[name], rtol=1e-6, err_msg=name)


def test_a_padded_clip_is_indexed_on_its_real_audio_alone():
    """The pipeline's row extractor: the last clip of a recording is zero-padded; its indices are
    those of its real samples, and the full clips' are untouched."""
    from fieldkit.config.params import BitDepthParams, ResampleParams
    from fieldkit.pipeline.extract import ClipBatch, RowExtractor
    from fieldkit.pipeline.spec import DspSpec

    params = FeatureParams(n_fft=512, hop_length=512, compute=ALL)
    dsp = DspSpec(ResampleParams(target_rate_hz=SR), BitDepthParams(), params, clip_len=SR * 4, hop=SR * 4,
                  waveform=False)
    audio = signals.white_noise(6.5, SR, rms=0.05, seed=6) + signals.tone(3000, 6.5, SR, amplitude=0.2)
    clips = np.zeros((2, SR * 4), np.float32)
    clips[0], clips[1, : audio.size - SR * 4] = audio[: SR * 4], audio[SR * 4:]
    valid = np.array([SR * 4, audio.size - SR * 4])
    rows = RowExtractor.for_store(dsp, ALL).extract(ClipBatch(clips, valid, np.zeros(2)), first_clip=0)
    real = compute_features(audio[SR * 4:], SR, params)
    padded = compute_features(clips[1], SR, params)
    whole = compute_features(clips[0], SR, params)
    for name in ALL:
        np.testing.assert_allclose(rows[name][1], real[name], rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(rows[name][0], whole[name], rtol=1e-6, err_msg=name)
    assert padded["ht"] < 0.95 * real["ht"]  # the padding would have read as silence
    assert not np.allclose(real["evn_spectrum"], padded["evn_spectrum"])  # and events per second
