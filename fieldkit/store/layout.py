"""The layout of one processing run's Zarr store: variables, dims, dtypes, chunks and shards.

One store holds one xarray Dataset whose first dimension is always ``clip`` (docs/architecture.md,
"Store layout"):

=================================================  ======================  =====================
variable                                           dims                    dtype
=================================================  ======================  =====================
``waveform`` (if stored)                           clip, sample            float32 or int16
``valid_samples``                                  clip                    int32
``mel``, ``logmel``                                clip, frame, mel_band   float32 or float16
``mfcc``                                           clip, frame, mfcc_coef  float32 or float16
``chroma``                                         clip, frame, chroma_bin float32 or float16
``stft`` (magnitude, optional: it is big)          clip, frame, freq_bin   float32 or float16
``centroid``, ``bandwidth`` (Hz)                   clip, frame             float32
``rms``                                            clip, frame             float32 or float16
``clipped_fraction``, ``peak_dbfs``,               clip                    float32
``dc_offset``, ``silent_fraction``
``nonfinite_count``                                clip                    int32
``aci``, ``adi``, ``aei``, ``bi``, ``ndsi``,       clip                    float32
``ht``, ``hf``, ``h`` (acoustic indices)
``aci_spectrum``, ``ent_spectrum``,                clip, freq_bin          float32
``evn_spectrum``, ``act_spectrum``
=================================================  ======================  =====================

The acoustic indices (:data:`INDEX_VARIABLES`, issue #17) are per clip, not per frame, and
float32 whatever ``store.dtype`` says (a few values per clip; ACI and BI run to the hundreds,
where float16 keeps two decimals at best). They need no new schema version: a store without
them reads as before.

``nonfinite_count`` is a QC flag: how many of the clip's stored float values are NaN or
±Inf once cast to their stored dtype (0 for a clean clip; ``peak_dbfs`` is left out, since -Inf
is its defined value for digital silence). The Hz-valued features are float32 whatever the
workflow's ``store.dtype``: they reach Nyquist (rate / 2), and float16 (max 65 504) overflows
to +Inf above 131 kHz, which is every bat workflow.

Schema version 2 added both. A store of schema version 1 (written before) has no
``nonfinite_count`` and keeps ``centroid`` and ``bandwidth`` in ``feature_dtype``;
:attr:`StoreLayout.schema_version` says which rules a layout follows, so those stores still
open, resume and export.

The band dims are ``mel_band``, ``mfcc_coef``, ``chroma_bin`` and ``freq_bin`` rather than
plain ``mel``/``mfcc``/``chroma``: xarray treats a variable that has a dimension of its
own name as a coordinate, so ``mel (clip, frame, mel)`` would not be a data variable.

Coordinates on ``clip``: ``recording_id`` (int64, -1 for padding clips), ``start_time``
(datetime64[ns], UTC without a zone, attribute ``timezone="UTC"``), ``offset_s`` (float64,
seconds from the start of the recording), ``site`` and ``deployment`` (variable-length UTF-8
strings) and ``channel`` (int16, -1 when channels were mixed).

Every data variable is sharded along ``clip`` only: an inner chunk (the unit a reader
decompresses) holds ``clips_per_chunk`` whole clips, a shard (the stored object, and the unit
of parallel writes: one writer per shard) holds ``clips_per_shard`` clips. The defaults come
from ``benchmarks/store_chunks.py`` (see :mod:`fieldkit.store.zarr_store` for the figures).
Floating-point variables use NaN as fill value, so a chunk that was never written reads as
NaN; integers use 0. Completion is never inferred from values (see ``zarr_store``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fieldkit.config.checks import is_int as _is_int
from fieldkit.config.params import (
    BIT_DEPTH_POLICIES,
    FEATURES,
    INDEX_SPECTRA,
    INDICES,
    FeatureParams,
)
from fieldkit.dsp.stft import frame_count
from fieldkit.errors import ConfigError

__all__ = [
    "COORDINATES",
    "DEFAULT_CLIPS_PER_CHUNK",
    "DEFAULT_CLIPS_PER_SHARD",
    "DEFAULT_COMPRESSION_LEVEL",
    "FEATURE_VARIABLES",
    "FREQUENCY_FEATURES",
    "INDEX_VARIABLES",
    "NONFINITE_VARIABLE",
    "QC_VARIABLES",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "StoreLayout",
    "VariableSpec",
]

SCHEMA_VERSION = "2"
#: Versions this code reads and resumes (see the module docstring for what 2 changed).
SCHEMA_VERSIONS = ("1", "2")
#: Chosen with benchmarks/store_chunks.py (figures in fieldkit.store.zarr_store's docstring).
DEFAULT_CLIPS_PER_CHUNK = 16
DEFAULT_CLIPS_PER_SHARD = 128
DEFAULT_COMPRESSION_LEVEL = 1

#: Band dims are not named after their variable: xarray would turn a variable whose name is
#: one of its own dims into a coordinate.
_BAND_DIMS = {"stft": "freq_bin", "mel": "mel_band", "logmel": "mel_band", "mfcc": "mfcc_coef",
              "chroma": "chroma_bin"}
#: Acoustic index (fieldkit.config.params INDICES and INDEX_SPECTRA) -> the name of its second
#: dimension (None for one value per clip): no frame dimension, float32 always.
INDEX_VARIABLES: dict[str, str | None] = {**dict.fromkeys(INDICES), **dict.fromkeys(INDEX_SPECTRA, "freq_bin")}
#: Frame feature name (every other name of fieldkit.config.params.FEATURES) -> the name of its
#: third dimension (None for per-frame scalars).
FEATURE_VARIABLES: dict[str, str | None] = {name: _BAND_DIMS.get(name) for name in FEATURES
                                            if name not in INDEX_VARIABLES}
_ALL_FEATURES = {**FEATURE_VARIABLES, **INDEX_VARIABLES}
#: The stored ``layout`` attribute keeps each band width under the name of the FeatureParams
#: field it comes from (n_freq is n_fft // 2 + 1), as it always has: stores written before
#: must still open and resume.
_STORED_BANDS = {"n_mels": "mel_band", "n_mfcc": "mfcc_coef", "n_chroma": "chroma_bin",
                 "n_freq": "freq_bin"}
QC_VARIABLES = ("clipped_fraction", "peak_dbfs", "dc_offset", "silent_fraction")
#: Features in Hz: they reach Nyquist, beyond float16's 65 504 above 131 kHz, so they are
#: stored as float32 whatever ``store.dtype`` is (schema version 2 on).
FREQUENCY_FEATURES = ("centroid", "bandwidth")
#: Per-clip QC flag: NaN/±Inf values among the clip's stored float values (int32).
NONFINITE_VARIABLE = "nonfinite_count"
#: Coordinate name -> numpy dtype string ("str" = variable-length UTF-8 in Zarr).
COORDINATES: dict[str, str] = {
    "recording_id": "int64", "start_time": "datetime64[ns]", "offset_s": "float64",
    "site": "str", "deployment": "str", "channel": "int16",
}
WAVEFORM_DTYPES = BIT_DEPTH_POLICIES
FEATURE_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class VariableSpec:
    """One data variable of the store.

    ``shape``, ``chunks`` (inner chunks) and ``shards`` are in elements, ``dims`` first; all
    three differ only along ``clip``.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...]

    @property
    def fill_value(self) -> float | int:
        """NaN for floating-point variables (never-written reads as NaN), else 0."""
        return math.nan if self.dtype.startswith("float") else 0


