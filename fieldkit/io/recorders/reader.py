"""Read every recorder metadata source of one file into a :class:`RecorderMetadata`.

Raw load (chunk bodies, capped) -> the registered sources, walked in their declared priority
(:data:`fieldkit.io.recorders.registry.PRIORITY`) -> one merged record. When sources disagree,
the first in the priority wins: GUANO (structured, written by the firmware), then the AudioMoth
comment/``IART``, then ``wamd``, then ``bext``. Every parsed value is also kept under ``raw`` so
nothing is lost. The reader knows no recorder format: adding one is registering a source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, BinaryIO

from fieldkit.io.recorders import registry
from fieldkit.io.riff.chunks import METADATA_BODY_CAP_BYTES, read_chunk_body
from fieldkit.model.audio import RiffLayout
from fieldkit.model.metadata import RecorderMetadata, TimeCandidate

__all__ = ["read_recorder_metadata"]


@dataclass
class _Merge:
    """Mutable accumulator: the first source to offer a value wins (take in priority order)."""

    values: dict[str, Any] = field(default_factory=dict)
    candidates: list[TimeCandidate] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def take(self, reading: registry.Reading) -> None:
        for key, value in reading.values.items():
            if value not in (None, "") and self.values.get(key) is None:
                self.values[key] = value
        self.candidates.extend(reading.times)
        self.raw.update(reading.raw)
        self.flags.extend(reading.flags)
        self.warnings.extend(reading.warnings)


def read_recorder_metadata(
    source: str | os.PathLike[str] | BinaryIO, filename: str, layout: RiffLayout | None
) -> RecorderMetadata:
    """Read and merge the metadata of every registered source (GUANO, AudioMoth comment, wamd,
    bext/iXML, INFO, file name...), in the registry's priority.

    Parameters
    ----------
    source : path-like or binary file object
        The (archived) file; only metadata chunk bodies are read, each capped at 4 MiB.
    filename : str
        The recording's original file name (for the file-name timestamp).
    layout : RiffLayout or None
        From :func:`fieldkit.io.riff.chunks.walk_riff`; None for non-RIFF files (then only the file
        name is used).

    Returns
    -------
    RecorderMetadata
    """
    walk = registry.sources()
    wanted = {chunk_id for s in walk for chunk_id in s.chunk_ids}
    bodies = _read_bodies(source, layout, wanted) if layout is not None else {}
    merge = _Merge()
    for step in walk:
        given = registry.SourceInput(bodies, filename, MappingProxyType(dict(merge.values)),
                                     MappingProxyType(dict(merge.raw)))
        merge.take(step.read(given))
    return _freeze(merge, layout)


def _read_bodies(source: str | os.PathLike[str] | BinaryIO, layout: RiffLayout,
                 chunk_ids: set[str]) -> dict[str, tuple[bytes, ...]]:
    """Bodies of the chunks the sources read, in file order, each capped."""
    wanted = [c for c in layout.chunks if c.chunk_id in chunk_ids]
    if hasattr(source, "read"):
        return _bodies_from(source, wanted)  # type: ignore[arg-type]
    with open(source, "rb") as fileobj:  # type: ignore[arg-type]
        return _bodies_from(fileobj, wanted)


def _bodies_from(fileobj: BinaryIO, chunks: list[Any]) -> dict[str, tuple[bytes, ...]]:
    bodies: dict[str, list[bytes]] = {}
    for chunk in chunks:
        body = read_chunk_body(fileobj, chunk, cap_bytes=METADATA_BODY_CAP_BYTES)
        bodies.setdefault(chunk.chunk_id, []).append(body)
    return {chunk_id: tuple(found) for chunk_id, found in bodies.items()}


def _freeze(merge: _Merge, layout: RiffLayout | None) -> RecorderMetadata:
    v = merge.values
    return RecorderMetadata(
        make=v.get("make"), model=v.get("model"), serial=v.get("serial"),
        firmware=v.get("firmware"), deployment_id=v.get("deployment_id"),
        time_candidates=tuple(merge.candidates), gain=v.get("gain"),
        battery_v=v.get("battery_v"), battery_qualifier=v.get("battery_qualifier"),
        temperature_c=v.get("temperature_c"), latitude_deg=v.get("latitude_deg"),
        longitude_deg=v.get("longitude_deg"), elevation_m=v.get("elevation_m"),
        raw=merge.raw, chunk_ids=layout.chunk_ids if layout else (),
        flags=tuple(dict.fromkeys(merge.flags)), warnings=tuple(merge.warnings),
    )
