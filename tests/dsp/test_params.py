"""Parameter dataclasses: round trips, validation messages, hashability."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldkit.config.params import (
    FEATURE_NAMES,
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
    features=st.lists(st.sampled_from(FEATURE_NAMES), min_size=1, unique=True).map(tuple),
    fft_precision=st.sampled_from(["float32", "float64"]),
)
other_params = st.one_of(
    st.builds(ResampleParams, target_rate_hz=st.integers(1, 384000) | st.floats(1, 384000),
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


def test_defaults_are_the_documented_ones():
    p = FeatureParams()
    assert (p.n_fft, p.hop_length, p.win_length, p.window, p.center, p.pad_mode) == (
        1024, 256, None, "hann", True, "constant")
    assert (p.n_mels, p.fmin_hz, p.fmax_hz, p.n_mfcc, p.n_chroma, p.tuning, p.power) == (
        64, 0.0, None, 20, 12, 0.0, 2.0)
    assert p.features == ("mel", "mfcc", "centroid", "bandwidth", "chroma", "rms")
    assert p.frame_length == 1024
    assert ResampleParams(16000).quality == "HQ"
    assert BitDepthParams() == BitDepthParams(policy="float32", dither="tpdf", seed=0)


def test_features_is_a_list_in_the_dict():
    assert FeatureParams().to_dict()["features"] == list(FeatureParams().features)


@pytest.mark.parametrize(
    ("cls", "kwargs", "field", "allowed"),
    [
        (ResampleParams, {"target_rate_hz": 0}, "target_rate_hz", "> 0"),
        (ResampleParams, {"target_rate_hz": 16000, "quality": "best"}, "quality", "VHQ"),
        (BitDepthParams, {"policy": "int24"}, "policy", "float32, int16"),
        (BitDepthParams, {"dither": "rpdf"}, "dither", "tpdf, none"),
        (BitDepthParams, {"seed": -1}, "seed", ">= 0"),
        (ClippingParams, {"min_run": 0}, "min_run", ">= 1"),
        (ClippingParams, {"fraction": 1.5}, "fraction", "(0, 1]"),
        (QCParams, {"frame_s": 0}, "frame_s", "> 0"),
        (QCParams, {"silence_threshold_dbfs": 3.0}, "silence_threshold_dbfs", "<= 0"),
        (FeatureParams, {"n_fft": 1000.5}, "n_fft", "even integer"),
        (FeatureParams, {"n_fft": 1001}, "n_fft", "even integer"),
        (FeatureParams, {"hop_length": 0}, "hop_length", ">= 1"),
        (FeatureParams, {"win_length": 2048}, "win_length", "n_fft=1024"),
        (FeatureParams, {"window": "kaiser"}, "window", "hann"),
        (FeatureParams, {"pad_mode": "wrap"}, "pad_mode", "constant"),
        (FeatureParams, {"fmax_hz": 0.0}, "fmax_hz", "fmin_hz"),
        (FeatureParams, {"n_mfcc": 65}, "n_mfcc", "n_mels=64"),
        (FeatureParams, {"tuning": 0.5}, "tuning", "[-0.5, 0.5)"),
        (FeatureParams, {"power": 0}, "power", "> 0"),
        (FeatureParams, {"features": ("mel", "spectral_flux")}, "features", "mfcc"),
        (FeatureParams, {"features": ()}, "features", "non-empty"),
        (FeatureParams, {"fft_precision": "float16"}, "fft_precision", "float64"),
        (FeatureParams, {"center": "yes"}, "center", "True or False"),
    ],
)
def test_invalid_values_name_field_value_and_allowed(cls, kwargs, field, allowed):
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert f"{cls.__name__}.{field} = {kwargs[field]!r}" in message
    assert allowed in message
    assert isinstance(info.value, ValueError)


def test_from_dict_rejects_unknown_fields_and_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['nfft'\].*n_fft"):
        FeatureParams.from_dict({"nfft": 512})


def test_params_are_frozen():
    with pytest.raises(AttributeError):
        FeatureParams().n_fft = 512  # type: ignore[misc]
