"""``fieldkit annotations``, ``fieldkit dataset`` and ``fieldkit lineage``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, err, human, human_counts, table
from fieldkit.errors import ConfigError

#: :data:`fieldkit.curate.datasets.SPLIT_KEYS`, written out so that ``--help`` does not import the
#: curation stack (numpy, the catalogue, zarr); a test keeps the two equal.
SPLIT_KEYS = ("site", "deployment", "device", "day", "recording")
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
annotations_app = typer.Typer(help="Import annotations (Raven, Audacity, CSV, BirdNET, OpenSoundscape, Kaleidoscope, "
                              "GUANO, or labels from file names) and export them for Raven, Audacity, OpenSoundscape.",
                              no_args_is_help=True)
#: The formats of :mod:`fieldkit.io.annotations`, written out so that ``--help`` stays light.
IMPORT_FORMATS = "raven, audacity, csv, birdnet-csv, kaleidoscope, opensoundscape"
EXPORT_FORMATS = "raven, audacity, opensoundscape"
dataset_app = typer.Typer(help="Datasets: labelled clips of a run with leakage-safe splits.", no_args_is_help=True)


@annotations_app.command("import")
def import_(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(None, help="Annotation files (Raven/BirdNET .txt, Audacity .txt, .csv, "
                                       "BirdNET CSV, OpenSoundscape one-hot CSV, Kaleidoscope id.csv)."),
    fmt: Optional[str] = typer.Option(None, "--format", help=f"{IMPORT_FORMATS} (default: sniffed from the header)."),
    recording: Optional[str] = typer.Option(None, "--recording", help="Attach every row to this recording "
                                            "(id or sha256 prefix); default: match by file name."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Column holding the label."),
    begin_column: Optional[str] = typer.Option(None, "--begin-column", help="Column holding the start (s)."),
    end_column: Optional[str] = typer.Option(None, "--end-column", help="Column holding the end (s)."),
    file_column: Optional[str] = typer.Option(None, "--file-column", help="Column naming the audio file."),
    confidence_column: Optional[str] = typer.Option(None, "--confidence-column", help="Column holding the score."),
    min_confidence: Optional[float] = typer.Option(None, "--min-confidence", help="Keep only detections scoring at "
                                                   "least this (BirdNET Confidence, OpenSoundscape scores)."),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="Import the good rows of a file with bad ones."),
    label_from: Optional[str] = typer.Option(None, "--label-from", help="Regex with a (?P<label>...) group applied "
                                             "to each recording's card path, e.g. '^(?P<label>\\d)_'."),
    from_guano: Optional[str] = typer.Option(None, "--from-guano", help="Label ingested recordings with their GUANO "
                                             "species: manual (Species Manual ID), auto (Species Auto ID) or either."),
    deployment: Optional[str] = typer.Option(None, "--deployment", help="With --label-from / --from-guano: only this "
                                             "deployment."),
    json_out: bool = JSON,
) -> None:
    """Import annotations; every bad row is reported with its line number."""
    from fieldkit.curate.annotations import (
        import_annotations,
        import_guano_labels,
        import_labels_from_names,
    )
    from fieldkit.io.annotations.readers import ReadOptions

    ws = state(ctx).open()
    if label_from:
        summary = import_labels_from_names(ws, label_from, deployment=deployment)
    elif from_guano:
        summary = import_guano_labels(ws, field_name=from_guano, deployment=deployment)
    elif files:
        options = ReadOptions(label_column=label_column, begin_column=begin_column, end_column=end_column,
                              file_column=file_column, skip_bad_rows=skip_bad_rows,
                              min_confidence=min_confidence, confidence_column=confidence_column)
        summary = import_annotations(ws, files, fmt=fmt, recording=recording, options=options)
    else:
        raise ConfigError("give annotation files, --from-guano FIELD or --label-from PATTERN.")
    if json_out:
        emit_json(summary.to_dict())
    else:
        for f in summary.files:
            status = f"[red]not imported[/red]: {f.error}" if f.error else f"{f.imported} annotations → recordings {human(f.recordings) or 'none'}"
            below = f"; {f.below_confidence} below --min-confidence left out" if f.below_confidence else ""
            err.print(f"{f.file} ({f.format}): {status}{below}")
            for p in f.problems[:20]:
                err.print(f"  line {p['line']}, {p['column']}: {p['reason']}")
    raise typer.Exit(summary.exit_code)


@annotations_app.command("export")
def export_annotations_cmd(
    ctx: typer.Context,
    fmt: str = typer.Option(..., "--format", help=f"{EXPORT_FORMATS}."),
    out: Path = typer.Option(..., "--out", help="Folder to write into (absent or empty)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated labels to write (default: all)."),
    recordings: Optional[str] = typer.Option(None, "--recordings", help="Comma-separated recording ids (default: all)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty folder, replacing files."),
    json_out: bool = JSON,
) -> None:
    """Write the catalogue's annotations as Raven selection tables, Audacity label tracks or an OpenSoundscape CSV."""
    from fieldkit.curate.annotation_out import export_annotations

    ws = state(ctx).open()
    try:
        ids = tuple(int(x) for x in (recordings or "").split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"--recordings {recordings!r} is not a comma-separated list of recording ids.") from exc
    result = export_annotations(ws, fmt, out, labels=tuple(x for x in (labels or "").split(",") if x),
                                recording_ids=ids, overwrite=overwrite)
    if json_out:
        emit_json(result.to_dict())
        return
    err.print(f"{result.annotations} annotations of {result.recordings} recordings written as {result.format} "
              f"to {result.out_dir} ({len(result.files)} files)")


