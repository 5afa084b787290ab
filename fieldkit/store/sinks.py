"""The store contract: where a task's shards go, whichever code encodes them.

A :class:`ShardSink` writes one shard-aligned region of every data variable and tells whether
a region is complete. The checks are the same for every sink and live here: the region is
checked (bounds, shard alignment, every variable with its shape and dtype) before anything is
written. The completion protocol is the same too: a write clears the ``progress/done`` marker
of its clips, writes every variable, then sets the marker, so a crash leaves the region
incomplete.

Two sinks implement it (zarr-python's store ABC and conformance suite are the model; the
contract tests in ``tests/store/test_sinks.py`` run against both):

- :class:`fieldkit.store.shards.DirectShardSink` encodes whole shards itself, on a local store
  laid out as :func:`~fieldkit.store.zarr_store.create_store` makes it;
- :class:`fieldkit.store.regions.ZarrShardSink` writes through zarr: any store zarr opens.

:func:`fieldkit.store.regions.open_sink` chooses between them, once per opened store.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fieldkit.errors import StoreError
from fieldkit.store.layout import StoreLayout, VariableSpec

__all__ = ["PROGRESS_GROUP", "ShardSink", "SinkCapabilities", "StoreLike", "store_name", "zarr_target"]

PathLike = str | os.PathLike[str]
#: What a store function takes: a local path (or ``file://`` URL), or a zarr store object that
#: the caller made for an object-store prefix (``Root.zarr_store``): this layer never learns a
#: URL's options or credentials, it only opens what it is handed.
StoreLike = PathLike | Any


def zarr_target(path: StoreLike) -> Any:
    """What zarr and xarray open: a path as a string, a store object as it is."""
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else path


def store_name(path: StoreLike) -> str:
    """A store's name for messages: its path, or ``protocol://bucket/prefix`` of a store object."""
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path)
    fs, where = getattr(path, "fs", None), getattr(path, "path", None) or getattr(path, "root", "")
    protocol = getattr(fs, "protocol", None)
    protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
    return f"{protocol}://{where}" if protocol and protocol != "file" else str(where)


#: Child group holding the completion marker ``done`` (uint8 per clip).
PROGRESS_GROUP = "progress"


@dataclass(frozen=True)
class SinkCapabilities:
    """What a kind of sink handles, for callers and tests to ask instead of checking classes.

    Attributes
    ----------
    name : str
        ``"direct"`` or ``"zarr"``: which code encodes the shards.
    remote : bool
        Whether it writes to stores given as URLs (``s3://``, ``gs://``, any fsspec protocol).
    other_encodings : bool
        Whether it writes arrays encoded otherwise than ``create_store`` encodes them (another
        codec chain, chunk key or done marker, e.g. a store made by an older fieldkit).
    """

    name: str
    remote: bool
    other_encodings: bool


class ShardSink(ABC):
    """Where one store's shard-aligned regions go; the same checks and protocol for every sink.

    Subclasses implement :meth:`_write` (clear ``done``, write every variable, set ``done``) and
    :meth:`_done`; :meth:`write` and :meth:`is_complete` check the region first.
    """

    capabilities: ClassVar[SinkCapabilities]

    def __init__(self, path: StoreLike, layout: StoreLayout) -> None:
        self.path = path
        self.layout = layout

    def write(self, clip_slice: slice, arrays: dict[str, np.ndarray]) -> None:
        """Write every data variable of a shard-aligned region, then mark it done.

        Parameters
        ----------
        clip_slice : slice
            ``[start, stop)`` on ``clip``; start on a shard boundary, stop on one or at
            ``n_clips``. Checked before anything is written (StoreError otherwise).
        arrays : dict of str to ndarray
            Every data variable of the layout, each ``(stop - start, *rest)``; cast to the
            stored dtype with ``same_kind`` casting.
        """
        start, stop = _bounds(clip_slice, self.layout, self.path)
        _check_aligned(start, stop, self.layout, self.path)
        self._write(start, stop, _checked_arrays(self.layout, stop - start, arrays))

    def is_complete(self, clip_slice: slice) -> bool:
        """Whether every clip of ``clip_slice`` was written by a finished :meth:`write`."""
        start, stop = _bounds(clip_slice, self.layout, self.path)
        return bool(np.all(self._done(start, stop) == 1))

    @abstractmethod
    def _write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Clear ``done`` on ``[start, stop)``, write every (checked) array, set ``done``."""

    @abstractmethod
    def _done(self, start: int, stop: int) -> np.ndarray:
        """The ``progress/done`` marker of clips ``[start, stop)``, uint8."""


def _bounds(clip_slice: slice, layout: StoreLayout, path: StoreLike) -> tuple[int, int]:
    """``(start, stop)`` of a step-1 slice inside ``[0, n_clips]``; StoreError otherwise."""
    if not isinstance(clip_slice, slice) or clip_slice.step not in (None, 1):
        raise StoreError(f"region {clip_slice!r} of {store_name(path)} must be a slice with step 1.")
    start, stop = clip_slice.start or 0, layout.n_clips if clip_slice.stop is None \
        else clip_slice.stop
    if not (0 <= start < stop <= layout.n_clips):
        raise StoreError(f"region [{start}, {stop}) of {store_name(path)} is empty or outside "
                         f"[0, {layout.n_clips}).")
    return start, stop


def _check_aligned(start: int, stop: int, layout: StoreLayout, path: StoreLike) -> None:
    shard = layout.clips_per_shard
    if start % shard == 0 and (stop % shard == 0 or stop == layout.n_clips):
        return
    lo, hi = start - start % shard, min(-(-stop // shard) * shard, layout.n_clips)
    raise StoreError(
        f"region [{start}, {stop}) of {store_name(path)} is not aligned to its {shard}-clip shards: it "
        f"must start on a multiple of {shard} and end on one or at n_clips={layout.n_clips} "
        f"(the enclosing aligned region is [{lo}, {hi})); two writers sharing a shard would "
        "lose data, so nothing was written. Plan regions with plan_regions().")


def _checked_array(spec: VariableSpec, values: np.ndarray, n: int) -> np.ndarray:
    array = np.asarray(values)
    expected = (n, *spec.shape[1:])
    if array.shape != expected:
        raise StoreError(f"{spec.name} has shape {array.shape}; expected {expected} "
                         f"{spec.dims} for this region.")
    if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
        raise StoreError(f"{spec.name} has dtype {array.dtype}; expected {spec.dtype}.")
    return np.ascontiguousarray(array, dtype=spec.dtype)


def _checked_arrays(layout: StoreLayout, n: int,
                    arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    specs = {spec.name: spec for spec in layout.variables()}
    missing, unknown = sorted(set(specs) - set(arrays)), sorted(set(arrays) - set(specs))
    if missing or unknown:
        raise StoreError(f"a region must give every data variable: missing {missing}, "
                         f"unknown {unknown} (expected {', '.join(specs)}).")
    return {name: _checked_array(specs[name], arrays[name], n) for name in specs}
