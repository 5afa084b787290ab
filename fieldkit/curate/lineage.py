"""Layer 3: lineage — from a clip of a run (or of a dataset) back to the card it came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import runs as run_rows
from fieldkit.errors import ConfigError, NotFoundError
from fieldkit.store.zarr_store import read_variables

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["parse_clip_ref", "clip_lineage", "clips_lineage"]


def parse_clip_ref(text: str) -> tuple[int, int]:
    """``RUN:CLIP`` (e.g. ``3:120``) → (run id, clip index)."""
    run, sep, clip = text.partition(":")
    if not (sep and run.isdigit() and clip.isdigit()):
        raise ConfigError(f"clip reference {text!r} is not RUN:CLIP (e.g. 3:120).",
                          hint="Runs are listed by 'fieldkit catalog runs'; clip is the index on the store's clip axis.")
    return int(run), int(clip)


def clips_lineage(ws: Workspace, run_id: int, clip_ids: list[int]) -> list[dict[str, Any]]:
    """One complete record per clip: clip → recording → archive file → card sightings → processing."""
    with ws.catalogue.read() as s:
        run = run_rows.get_run(s, run_id)
        coords = read_variables(ws.open_run_store(run.store_path, read_only=True),
                                ("recording_id", "offset_s", "start_time", "channel"))
        bad = [c for c in clip_ids if not 0 <= c < len(coords["recording_id"]) or coords["recording_id"][c] < 0]
        if bad:
            raise NotFoundError(f"run {run_id} has no clip {bad[0]} (its store holds clips 0-{len(coords['recording_id']) - 1}; "
                                "padding clips have no lineage).")
        recs = label_rows.recording_lineage(s, sorted({int(coords["recording_id"][c]) for c in clip_ids}))
    processing = {"run_id": run_id, "store": run.store_path, "params_hash": run.params_hash,
                  "parameters": run.parameters, "versions": run.versions}
    return [{"clip": {"run_id": run_id, "clip_id": c, "offset_s": float(coords["offset_s"][c]),
                      "channel": int(coords["channel"][c]),
                      "start_time_utc": None if np.isnat(coords["start_time"][c])
                      else str(coords["start_time"][c].astype("datetime64[ms]")) + "Z"},
             "recording": recs[int(coords["recording_id"][c])].to_dict(), "processing": processing} for c in clip_ids]


def clip_lineage(ws: Workspace, ref: str) -> dict[str, Any]:
    run_id, clip = parse_clip_ref(ref)
    return clips_lineage(ws, run_id, [clip])[0]
