"""From a batch of clips to the rows a store keeps of them: the pure half of a task.

lhotse keeps ``FeatureExtractor.extract(samples, sampling_rate)`` apart from
``extract_from_recording_and_store``; here :meth:`RowExtractor.extract` turns clips into stored
rows (features, QC values, the waveform) and knows nothing of shards, resumes or stores, while
:mod:`fieldkit.pipeline.tasks` reads audio, buffers clips into shards and writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from fieldkit.config.params import FeatureParams
from fieldkit.dsp.bitdepth import to_int16
from fieldkit.dsp.clips import clip_qc
from fieldkit.dsp.features import FEATURE_GROUP_FRAMES, compute_features
from fieldkit.dsp.stft import frame_count
from fieldkit.pipeline.spec import DspSpec

__all__ = ["ClipBatch", "RowExtractor", "clipped_fraction", "count_nonfinite"]

#: The per-clip QC flag (fieldkit.store.layout.NONFINITE_VARIABLE; named here because the pure
#: half of a task does not depend on the store adapter).
NONFINITE = "nonfinite_count"
#: -Inf is peak_dbfs's defined value for digital silence, not a fault.
_NOT_COUNTED = frozenset({NONFINITE, "peak_dbfs"})


class ClipBatch(NamedTuple):
    """Consecutive clips of one task, as the clip cutter yields them."""

    clips: np.ndarray  # (clips, clip_len) float32 at the target rate, zero-padded after valid
    valid: np.ndarray  # (clips,) samples of each clip that are real audio
    clipped: np.ndarray  # (clips,) fraction of each clip's original samples that clipped, [0, 1]


def clipped_fraction(clipped: np.ndarray, valid: np.ndarray, ratio: float, channels: int) -> np.ndarray:
    """Fraction of each clip's original samples that clipped.

    Parameters
    ----------
    clipped : ndarray, int, shape (clips,)
        Clipped original samples per clip, over the channels used.
    valid : ndarray, int, shape (clips,)
        Real samples per clip at the target rate.
    ratio : float
        Original rate / target rate (> 0).
    channels : int
        Channels the clip is made of (1, or all of them for a mix).

    Returns
    -------
    ndarray, float64, shape (clips,), in [0, 1]
    """
    original = np.maximum(np.round(valid * ratio) * channels, 1)
    return np.minimum(clipped / original, 1.0)


def _stored(values: np.ndarray, dtype: str | None) -> np.ndarray:
    """``values`` in their stored dtype; an overflow becomes ±Inf quietly, as it is counted."""
    if dtype is None or values.dtype == dtype:
        return values
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


def _surely_finite(values: np.ndarray, dtype: str | None) -> bool:
    """Whether every value is finite and within ``dtype``'s range, by two reductions of the
    computed values (NaN propagates through them): the usual case, with no mask and no pass over
    float16 values, which numpy reduces several times slower than float32."""
    stored = np.dtype(dtype or values.dtype)
    if values.dtype.kind != "f" or stored.kind != "f" or not values.size:
        return True  # integers hold no NaN/Inf
    lo, hi = values.min(), values.max()
    limit = np.finfo(stored).max
    return bool(np.isfinite(lo) and np.isfinite(hi) and -limit <= lo and hi <= limit)


def count_nonfinite(rows: Mapping[str, np.ndarray], names: Iterable[str] | None = None) -> np.ndarray:
    """NaN and ±Inf values per clip in the float rows ``names`` (default: all of them).

    Parameters
    ----------
    rows : mapping of str to ndarray
        Stored rows, each with a leading clip axis, already in their stored dtype.
    names : iterable of str, optional
        The rows to count in (integer rows are skipped).

    Returns
    -------
    ndarray, int32, shape (clips,)
        0 for a clean clip.
    """
    n = len(next(iter(rows.values())))
    counts = np.zeros(n, np.int32)
    for name in rows if names is None else names:
        values = rows[name]
        if values.dtype.kind == "f":
            counts += (~np.isfinite(values)).reshape(n, -1).sum(axis=1, dtype=np.int32)
    return counts


@dataclass(frozen=True)
class RowExtractor:
    """What a store keeps of each clip, and how it is computed; made once per task.

    Attributes
    ----------
    dsp : DspSpec
        The run's processing (target rate, waveform format, dither, feature parameters).
    variables : frozenset of str
        The store's data variables: rows hold these and no others.
    dtypes : dict of str to str
        Stored dtype of each variable: rows are cast to it here, so that a value the stored
        dtype cannot hold is counted (``nonfinite_count``) instead of overflowing in the writer
        unseen. A variable without one keeps its computed dtype.
    """

    dsp: DspSpec
    variables: frozenset[str]
    dtypes: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def for_store(cls, dsp: DspSpec, variables: Iterable[str],
                  dtypes: Mapping[str, str] | None = None) -> RowExtractor:
        """The extractor of a run's processing into a store with these data variables (and
        their stored dtypes)."""
        return cls(dsp, frozenset(variables), dict(dtypes or {}))

    @property
    def features(self) -> FeatureParams:
        """The run's feature parameters."""
        return self.dsp.features

    @property
    def batch_clips(self) -> int:
        """Clips to extract at once: about a feature group, so that short clips still vectorise."""
        return max(1, FEATURE_GROUP_FRAMES // max(1, frame_count(self.dsp.clip_len, self.features)))

    def extract(self, batch: ClipBatch, first_clip: int) -> dict[str, np.ndarray]:
        """The stored rows of a batch of clips; a pure function of its arguments.

        Parameters
        ----------
        batch : ClipBatch
            Clips, their valid samples and clipped fractions.
        first_clip : int
            Store index of the batch's first clip: the int16 dither of a clip is keyed by its
            index, so its bytes do not depend on which task or batch computes it.

        Returns
        -------
        dict of str to ndarray
            One array per stored variable in :attr:`variables`, each with a leading clip axis,
            in its stored dtype; ``nonfinite_count`` (int32, when the store keeps it: schema
            version 2 on) counts each clip's NaN/±Inf values after that cast.
        """
        dsp = self.dsp
        out: dict[str, np.ndarray] = {"valid_samples": batch.valid.astype(np.int32)}
        if dsp.waveform and dsp.bit_depth.policy == "float32":
            out["waveform"] = batch.clips
        elif dsp.waveform:
            out["waveform"] = np.stack([to_int16(clip, dsp.bit_depth, key=(first_clip + i,))
                                        for i, clip in enumerate(batch.clips)])
        out.update(compute_features(batch.clips, dsp.target_rate_hz, self.features))
        self._index_real_audio_only(batch, out)
        out.update(clip_qc(batch.clips, batch.valid))
        out["clipped_fraction"] = batch.clipped.astype(np.float32)
        rows = {k: _stored(v, self.dtypes.get(k)) for k, v in out.items() if k in self.variables}
        if NONFINITE in self.variables:
            suspects = [k for k in rows if k not in _NOT_COUNTED and not _surely_finite(out[k], self.dtypes.get(k))]
            rows[NONFINITE] = count_nonfinite(rows, suspects)
        return rows

    def _index_real_audio_only(self, batch: ClipBatch, out: dict[str, np.ndarray]) -> None:
        """Recompute the acoustic indices of zero-padded clips from their real samples alone.

        The padding would count as sound: a clip half padded would have half the events per
        second, a lower temporal entropy and a step in every bin's ACI. Only the last clip of a
        recording is padded, so this is one short extra STFT per recording.
        """
        names = self.features.index_names
        partial = np.flatnonzero((batch.valid < batch.clips.shape[-1]) & (batch.valid > 0)) if names else ()
        if not len(partial):
            return
        only = self.features.model_copy(update={"compute": names})
        for i in partial:
            real = batch.clips[i, : int(batch.valid[i])]
            if frame_count(real.size, only) < 2:  # too short for an index over time: keep the padded one
                continue
            for name, value in compute_features(real, self.dsp.target_rate_hz, only).items():
                out[name][i] = value
