"""Augmented copies of the train split: pitch shift, time stretch, reverse, gain, background mixing.

``fieldkit export NAME --augment SPEC`` adds, for every clip of the **train** split only, one
augmented copy per *variant* of ``SPEC``, written as FLAC next to the export's arrays (the
validation and test splits, and the train arrays themselves, are never touched). The grammar::

    SPEC    := variant ("," variant)*          one augmented copy of each train clip per variant
    variant := op ("|" op)*                    operations applied left to right
    op      := "pitch:" range                  semitones (librosa.effects.pitch_shift, soxr_hq)
             | "stretch:" range                rate; 0.8 makes a clip 1/0.8 = 1.25 x longer
                                               (librosa.effects.time_stretch)
             | "gain:" range                   decibels
             | "reverse"
             | "mix:snr=" range ["@" LABEL]    add a background clip of the train split (label
                                               LABEL, default ``background``; else an unlabelled
                                               clip) at this signal-to-noise ratio in dB
    range   := number | number ".." number     a fixed value, or drawn uniformly per clip

e.g. ``pitch:+2,stretch:0.8,reverse,gain:-6,mix:snr=10`` (five copies of each train clip) or
``pitch:-2..2|gain:-6..0`` (one copy, both drawn per clip). Every draw comes from a generator
seeded with ``(seed, clip_id, variant)``, so the same seed gives the same bytes whatever the
order of work. Each augmented item is recorded in ``augmented/index.csv`` (source clip, labels,
operations and drawn values, file, SHA-256), in ``augmented/lineage.json`` (with the source
clip's lineage) and in a section of the dataset card.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fieldkit.errors import ConfigError, ValidationError
from fieldkit.export.pooling import open_source
from fieldkit.export.request import ExportInput, file_sha256
from fieldkit.store.regions import read_layout

__all__ = ["AugmentSpec", "Operation", "Variant", "apply_variant", "parse_augment_spec", "write_augmented"]

FOLDER = "augmented"
DEFAULT_BACKGROUND = "background"
#: name -> (unit, allowed interval): values outside are refused with the interval in the message.
LIMITS = {"pitch": ("semitones", -24.0, 24.0), "stretch": ("rate", 0.25, 4.0),
          "gain": ("dB", -60.0, 24.0), "mix": ("dB SNR", -20.0, 60.0)}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(rf"^({_NUMBER})(?:\.\.({_NUMBER}))?$")
FORMS = "pitch:+2, stretch:0.8, gain:-6, reverse, mix:snr=10 (or mix:snr=10@LABEL); a..b draws a value per clip"


@dataclass(frozen=True)
class Operation:
    """One operation: its kind, a value or a range to draw from, and (mix) the background label."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    background: str | None = None
    text: str = ""

    def draw(self, rng: np.random.Generator) -> float:
        """The value for one clip: fixed, or uniform in [low, high]."""
        return self.low if self.low == self.high else float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Variant:
    """Operations applied in order to make one augmented copy of a clip."""

    operations: tuple[Operation, ...]
    text: str


@dataclass(frozen=True)
class AugmentSpec:
    """A parsed ``--augment`` value (see the module docstring) and the seed of its draws."""

    variants: tuple[Variant, ...]
    text: str
    seed: int = 0
    #: ``start(items, weight) / advance(name, weight) / finish()`` (the CLI's progress bars), or None
    progress: Any = field(default=None, compare=False, repr=False)

    def with_seed(self, seed: int) -> AugmentSpec:
        """The same spec with another seed."""
        return AugmentSpec(self.variants, self.text, seed, self.progress)

    def with_progress(self, progress: Any) -> AugmentSpec:
        """The same spec, reporting its work to ``progress``."""
        return AugmentSpec(self.variants, self.text, self.seed, progress)


def _bad(part: str, why: str) -> ConfigError:
    return ConfigError(f"--augment: {part!r} {why}.", hint=f"Write operations as {FORMS}; ',' separates "
                       "copies, '|' chains operations in one copy.")


