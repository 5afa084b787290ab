"""Each clip's audio as FLAC: the processed waveform of the run, or the archive's excerpt.

Two sources, chosen by the export's ``audio`` option (:data:`AUDIO_SOURCES`):

- ``processed``: the store's ``waveform`` of the clip at the run's rate, trimmed to its real
  audio (``valid_samples``; the zero padding of a recording's last clip is left out);
- ``original``: the same span read from the verified archive copy at the file's own rate
  (and own channels when the run mixed them), so a team can re-process from the source. The
  archive is only read, never written.

FLAC is lossless for integers: an int16 waveform is stored as 16-bit FLAC, bit for bit; a
float waveform as 24-bit FLAC, so a decoded sample differs from the stored float by at most
one 24-bit step (2**-23 of full scale); FLAC has no room above full scale, so a float
sample beyond +-1 (a resampler's overshoot on a clipped recording) is stored as +-1, which
the card says. Formats that keep audio inside their own files
(Parquet's ``audio`` column, WebDataset shards) call :func:`clip_audio`; the others get an
``audio/<split>/<key>.flac`` folder from :func:`write_audio_folder`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from fieldkit.errors import NotFoundError, ValidationError
from fieldkit.export.pooling import clip_blocks, open_source
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.io.storage import Root

__all__ = ["AUDIO_SOURCES", "ClipAudio", "audio_folder_path", "clip_audio", "clip_key",
           "encode_flac", "resolve_audio_source", "write_audio_folder"]

#: Values of the export's ``audio`` option.
AUDIO_SOURCES = ("processed", "original", "none")
#: Largest difference between a decoded 24-bit FLAC sample and the float it encodes.
FLOAT_FLAC_STEP = 2.0**-23


@dataclass(frozen=True)
class ClipAudio:
    """One clip's audio: its index row position, key, FLAC bytes, rate and sample count."""

    row: int
    key: str
    flac: bytes
    sample_rate_hz: int
    n_samples: int


def clip_key(clip_id: int) -> str:
    """The clip's file stem in every format (no dots: WebDataset splits keys at the first dot)."""
    return f"clip{int(clip_id):08d}"


def audio_folder_path(split: str, clip_id: int) -> str:
    """Where the folder formats keep one clip's FLAC, relative to the export."""
    return f"audio/{split}/{clip_key(clip_id)}.flac"


def encode_flac(samples: np.ndarray, sample_rate_hz: int) -> bytes:
    """FLAC bytes of ``samples`` (``(n,)`` or ``(n, channels)``): 16-bit for int16, else 24-bit."""
    subtype = "PCM_16" if samples.dtype == np.int16 else "PCM_24"
    buffer = io.BytesIO()
    sf.write(buffer, samples, int(sample_rate_hz), format="FLAC", subtype=subtype)
    return buffer.getvalue()


def resolve_audio_source(inp: ExportInput) -> str:
    """The audio source the export will use; refuses one the input cannot provide."""
    source = inp.audio
    if source not in AUDIO_SOURCES:
        raise ValidationError(f"audio {source!r} is not one of {', '.join(AUDIO_SOURCES)}.")
    if source == "processed" and "waveform" not in open_source(inp.store).data_vars:
        raise ValidationError(
            f"the run's store {inp.store_name} holds no waveform, so there is no processed "
            "audio to export.", hint="Use --audio original (the archive's excerpt) or "
            "--audio none, or process with 'store: waveform: true'.")
    if source == "original" and inp.archive_root is None:
        raise ValidationError("audio 'original' needs the archive folder; none was given.",
                              hint="Export from a workspace, or use --audio processed.")
    return source


def _processed(inp: ExportInput, rows: pd.DataFrame) -> Iterator[tuple[int, np.ndarray, int]]:
    ds = open_source(inp.store)
    rate = int(ds.attrs["layout"]["sample_rate_hz"])
    clip_ids = rows["clip_id"].to_numpy(dtype=np.int64)
    for block_rows, arrays in clip_blocks(ds, clip_ids, ["waveform", "valid_samples"]):
        for i, (wave, valid) in enumerate(zip(arrays["waveform"], arrays["valid_samples"])):
            yield block_rows.start + i, np.ascontiguousarray(wave[:int(valid)]), rate


