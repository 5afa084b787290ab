"""The dataset card (``README.md``), rendered with Jinja2 from the export's plain input.

Section headings follow "Datasheets for Datasets" as Hugging Face cards do: what, where, when,
how it was processed, quality control, labels per split, split policy, how to load it, files,
licence and known limitations. The YAML front matter lets the Hugging Face Hub read the card
(licence, task, tags and, for the Parquet format, ``configs``/``data_files``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from fieldkit.errors import ConfigError
from fieldkit.export.formats import ExportFormat
from fieldkit.export.pooling import open_source
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.export.sidecars import iso_z
from fieldkit.export.tabular import parquet_file
from fieldkit.export.wds_shards import SHARD_FEATURES

__all__ = ["CARD_TEMPLATE", "card_context", "label_counts", "loading_snippet", "write_card"]

#: Array shown in the loading snippet of the array formats: the first one the run stored.
SNIPPET_ARRAYS = ("mel", "logmel", "mfcc", "waveform")

CARD_TEMPLATE = """\
---
license: {{ licence | lower }}
pretty_name: {{ name }}
task_categories:
- audio-classification
tags:
- bioacoustics
- fieldkit
{%- if data_files %}
configs:
- config_name: default
  data_files:
{%- for split, path in data_files.items() %}
  - split: {{ split }}
    path: {{ path }}
{%- endfor %}
{%- endif %}
---

# {{ name }} (version {{ version }})

{{ description }}

## What

{{ n_clips }} clips of {{ clip_s }} s at {{ sample_rate_hz }} Hz, cut from {{ n_recordings }} \
recordings, labelled with {{ label_names | length }} label(s): {{ label_names | join(", ") }}.
{{ "Every clip has exactly one label (single-label classification)." if single_label else \
"A clip may have several labels, or none (multi-label)." }}
Format: **{{ format.name }}**, {{ format.description }}.

## Where

| site | deployment | clips |
|---|---|---|
{% for row in where -%}
| {{ row.site }} | {{ row.deployment }} | {{ row.clips }} |
{% endfor %}
## When

{% if first_time -%}
Clip start times (UTC) range from {{ first_time }} to {{ last_time }}.
{%- else -%}
No clip has a known start time.
{%- endif %}
{% if n_unknown_time %}{{ n_unknown_time }} clip(s) have no known start time.{% endif %}

## How it was processed

Workflow `{{ workflow.get("name", "?") }}`; every parameter of the run:

```json
{{ workflow_json }}
```

| library | version |
|---|---|
{% for lib, ver in versions.items() -%}
| {{ lib }} | {{ ver }} |
{% endfor %}
## Quality control

| measure | value |
|---|---|
{% for key, value in qc_summary -%}
| {{ key }} | {{ value }} |
{% endfor %}
## Labels

{{ label_names | length }} label(s), in class-index order: {% for n in label_names %}{{ loop.index0 }} = `{{ n }}`{{ ", " if not loop.last }}{% endfor %} (also `label_names` in `export.json`).
{{ "Single-label: every clip has exactly one label." if single_label else "Multi-label: a clip may have several labels, or none." }} In this {{ format.name }} export:
{{ label_encoding }}
`index.parquet` / `index.csv` list each clip's label names joined by `;`.

## Audio

{{ audio_text }}

## Label counts per split

Clips carrying each label in each split.

| label | {{ splits | join(" | ") }} | total |
|---|{% for s in splits %}---|{% endfor %}---|
{% for row in label_table -%}
| {{ row.label }} | {{ row.counts | join(" | ") }} | {{ row.total }} |
{% endfor %}
## Split policy

Clips are split by whole groups of `{{ split_by }}` (no group is in two splits, so no
{{ split_by }} leaks between training and evaluation), stratified by label, with seed
{{ seed }} and target ratios {{ ratios }} (train, validation, test). Split manifest hash:
`{{ manifest_hash }}`. The `split` column of `index.parquet` holds each clip's assignment.

## How to load it

Run from this folder:

```python
{{ snippet }}
```

## Files

{% for entry in file_groups -%}
- `{{ entry.path }}`: {{ entry.files }} file(s)
{% endfor -%}
{% if data_files -%}
- Parquet columns: `clip_id`, `recording_id`, `recording_sha256`, `file_name`, `site`,
  `deployment`, `start_time` (UTC, ISO 8601), `start_s`, `end_s`; `audio` (HF `Audio`:
  FLAC bytes and path); `<feature>_mean` and `<feature>_std` over the frames of real audio
  (fixed-length lists for band features); the QC columns `clipped_fraction`, `peak_dbfs`,
  `dc_offset`, `silent_fraction`; `{{ "label" if single_label else "labels" }}` and `split`
{% endif -%}
- `index.parquet`, `index.csv`: one row per clip, in array order within each split: clip and
  recording ids, archive file name, start time (UTC, ISO 8601), start/end seconds, site,
  deployment, labels, split and where its audio is
