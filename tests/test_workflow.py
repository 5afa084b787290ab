"""Workflow files: every shipped file loads; errors name the file, key, value and choices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.config.params import FEATURES, RESAMPLE_QUALITIES, FeatureParams
from fieldkit.config.workflow import (
    Store,
    TimeOfDay,
    Workflow,
    load_workflow,
    workflow_json_schema,
)
from fieldkit.config.workflow_files import bundled_workflows_dir
from fieldkit.errors import ConfigError, NotFoundError
from fieldkit.store import layout as store_layout

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted(bundled_workflows_dir().glob("*.yaml"))
MINIMAL = {"name": "t", "clips": {"length_s": 3}}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def with_(section: str, **values) -> dict:
    return {**MINIMAL, section: {**MINIMAL.get(section, {}), **values}}


def test_the_shipped_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"birds-16k.yaml", "bats-ultrasonic.yaml", "demo.yaml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_shipped_workflow_loads(path):
    workflow = load_workflow(path)
    assert workflow.name == path.stem
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../../schemas/workflow.schema.json"
    # in a checkout the editor's schema link resolves to the generated schema
    assert (path.parent / first.partition("$schema=")[2]).resolve() == REPO / "schemas" / "workflow.schema.json"


def test_the_bats_workflow_keeps_ultrasound():
    bats = load_workflow(bundled_workflows_dir() / "bats-ultrasonic.yaml")
    assert bats.resample.target_rate_hz == 384000
    assert bats.selection.min_sample_rate_hz >= 256000
    assert bats.features.fmin_hz == 15000 and bats.features.fmax_hz <= 192000
    assert bats.clips.length_s == 0.5 and bats.features.n_fft == 512


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path):
    path = write(tmp_path, "name: t\nclips:\n  length_s: 3\n  lenght_s: 4\n")
    with pytest.raises(ConfigError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'clips.lenght_s'" in message
    assert "length_s, hop_s, min_valid_fraction, pad" in message


def test_unknown_top_level_section_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown key 'featurez'.*allowed keys here: name, "):
        Workflow.from_dict({**MINIMAL, "featurez": {}})


def test_bad_value_names_key_value_and_allowed_values(tmp_path):
    path = write(tmp_path, "name: t\nclips: {length_s: 3}\nresample: {quality: best}\n")
    with pytest.raises(ConfigError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message and "resample.quality = 'best'" in message
    for quality in RESAMPLE_QUALITIES:
        assert f"'{quality}'" in message


def test_bad_list_item_names_its_index():
    with pytest.raises(ConfigError, match=r"features\.compute\[1\] = 'mfccs'.*'mfcc'"):
        Workflow.from_dict(with_("features", compute=["mel", "mfccs"]))


@pytest.mark.parametrize(("section", "values", "expected"), [
    ("resample", {"target_rate_hz": 0}, r"resample\.target_rate_hz = 0 .*greater than 0"),
    ("clips", {"length_s": 3, "min_valid_fraction": 1.5}, r"min_valid_fraction = 1\.5"),
    ("store", {"clips_per_chunk": 8, "clips_per_shard": 100}, r"multiple of clips_per_chunk"),
    ("channels", {"policy": "pick"}, r"pick \(a channel index >= 0\) is required"),
    ("features", {"n_mfcc": 80}, r"n_mfcc \(80\) must be <= n_mels \(64\)"),
    ("features", {"n_fft": 1023}, r"n_fft \(1023\) must be even"),
    ("bit_depth", {"dither": "rpdf"}, r"bit_depth\.dither = 'rpdf'.*'tpdf' or 'none'"),
    ("selection", {"statuses": ["ok", "broken"]}, r"statuses\[1\] = 'broken'.*'quarantined'"),
    ("selection", {"start": "last tuesday"}, r"selection\.start = 'last tuesday'.*YYYY-MM-DD"),
    ("selection", {"start": "2024-05-02", "end": "2024-05-01"}, r"must be before end"),
    ("selection", {"time_of_day": {"start": "20:00", "end": "20:00"}}, r"window would be empty"),
    ("store", {"compressor": {"level": 12}}, r"store\.compressor\.level = 12"),
])
def test_invalid_values_are_explained(section, values, expected):
    with pytest.raises(ConfigError, match=expected):
        Workflow.from_dict(with_(section, **values))


def test_missing_clips_section_is_named():
    with pytest.raises(ConfigError, match="clips is required"):
        Workflow.from_dict({"name": "t"})


def test_fmax_above_nyquist_of_the_target_rate_is_rejected():
    data = {**with_("features", fmax_hz=12000.0), "resample": {"target_rate_hz": 16000}}
    with pytest.raises(ConfigError, match=r"features\.fmax_hz = 12000\.0 exceeds the Nyquist "
                                          r"frequency 8000 Hz.*<= 8000"):
        Workflow.from_dict(data)


def test_fmax_at_nyquist_and_kept_rate_are_accepted():
    at_nyquist = {**with_("features", fmax_hz=8000.0), "resample": {"target_rate_hz": 16000}}
    assert Workflow.from_dict(at_nyquist).features.fmax_hz == 8000.0
    native = {**with_("features", fmax_hz=100000.0), "resample": {"target_rate_hz": None}}
    assert Workflow.from_dict(native).resample.target_rate_hz is None


def test_clip_length_must_be_whole_samples():
    data = {**MINIMAL, "clips": {"length_s": 0.00001}, "resample": {"target_rate_hz": 16000}}
    with pytest.raises(ConfigError, match=r"clips\.length_s = 1e-05 is 0\.16 samples"):
        Workflow.from_dict(data)


def test_a_store_with_no_data_is_rejected():
    data = {**with_("features", compute=[]), "store": {"waveform": False}}
    with pytest.raises(ConfigError, match="would hold no data"):
        Workflow.from_dict(data)


def test_not_a_mapping_and_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"wf\.yaml: Input should be a valid dictionary"):
        load_workflow(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_workflow(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(NotFoundError, match=r"workflow file .*absent\.yaml does not exist") as err:
        load_workflow(tmp_path / "absent.yaml")
    assert err.value.exit_code == 66
    with pytest.raises(ConfigError, match="cannot read workflow file"):
        load_workflow(tmp_path)  # a directory


def test_duplicate_keys_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="duplicate key 'clips'"):
        load_workflow(write(tmp_path, "name: t\nclips: {length_s: 3}\nclips: {length_s: 5}\n"))


def test_unquoted_times_are_not_base_60_integers(tmp_path):
    text = "name: t\nclips: {length_s: 3}\nselection:\n  time_of_day: {start: 20:00, end: 06:00}\n"
    window = load_workflow(write(tmp_path, text)).selection.time_of_day
    assert (window.start, window.end) == (dt.time(20), dt.time(6))


def test_defaults():
    workflow = Workflow.from_dict(MINIMAL)
    assert workflow.clips.hop_s == 3.0  # hop defaults to the clip length
    assert workflow.selection.statuses == ("ok", "truncated")
    assert workflow.resample.quality == "HQ"
    assert "stft" not in workflow.features.compute


@pytest.mark.parametrize(("start", "end", "inside", "outside"), [
    ("20:00", "06:00", ["20:00", "23:59", "00:00", "05:59"], ["06:00", "12:00", "19:59"]),
    ("04:00", "09:30", ["04:00", "09:29"], ["09:30", "03:59", "22:00"]),
])
def test_time_of_day_window_wraps_midnight(start, end, inside, outside):
    window = TimeOfDay(start=start, end=end)
    assert all(window.contains(dt.time.fromisoformat(t)) for t in inside)
    assert not any(window.contains(dt.time.fromisoformat(t)) for t in outside)


def test_dates_are_whole_utc_days_and_datetimes_are_converted_to_utc():
    selection = Workflow.from_dict({**MINIMAL, "selection": {
        "start": "2024-05-01", "end": "2024-05-31"}}).selection
    assert selection.utc_bounds() == (dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
                                      dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    aware = Workflow.from_dict({**MINIMAL, "selection": {
        "start": "2024-05-01T22:00:00+02:00", "end": "2024-05-02T06:00:00"}}).selection
    assert aware.utc_bounds() == (dt.datetime(2024, 5, 1, 20, tzinfo=dt.UTC),
                                  dt.datetime(2024, 5, 2, 6, tzinfo=dt.UTC))


def test_params_hash_is_stable_and_ignores_name_and_description():
    base = Workflow.from_dict({**MINIMAL, "description": "one"})
    again = Workflow.from_dict({**MINIMAL, "name": "renamed", "description": "two"})
    assert base.params_hash() == again.params_hash()
    assert len(base.params_hash()) == 64
    assert base.params_hash() == Workflow.from_dict(base.to_dict()).params_hash()


@pytest.mark.parametrize(("section", "values"), [
    ("clips", {"length_s": 5}), ("features", {"n_mels": 32}), ("resample", {"quality": "VHQ"}),
    ("selection", {"sites": ["A"]}), ("store", {"dtype": "float16"}),
    ("bit_depth", {"seed": 1}),
])
def test_params_hash_changes_with_any_parameter(section, values):
    changed = Workflow.from_dict(with_(section, **values))
    assert changed.params_hash() != Workflow.from_dict(MINIMAL).params_hash()


def test_hop_default_and_explicit_hop_hash_alike():
    explicit = Workflow.from_dict(with_("clips", hop_s=3.0))
    assert explicit.params_hash() == Workflow.from_dict(MINIMAL).params_hash()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_round_trip_through_dict_and_yaml(path, tmp_path):
    workflow = load_workflow(path)
    assert Workflow.from_dict(workflow.to_dict()) == workflow
    dumped = write(tmp_path, yaml.safe_dump(workflow.to_dict(), sort_keys=False))
    assert load_workflow(dumped) == workflow


def test_models_are_frozen():
    workflow = Workflow.from_dict(MINIMAL)
    with pytest.raises(Exception, match="frozen"):
        workflow.clips.length_s = 5.0  # type: ignore[misc]


def test_json_schema_is_the_models_schema():
    schema = workflow_json_schema()
    assert schema == Workflow.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "clips"}


def test_store_defaults_are_the_measured_ones():
    defaults = Store()
    assert defaults.clips_per_chunk == store_layout.DEFAULT_CLIPS_PER_CHUNK
    assert defaults.clips_per_shard == store_layout.DEFAULT_CLIPS_PER_SHARD
    assert defaults.compressor.level == store_layout.DEFAULT_COMPRESSION_LEVEL


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_features_section_is_the_kernels_parameter_model(path):
    workflow = load_workflow(path)
    assert isinstance(workflow.features, FeatureParams)
    assert FeatureParams.from_dict(workflow.to_dict()["features"]) == workflow.features


workflows = st.builds(
    dict,
    name=st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
    description=st.text(max_size=40),
    clips=st.builds(dict, length_s=st.integers(1, 400).map(lambda n: n / 40),
                    min_valid_fraction=st.floats(0, 1)),
    features=st.builds(dict, n_mels=st.integers(20, 128), n_fft=st.sampled_from([256, 512, 2048]),
                       compute=st.lists(st.sampled_from(FEATURES), min_size=1, unique=True),
                       fmax_hz=st.none() | st.floats(100, 8000)),
    selection=st.builds(dict, sites=st.lists(st.text(min_size=1, max_size=8), max_size=3),
                        start=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)),
                        min_duration_s=st.floats(0, 1e4)),
    store=st.builds(dict, clips_per_chunk=st.sampled_from([1, 4, 8]),
                    compressor=st.builds(dict, level=st.integers(0, 9))),
)


@settings(max_examples=60, deadline=None)
@given(data=workflows)
def test_round_trip_property(data):
    workflow = Workflow.from_dict(data)
    again = Workflow.from_dict(workflow.to_dict())
    assert again == workflow
    assert again.params_hash() == workflow.params_hash()
    assert yaml.safe_load(yaml.safe_dump(workflow.to_dict())) == workflow.to_dict()


@settings(max_examples=40, deadline=None)
@given(data=workflows, key=st.from_regex(r"[a-z]{3,10}", fullmatch=True))
def test_any_unknown_key_is_named(data, key):
    section = "features"
    if key in FeatureParams.model_fields:
        return
    bad = {**data, section: {**data[section], key: 1}}
    with pytest.raises(ConfigError, match=f"unknown key '{section}.{key}'"):
        Workflow.from_dict(bad)
