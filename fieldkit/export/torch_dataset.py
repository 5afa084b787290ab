"""A map-style PyTorch ``Dataset`` over one split of a Zarr export (``pip install fieldkit[torch]``).

``ZarrClipDataset(export_dir, "train", variables=("mel",))[i]`` reads clip ``i`` of the split
and nothing else: the store is opened lazily in each process that reads (so a ``DataLoader``
with ``num_workers > 0`` gives every worker its own handle, and the dataset pickles without
an open store), and each item touches only the inner chunk that holds the clip. The last
chunk read of each variable is kept, so the neighbouring clips of a batch (a ``DataLoader``
worker receives whole batches of consecutive indices unless shuffled) decompress it once.

Labels follow the export's one label convention (``export.json``, stated in the card): a
single-label export yields ``label`` as the class index (int64); a multi-label export yields
``labels`` as a float32 multi-hot vector over ``label_names`` (ready for
``BCEWithLogitsLoss``). ``transform`` receives the item dict and returns what the loader
yields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset

from fieldkit.errors import NotFoundError, ValidationError
from fieldkit.export.arrays import zarr_split

__all__ = ["ZarrClipDataset"]


class ZarrClipDataset(Dataset):
    """One split of a Zarr export, one clip per item.

    Parameters
    ----------
    export_dir : Path
        A folder written by ``fieldkit export --format zarr``.
    split : str
        ``train``, ``validation`` or ``test``.
    variables : sequence of str
        Store variables to read per clip (``mel``, ``waveform``, ``mfcc``...).
    transform : callable, optional
        Applied to each item dict (``clip_id``, the variables as tensors, ``label`` or
        ``labels``) before it is returned.
    """

    def __init__(self, export_dir: Path, split: str = "train", *,
                 variables: Sequence[str] = ("mel",),
                 transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.export_dir = Path(export_dir)
        meta_path = self.export_dir / "export.json"
        if not meta_path.is_file():
            raise NotFoundError(f"{self.export_dir} is not a fieldkit export (no export.json).",
                                path=self.export_dir)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != "zarr":
            raise ValidationError(f"{self.export_dir} is a {meta.get('format')} export; "
                                  "ZarrClipDataset reads --format zarr exports.")
        self.path = zarr_split(self.export_dir, split)
        if not self.path.is_dir():
            raise NotFoundError(f"{self.export_dir} has no {split} split "
                                f"(splits: {', '.join(meta['splits'])}).", path=self.path)
        self.split, self.variables, self.transform = split, tuple(variables), transform
        self.label_names = tuple(meta["label_names"])
        self.single_label = bool(meta["single_label"])
        group = zarr.open_group(str(self.path), mode="r")
        missing = [v for v in self.variables if v not in group]
        if missing:
            raise ValidationError(f"{self.path} has no variable(s) {', '.join(missing)}; it has "
                                  f"{', '.join(sorted(n for n, _ in group.arrays()))}.")
        # labels and clip ids are one small row per clip: read once, keep in memory
        multi_hot = np.asarray(group["labels"][:], dtype=np.float32)
        self.clip_ids = np.asarray(group["clip_id"][:], dtype=np.int64)
        self._labels = (multi_hot.argmax(axis=1) if self.single_label else multi_hot)
        self._group: zarr.Group | None = None
        self._pid: int | None = None
        self._chunks: dict[str, tuple[int, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None, "_pid": None, "_chunks": {}}

    def _arrays(self) -> zarr.Group:
        if self._group is None or self._pid != os.getpid():
            self._group = zarr.open_group(str(self.path), mode="r")
            self._pid = os.getpid()
            self._chunks = {}
        return self._group

    def _clip(self, group: zarr.Group, name: str, i: int) -> np.ndarray:
        """Clip ``i`` of variable ``name``, through a one-chunk cache per variable."""
        array = group[name]
        size = array.chunks[0]
        block = i // size
        cached = self._chunks.get(name)
        if cached is None or cached[0] != block:
            cached = (block, np.asarray(array[block * size:(block + 1) * size]))
            self._chunks[name] = cached
        return cached[1][i - block * size]

    def __getitem__(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"clip {i} of a split of {len(self)} clips")
        i = int(i) % len(self)
        group = self._arrays()
        item: dict[str, Any] = {"clip_id": int(self.clip_ids[i])}
        for name in self.variables:
            item[name] = torch.from_numpy(np.array(self._clip(group, name, i)))
        if self.single_label:
            item["label"] = int(self._labels[i])
        else:
            item["labels"] = torch.from_numpy(self._labels[i])
        return self.transform(item) if self.transform is not None else item
