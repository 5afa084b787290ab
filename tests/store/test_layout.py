"""StoreLayout: DESIGN.md's variables, with chunks and shards along clip only."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import small_layout

from fieldkit.config.params import FeatureParams
from fieldkit.dsp.features import compute_features
from fieldkit.errors import ConfigError
from fieldkit.store.layout import QC_VARIABLES, SCHEMA_VERSION, StoreLayout


def test_variables_follow_the_design_table(layout):
    specs = {spec.name: spec for spec in layout.variables()}
    assert set(specs) == {"waveform", "valid_samples", "mel", "mfcc", "centroid", "bandwidth",
                          "chroma", "rms", *QC_VARIABLES, "nonfinite_count"}
    assert specs["nonfinite_count"].dims == ("clip",) and specs["nonfinite_count"].dtype == "int32"
    assert specs["waveform"].dims == ("clip", "sample")
    assert specs["waveform"].shape == (22, 32) and specs["waveform"].dtype == "float32"
    assert specs["valid_samples"].dims == ("clip",) and specs["valid_samples"].dtype == "int32"
    assert specs["mel"].dims == ("clip", "frame", "mel_band") and specs["mel"].shape == (22, 3, 5)
    assert specs["mfcc"].shape == (22, 3, 3) and specs["chroma"].shape == (22, 3, 4)
    assert specs["rms"].dims == ("clip", "frame")
    assert all(specs[name].dims == ("clip",) for name in QC_VARIABLES)


def test_chunks_and_shards_split_only_the_clip_axis(layout):
    for spec in layout.variables():
        assert spec.chunks[0] == 2 and spec.shards[0] == 4
        assert spec.chunks[1:] == spec.shards[1:] == spec.shape[1:]
    assert layout.n_shards == 6


def test_fill_values_make_unwritten_floats_nan(layout):
    assert np.isnan(layout.variable("mel").fill_value)
    assert layout.variable("valid_samples").fill_value == 0


def test_optional_variables_and_dtypes():
    lean = small_layout(waveform=False, features=("stft", "mel"),
                        bands={"mel_band": 5, "freq_bin": 9}, feature_dtype="float16")
    specs = {spec.name: spec for spec in lean.variables()}
    assert "waveform" not in specs
    assert specs["stft"].dims == ("clip", "frame", "freq_bin") and specs["stft"].shape[2] == 9
    assert specs["mel"].dtype == "float16"
    assert small_layout(waveform_dtype="int16").variable("waveform").dtype == "int16"


def test_hz_features_are_float32_in_a_float16_store():
    # Nyquist of a bat store (192 kHz at 384 kHz) is beyond float16's 65 504: +Inf if cast.
    half = small_layout(features=("mel", "centroid", "bandwidth", "rms"), feature_dtype="float16")
    dtypes = {spec.name: spec.dtype for spec in half.variables()}
    assert dtypes["centroid"] == dtypes["bandwidth"] == "float32"
    assert dtypes["mel"] == dtypes["rms"] == "float16"
    assert half.schema_version == SCHEMA_VERSION == "2" and "schema_version" not in half.to_dict()


def test_a_schema_1_layout_keeps_its_dtypes_and_has_no_flag():
    half = small_layout(features=("mel", "centroid", "bandwidth", "rms"), feature_dtype="float16")
    old = StoreLayout.from_dict(half.to_dict(), "1")
    dtypes = {spec.name: spec.dtype for spec in old.variables()}
    assert dtypes["centroid"] == dtypes["bandwidth"] == dtypes["mel"] == "float16"
    assert "nonfinite_count" not in dtypes and old != half
    assert StoreLayout.from_dict(half.to_dict()) == half
    with pytest.raises(ConfigError, match=r"schema_version = '3'.*1, 2"):
        StoreLayout.from_dict(half.to_dict(), "3")


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"clips_per_shard": 6, "clips_per_chunk": 4},
     r"clips_per_shard = 6 .*multiple of clips_per_chunk=4"),
    ({"features": ("stft",)}, r"bands = .*expected a width for freq_bin"),
    ({"bands": {"mel_band": 0}}, r"bands = \{'mel_band': 0\} .*widths >= 1"),
    ({"features": ("mel", "loudness")}, r"features = \('mel', 'loudness'\)"),
    ({"waveform_dtype": "float64"}, r"waveform_dtype = 'float64'.*float32, int16"),
    ({"compression_level": 10}, r"compression_level = 10"),
    ({"n_clips": 0}, r"n_clips = 0 .*>= 1"),
])
def test_invalid_layouts_are_explained(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        small_layout(**overrides)


def test_unknown_variable_lists_the_known_ones(layout):
    with pytest.raises(ConfigError, match="no data variable 'stft'.*known: waveform"):
        layout.variable("stft")


def test_from_feature_params_matches_the_dsp_output_shapes():
    params = FeatureParams(n_fft=256, hop_length=64, n_mels=16, n_mfcc=8,
                           compute=("mel", "mfcc", "chroma", "rms", "stft"))
    layout = StoreLayout.from_feature_params(5, 1600, 16000, params, clips_per_chunk=1,
                                             clips_per_shard=2)
    out = compute_features(np.zeros((5, 1600), np.float32), 16000, params)
    for name, values in out.items():
        assert layout.variable(name).shape == values.shape, name


def test_bytes_per_clip_counts_every_variable():
    # 32 samples, 3 frames: waveform, valid_samples, mel 5, mfcc 3, chroma 4, centroid, bandwidth, rms, 4 QC,
    # nonfinite_count
    floats = 32 + 3 * (5 + 3 + 4 + 1 + 1 + 1) + 4
    assert small_layout().bytes_per_clip == 4 * floats + 4 + 4
    assert small_layout(waveform_dtype="int16").bytes_per_clip == 4 * (floats - 32) + 2 * 32 + 4 + 4
    assert small_layout(waveform=False).bytes_per_clip == 4 * (floats - 32) + 4 + 4


def test_dict_round_trip(layout):
    again = StoreLayout.from_dict(layout.to_dict())
    assert again == layout
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['colour'\]"):
        StoreLayout.from_dict({**layout.to_dict(), "colour": "red"})
