"""MLCommons Croissant 1.0 metadata (``croissant.json``) and the export's ``manifest.json``.

The JSON-LD is built by hand (mlcroissant is a test-only dependency; the tests validate every
export with ``mlcroissant.Dataset(jsonld=...)``). ``distribution`` lists each file as a
``cr:FileObject`` with its SHA-256, except the files inside a Zarr store: each store is one
``cr:FileSet`` (a store may hold thousands of objects), and ``manifest.json`` carries their
hashes; likewise the per-clip FLAC files under ``audio/`` are one ``cr:FileSet``. Record sets:

- ``clips``: ``index.parquet``, one record per clip;
- ``features`` (Parquet format): the per-clip columns, fixed-length feature lists as
  ``isArray`` fields with their ``arrayShape``;
- ``arrays``: one inline record per data file of the export (split, variable or member,
  dtype, shape), so the shapes of Zarr, NumPy and WebDataset arrays are in the metadata;
- ``audio``: one record per clip's FLAC file of the ``audio/`` folder (clip, path, split).

``creator``, ``url`` and ``citeAs`` come from the input (``--creator``, ``--url``,
``--cite-as``); without ``citeAs`` a BibTeX entry is made from the name and version.
``croissant.json`` cannot list ``manifest.json`` (which hashes it) or itself.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from fieldkit.export.request import ExportInput, hash_files

__all__ = ["CROISSANT_CONTEXT", "croissant", "write_croissant", "write_manifest"]

_CR_TERMS = ("arrayShape", "isArray", "citeAs", "column", "examples", "extract", "field", "fileProperty", "fileObject",
             "fileSet", "format", "includes", "isLiveDataset", "jsonPath", "key", "md5",
             "parentField", "path", "recordSet", "references", "regex", "repeated", "replace",
             "samplingRate", "separator", "source", "subField", "transform", "equivalentProperty")
#: The JSON-LD context of Croissant 1.0 (as mlcroissant 1.1 writes it).
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    **{term: f"cr:{term}" for term in _CR_TERMS},
    "examples": {"@id": "cr:examples", "@type": "@json"},
}
ENCODINGS = {".parquet": "application/x-parquet", ".csv": "text/csv",
             ".json": "application/json", ".md": "text/markdown",
             ".npy": "application/x-npy", ".png": "image/png", ".flac": "audio/flac",
             ".tar": "application/x-tar", ".gz": "application/gzip"}
#: Arrow type name -> Croissant data type.
DATA_TYPES = {"int": "sc:Integer", "uint": "sc:Integer", "float": "sc:Float",
              "double": "sc:Float", "timestamp": "sc:Date", "string": "sc:Text",
              "large_string": "sc:Text", "bool": "sc:Boolean"}
UNLISTED = {"croissant.json", "manifest.json"}


AUDIO_FILE_SET = "audio-files"


def _zarr_root(rel: str) -> str | None:
    head = rel.split(".zarr/", 1)
    return head[0] + ".zarr" if len(head) == 2 else None


def _in_file_set(rel: str) -> bool:
    return _zarr_root(rel) is not None or rel.startswith("audio/")


def _distribution(files: dict[str, str]) -> list[dict[str, Any]]:
    """FileObjects for plain files, one FileSet per Zarr store and one for the audio."""
    stores = sorted({root for rel in files if (root := _zarr_root(rel))})
    out = [{"@type": "cr:FileObject", "@id": rel, "name": rel, "contentUrl": rel,
            "encodingFormat": ENCODINGS.get(Path(rel).suffix, "application/octet-stream"),
            "sha256": sha}
           for rel, sha in sorted(files.items())
           if not _in_file_set(rel) and rel not in UNLISTED]
    out += [{"@type": "cr:FileSet", "@id": s, "name": s, "encodingFormat": "application/x-zarr",
             "includes": f"{s}/**", "description": "Zarr v3 store; per-file SHA-256 in "
             "manifest.json"} for s in stores]
    if any(rel.startswith("audio/") for rel in files):
        out.append({"@type": "cr:FileSet", "@id": AUDIO_FILE_SET, "name": AUDIO_FILE_SET,
                    "encodingFormat": "audio/flac", "includes": "audio/*/*.flac",
                    "description": "One FLAC file per clip, audio/<split>/<key>.flac; per-file "
                    "SHA-256 in manifest.json"})
    return out


def _data_type(arrow_type: Any) -> str:
    text = str(arrow_type)
    return next((v for k, v in sorted(DATA_TYPES.items(), key=lambda kv: -len(kv[0]))
                 if text.startswith(k)), "sc:Text")


def _field(rs_id: str, column: Any, source: dict[str, Any]) -> dict[str, Any] | None:
    """A Field for one Parquet column: scalars, and fixed-length lists as arrays."""
    field = {"@type": "cr:Field", "@id": f"{rs_id}/{column.name}", "name": column.name,
             "source": {**source, "extract": {"column": column.name}}}
    if pa.types.is_fixed_size_list(column.type):
        return {**field, "dataType": _data_type(column.type.value_type), "isArray": True,
                "arrayShape": str(column.type.list_size)}
    if pa.types.is_nested(column.type):  # the audio struct and label lists: see the card
        return None
    return {**field, "dataType": _data_type(column.type)}


def _record_set(rs_id: str, description: str, source: dict[str, Any], schema: Any,
                key: str | None = None) -> dict[str, Any]:
    """A RecordSet with one field per column of ``schema`` that Croissant can type."""
    fields = [f for column in schema if (f := _field(rs_id, column, source)) is not None]
    record = {"@type": "cr:RecordSet", "@id": rs_id, "name": rs_id,
              "description": description, "field": fields}
    return {**record, "key": {"@id": f"{rs_id}/{key}"}} if key else record


def _array_rows(out_dir: Path, files: dict[str, str]) -> list[dict[str, Any]]:
    """Split, name, file, dtype and shape of every array file of the export."""
    rows = []
    for rel in sorted(files):
        path = out_dir / rel
        if rel.endswith(".npy"):
            array = np.load(path, mmap_mode="r")
            rows.append((rel.split("/")[1], path.stem, rel, array.dtype, array.shape))
        elif rel.endswith(".zarr/zarr.json"):
            group = zarr.open_group(str(path.parent), mode="r")
            split = path.parent.name.removesuffix(".zarr")
            rows += [(split, name, f"{path.parent.relative_to(out_dir).as_posix()}/{name}",
                      array.dtype, array.shape) for name, array in sorted(group.arrays())]
    return [{"arrays/split": split, "arrays/name": name, "arrays/file": file,
             "arrays/dtype": str(np.dtype(dtype)) if not hasattr(dtype, "to_native_dtype")
             else str(dtype.to_native_dtype()),
             "arrays/shape": "x".join(str(n) for n in shape)}
            for split, name, file, dtype, shape in rows]


def _arrays_record_set(out_dir: Path, files: dict[str, str]) -> list[dict[str, Any]]:
    rows = _array_rows(out_dir, files)
    if not rows:
        return []
    fields = [{"@type": "cr:Field", "@id": f"arrays/{n}", "name": n, "dataType": "sc:Text",
               "description": d}
              for n, d in (("split", "train, validation or test"),
                           ("name", "variable (Zarr, NumPy)"),
                           ("file", "path in the export"), ("dtype", "NumPy dtype"),
                           ("shape", "sizes joined by 'x', clip axis first"))]
    return [{"@type": "cr:RecordSet", "@id": "arrays", "name": "arrays",
             "description": "Every array of the export with its shape (clip axis first).",
             "field": fields, "data": rows}]


def _audio_record_set(files: dict[str, str]) -> list[dict[str, Any]]:
    """Each clip's FLAC, from the index: mlcroissant 1.1 cannot read FLAC (only MP3), so the
    records name the files of the ``audio-files`` FileSet rather than decode them."""
    if not any(rel.startswith("audio/") for rel in files):
        return []
    source = {"fileObject": {"@id": "index.parquet"}}
    fields = [{"@type": "cr:Field", "@id": f"audio/{name}", "name": name, "dataType": kind,
               "description": text, "source": {**source, "extract": {"column": column}}}
              for name, kind, column, text in (
                  ("clip_id", "sc:Integer", "clip_id", "the clip (clips/clip_id)"),
                  ("file", "sc:Text", "audio", "path of its FLAC file in the export"),
                  ("split", "sc:Text", "split", "train, validation or test"))]
    return [{"@type": "cr:RecordSet", "@id": "audio", "name": "audio",
             "description": "One FLAC file per clip (audio/<split>/<key>.flac, in the "
             "audio-files FileSet; 16- or 24-bit, at the rate in export.json for processed "
             "audio).", "field": fields}]


def _record_sets(out_dir: Path, files: dict[str, str]) -> list[dict[str, Any]]:
    sets = [_record_set("clips", "One row per clip: recording, time, place, labels, split.",
                        {"fileObject": {"@id": "index.parquet"}},
                        pq.read_schema(out_dir / "index.parquet"), key="clip_id")]
    features = sorted(f for f in files if f.startswith("data/") and f.endswith(".parquet"))
    if features:
        sets.append(_record_set("features", "Per-clip pooled features (mean and std over "
                                "frames, bands as fixed-length arrays) and QC, one file per "
                                "split; the FLAC audio is the audio column (see the card).",
                                {"fileSet": {"@id": "features-parquet"}},
                                pq.read_schema(out_dir / features[0])))
    return [*sets, *_arrays_record_set(out_dir, files), *_audio_record_set(files)]


def _feature_file_set(files: dict[str, str]) -> list[dict[str, Any]]:
    if not any(f.startswith("data/") and f.endswith(".parquet") for f in files):
        return []
    return [{"@type": "cr:FileSet", "@id": "features-parquet", "name": "features-parquet",
             "encodingFormat": "application/x-parquet", "includes": "data/*.parquet"}]


def _cite_as(inp: ExportInput, published: date) -> str:
    if inp.cite_as:
        return inp.cite_as
    key = "".join(c if c.isalnum() else "_" for c in inp.slug)
    return (f"@misc{{{key}, title={{{inp.name} (version {inp.version})}}, "
            f"year={{{published.year}}}, note={{Exported with fieldkit}}}}")


def croissant(inp: ExportInput, out_dir: Path, files: dict[str, str],
              published: date) -> dict[str, Any]:
    """The Croissant 1.0 JSON-LD document of an export whose files are ``files``."""
    return {
        "@context": CROISSANT_CONTEXT, "@type": "sc:Dataset", "name": inp.name,
        "description": inp.description or inp.name,
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "citeAs": _cite_as(inp, published), "datePublished": published.isoformat(),
        "license": inp.licence, "version": f"{inp.version}.0.0",
        "keywords": ["bioacoustics", "audio", "fieldkit"],
        **({"creator": {"@type": "sc:Person", "name": inp.creator}} if inp.creator else {}),
        **({"url": inp.url} if inp.url else {}),
        "distribution": _distribution(files) + _feature_file_set(files),
        "recordSet": _record_sets(out_dir, files),
    }


def write_croissant(inp: ExportInput, out_dir: Path, files: dict[str, str],
                    published: date | None = None) -> dict[str, str]:
    """Write ``croissant.json``; returns ``{"croissant.json": sha256}``."""
    published = published or datetime.now(UTC).date()
    document = croissant(inp, out_dir, files, published)
    text = json.dumps(document, indent=1, ensure_ascii=False)
    (out_dir / "croissant.json").write_text(text + "\n", encoding="utf-8")
    return hash_files(out_dir, "croissant.json")


def write_manifest(inp: ExportInput, format_name: str, out_dir: Path,
                   files: dict[str, str]) -> None:
    """Write ``manifest.json``: every other file's SHA-256 and size in bytes."""
    entries = {rel: {"sha256": sha, "size": (out_dir / rel).stat().st_size}
               for rel, sha in sorted(files.items())}
    document = {"dataset": inp.name, "version": inp.version, "format": format_name,
                "algorithm": "sha256", "files": entries}
    text = json.dumps(document, indent=1)
    (out_dir / "manifest.json").write_text(text + "\n", encoding="utf-8")