- `lineage.json`: recording hash, archive path, cards, ingest sessions, source paths, run and
  parameter hash of every clip
- `croissant.json`: MLCommons Croissant 1.0 metadata; `manifest.json`: SHA-256 and size of
  every file

## Licence

{{ licence }}

## Known limitations

{% for item in limitations -%}
- {{ item }}
{% endfor %}"""


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def label_counts(inp: ExportInput) -> list[dict[str, Any]]:
    """Rows of the label-count table: per label, clips in each split and in total."""
    per_split = {s: Counter(n for names in inp.split_index(s)["labels"] for n in names)
                 for s in inp.splits}
    rows = [{"label": _cell(label), "counts": [per_split[s][label] for s in inp.splits],
             "total": sum(per_split[s][label] for s in inp.splits)}
            for label in inp.label_names]
    sizes = [len(inp.split_index(s)) for s in inp.splits]
    return [*rows, {"label": "**clips**", "counts": sizes, "total": sum(sizes)}]


def loading_snippet(inp: ExportInput, fmt: ExportFormat) -> str:
    """The format's five lines of loading code for this export."""
    stored = set(open_source(inp.store).data_vars)
    array = next((a for a in SNIPPET_ARRAYS if a in stored), "valid_samples")
    data_files = {s: parquet_file(s) for s in inp.splits}
    return jinja2.Template(fmt.snippet).render(
        splits=list(inp.splits), first=inp.splits[0], array=array, data_files=data_files,
        label_column="label" if inp.single_label else "labels", audio=inp.audio != "none",
        shard_size=inp.shard_size, shard_feature=next(
            (f for f in SHARD_FEATURES if f in stored), "valid_samples"))


def _where(index: pd.DataFrame) -> list[dict[str, Any]]:
    groups = index.fillna({"site": "?", "deployment": "?"}).groupby(["site", "deployment"])
    return [{"site": _cell(site), "deployment": _cell(dep), "clips": len(rows)}
            for (site, dep), rows in groups]


def _file_groups(files: dict[str, str]) -> list[dict[str, Any]]:
    counts = Counter("/".join(f.split("/")[:2]) for f in files if f.startswith(("data/", "audio/", "lhotse/")))
    return [{"path": path, "files": n} for path, n in sorted(counts.items())]


def limitations(inp: ExportInput) -> list[str]:
    """Known limitations worth a reader's attention, computed from the export."""
    items = [("Labels were assigned to clips by overlap with annotations; a clip overlapping "
              "an event only briefly still carries its label."),
             ("Pooled statistics (Parquet, baseline) are means and standard deviations over "
              "the frames of real audio; they discard temporal structure.")]
    for split in inp.splits:
        present = {n for names in inp.split_index(split)["labels"] for n in names}
        missing = [n for n in inp.label_names if n not in present]
        if missing:
            items.append(f"Split {split} has no clip labelled {', '.join(missing)}.")
    sites = inp.index["site"].nunique()
    if sites < 3:
        items.append(f"All clips come from {sites} site(s): models may learn the place (its "
                     "background noise, its recorder) rather than the sound.")
    groups = inp.index[inp.split_by].nunique() if inp.split_by in inp.index else None
    if groups is not None and groups < 10:
        items.append(f"Only {groups} {inp.split_by} group(s): evaluation reflects few places "
                     "or periods and may not generalise.")
    return [_cell(i) for i in items]


def _what(inp: ExportInput) -> dict[str, Any]:
    layout = open_source(inp.store).attrs.get("layout", {})
    rate = layout.get("sample_rate_hz", 0)
    return {"n_clips": len(inp.index), "n_recordings": inp.index["recording_sha256"].nunique(),
            "clip_s": layout.get("samples_per_clip", 0) / rate if rate else "?",
            "sample_rate_hz": rate or "?", "label_names": list(inp.label_names),
            "single_label": inp.single_label}


def _when(index: pd.DataFrame) -> dict[str, Any]:
    times = index["start_time"].dropna()
    return {"first_time": iso_z(times.min()) if len(times) else "",
            "last_time": iso_z(times.max()) if len(times) else "",
            "n_unknown_time": int(index["start_time"].isna().sum())}


def _ordered_like(value: Any, reference: Any) -> Any:
    """``value`` with its mappings' keys in ``reference``'s order (others after, sorted).

    A catalogue on PostgreSQL stores JSON as ``jsonb``, which keeps no key order; the card shows
    the workflow in its declared order whichever backend it was read from.
    """
    if isinstance(value, dict):
        ref = reference if isinstance(reference, dict) else {}
        keys = [k for k in ref if k in value] + sorted((k for k in value if k not in ref), key=str)
        return {k: _ordered_like(value[k], ref.get(k)) for k in keys}
    if isinstance(value, list):
        ref = reference if isinstance(reference, list) else []
        return [_ordered_like(v, ref[i] if i < len(ref) else None) for i, v in enumerate(value)]
    return value