@dataclass(frozen=True)
class StoreLayout:
    """Everything needed to create one run's store, before any task runs.

    Parameters
    ----------
    n_clips : int
        Length of the ``clip`` dimension, >= 1, padding clips included (see ``plan_regions``).
    samples_per_clip : int
        Clip length in samples at ``sample_rate_hz``, >= 1.
    sample_rate_hz : int
        Sample rate of the stored waveform and of the features' input, Hz > 0.
    n_frames : int
        STFT frames per clip (``fieldkit.dsp.stft.frame_count``), >= 1 if any feature is stored.
    features : tuple of str
        Feature variables to store, names from :data:`FEATURE_VARIABLES`.
    bands : dict of str to int
        Width (>= 1) of each band dim (``mel_band``, ``mfcc_coef``, ``chroma_bin``,
        ``freq_bin``); every stored feature's band dim needs one. :meth:`from_feature_params`
        takes them from the FeatureParams (``n_mels``, ``n_mfcc``, ``n_chroma``, and
        ``n_fft // 2 + 1`` STFT bins when ``"stft"`` is stored).
    waveform : bool
        Whether the ``waveform`` variable is stored.
    waveform_dtype, feature_dtype : str
        ``"float32"`` or ``"int16"``; ``"float32"`` or ``"float16"``.
    clips_per_chunk, clips_per_shard : int
        Clips per inner chunk and per shard; the shard is a multiple of the chunk.
    compression_level : int
        Blosc zstd level, 0-9 (always with bit-shuffle).
    schema_version : str
        The store's ``schema_version`` attribute (one of :data:`SCHEMA_VERSIONS`); not part of
        :meth:`to_dict`, which is stored beside it. Version 1 has no ``nonfinite_count`` and
        stores ``centroid``/``bandwidth`` in ``feature_dtype``.
    """

    n_clips: int
    samples_per_clip: int
    sample_rate_hz: int
    n_frames: int
    features: tuple[str, ...]
    bands: dict[str, int] = dataclasses.field(hash=False)
    waveform: bool = True
    waveform_dtype: str = "float32"
    feature_dtype: str = "float32"
    clips_per_chunk: int = DEFAULT_CLIPS_PER_CHUNK
    clips_per_shard: int = DEFAULT_CLIPS_PER_SHARD
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "bands", dict(self.bands))  # a copy: the layout stays frozen
        self._check_sizes()
        self._check_storage()

    def _fail(self, name: str, allowed: str) -> ConfigError:
        return ConfigError(f"StoreLayout.{name} = {getattr(self, name)!r} is invalid; "
                           f"expected {allowed}.")

    def _check_sizes(self) -> None:
        for name in ("n_clips", "samples_per_clip", "sample_rate_hz"):
            if not (_is_int(getattr(self, name)) and getattr(self, name) >= 1):
                raise self._fail(name, "an integer >= 1")
        if not (_is_int(self.n_frames) and self.n_frames >= (1 if self.features else 0)):
            raise self._fail("n_frames", "an integer >= 1 when features are stored")
        unknown = [f for f in self.features if f not in _ALL_FEATURES]
        if unknown or len(set(self.features)) != len(self.features):
            raise self._fail("features", f"distinct names from {', '.join(_ALL_FEATURES)}")
        self._check_bands()

    def _check_bands(self) -> None:
        dims = set(_STORED_BANDS.values())
        if not all(dim in dims and _is_int(n) and n >= 1 for dim, n in self.bands.items()):
            raise self._fail("bands", f"band dims from {', '.join(sorted(dims))} with widths >= 1")
        needed = {dim for dim in map(_ALL_FEATURES.get, self.features) if dim is not None}
        if needed - set(self.bands):
            raise self._fail("bands", f"a width for {', '.join(sorted(needed - set(self.bands)))} "
                             "(the band dim of a stored feature; freq_bin is n_fft // 2 + 1)")

    def _check_storage(self) -> None:
        if self.waveform_dtype not in WAVEFORM_DTYPES:
            raise self._fail("waveform_dtype", f"one of {', '.join(WAVEFORM_DTYPES)}")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise self._fail("feature_dtype", f"one of {', '.join(FEATURE_DTYPES)}")
        if not (_is_int(self.clips_per_chunk) and self.clips_per_chunk >= 1):
            raise self._fail("clips_per_chunk", "an integer >= 1")
        shard = self.clips_per_shard
        if not (_is_int(shard) and shard >= 1 and shard % self.clips_per_chunk == 0):
            raise self._fail("clips_per_shard",
                             f"a positive multiple of clips_per_chunk={self.clips_per_chunk}")
        if not (_is_int(self.compression_level) and 0 <= self.compression_level <= 9):
            raise self._fail("compression_level", "an integer in [0, 9]")
        if self.schema_version not in SCHEMA_VERSIONS:
            raise self._fail("schema_version", f"one of {', '.join(SCHEMA_VERSIONS)}")

    @classmethod
    def from_feature_params(cls, n_clips: int, samples_per_clip: int, sample_rate_hz: int,
                            params: FeatureParams, **storage: Any) -> StoreLayout:
        """The layout for clips of ``samples_per_clip`` samples and DSP ``params``.

        ``storage`` takes the remaining fields (``waveform``, dtypes, chunking, level).
        """
        bands = {"mel_band": params.n_mels, "mfcc_coef": params.n_mfcc,
                 "chroma_bin": params.n_chroma}
        if "stft" in params.compute or set(INDEX_SPECTRA) & set(params.compute):
            bands["freq_bin"] = params.n_fft // 2 + 1
        return cls(n_clips=n_clips, samples_per_clip=samples_per_clip,
                   sample_rate_hz=sample_rate_hz,
                   n_frames=frame_count(samples_per_clip, params), features=params.compute,
                   bands=bands, **storage)

    @property
    def n_shards(self) -> int:
        """Number of shards along ``clip`` (the last one may be partial)."""
        return -(-self.n_clips // self.clips_per_shard)

    @property
    def bytes_per_clip(self) -> int:
        """Bytes of every data variable for one clip, uncompressed."""
        return sum(math.prod(v.shape[1:]) * np.dtype(v.dtype).itemsize for v in self.variables())

    def _spec(self, name: str, dims: tuple[str, ...], rest: tuple[int, ...],
              dtype: str) -> VariableSpec:
        return VariableSpec(name=name, dims=("clip", *dims), shape=(self.n_clips, *rest),
                            dtype=dtype, chunks=(self.clips_per_chunk, *rest),
                            shards=(self.clips_per_shard, *rest))

    def feature_dtype_of(self, name: str) -> str:
        """The stored dtype of feature ``name``: float32 for Hz values (schema 2 on), else
        ``feature_dtype``."""
        if name in FREQUENCY_FEATURES and self.schema_version != "1" or name in INDEX_VARIABLES:
            return "float32"
        return self.feature_dtype

    def _feature_spec(self, name: str) -> VariableSpec:
        if name in INDEX_VARIABLES:
            band = INDEX_VARIABLES[name]
            return self._spec(name, (band,) if band else (), (self.bands[band],) if band else (), "float32")
        band = FEATURE_VARIABLES[name]
        if band is None:
            return self._spec(name, ("frame",), (self.n_frames,), self.feature_dtype_of(name))
        return self._spec(name, ("frame", band), (self.n_frames, self.bands[band]),
                          self.feature_dtype_of(name))

    def variables(self) -> tuple[VariableSpec, ...]:
        """Every data variable (coordinates excluded), in a fixed order."""
        specs = []
        if self.waveform:
            specs.append(self._spec("waveform", ("sample",), (self.samples_per_clip,),
                                    self.waveform_dtype))
        specs.append(self._spec("valid_samples", (), (), "int32"))
        specs.extend(self._feature_spec(name) for name in self.features)
        specs.extend(self._spec(name, (), (), "float32") for name in QC_VARIABLES)
        if self.schema_version != "1":
            specs.append(self._spec(NONFINITE_VARIABLE, (), (), "int32"))
        return tuple(specs)

    def variable(self, name: str) -> VariableSpec:
        """The spec of one data variable; ConfigError naming the known ones if absent."""
        for spec in self.variables():
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.variables())
        raise ConfigError(f"no data variable {name!r} in this layout; known: {known}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly values (stored in the store's ``layout`` attribute).

        The band widths are stored flat, as ``n_mels``, ``n_mfcc``, ``n_chroma`` and ``n_freq``
        (None when absent), in the place of ``bands``. ``schema_version`` is left out: it is
        the store's own attribute, beside this one.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "schema_version":
                continue
            if f.name == "bands":
                out.update({key: self.bands.get(dim) for key, dim in _STORED_BANDS.items()})
            else:
                out[f.name] = getattr(self, f.name)
        out["features"] = list(self.features)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema_version: str = SCHEMA_VERSION) -> StoreLayout:
        """Rebuild from :meth:`to_dict` output and the store's ``schema_version``; unknown keys
        raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)} - {"bands", "schema_version"} | set(_STORED_BANDS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"StoreLayout got unknown field(s) {unknown}; "
                              f"known: {', '.join(sorted(known))}.")
        values = {k: tuple(v) if k == "features" else v for k, v in data.items()
                  if k not in _STORED_BANDS}
        bands = {dim: data[key] for key, dim in _STORED_BANDS.items() if data.get(key) is not None}
        return cls(**values, bands=bands, schema_version=schema_version)
