"""Layer 3: importing annotations into the catalogue (Raven, Audacity, CSV, detector outputs,
GUANO species fields, or labels from names).

Each file is read by the tolerant, validated readers of :mod:`fieldkit.io.annotations.readers`; a file
with bad rows imports nothing unless ``skip_bad_rows`` (every problem is reported with its line).
Rows are attached to a recording chosen by ``recording`` (an id or a sha256 prefix), by the
file a row names (Raven ``Begin File``/``Begin Path``, a CSV file column), or by the annotation
file's own name (``x.Table.1.selections.txt`` → the recording seen on a card as ``x.wav``).
A relative reference must stay inside the annotation file's folder; an absolute one (BirdNET's
``Begin Path``, ``File``) is matched by its file name, or by a sha256 prefix in that name,
against the catalogue, and never opened. The format is sniffed from the header unless given.
Re-importing a file replaces its annotations.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue.records import MatchableRecording
from fieldkit.errors import (
    EXIT_DATAERR,
    EXIT_OK,
    ConfigError,
    FieldkitError,
    NotFoundError,
    ValidationError,
)
from fieldkit.io.annotations.readers import (
    ReadOptions,
    labels_from_names,
    read_annotations,
    resolve_file_ref,
    sniff_format,
)

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["ImportResult", "import_annotations", "import_guano_labels", "import_labels_from_names",
           "guess_format"]

_SUFFIXES = re.compile(r"(\.Table\.\d+\.selections|\.selections|\.annotations?|[._-]labels?|\.audacity)$", re.I)


@dataclass
class ImportResult:
    file: str
    format: str
    imported: int = 0
    recordings: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    below_confidence: int = 0


@dataclass
class ImportSummary:
    files: list[ImportResult]

    @property
    def exit_code(self) -> int:
        return EXIT_DATAERR if any(f.error for f in self.files) else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {"files": [asdict(f) for f in self.files], "imported": sum(f.imported for f in self.files),
                "exit_code": self.exit_code}


def guess_format(path: Path) -> str:
    """The annotation format of a file, sniffed from its header (:func:`sniff_format`).

    Raises :class:`~fieldkit.io.annotations.readers.UnknownLayoutError` naming the columns found.
    """
    with open(path, "rb") as fh:
        head = fh.read(65536).decode("utf-8", "replace")
    return sniff_format(head, str(path))


def _stem(name: str) -> str:
    stem = PurePosixPath(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return _SUFFIXES.sub("", stem).lower()


class _Matcher:
    def __init__(self, recordings: list[MatchableRecording]) -> None:
        self.by_id = {r.id: r for r in recordings}
        self.by_stem: dict[str, list[MatchableRecording]] = {}
        for r in recordings:
            for name in {PurePosixPath(p).name for p in r.source_paths} | {PurePosixPath(r.archive_path).name}:
                self.by_stem.setdefault(_stem(name), []).append(r)

    def explicit(self, key: str) -> MatchableRecording:
        if key.isdigit() and int(key) in self.by_id:
            return self.by_id[int(key)]
        found = [r for r in self.by_id.values() if r.sha256.startswith(key.lower())] if len(key) >= 8 else []
        if len(found) != 1:
            raise NotFoundError(f"--recording {key!r} matches {len(found)} recordings; give an id or a longer sha256 prefix.",
                                hint="See 'fieldkit catalog recordings'.")
        return found[0]

    def candidates(self, name: str) -> list[MatchableRecording]:
        """Recordings seen under this file name, or whose sha256 starts with its stem (>= 8 hex)."""
        stem = _stem(name)
        found = {r.id: r for r in self.by_stem.get(stem, [])}
        if not found and len(stem) >= 8 and all(c in "0123456789abcdef" for c in stem):
            found = {r.id: r for r in self.by_id.values() if r.sha256.startswith(stem)}
        return list(found.values())

    def by_name(self, name: str) -> MatchableRecording | None:
        found = self.candidates(name)
        return found[0] if len(found) == 1 else None


def _outside_reference(ref: str, folder: Path) -> str:
    """The file name to match for a row's file reference; the file itself is never opened.

    An absolute reference (``/data/x.wav``, ``C:\\rec\\x.wav``, ``\\\\server\\x.wav``: what
    BirdNET writes) only lends its name. A relative one must stay inside ``folder`` (G2).
    """
    if "\x00" in ref or "\n" in ref or "\r" in ref:
        resolve_file_ref(ref, folder, must_exist=False)  # raises with the reason
    if ref.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", ref):
        return PurePosixPath(ref.replace("\\", "/")).name
    resolve_file_ref(ref, folder, must_exist=False)  # rejects ../, %2e%2e, URLs (G2)
    return ref


def _row(r) -> dict[str, Any]:
    def num(v):
        return None if pd.isna(v) else float(v)
    begin, end = float(r.begin_s), float(r.end_s)
    if not pd.isna(r.file_offset_s) and float(r.file_offset_s) != begin:
        # a table over several files (Raven, BirdNET combined): Begin Time runs on across the
        # files, File Offset is the time inside this one
        begin, end = float(r.file_offset_s), float(r.file_offset_s) + (end - begin)
    extra: dict[str, Any] = {k: str(v) for k, v in (r.extra or {}).items()}
    if not pd.isna(r.confidence):
        extra["confidence"] = float(r.confidence)
    return {"begin_s": begin, "end_s": end, "low_hz": num(r.low_hz), "high_hz": num(r.high_hz),
            "label": r.label, "channel": None if pd.isna(r.channel) else int(r.channel),
            "source_line": int(r.source_line), "extra": extra}


def _rows(frame) -> list[dict[str, Any]]:
    return [_row(r) for r in frame.itertuples()]


def _assign(frame, path: Path, matcher: _Matcher, recording: str | None,
            skip: list[dict] | None = None) -> dict[int, list[dict]]:
    """Rows by recording id; a file naming audio that is not catalogued raises ValidationError,
    unless ``skip`` (a list) is given: those rows are then left out and reported in it."""
    if recording is not None:
        return {matcher.explicit(recording).id: _rows(frame)}
    refs = frame["file_ref"].dropna().unique().tolist() if "file_ref" in frame else []
    if not refs:
        rec = matcher.by_name(path.name)
        if rec is None:
            raise ValidationError(f"{path}: no recording in the catalogue was seen on a card under the name "
                                  f"{_stem(path.name)!r}.*", hint="Pass --recording ID (see 'fieldkit catalog recordings').")
        return {rec.id: _rows(frame)}
    out: dict[int, list[dict]] = {}
    for ref in refs:
        found = matcher.candidates(_outside_reference(ref, path.parent))
        rec = found[0] if len(found) == 1 else None
        rows = frame[frame["file_ref"] == ref]
        if rec is None and skip is None:
            which = (f"matches {len(found)} recordings ({', '.join(r.archive_path for r in found[:5])})"
                     if found else "matches no recording")
            raise ValidationError(f"{path}: {len(rows)} rows name the file {ref!r}, which {which} in the "
                                  "catalogue.", hint="Ingest that file first, pass --recording ID, "
                                  "or --skip-bad-rows to import the rows of the files that are there.")
        if rec is None:
            skip.extend({"line": int(line), "column": "file", "reason": f"{ref}: no such recording"}
                        for line in rows["source_line"])
            continue
        out.setdefault(rec.id, []).extend(_rows(rows))
    return out


def import_annotations(ws: Workspace, files: list[Path], *, fmt: str | None = None, recording: str | None = None,
                       options: ReadOptions | None = None) -> ImportSummary:
    """Import every file; a bad file is reported and the others carry on."""
    with ws.catalogue.read() as s:
        matcher = _Matcher(label_rows.recordings_for_matching(s))
    results = [_import_file(ws, Path(f), fmt, matcher, recording, options or ReadOptions()) for f in files]
    return ImportSummary(results)


def _import_file(ws: Workspace, path: Path, fmt: str | None, matcher: _Matcher, recording: str | None,
                 options: ReadOptions) -> ImportResult:
    if fmt is None:
        try:
            fmt = guess_format(path)
        except (FieldkitError, OSError) as exc:
            return ImportResult(str(path), "unknown", error=str(exc))
    return _import_one(ws, path, fmt, matcher, recording, options)


def _import_one(ws: Workspace, path: Path, fmt: str, matcher: _Matcher, recording: str | None,
                options: ReadOptions) -> ImportResult:
    result = ImportResult(str(path), fmt)
    try:
        frame, problems = read_annotations(path, fmt, options)
        result.problems = [p._asdict() for p in problems]
        result.below_confidence = int(frame.attrs.get("below_confidence", 0))
        assigned = _assign(frame, path, matcher, recording, result.problems if options.skip_bad_rows else None)
    except (FieldkitError, OSError) as exc:
        result.error = str(exc)
        result.problems = [p._asdict() for p in getattr(exc, "problems", [])] or result.problems
        return result
    with ws.catalogue.write() as s:
        for rec_id, rows in assigned.items():
            result.imported += label_rows.replace_annotations(s, rec_id, str(path.resolve()), rows)
    result.recordings = sorted(assigned)
    return result


def import_labels_from_names(ws: Workspace, pattern: str, *, deployment: str | None = None) -> ImportSummary:
    """Whole-recording annotations labelled by a regex (group ``label``) on each card path."""
    with ws.catalogue.read() as s:
        recordings = [r for r in label_rows.recordings_for_matching(s) if r.status in ("ok", "truncated")
                      and (deployment is None or f"/{deployment}/" in f"/{r.archive_path}")]
    by_path = {r.source_paths[0] if r.source_paths else r.archive_path: r for r in recordings}
    names = labels_from_names(list(by_path), pattern)
    result = ImportResult(f"label-from:{pattern}", "names", problems=[{"line": 0, "column": "path", "reason": f"{p}: no match"}
                                                                      for p in names.unmatched])
    with ws.catalogue.write() as s:
        for path, label in names.items():
            rec = by_path[str(path)]
            result.imported += label_rows.replace_annotations(
                s, rec.id, result.file, [{"begin_s": 0.0, "end_s": float(rec.duration_s or 0.0), "label": label}])
            result.recordings.append(rec.id)
    return ImportSummary([result])


def import_guano_labels(ws: Workspace, *, field_name: str = "manual",
                        deployment: str | None = None) -> ImportSummary:
    """Whole-recording annotations from the GUANO species fields read at ingest.

    Parameters
    ----------
    ws : Workspace
    field_name : {"manual", "auto", "either"}
        ``Species Manual ID``, ``Species Auto ID``, or the manual one where set and the
        automatic one elsewhere. A field naming several species (the GUANO 1.0 specification
        allows a comma-separated list, the dominant one first) gives one annotation per species.
    deployment : str, optional
        Only recordings of this deployment.

    Returns
    -------
    ImportSummary
        One entry (``file`` ``guano:<field>``); recordings without the field are not touched.
        Re-importing replaces the earlier GUANO annotations of each recording.
    """
    if field_name not in ("manual", "auto", "either"):
        raise ConfigError(f"--from-guano {field_name!r} is not one of manual, auto, either.",
                          hint="manual reads Species Manual ID, auto Species Auto ID, either the first set.")
    with ws.catalogue.read() as s:
        species = [r for r in label_rows.guano_species(s) if r.status in ("ok", "truncated")
                   and (deployment is None or f"/{deployment}/" in f"/{r.archive_path}")]
    source = "guano:" + {"manual": "Species Manual ID", "auto": "Species Auto ID",
                         "either": "Species Manual ID|Species Auto ID"}[field_name]
    result = ImportResult(source, "guano")
    with ws.catalogue.write() as s:
        for rec in species:
            value = {"manual": rec.manual_id, "auto": rec.auto_id,
                     "either": rec.manual_id or rec.auto_id}[field_name]
            if not value:
                continue
            names = [v.strip() for v in value.split(",") if v.strip()]
            origin = "Species Manual ID" if value == rec.manual_id else "Species Auto ID"
            rows = [{"begin_s": 0.0, "end_s": float(rec.duration_s or 0.0), "label": name,
                     "extra": {"guano_field": origin}} for name in names]
            result.imported += label_rows.replace_annotations(s, rec.recording_id, source, rows)
            result.recordings.append(rec.recording_id)
    return ImportSummary([result])
