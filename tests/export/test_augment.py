"""Augmentation of the train split: known answers on synthetic signals, and real exports.

The references: a tone pitch-shifted by +2 semitones must peak at f * 2**(2/12) (within 5 cents);
a stretch by rate 0.8 lasts 1/0.8 as long; reverse and gain are exact; a mix at 10 dB SNR has
10 dB between the clip and what was added. Exports: the same seed gives the same bytes, only
train clips are augmented, and the other splits' files are identical to an export without it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fieldkit.errors import ConfigError, ValidationError
from fieldkit.export.augment import apply_variant, parse_augment_spec
from fieldkit.export.exporter import export_dataset
from fieldkit.testing.signals import peak_hz, tone, white_noise
from tests.export.conftest import store_values

SR = 16000
SPEC = "pitch:+2,stretch:0.8,reverse,gain:-6,mix:snr=10@frog"


def one(text: str, y: np.ndarray, seed: int = 0, **kwargs) -> tuple[np.ndarray, list[dict]]:
    variant = parse_augment_spec(text).variants[0]
    return apply_variant(y, SR, variant, np.random.default_rng(seed), **kwargs)


@pytest.mark.parametrize("freq", [440.0, 1000.0, 2500.0])
@pytest.mark.parametrize("steps", [2.0, -3.0])
def test_pitch_shift_moves_the_peak_by_the_semitones(freq, steps):
    y = tone(freq, 1.0, SR)
    out, done = one(f"pitch:{steps:+g}", y)
    assert done == [{"op": "pitch", "value": steps}] and len(out) == len(y)
    middle = out[SR // 4: 3 * SR // 4]  # away from the edges of the phase vocoder
    cents = 1200 * math.log2(peak_hz(middle, SR) / (freq * 2 ** (steps / 12)))
    assert abs(cents) <= 5, cents


@pytest.mark.parametrize("rate", [0.8, 1.25, 0.5])
def test_stretch_changes_the_duration_by_one_over_the_rate(rate):
    y = tone(440.0, 1.0, SR)
    out, _ = one(f"stretch:{rate}", y)
    assert abs(len(out) - len(y) / rate) <= 1, (len(out), len(y) / rate)
    assert abs(1200 * math.log2(peak_hz(out[len(out) // 4: 3 * len(out) // 4], SR) / 440.0)) <= 5  # pitch kept


def test_reverse_gain_and_a_chain_are_exact():
    y = white_noise(0.5, SR, rms=0.1, seed=3)
    assert np.array_equal(one("reverse", y)[0], y[::-1])
    out, done = one("gain:-6", y)
    np.testing.assert_allclose(out, y * 10 ** (-6 / 20), rtol=1e-6)
    chained, done = one("reverse|gain:+6", y)
    np.testing.assert_allclose(chained, y[::-1] * 10 ** (6 / 20), rtol=1e-6)
    assert [d["op"] for d in done] == ["reverse", "gain"]


def test_mix_adds_a_background_at_the_asked_snr():
    y = tone(1000.0, 1.0, SR, amplitude=0.3)
    background = white_noise(0.3, SR, rms=0.05, seed=9)  # shorter than the clip: repeated
    out, done = one("mix:snr=10", y, backgrounds={None: [7]}, load={7: background}.__getitem__, clip_id=1)
    added = out - y
    snr = 10 * math.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=1e-3) and done[0]["background_clip_id"] == 7
    with pytest.raises(ValidationError, match="no background clip"):
        one("mix:snr=10", y, backgrounds={None: [1]}, load={1: background}.__getitem__, clip_id=1)  # never itself


def test_ranges_are_drawn_per_seed():
    y = tone(440.0, 0.2, SR)
    a = one("gain:-6..0", y, seed=1)[1][0]["value"]
    assert a == one("gain:-6..0", y, seed=1)[1][0]["value"] and -6 <= a <= 0
    assert a != one("gain:-6..0", y, seed=2)[1][0]["value"]


@pytest.mark.parametrize("spec,part", [("pitch:abc", "'pitch:abc'"), ("warp:2", "'warp:2'"),
                                       ("stretch:9", "outside 0.25..4"), ("pitch:+2,,reverse", "empty copy"),
                                       ("mix:10", "snr=DB"), ("gain:0..-6", "backwards")])
def test_a_bad_spec_names_the_part_and_the_forms(spec, part):
    with pytest.raises(ConfigError, match="--augment") as err:
        parse_augment_spec(spec)
    assert part in str(err.value) and "pitch:+2" in err.value.hint


# -- in an export ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def augmented(tmp_path_factory, export_input):
    base = tmp_path_factory.mktemp("augmented")
    spec = parse_augment_spec(SPEC, seed=7)
    plain = export_dataset(export_input, base / "plain", format="numpy", published=pd.Timestamp("2026-01-01").date())
    first = export_dataset(export_input, base / "a", format="numpy", augment=spec,
                           published=pd.Timestamp("2026-01-01").date())
    again = export_dataset(export_input, base / "b", format="numpy", augment=spec,
                           published=pd.Timestamp("2026-01-01").date())
    return plain, first, again


def test_only_train_clips_are_augmented_and_each_is_recorded(augmented, export_input, store_path):
    _, result, _ = augmented
    out = result.out_dir
    index = pd.read_csv(out / "augmented" / "index.csv")
    train = export_input.split_index("train")
    assert len(index) == 5 * len(train) and set(index["split"]) == {"train"}
    assert set(index["source_clip_id"]) == set(train["clip_id"])
    assert set(index["source_clip_id"]).isdisjoint(export_input.index.loc[export_input.index["split"] != "train",
                                                                         "clip_id"])
    labels = dict(zip(train["clip_id"], train["labels"].map(";".join)))
    assert all(labels[c] == lab for c, lab in zip(index["source_clip_id"], index["labels"]))
    for row in index.itertuples():
        assert result.files[row.file] == row.sha256
    lineage = json.loads((out / "augmented" / "lineage.json").read_text())
    assert [r["key"] for r in lineage] == index["key"].tolist()
    assert all(r["source"]["recording_sha256"] and r["libraries"]["librosa"] for r in lineage)
    card = (out / "README.md").read_text()
    assert "## Augmentation (train split only)" in card and SPEC in card and "seed 7" in card
    # the files against the store: reverse is the stored clip backwards (24-bit FLAC), stretch is 1/0.8 long
    clip = int(train["clip_id"].iloc[0])
    stored = store_values(store_path, "waveform", np.array([clip]))[0]
    valid = int(store_values(store_path, "valid_samples", np.array([clip]))[0])
    rows = index[index["source_clip_id"] == clip].set_index("variant")
    reversed_, rate = sf.read(out / rows.loc["reverse", "file"], dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(reversed_, np.clip(stored[:valid][::-1], -1, 1), atol=2 ** -22)
    stretched, _ = sf.read(out / rows.loc["stretch:0.8", "file"], dtype="float32")
    assert abs(len(stretched) - valid / 0.8) <= 1


def test_other_splits_and_the_arrays_are_untouched(augmented):
    plain, result, _ = augmented
    # the card gains a section; croissant.json and export.json carry the time of writing
    shared = {k: v for k, v in plain.files.items() if k not in ("README.md", "croissant.json", "export.json")}
    changed = [k for k, v in shared.items() if result.files[k] != v]
    assert shared and not changed, f"un-augmented files changed: {changed}"
    assert any(k.startswith("validation") or "/validation" in k for k in shared)
    assert not any(k.startswith("augmented/") for k in plain.files)
    before, after = ({k: v for k, v in json.loads((r.out_dir / "export.json").read_text()).items()
                      if k != "created_utc"} for r in (plain, result))
    assert before == after


def test_same_seed_same_bytes(augmented, export_input, tmp_path):
    _, first, again = augmented
    ours = {k: v for k, v in first.files.items() if k.startswith("augmented/")}
    assert ours and ours == {k: v for k, v in again.files.items() if k.startswith("augmented/")}
    other = export_dataset(export_input, tmp_path / "c", format="numpy",
                           augment=parse_augment_spec("mix:snr=0..20@frog", seed=8))
    drawn = pd.read_csv(other.out_dir / "augmented" / "index.csv")["operations"].map(json.loads)
    assert len({d[0]["value"] for d in drawn}) == len(drawn)  # a value per clip, not one for all


class Recorder:
    """The progress protocol of the CLI's bars, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, items: int, weight: int) -> None:
        self.calls.append(("start", items, weight))

    def advance(self, name: str, weight: int) -> None:
        self.calls.append(("advance", weight))

    def finish(self) -> None:
        self.calls.append(("finish",))


def test_progress_follows_the_train_clips(export_input, tmp_path):
    recorder = Recorder()
    spec = parse_augment_spec("reverse,gain:-3", seed=1).with_progress(recorder)
    export_dataset(export_input, tmp_path / "p", format="numpy", augment=spec)
    n = len(export_input.split_index("train"))
    assert recorder.calls == [("start", n, 2 * n), *[("advance", 2)] * n, ("finish",)]