@dataset_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name (a new version is made if it exists)."),
    run: int = typer.Option(..., "--run", help="Processing run whose clips form the dataset."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated labels to keep (default: all)."),
    min_overlap: float = typer.Option(0.5, "--min-overlap", help="Overlap needed, as a fraction of the shorter of "
                                      "clip and annotation."),
    background: Optional[str] = typer.Option(None, "--background", help="Label for clips without annotations "
                                             "(default: leave them out)."),
    split_by: str = typer.Option("site", "--split-by", help=f"Group key: {', '.join(SPLIT_KEYS)}."),
    ratios: str = typer.Option("0.7,0.15,0.15", "--ratios", help="train,validation,test fractions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split (same seed, same split)."),
    single_label: bool = typer.Option(False, "--single-label", help="One label per clip: the annotation that "
                                      "overlaps it longest (a classification task)."),
    json_out: bool = JSON,
    fmt: Optional[TableFormat] = FORMAT,
) -> None:
    """Label the clips of a run and split them, grouped (no group in two splits) and stratified."""
    from fieldkit.curate.datasets import DatasetRequest, create_dataset

    try:
        parts = tuple(float(x) for x in ratios.split(","))
    except ValueError as exc:
        raise ConfigError(f"--ratios {ratios!r} is not three comma-separated numbers.") from exc
    req = DatasetRequest(name, run, tuple(x for x in (labels or "").split(",") if x), min_overlap, background,
                         split_by, parts, seed, single_label)
    summary = create_dataset(state(ctx).open(), req)
    if json_out:
        emit_json(summary)
        return
    err.print(f"dataset {summary['name']} v{summary['version']}: {summary['clips']} clips from run {run}, "
              f"{summary['groups']} {split_by} groups; splits {human_counts(summary['splits'])}; manifest {summary['manifest_hash'][:16]}…")
    rows = [{"split": k, **v} for k, v in summary["label_counts"].items()]
    table("label counts", rows, ["split", *sorted({k for v in summary["label_counts"].values() for k in v})], fmt)