@contextlib.contextmanager
def _archive_file(inp: ExportInput, rel: str, clip_id: int) -> Iterator[Any]:
    """The archive file of a clip: its local path, or a ranged-read file object of a URL root."""
    root = inp.archive_root
    if isinstance(root, Root) and not root.is_local:
        if not root.exists(rel):
            raise NotFoundError(f"archive object {root.uri(rel)} of clip {clip_id} is missing.", path=root.uri(rel),
                                hint="Run 'fieldkit verify' on the archive, or export with --audio processed.")
        with root.open_read(rel) as handle:
            yield handle
        return
    path = (root.local_path if isinstance(root, Root) else Path(root)) / rel
    if not path.is_file():
        raise NotFoundError(f"archive file {path} of clip {clip_id} is missing.", path=path,
                            hint="Run 'fieldkit verify' on the archive, or export with "
                                 "--audio processed.")
    yield str(path)


def _original(inp: ExportInput, rows: pd.DataFrame) -> Iterator[tuple[int, np.ndarray, int]]:
    ds = open_source(inp.store)
    run_rate = int(ds.attrs["layout"]["sample_rate_hz"])
    clip_ids = rows["clip_id"].to_numpy(dtype=np.int64)
    valid = ds["valid_samples"].values[clip_ids]
    channels = ds["channel"].values[clip_ids] if "channel" in ds.coords else np.full(len(rows), -1)
    archive = {int(r["clip_id"]): r["archive_path"] for r in inp.lineage}
    for i, clip_id in enumerate(clip_ids):
        with _archive_file(inp, archive[int(clip_id)], int(clip_id)) as source:
            info = sf.info(source)
            start = round(float(rows["offset_s"].iloc[i]) * info.samplerate)
            frames = round(int(valid[i]) / run_rate * info.samplerate)
            dtype = "int16" if info.subtype in ("PCM_16", "PCM_S8", "PCM_U8") else "float32"
            if not isinstance(source, str):
                source.seek(0)
            data, rate = sf.read(source, start=start, frames=frames, dtype=dtype, always_2d=True)
        channel = int(channels[i])
        data = data[:, channel] if 0 <= channel < data.shape[1] else data
        yield i, np.ascontiguousarray(data.squeeze(axis=1) if data.ndim == 2
                                      and data.shape[1] == 1 else data), int(rate)


def clip_audio(inp: ExportInput, rows: pd.DataFrame, source: str) -> Iterator[ClipAudio]:
    """Encode the clips of ``rows`` (index rows, in order) as FLAC, one at a time.

    Parameters
    ----------
    inp : ExportInput
        The export's input (store, lineage, archive folder).
    rows : pandas.DataFrame
        Index rows (``clip_id``, ``offset_s``) in export order.
    source : str
        ``processed`` or ``original`` (see the module docstring).

    Yields
    ------
    ClipAudio
        In the order of ``rows``; ``row`` is the position in ``rows``.
    """
    read = _processed if source == "processed" else _original
    for row, samples, rate in read(inp, rows):
        clip_id = int(rows["clip_id"].iloc[row])
        yield ClipAudio(row, clip_key(clip_id), encode_flac(samples, rate), rate,
                        int(samples.shape[0]))


def write_audio_folder(inp: ExportInput, out_dir: Path, source: str) -> dict[str, str]:
    """Write ``audio/<split>/<key>.flac`` for every clip; returns ``relative file -> sha256``."""
    if source == "none":
        return {}
    for split in inp.splits:
        rows = inp.split_index(split)
        folder = out_dir / "audio" / split
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clip_audio(inp, rows, source):
            (folder / f"{clip.key}.flac").write_bytes(clip.flac)
    return hash_files(out_dir, "audio")