def _range(kind: str, text: str, part: str) -> tuple[float, float]:
    match = _RANGE.match(text.strip())
    if not match:
        raise _bad(part, f"needs a number or a range a..b after '{kind}:'")
    low = float(match.group(1))
    high = float(match.group(2)) if match.group(2) is not None else low
    unit, lo, hi = LIMITS[kind]
    if low > high or low < lo or high > hi:
        raise _bad(part, f"is outside {lo:g}..{hi:g} {unit} (or the range runs backwards)")
    return low, high


def _operation(part: str) -> Operation:
    text = part.strip()
    if text == "reverse":
        return Operation("reverse", text=text)
    kind, _, value = text.partition(":")
    kind = kind.strip().lower()
    if kind in ("pitch", "stretch", "gain"):
        low, high = _range(kind, value, text)
        return Operation(kind, low, high, text=text)
    if kind == "mix":
        body, _, label = value.partition("@")
        if not body.strip().lower().startswith("snr="):
            raise _bad(text, "needs snr=DB, e.g. mix:snr=10")
        low, high = _range("mix", body.strip()[4:], text)
        return Operation("mix", low, high, background=label.strip() or None, text=text)
    raise _bad(text, "is not an operation")


def parse_augment_spec(text: str, seed: int = 0) -> AugmentSpec:
    """Parse ``--augment SPEC``; :class:`ConfigError` names the part that is wrong and the forms.

    Parameters
    ----------
    text : str
        e.g. ``"pitch:+2,stretch:0.8,reverse,gain:-6,mix:snr=10"``.
    seed : int
        Seed of every random draw (ranges, background choice).

    Returns
    -------
    AugmentSpec
    """
    variants = []
    for chunk in text.split(","):
        if not chunk.strip():
            raise _bad(text, "has an empty copy (two commas, or a trailing one)")
        ops = tuple(_operation(p) for p in chunk.split("|"))
        variants.append(Variant(ops, chunk.strip()))
    return AugmentSpec(tuple(variants), text.strip(), seed)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` repeated or cut to ``n`` samples (a background as long as the clip)."""
    if len(y) == 0:
        return np.zeros(n, dtype=np.float32)
    return np.resize(y, n)


def _power(y: np.ndarray) -> float:
    return float(np.mean(np.square(y, dtype=np.float64))) if len(y) else 0.0


def apply_variant(y: np.ndarray, sr: int, variant: Variant, rng: np.random.Generator,
                  backgrounds: dict[str | None, list[int]] | None = None,
                  load: Callable[[int], np.ndarray] | None = None,
                  clip_id: int = -1) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Apply one variant to a clip's samples.

    Parameters
    ----------
    y : ndarray
        float32 mono samples in [-1, 1].
    sr : int
        Sample rate, Hz.
    variant : Variant
    rng : numpy.random.Generator
        The draws for this clip and variant.
    backgrounds : dict, optional
        Background label -> the clip ids the ``mix`` operations draw from.
    load : callable, optional
        ``clip_id -> samples`` of a background clip (read when drawn, so memory stays flat).
    clip_id : int
        The source clip (never mixed with itself).

    Returns
    -------
    (ndarray, list of dict)
        The augmented float32 samples and, per operation, what was done (``op`` and the drawn
        ``value``; ``mix`` adds ``background_clip_id`` and ``gain``).
    """
    import librosa

    out = np.asarray(y, dtype=np.float32)
    done: list[dict[str, Any]] = []
    for op in variant.operations:
        if op.kind == "reverse":
            out = out[::-1].copy()
            done.append({"op": "reverse"})
            continue
        value = op.draw(rng)
        if op.kind == "pitch":
            out = librosa.effects.pitch_shift(out, sr=sr, n_steps=value, res_type="soxr_hq")
        elif op.kind == "stretch":
            out = librosa.effects.time_stretch(out, rate=value)
        elif op.kind == "gain":
            out = out * np.float32(10.0 ** (value / 20.0))
        elif op.kind == "mix":
            pool = [c for c in (backgrounds or {}).get(op.background, []) if c != clip_id]
            if not pool:
                raise ValidationError(f"--augment {op.text!r}: no background clip to mix in (train clips labelled "
                                      f"{op.background or DEFAULT_BACKGROUND!r}, or without labels).",
                                      hint="Create the dataset with --background LABEL, or name the label: "
                                           "mix:snr=10@LABEL.")
            bg_id = pool[int(rng.integers(len(pool)))]
            bg = _fit_length(load(bg_id), len(out))
            p_sig, p_bg = _power(out), _power(bg)
            gain = float(np.sqrt(p_sig / (p_bg * 10.0 ** (value / 10.0)))) if p_sig > 0 and p_bg > 0 else 0.0
            out = out + np.float32(gain) * bg
            done.append({"op": "mix", "value": value, "background_clip_id": int(bg_id), "gain": gain})
            continue
        done.append({"op": op.kind, "value": value})
    return np.asarray(out, dtype=np.float32), done


@dataclass
class _Source:
    """The run's waveforms, read lazily one clip at a time (valid samples only)."""

    store_path: Path
    ds: Any = field(init=False)
    sr: int = field(init=False)
    scale: float = field(init=False)
    valid: Any = field(init=False)

    def __post_init__(self) -> None:
        layout = read_layout(self.store_path)
        if not layout.waveform:
            raise ValidationError(f"the run's store {self.store_path} holds no waveform; --augment needs "
                                  "the clips' samples.", hint="Process the recordings with store.waveform: true.")
        self.ds = open_source(self.store_path)
        self.sr = int(layout.sample_rate_hz)
        self.scale = 1.0 / 32768.0 if np.dtype(self.ds["waveform"].dtype) == np.int16 else 1.0
        self.valid = self.ds["valid_samples"].values if "valid_samples" in self.ds else None  # one int per clip

    def samples(self, clip_id: int) -> np.ndarray:
        raw = np.asarray(self.ds["waveform"][clip_id].values)
        n = len(raw) if self.valid is None else int(self.valid[clip_id])
        return raw[:n].astype(np.float32) * np.float32(self.scale)


def _backgrounds(spec: AugmentSpec, train: pd.DataFrame) -> dict[str | None, list[int]]:
    """For each background label the spec names, the train clips it may draw from."""
    wanted = {op.background for v in spec.variants for op in v.operations if op.kind == "mix"}
    out: dict[str | None, list[int]] = {}
    for label in wanted:
        name = label or DEFAULT_BACKGROUND
        ids = [int(r.clip_id) for r in train.itertuples() if list(r.labels) == [name]]
        if not ids and label is None:
            ids = [int(r.clip_id) for r in train.itertuples() if len(r.labels) == 0]
        out[label] = ids
    return out


def _versions() -> dict[str, str]:
    found = {}
    for name in ("librosa", "soxr", "soundfile", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def _card_section(spec: AugmentSpec, rows: list[dict[str, Any]], n_train: int, sr: int,
                  versions: dict[str, str]) -> str:
    variants = "\n".join(f"| {i} | `{v.text}` | {sum(1 for r in rows if r['variant_index'] == i)} |"
                         for i, v in enumerate(spec.variants))
    return f"""
## Augmentation (train split only)

`--augment "{spec.text}"`, seed {spec.seed}: {len(spec.variants)} augmented cop{'y' if len(spec.variants) == 1 else 'ies'}
of each of the {n_train} train clips, {len(rows)} FLAC files (mono, {sr} Hz, 24-bit) in `{FOLDER}/train/`.
The validation and test splits, and the train arrays above, are not augmented. Each item is listed
in `{FOLDER}/index.csv` (source `clip_id`, labels, operations with the values drawn, file, SHA-256)
and traced in `{FOLDER}/lineage.json` (with its source clip's lineage). Made with librosa
{versions['librosa']} (`effects.pitch_shift` with soxr_hq resampling, `effects.time_stretch`), soxr
{versions['soxr']}, soundfile {versions['soundfile']}.

| variant | operations | items |
|---|---|---|
{variants}

```python
import pandas as pd, soundfile as sf
augmented = pd.read_csv("{FOLDER}/index.csv")
samples, rate = sf.read(augmented["file"][0], dtype="float32")
```
"""


def _augment_clip(item: Any, spec: AugmentSpec, source: _Source, backgrounds: dict, lineage_by_clip: dict,
                  versions: dict[str, str], out_dir: Path, rows: list, lineage: list) -> None:
    """Every variant of one train clip, written as FLAC and recorded in ``rows`` and ``lineage``."""
    import soundfile as sf

    clip_id = int(item.clip_id)
    y = source.samples(clip_id)
    for index, variant in enumerate(spec.variants):
        rng = np.random.default_rng([spec.seed, clip_id, index])
        out, done = apply_variant(y, source.sr, variant, rng, backgrounds, source.samples, clip_id)
        clipped = int(np.count_nonzero(np.abs(out) > 1.0))
        rel = f"{FOLDER}/train/{clip_id:07d}-{index}.flac"
        sf.write(out_dir / rel, np.clip(out, -1.0, 1.0), source.sr, format="FLAC", subtype="PCM_24")
        digest = file_sha256(out_dir / rel)
        rows.append({"key": f"{clip_id:07d}-{index}", "source_clip_id": clip_id,
                     "recording_id": int(item.recording_id), "recording_sha256": item.recording_sha256,
                     "split": "train", "labels": ";".join(item.labels), "variant_index": index,
                     "variant": variant.text, "operations": json.dumps(done), "seed": spec.seed,
                     "file": rel, "sample_rate_hz": source.sr, "n_samples": len(out),
                     "duration_s": len(out) / source.sr, "clipped_samples": clipped, "sha256": digest})
        lineage.append({"key": rows[-1]["key"], "file": rel, "sha256": digest, "variant": variant.text,
                        "operations": done, "seed": spec.seed, "libraries": versions,
                        "source": lineage_by_clip.get(clip_id, {"clip_id": clip_id})})


def write_augmented(inp: ExportInput, spec: AugmentSpec, out_dir: Path,
                    files: dict[str, str]) -> dict[str, str]:
    """Write the augmented train items into ``out_dir`` and record them in index, lineage and card.

    Parameters
    ----------
    inp : ExportInput
        The dataset being exported (its train split is augmented).
    spec : AugmentSpec
    out_dir : Path
        The export folder being written; its ``README.md`` (the card) gets a section.
    files : dict
        The export's files so far (relative path -> SHA-256); the card's entry is updated.

    Returns
    -------
    dict
        Relative path -> SHA-256 of every file written or changed.
    """
    train = inp.split_index("train")
    if train.empty:
        raise ValidationError("--augment works on the train split, and this dataset has no train clips.")
    source = _Source(inp.store)
    backgrounds = _backgrounds(spec, train)
    lineage_by_clip = {int(r["clip_id"]): r for r in inp.lineage}
    folder = out_dir / FOLDER / "train"
    folder.mkdir(parents=True, exist_ok=True)
    rows, lineage = [], []
    versions = _versions()
    if spec.progress is not None:
        spec.progress.start(len(train), len(train) * len(spec.variants))
    try:
        for item in train.itertuples():
            _augment_clip(item, spec, source, backgrounds, lineage_by_clip, versions, out_dir, rows, lineage)
            if spec.progress is not None:
                spec.progress.advance(str(item.clip_id), len(spec.variants))
    finally:
        if spec.progress is not None:
            spec.progress.finish()
    pd.DataFrame(rows).to_csv(out_dir / FOLDER / "index.csv", index=False)
    (out_dir / FOLDER / "lineage.json").write_text(json.dumps(lineage, indent=1, default=str) + "\n",
                                                   encoding="utf-8")
    card = out_dir / "README.md"
    if card.is_file():
        with open(card, "a", encoding="utf-8") as fh:
            fh.write(_card_section(spec, rows, len(train), source.sr, versions))
    written = {f"{FOLDER}/index.csv": file_sha256(out_dir / FOLDER / "index.csv"),
               f"{FOLDER}/lineage.json": file_sha256(out_dir / FOLDER / "lineage.json")}
    written |= {r["file"]: r["sha256"] for r in rows}
    if card.is_file():
        written["README.md"] = file_sha256(card)
    return written