@dataset_app.command("list")
def list_(ctx: typer.Context, json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Datasets and their versions."""
    from fieldkit.catalogue import labels as label_rows

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        rows = [r.to_dict() for r in label_rows.list_datasets(s)]
    emit_json(rows) if json_out else table("datasets", rows, ["id", "name", "version", "run_id", "clips", "split_by"], fmt)


def annotations_list(ctx: typer.Context, json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Annotation counts per label."""
    from fieldkit.catalogue import labels as label_rows

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        rows = [r.to_dict() for r in label_rows.annotation_counts(s)]
    emit_json(rows) if json_out else table("annotations", rows, ["label", "annotations", "recordings"], fmt)


def lineage(ctx: typer.Context, clip: str = typer.Argument(..., help="RUN:CLIP, e.g. 3:120."), json_out: bool = JSON) -> None:
    """From a clip back to the card: recording, archive file, card sightings, processing parameters."""
    from fieldkit.curate.lineage import clip_lineage

    doc = clip_lineage(state(ctx).open(), clip)
    if json_out:
        emit_json(doc)
        return
    rec = doc["recording"]
    err.print(f"clip {clip}: offset {human(doc['clip']['offset_s'], 'offset_s')} s, "
              f"start {human(doc['clip']['start_time_utc'], 'start_time_utc') or 'unknown'}")
    err.print(f"recording {rec['recording_id']} sha256 {rec['sha256']}: archive/{rec['archive_path']} ({rec['status']})")
    for src in rec["sources"]:
        err.print(f"  seen on card {src['card']} as {src['card_path']} (ingest session {src['ingest_session']}, "
                  f"{src['ingested_at']})")
    err.print(f"processing: run {doc['processing']['run_id']}, params {doc['processing']['params_hash'][:16]}…")


def export(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name (see 'fieldkit dataset list')."),
    fmt: str = typer.Option("zarr", "--format", help="zarr, numpy, parquet, webdataset or lhotse."),
    out: Optional[Path] = typer.Option(None, "--out", help="Target folder (default: exports/<name>-<version>-<format>)."),
    version: Optional[int] = typer.Option(None, "--version", help="Dataset version (default: the newest)."),
    licence: Optional[str] = typer.Option(None, "--licence", help="SPDX licence id written to the card and "
                                          "Croissant (default: [export] licence of fieldkit.toml, CC-BY-4.0)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export of the same version."),
    augment: Optional[str] = typer.Option(None, "--augment", help="Augmented copies of the train clips, e.g. "
                                          "'pitch:+2,stretch:0.8,reverse,gain:-6,mix:snr=10' (',' one copy each, "
                                          "'|' chains, a..b draws per clip)."),
    augment_seed: Optional[int] = typer.Option(None, "--augment-seed", help="Seed of --augment's draws "
                                               "(default: the dataset's split seed)."),
    audio: str = typer.Option("processed", "--audio", help="Each clip's audio as FLAC: processed (the run's "
                              "waveform), original (the archive's excerpt at its own rate) or none."),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Clips per WebDataset shard."),
    creator: Optional[str] = typer.Option(None, "--creator", help="Who made the dataset (default: [export] of "
                                          "fieldkit.toml)."),
    url: Optional[str] = typer.Option(None, "--url", help="Where the dataset lives (default: [export] url)."),
    cite_as: Optional[str] = typer.Option(None, "--cite-as", help="How to cite it (default: [export] cite_as, "
                                          "else a BibTeX entry)."),
    json_out: bool = JSON,
) -> None:
    """Write arrays, audio, labels, index, dataset card (README + Croissant) and lineage for the ML team."""
    from fieldkit.cli.progress import TwoBarProgress
    from fieldkit.curate.handoff import export_catalogued_dataset

    progress = TwoBarProgress("augment", "train clips", "copies", weight_is_bytes=False, enabled=not json_out)
    result = export_catalogued_dataset(state(ctx).open(), dataset, fmt=fmt, out=out, version=version,
                                       licence=licence, overwrite=overwrite, augment=augment,
                                       augment_seed=augment_seed, progress=progress, audio=audio,
                                       shard_size=shard_size, creator=creator, url=url, cite_as=cite_as)
    doc = {"out_dir": str(result.out_dir), "format": result.format, "clips_per_split": result.clips_per_split,
           "files": result.files}
    if result.format == "parquet" and isinstance(result.out_dir, Path):  # a local folder; not a URL export
        from fieldkit.export.tabular import hf_loader_line

        doc["loader"] = hf_loader_line(result.out_dir)
    if json_out:
        emit_json(doc)
        return
    err.print(f"exported {result.n_clips} clips ({human_counts(result.clips_per_split)}) as {result.format} to {result.out_dir}")
    err.print(f"  {len(result.files)} files; dataset card {result.out_dir}/README.md")
    if "loader" in doc:
        err.print(f"  load it: {doc['loader']}")


def baseline(ctx: typer.Context, export_dir: Path = typer.Argument(..., help="An export folder."),
             seed: int = typer.Option(0, "--seed"),
             min_clips: Optional[int] = typer.Option(None, "--min-clips-per-class", help="Fewer clips of a class in "
                                                     "train or the evaluated split: say so instead of printing an "
                                                     "accuracy (default 5)."),
             json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Train a scikit-learn classifier on the train split; accuracy and macro-F1 per split (when there is enough)."""
    from fieldkit.export.baseline import MIN_CLIPS_PER_CLASS, run_baseline

    metrics = run_baseline(export_dir, seed=seed, min_clips_per_class=MIN_CLIPS_PER_CLASS if min_clips is None
                           else min_clips)
    if json_out:
        emit_json(metrics)
        return
    if not metrics["evaluable"]:
        err.print(f"baseline {metrics['message']}")
        return
    rows = [{"split": k, **{m: (f"{v:.3f}" if isinstance(v, float) else v) for m, v in val.items()}}
            for k, val in metrics["splits"].items()]
    table("baseline", rows, ["split", *sorted({m for r in metrics["splits"].values() for m in r})], fmt)
    err.print(f"{metrics['model']} on {metrics['n_features']} pooled features ({metrics['task']}); confusion matrix "
              f"of the {metrics['confusion_matrix']['split']} split: {Path(export_dir) / 'baseline' / 'confusion_matrix.png'}")


def register(app: typer.Typer, catalog_app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("baseline")(baseline)
    app.add_typer(annotations_app, name="annotations")
    app.add_typer(dataset_app, name="dataset")
    app.command("lineage")(lineage)
    catalog_app.command("annotations")(annotations_list)
