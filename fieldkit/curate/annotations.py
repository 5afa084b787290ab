"""Layer 3: importing annotations into the catalogue (Raven, Audacity, CSV, or labels from names).

Each file is read by the tolerant, validated readers of :mod:`fieldkit.io.annotations.readers`; a file
with bad rows imports nothing unless ``skip_bad_rows`` (every problem is reported with its line).
Rows are attached to a recording chosen by ``recording`` (an id or a sha256 prefix), by the
file a row names (Raven ``Begin File``, a CSV file column — only names inside the annotation
file's folder are accepted), or by the annotation file's own name (``x.Table.1.selections.txt``
→ the recording seen on a card as ``x.wav``). Re-importing a file replaces its annotations.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue.records import MatchableRecording
from fieldkit.errors import EXIT_DATAERR, EXIT_OK, FieldkitError, NotFoundError, ValidationError
from fieldkit.io.annotations.readers import (
    ReadOptions,
    labels_from_names,
    read_annotations,
    resolve_file_ref,
)

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["ImportResult", "import_annotations", "import_labels_from_names", "guess_format"]

_SUFFIXES = re.compile(r"(\.Table\.\d+\.selections|\.selections|\.annotations?|[._-]labels?|\.audacity)$", re.I)


@dataclass
class ImportResult:
    file: str
    format: str
    imported: int = 0
    recordings: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


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
    """``raven`` for tab-separated tables with a Selection column, ``audacity`` for other .txt, else ``csv``."""
    if path.suffix.lower() == ".csv":
        return "csv"
    head = path.read_bytes()[:4096].decode("utf-8", "replace").splitlines()[:1]
    return "raven" if head and "selection" in head[0].lower() and "\t" in head[0] else "audacity"


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

    def by_name(self, name: str) -> MatchableRecording | None:
        found = {r.id: r for r in self.by_stem.get(_stem(name), [])}
        return next(iter(found.values())) if len(found) == 1 else None


def _rows(frame) -> list[dict[str, Any]]:
    def num(v):
        return None if pd.isna(v) else float(v)
    return [{"begin_s": float(r.begin_s), "end_s": float(r.end_s), "low_hz": num(r.low_hz), "high_hz": num(r.high_hz),
             "label": r.label, "channel": None if pd.isna(r.channel) else int(r.channel),
             "source_line": int(r.source_line), "extra": {k: str(v) for k, v in (r.extra or {}).items()}}
            for r in frame.itertuples()]


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
        resolve_file_ref(ref, path.parent, must_exist=False)  # rejects ../, absolute, %2e%2e... (G2)
        rec = matcher.by_name(ref)
        rows = frame[frame["file_ref"] == ref]
        if rec is None and skip is None:
            raise ValidationError(f"{path}: {len(rows)} rows name the file {ref!r}, which matches no single "
                                  "recording in the catalogue.", hint="Ingest that file first, pass --recording ID, "
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
    results = [_import_one(ws, Path(f), fmt or guess_format(Path(f)), matcher, recording, options or ReadOptions())
               for f in files]
    return ImportSummary(results)


def _import_one(ws: Workspace, path: Path, fmt: str, matcher: _Matcher, recording: str | None,
                options: ReadOptions) -> ImportResult:
    result = ImportResult(str(path), fmt)
    try:
        frame, problems = read_annotations(path, fmt, options)
        result.problems = [p._asdict() for p in problems]
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
