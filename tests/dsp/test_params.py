"""Parameter models: round trips, validation messages, hashability, pickling."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fieldkit.config.params import (
    FEATURES,
    RESAMPLE_QUALITIES,
    BitDepthParams,
    ClippingParams,
    FeatureParams,
    QCParams,
    ResampleParams,
)
from fieldkit.errors import ConfigError

feature_params = st.builds(
    FeatureParams,
    n_fft=st.sampled_from([256, 512, 1024, 2048]),
    hop_length=st.integers(1, 4096),
    win_length=st.one_of(st.none(), st.integers(1, 256)),
    window=st.sampled_from(["hann", "hamming", "boxcar"]),
    center=st.booleans(),
    pad_mode=st.sampled_from(["constant", "reflect", "edge"]),
    n_mels=st.integers(20, 256),
    fmin_hz=st.floats(0, 500),
    fmax_hz=st.one_of(st.none(), st.floats(1000, 96000)),
    n_mfcc=st.integers(1, 20),
    n_chroma=st.integers(1, 48),
    tuning=st.floats(-0.5, 0.49),
    power=st.floats(0.5, 3),
    top_db=st.one_of(st.none(), st.floats(0, 120)),
    compute=st.lists(st.sampled_from(FEATURES), unique=True).map(tuple),
    fft_precision=st.sampled_from(["float32", "float64"]),
)
other_params = st.one_of(
    st.builds(ResampleParams, target_rate_hz=st.none() | st.integers(1, 384000),
              quality=st.sampled_from(RESAMPLE_QUALITIES)),
    st.builds(BitDepthParams, policy=st.sampled_from(["float32", "int16"]),
              dither=st.sampled_from(["tpdf", "none"]), seed=st.integers(0, 2**63)),
    st.builds(ClippingParams, min_run=st.integers(1, 1000), fraction=st.floats(0.5, 1.0)),
    st.builds(QCParams, frame_s=st.floats(0.001, 10), silence_threshold_dbfs=st.floats(-200, 0)),
)


@given(st.one_of(feature_params, other_params))
def test_to_dict_from_dict_round_trip_through_json(params):
    data = json.loads(json.dumps(params.to_dict()))
    again = type(params).from_dict(data)
    assert again == params
    assert hash(again) == hash(params)


@given(st.one_of(feature_params, other_params))
def test_pickle_round_trip(params):
    # the task specs carry the models to Dask workers
    again = pickle.loads(pickle.dumps(params))
    assert again == params and type(again) is type(params)


def test_fields_added_after_the_first_stored_runs_are_written_only_when_set():
    assert set(FeatureParams().to_dict()) == {
        "n_fft", "hop_length", "win_length", "window", "n_mels", "fmin_hz", "fmax_hz", "n_mfcc",
        "n_chroma", "tuning", "compute"}
    changed = FeatureParams(center=False, pad_mode="reflect", power=1.0, top_db=None,
                            fft_precision="float64")
    data = changed.to_dict()
    assert (data["center"], data["pad_mode"], data["power"], data["top_db"],
            data["fft_precision"]) == (False, "reflect", 1.0, None, "float64")
    assert FeatureParams.from_dict(data) == changed


def test_defaults_are_the_documented_ones():
    p = FeatureParams()
    assert (p.n_fft, p.hop_length, p.win_length, p.window, p.center, p.pad_mode) == (
        1024, 320, None, "hann", True, "constant")
    assert (p.n_mels, p.fmin_hz, p.fmax_hz, p.n_mfcc, p.n_chroma, p.tuning, p.power) == (
        64, 0.0, None, 20, 12, 0.0, 2.0)
    assert (p.top_db, p.fft_precision) == (80.0, "float32")
    assert p.compute == ("mel", "mfcc", "centroid", "bandwidth", "chroma", "rms")
    assert p.frame_length == 1024
    assert ResampleParams() == ResampleParams(target_rate_hz=16000, quality="HQ")
    assert BitDepthParams() == BitDepthParams(policy="float32", dither="tpdf", seed=0)


def test_compute_is_a_list_in_the_dict():
    assert FeatureParams().to_dict()["compute"] == list(FeatureParams().compute)


@pytest.mark.parametrize(
    ("cls", "kwargs", "named", "allowed"),
    [
        (ResampleParams, {"target_rate_hz": 0}, "target_rate_hz = 0", "greater than 0"),
        (ResampleParams, {"quality": "best"}, "quality = 'best'", "'VHQ'"),
        (BitDepthParams, {"policy": "int24"}, "policy = 'int24'", "'float32' or 'int16'"),
        (BitDepthParams, {"dither": "rpdf"}, "dither = 'rpdf'", "'tpdf' or 'none'"),
        (BitDepthParams, {"seed": -1}, "seed = -1", "greater than or equal to 0"),
        (ClippingParams, {"min_run": 0}, "min_run = 0", "greater than or equal to 1"),
        (ClippingParams, {"fraction": 1.5}, "fraction = 1.5", "less than or equal to 1"),
        (QCParams, {"frame_s": 0}, "frame_s = 0", "greater than 0"),
        (QCParams, {"silence_threshold_dbfs": 3.0}, "silence_threshold_dbfs = 3.0",
         "less than or equal to 0"),
        (QCParams, {"frame_s": float("nan")}, "frame_s = nan", "finite number"),
        (FeatureParams, {"n_fft": 1000.5}, "n_fft = 1000.5", "valid integer"),
        (FeatureParams, {"n_fft": 1001}, "n_fft = 1001", "n_fft (1001) must be even"),
        (FeatureParams, {"n_fft": 8}, "n_fft = 8", "greater than or equal to 16"),
        (FeatureParams, {"hop_length": 0}, "hop_length = 0", "greater than 0"),
        (FeatureParams, {"win_length": 2048}, "win_length = 2048", "<= n_fft (1024)"),
        (FeatureParams, {"window": "kaiser"}, "window = 'kaiser'", "'hann'"),
        (FeatureParams, {"pad_mode": "wrap"}, "pad_mode = 'wrap'", "'constant'"),
        (FeatureParams, {"fmin_hz": 500.0, "fmax_hz": 400.0}, "fmax_hz = 400.0",
         "must exceed fmin_hz (500.0)"),
        (FeatureParams, {"fmax_hz": 0.0}, "fmax_hz = 0.0", "greater than 0"),
        (FeatureParams, {"n_mfcc": 65}, "n_mfcc = 65", "<= n_mels (64)"),
        (FeatureParams, {"tuning": 0.5}, "tuning = 0.5", "less than 0.5"),
        (FeatureParams, {"power": 0}, "power = 0", "greater than 0"),
        (FeatureParams, {"top_db": -1.0}, "top_db = -1.0", "greater than or equal to 0"),
        (FeatureParams, {"compute": ("mel", "spectral_flux")}, "compute[1] = 'spectral_flux'",
         "'mfcc'"),
        (FeatureParams, {"compute": ("mel", "mel")}, "compute = ('mel', 'mel')", "repeats"),
        (FeatureParams, {"fft_precision": "float16"}, "fft_precision = 'float16'", "'float64'"),
        (FeatureParams, {"center": "yes"}, "center = 'yes'", "valid boolean"),
    ],
)
def test_invalid_values_name_field_value_and_allowed(cls, kwargs, named, allowed):
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert f"{cls.__name__}.{named} is invalid" in message
    assert allowed in message
    assert isinstance(info.value, ValueError)


def test_no_feature_is_a_waveform_only_run():
    assert FeatureParams(compute=()).compute == ()


def test_from_dict_rejects_unknown_fields_and_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown key 'FeatureParams\.nfft'.*n_fft"):
        FeatureParams.from_dict({"nfft": 512})
    with pytest.raises(ConfigError, match=r"FeatureParams\.n_mfcc = 80 is invalid"):
        FeatureParams.from_dict({"n_mfcc": 80})


def test_params_are_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        FeatureParams().n_fft = 512  # type: ignore[misc]