def _workflow_order(workflow: dict[str, Any]) -> dict[str, Any]:
    """The stored workflow in the order of :class:`~fieldkit.config.workflow.Workflow`'s fields."""
    from fieldkit.config.workflow import Workflow  # pydantic models: only when a card is written

    try:
        reference = Workflow.from_dict({k: v for k, v in workflow.items() if k in Workflow.model_fields}).to_dict()
    except ConfigError:  # a workflow of an older fieldkit: its keys sorted, still the same on every backend
        reference = {}
    return _ordered_like(workflow, reference)


def _versions_order(versions: dict[str, Any]) -> dict[str, Any]:
    """Library versions, fieldkit first, then by name: the same order on every catalogue backend."""
    return {k: versions[k] for k in sorted(versions, key=lambda k: (k != "fieldkit", str(k).lower()))}


def _how(inp: ExportInput) -> dict[str, Any]:
    def text(value: Any) -> str:
        return _cell(json.dumps(value, default=str) if isinstance(value, dict | list) else value)

    workflow = _workflow_order(inp.workflow)
    return {"workflow": workflow,
            "workflow_json": json.dumps(workflow, indent=1, default=str),
            "versions": {_cell(k): text(v) for k, v in _versions_order(inp.versions).items()},
            "qc_summary": [(_cell(k), text(v)) for k, v in inp.qc_summary.items()]}


#: How each format encodes labels (the one convention, stated in the card).
LABEL_ENCODINGS = {
    "zarr": "`labels` (clip, label) uint8 multi-hot over the `label` coordinate; "
            "`fieldkit.export.torch_dataset.ZarrClipDataset` yields the class index "
            "(single-label) or a float multi-hot vector.",
    "numpy": "`labels.npy` (clip, label) uint8 multi-hot, columns in class-index order.",
    "parquet": "`label` is a `ClassLabel` (class index) when single-label, `labels` a "
               "`List(ClassLabel)` (class indices) when multi-label.",
    "webdataset": "each `<key>.json` has `labels` (names), `label_ids` (class indices) and, "
                  "single-label, `label` (the class index).",
    "lhotse": "one supervision per label of a clip, spanning the clip, with "
              "`custom[\"label\"]` (name) and `custom[\"label_id\"]` (class index).",
}


def _audio_text(inp: ExportInput, fmt: ExportFormat) -> str:
    if inp.audio == "none":
        return "This export was written without audio (`--audio none`)."
    where = {"parquet": "in the `audio` column (HF `Audio`: FLAC bytes)",
             "webdataset": "as the `<key>.flac` member of each sample"}.get(
        fmt.name, "in `audio/<split>/clip<clip_id>.flac`")
    what = ("the processed waveform at the run's rate" if inp.audio == "processed"
            else "the original recording's excerpt at its own rate and channels")
    return (f"Each clip's audio is FLAC, {where}: {what}, trimmed to the clip's real audio "
            "(the index's `audio` column says where). Integer waveforms are stored bit for "
            "bit; float ones as 24-bit FLAC (within 2^-23 of the stored value), and samples "
            "beyond full scale (a resampler's overshoot on clipped audio) as full scale.")


def card_context(inp: ExportInput, fmt: ExportFormat, files: dict[str, str]) -> dict[str, Any]:
    """Every value the card template uses."""
    return {
        "name": inp.name, "version": inp.version, "description": inp.description,
        "licence": inp.licence, "format": fmt, **_what(inp), "where": _where(inp.index),
        **_when(inp.index), **_how(inp), "splits": list(inp.splits),
        "label_table": label_counts(inp), "split_by": inp.split_by, "seed": inp.seed,
        "ratios": ", ".join(f"{r:g}" for r in inp.ratios), "manifest_hash": inp.manifest_hash,
        "snippet": loading_snippet(inp, fmt),
        "data_files": {s: parquet_file(s) for s in inp.splits} if fmt.name == "parquet" else {},
        "file_groups": _file_groups(files), "limitations": limitations(inp),
        "label_encoding": LABEL_ENCODINGS.get(fmt.name, ""), "audio_text": _audio_text(inp, fmt),
    }


def write_card(inp: ExportInput, fmt: ExportFormat, out_dir: Path,
               files: dict[str, str]) -> dict[str, str]:
    """Render ``README.md`` into ``out_dir``; returns ``{"README.md": sha256}``."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.from_string(CARD_TEMPLATE).render(**card_context(inp, fmt, files))
    (out_dir / "README.md").write_text(text.rstrip() + "\n", encoding="utf-8")
    return hash_files(out_dir, "README.md")
