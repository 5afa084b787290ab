"""What an export is given: a plain description of one dataset version (no database objects).

The catalogue side (layer 2/3, owned by the dataset service) builds an :class:`ExportInput`;
everything in :mod:`fieldkit.export` reads only this record and the run's Zarr store. The
checks here run before anything is written, so a bad input never leaves a half export.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fieldkit.curate.splits import SPLITS
from fieldkit.errors import ValidationError
from fieldkit.io.storage import Root

__all__ = [
    "INDEX_COLUMNS",
    "LINEAGE_KEYS",
    "SPLITS",
    "ExportInput",
    "file_sha256",
    "hash_files",
]

#: Columns the dataset index must have (one row per dataset clip).
INDEX_COLUMNS = ("clip_id", "recording_id", "recording_sha256", "start_time", "offset_s",
                 "site", "deployment", "labels", "split")
#: Keys every lineage record must have (one record per clip_id).
LINEAGE_KEYS = ("clip_id", "recording_sha256", "archive_path", "cards", "ingest_sessions",
                "source_paths", "run_id", "params_hash")
HASH_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class ExportInput:
    """One dataset version to export.

    Parameters
    ----------
    name, version, description, licence : str, int, str, str
        The dataset's identity, a human description and an SPDX-style licence id
        (``"CC-BY-4.0"``).
    store_path : Path or Root
        The processing run's Zarr store: a local folder, or the
        :class:`~fieldkit.io.storage.Root` of a store on object storage.
    index : pandas.DataFrame
        One row per dataset clip with :data:`INDEX_COLUMNS`: ``clip_id`` is the position on
        the store's ``clip`` axis; ``start_time`` is datetime64 UTC (NaT allowed); ``labels``
        a list of label names; ``split`` one of ``train``, ``validation``, ``test``.
    label_names : tuple of str
        Every label of the dataset, in class-index order.
    split_by, seed, ratios, manifest_hash : str, int, tuple of float, str
        The split policy: grouped by ``split_by``, seeded, target ratios (train, validation,
        test), and the hash of the resulting assignment.
    workflow, versions : dict
        Processing parameters and library versions of the run.
    qc_summary : dict
        Plain counts (recordings by status, clipped clips, quarantined files...).
    lineage : list of dict
        One record per ``clip_id`` with at least :data:`LINEAGE_KEYS`.
    audio : str
        Each clip's audio in the export: ``processed`` (the run's waveform), ``original``
        (the archive's excerpt at its own rate; needs ``archive_root``) or ``none``
        (:mod:`fieldkit.export.flac_audio`).
    archive_root : Path or Root, optional
        The workspace's archive (a folder or a URL root); lineage ``archive_path`` values are
        relative to it.
    shard_size : int
        Clips per WebDataset shard.
    creator, url, cite_as : str, optional
        Who made the dataset, where it lives, how to cite it (card and Croissant).
    """

    name: str
    version: int
    description: str
    licence: str
    store_path: Path | Root
    index: pd.DataFrame
    label_names: tuple[str, ...]
    split_by: str
    seed: int
    ratios: tuple[float, ...]
    manifest_hash: str
    workflow: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    qc_summary: dict[str, Any] = field(default_factory=dict)
    lineage: list[dict[str, Any]] = field(default_factory=list)
    audio: str = "processed"
    archive_root: Path | Root | None = None
    shard_size: int = 1000
    creator: str | None = None
    url: str | None = None
    cite_as: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.store_path, Root):
            object.__setattr__(self, "store_path", Path(self.store_path))
        object.__setattr__(self, "label_names", tuple(self.label_names))
        object.__setattr__(self, "ratios", tuple(self.ratios))
        if self.archive_root is not None and not isinstance(self.archive_root, Root):
            object.__setattr__(self, "archive_root", Path(self.archive_root))
        if int(self.shard_size) < 1:
            raise ValidationError(f"shard_size must be at least 1 clip, not {self.shard_size}.")
        object.__setattr__(self, "index", _ordered_index(self.index))
        _check_labels(self.index, self.label_names)
        _check_lineage(self.lineage, self.index)

    @property
    def store(self) -> Any:
        """What :mod:`fieldkit.store` opens: the local folder, or a read-only zarr store."""
        return self.store_path.zarr_location() if isinstance(self.store_path, Root) else self.store_path

    @property
    def store_name(self) -> str:
        """The store as messages name it: its folder, or its URL (no credentials)."""
        return self.store_path.uri() if isinstance(self.store_path, Root) else str(self.store_path)

    @property
    def slug(self) -> str:
        """``<name>-<version>``: the export's folder name by convention."""
        return f"{self.name}-{self.version}"

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that hold at least one clip, in the order train, validation, test."""
        present = set(self.index["split"])
        return tuple(s for s in SPLITS if s in present)

    @property
    def single_label(self) -> bool:
        """True when every clip has exactly one label (a ClassLabel task)."""
        return bool(self.index["labels"].map(len).eq(1).all())

    def split_index(self, split: str) -> pd.DataFrame:
        """The index rows of one split, in export order (row i is array row i)."""
        return self.index[self.index["split"] == split]

    def multi_hot(self, split: str) -> np.ndarray:
        """Labels of one split as a ``(clip, label)`` uint8 multi-hot matrix."""
        return multi_hot(self.split_index(split)["labels"], self.label_names)

    def lineage_records(self) -> list[dict[str, Any]]:
        """Lineage records in export order."""
        by_clip = {int(rec["clip_id"]): rec for rec in self.lineage}
        return [by_clip[int(c)] for c in self.index["clip_id"]]


def multi_hot(labels: pd.Series, label_names: tuple[str, ...]) -> np.ndarray:
    """A ``(len(labels), len(label_names))`` uint8 matrix, 1 where a clip has a label."""
    position = {name: i for i, name in enumerate(label_names)}
    out = np.zeros((len(labels), len(label_names)), dtype=np.uint8)
    for row, names in enumerate(labels):
        out[row, [position[n] for n in names]] = 1
    return out


def _ordered_index(index: pd.DataFrame) -> pd.DataFrame:
    """A checked copy sorted by split (train, validation, test) then clip_id."""
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise ValidationError(f"the export index lacks column(s) {', '.join(missing)}; expected "
                              f"{', '.join(INDEX_COLUMNS)}.")
    bad = sorted(set(index["split"]) - set(SPLITS))
    if bad:
        raise ValidationError(f"the export index has split(s) {bad}; expected "
                              f"{', '.join(SPLITS)}.")
    if index.empty or index["clip_id"].duplicated().any():
        raise ValidationError("the export index must have at least one row and unique "
                              "clip_id values; fix the dataset's selection.")
    out = index.copy()
    out["labels"] = out["labels"].map(lambda v: [str(x) for x in v])
    out["start_time"] = pd.to_datetime(out["start_time"], utc=True)
    order = out["split"].map({s: i for i, s in enumerate(SPLITS)})
    out = out.assign(_order=order).sort_values(["_order", "clip_id"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _check_labels(index: pd.DataFrame, label_names: tuple[str, ...]) -> None:
    used = {name for names in index["labels"] for name in names}
    unknown = sorted(used - set(label_names))
    if unknown or len(set(label_names)) != len(label_names):
        raise ValidationError(f"label_names {list(label_names)} must be distinct and cover "
                              f"every label in the index; missing: {unknown}.")


def _check_lineage(lineage: list[dict[str, Any]], index: pd.DataFrame) -> None:
    incomplete = [rec.get("clip_id") for rec in lineage
                  if any(k not in rec for k in LINEAGE_KEYS)]
    ids = [int(rec["clip_id"]) for rec in lineage if "clip_id" in rec]
    missing = sorted(set(index["clip_id"].astype(int)) - set(ids))
    if incomplete or missing or len(ids) != len(set(ids)):
        raise ValidationError(
            f"lineage must hold exactly one record per clip_id with keys "
            f"{', '.join(LINEAGE_KEYS)}; incomplete: {incomplete[:5]}, missing clips: "
            f"{missing[:5]}, duplicates: {len(ids) - len(set(ids))}.")


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _files_under(root: Path, rel: str) -> Iterator[Path]:
    target = root / rel
    if target.is_file():
        yield target
        return
    yield from sorted(p for p in target.rglob("*") if p.is_file())


def hash_files(root: Path, *rels: str) -> dict[str, str]:
    """``relative posix path -> sha256`` of each file, or each file under each folder."""
    return {p.relative_to(root).as_posix(): file_sha256(p)
            for rel in rels for p in _files_under(root, rel)}
