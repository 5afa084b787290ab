"""The parameters of each processing step, declared once: frozen, validated pydantic models.

One model per step (:class:`ResampleParams`, :class:`BitDepthParams`, :class:`ClippingParams`,
:class:`QCParams`, :class:`FeatureParams`) is at the same time

- a section of a workflow file (``resample:``, ``bit_depth:``, ``features:``; see
  :mod:`fieldkit.config.workflow`), so the JSON Schema, the defaults and the error messages of
  workflow files come from here;
- what the driver sends to Dask workers in the task specs (the models are frozen, hashable and
  picklable) and what the store layout reads its band counts from;
- what the kernels in :mod:`fieldkit.dsp` take (or plain values read from it).

Each model is saved next to every output it produced (Zarr attributes, the ``processing_run``
row), so each has ``to_dict()`` returning plain JSON-friendly values and ``from_dict()`` that
rebuilds an equal object; the round trip is an identity and is tested. Built directly, an
invalid value raises :class:`fieldkit.errors.ConfigError` naming the model, the field, the value
and what is allowed (inside a workflow file the same checks name the file and the dotted key).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from fieldkit.errors import ConfigError

__all__ = [
    "RESAMPLE_QUALITIES",
    "BIT_DEPTH_POLICIES",
    "DITHERS",
    "WINDOWS",
    "PAD_MODES",
    "FEATURES",
    "INDICES",
    "INDEX_SPECTRA",
    "FFT_PRECISIONS",
    "ResampleParams",
    "BitDepthParams",
    "ClippingParams",
    "QCParams",
    "FeatureParams",
    "IndexParams",
    "describe_errors",
]

#: soxr quality presets, from quickest to best.
RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
BIT_DEPTH_POLICIES = ("float32", "int16")
DITHERS = ("tpdf", "none")
#: Window names scipy.signal.get_window accepts without extra parameters.
WINDOWS = ("hann", "hamming", "blackman", "blackmanharris", "bartlett", "boxcar", "nuttall")
#: numpy.pad modes that librosa's centred STFT accepts and that fieldkit tests.
PAD_MODES = ("constant", "edge", "reflect")
FFT_PRECISIONS = ("float32", "float64")
#: Feature names understood by :func:`fieldkit.dsp.features.compute_features`; each is also
#: the name of its variable in a run's store (:data:`fieldkit.store.layout.FEATURE_VARIABLES`).
#: Acoustic indices of soundscape ecology, one value per clip (fieldkit.dsp.indices).
INDICES = ("aci", "adi", "aei", "bi", "ndsi", "ht", "hf", "h")
#: Per-frequency-bin indices of one clip, the false-colour pictures' input (Towsey et al. 2014):
#: one value per STFT bin (dim ``freq_bin``), per clip.
INDEX_SPECTRA = ("aci_spectrum", "ent_spectrum", "evn_spectrum", "act_spectrum")
FEATURES = ("stft", "mel", "logmel", "mfcc", "centroid", "bandwidth", "chroma", "rms",
            *INDICES, *INDEX_SPECTRA)

PositiveInt = Annotated[int, Field(gt=0)]


class _ConfigErrorOnCall(type(BaseModel)):  # type: ignore[misc]
    """Building a model directly (``FeatureParams(n_fft=1001)``) raises ConfigError.

    Done here rather than in ``__init__``: pydantic calls a custom ``__init__`` when it
    validates a nested section too, where a workflow needs pydantic's own errors (their
    locations give the file's dotted keys).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            raise ConfigError(_explained(cls, exc)) from exc


class _Params(BaseModel, metaclass=_ConfigErrorOnCall):
    """Frozen, hashable, strict about keys; ``to_dict``/``from_dict`` and ConfigError.

    ``_written_when_set`` names fields added after runs were first stored: they are left out
    of ``to_dict()`` (and of a workflow's dump and ``params_hash``) while they hold their
    default, so the stored form of every earlier workflow stays byte-identical and its runs
    still resume. A field a workflow always had must never be listed here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    _written_when_set: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_later_defaults(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in self._written_when_set:
            if getattr(self, name) == type(self).model_fields[name].default and not self._in_use(name):
                data.pop(name, None)
        return data

    def _in_use(self, name: str) -> bool:
        """Whether a later field is written even at its default (its step runs in this model)."""
        return False

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # The schema describes a section in one line; the rest of the docstring is for readers.
        schema = handler(core_schema)
        handler.resolve_ref_schema(schema)["description"] = cls.__doc__.strip().splitlines()[0]
        return schema

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly values (tuples become lists)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from :meth:`to_dict` output; an unknown key or bad value raises ConfigError."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explained(cls, exc)) from exc


class ResampleParams(_Params):
    """Band-limited resampling with soxr.

    Parameters
    ----------
    target_rate_hz : int or None
        Output sample rate in Hz, > 0 (any ratio to the input rate is allowed); None keeps
        the native rate (a run then requires its recordings to share one rate).
    quality : str
        soxr preset, one of :data:`RESAMPLE_QUALITIES`; ``"HQ"`` by default.
    """

    target_rate_hz: int | None = Field(16000, gt=0, description="Hz; null keeps the native rate.")
    quality: Literal[RESAMPLE_QUALITIES] = "HQ"  # type: ignore[valid-type]


class BitDepthParams(_Params):
    """Sample format of the stored waveform.

    Parameters
    ----------
    policy : str
        ``"float32"`` (values in [-1, 1], float input never clipped) or ``"int16"``.
    dither : str
        ``"tpdf"`` (triangular dither of +-1 LSB before rounding to int16) or ``"none"``.
        Only used by the ``"int16"`` policy.
    seed : int
        Seed (>= 0) of the dither noise; the same seed and key give the same samples.
    """

    policy: Literal[BIT_DEPTH_POLICIES] = "float32"  # type: ignore[valid-type]
    dither: Literal[DITHERS] = Field("tpdf", description="Only used by int16.")  # type: ignore[valid-type]
    seed: int = Field(0, ge=0)


class ClippingParams(_Params):
    """Clipping detection on the original samples.

    Parameters
    ----------
    min_run : int
        Shortest run of consecutive full-scale samples that counts as clipping (>= 1).
    fraction : float
        Threshold as a fraction of full scale, in (0, 1]; 1.0 means exactly full scale.
    """

    min_run: int = Field(1, ge=1)
    fraction: float = Field(1.0, gt=0, le=1)


class QCParams(_Params):
    """Quality-control metrics.

    Parameters
    ----------
    frame_s : float
        Length in seconds of the non-overlapping frames used for the silent fraction, > 0.
    silence_threshold_dbfs : float
        A frame whose RMS is below this level (dB re full scale, <= 0) counts as silent.
    """

    frame_s: float = Field(0.05, gt=0)
    silence_threshold_dbfs: float = Field(-60.0, le=0)

Band = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]]


class IndexParams(_Params):
    """Acoustic indices: bands and thresholds (scikit-maad 1.5.2's defaults; fieldkit.dsp.indices).

    Every default is the default of the scikit-maad 1.5.2 function that computes the index
    (``maad.features``), which in turn follows the paper cited; a band reaching beyond the
    Nyquist frequency of the clips is cut at Nyquist (see ``docs/indices.md``).

    Parameters
    ----------
    adi_band_hz, adi_step_hz, adi_db_threshold : (float, float), float, float
        Acoustic diversity index (Villanueva-Rivera et al. 2011; ``acoustic_diversity_index``):
        Shannon entropy of the fraction of cells louder than ``adi_db_threshold`` dB re the
        clip's maximum in each ``adi_step_hz`` band of ``adi_band_hz``. (0, 20000), 1000, -50.
    aei_band_hz, aei_step_hz, aei_db_threshold : (float, float), float, float
        Acoustic evenness index (the Gini coefficient of the same fractions;
        ``acoustic_eveness_index``): (0, 20000), 500, -50.
    bi_band_hz : (float, float)
        Bioacoustic index band (Boelman et al. 2007; ``bioacoustics_index``): (2000, 15000).
    ndsi_bio_hz, ndsi_anthro_hz, ndsi_step_hz : (float, float), (float, float), float
        Biophony and anthrophony bands of the NDSI (Kasten et al. 2012; ``soundscape_index``):
        (1000, 10000) and (0, 1000), summed over ``ndsi_step_hz`` = 1000 Hz bands; a band
        belongs to the range its start lies in, half-open ``[low, high)`` as in the paper
        (scikit-maad also counts the band starting at ``high``, see docs/indices.md).
    envelope_frame : int
        Samples per frame of the envelope whose entropy is Ht (Sueur et al. 2008;
        ``temporal_entropy(Nt=512)``).
    activity_db_threshold : float
        ACT and EVN per frequency bin (Towsey 2013; ``spectral_activity``, ``spectral_events``):
        dB above the bin's background (median-equalised spectrogram) counted as activity; 6.
    event_min_s : float or None
        Events shorter than this are discarded (``rejectDuration``); None keeps all.
    """

    adi_band_hz: Band = (0.0, 20000.0)
    adi_step_hz: float = Field(1000.0, gt=0)
    adi_db_threshold: float = Field(-50.0, le=0)
    aei_band_hz: Band = (0.0, 20000.0)
    aei_step_hz: float = Field(500.0, gt=0)
    aei_db_threshold: float = Field(-50.0, le=0)
    bi_band_hz: Band = (2000.0, 15000.0)
    ndsi_bio_hz: Band = (1000.0, 10000.0)
    ndsi_anthro_hz: Band = (0.0, 1000.0)
    ndsi_step_hz: float = Field(1000.0, gt=0)
    envelope_frame: PositiveInt = 512
    activity_db_threshold: float = Field(6.0, ge=0)
    event_min_s: float | None = Field(None, gt=0)

    @field_validator("adi_band_hz", "aei_band_hz", "bi_band_hz", "ndsi_bio_hz", "ndsi_anthro_hz")
    @classmethod
    def _ordered(cls, band: tuple[float, float]) -> tuple[float, float]:
        if band[0] >= band[1]:
            raise ValueError(f"a band (low, high) in Hz needs low < high; got {list(band)}")
        return band


class FeatureParams(_Params):
    """Short-time features (librosa definitions; see fieldkit.dsp.features).

    All features come from one shared STFT; names follow librosa 0.11.

    Parameters
    ----------
    n_fft : int
        FFT length in samples (even, >= 16).
    hop_length : int
        Samples between successive frames (>= 1).
    win_length : int or None
        Window length in samples (<= n_fft; the window is centred in the FFT frame);
        None means n_fft.
    window : str
        Window name, one of :data:`WINDOWS` (periodic, as ``scipy.signal.get_window``).
    n_mels : int
        Number of Slaney mel bands (>= 1).
    fmin_hz, fmax_hz : float, float or None
        Frequency range of the mel filter bank in Hz; ``fmax_hz=None`` means Nyquist.
    n_mfcc : int
        Number of MFCC (1 <= n_mfcc <= n_mels).
    n_chroma : int
        Number of chroma bins per octave (>= 1).
    tuning : float
        Fixed tuning offset in fractions of a chroma bin, in [-0.5, 0.5) (never estimated).
    compute : tuple of str
        Features to compute, distinct names from :data:`FEATURES` (may be empty: a run that
        stores only the waveform), acoustic indices (:data:`INDICES`, :data:`INDEX_SPECTRA`)
        included.
    center : bool
        Pad ``n_fft // 2`` samples on each side so frame t is centred at ``t * hop_length``.
    pad_mode : str
        numpy.pad mode used when ``center`` is true, one of :data:`PAD_MODES`.
    power : float
        Exponent of the magnitude for the mel spectrogram (1 = magnitude, 2 = power), > 0.
    top_db : float or None
        Dynamic range kept by the dB conversion before MFCC and log-mel (librosa's 80).
    fft_precision : str
        ``"float32"`` (fast; agrees with librosa to ~1e-7 whenever the signal has a noise
        floor above ~-130 dB of its peak, i.e. any recording) or ``"float64"`` (librosa's
        own precision, ~1.3x slower; agrees to rounding on noiseless synthetic signals too).
        Outputs are float32 either way.
    indices : IndexParams
        Bands and thresholds of the acoustic indices; written (and hashed) whenever an index
        is computed, so a stored run always names them, and left out otherwise.
    """

    # Workflow files had these five keys only since issue #11, indices since #17 (see _Params).
    _written_when_set: ClassVar[tuple[str, ...]] = (
        "center", "pad_mode", "power", "top_db", "fft_precision", "indices")

    n_fft: int = Field(1024, ge=16, description="FFT length in samples (even).")
    hop_length: PositiveInt = 320
    win_length: int | None = Field(None, gt=0, description="<= n_fft; null = n_fft.")
    window: Literal[WINDOWS] = "hann"  # type: ignore[valid-type]
    n_mels: PositiveInt = 64
    fmin_hz: float = Field(0.0, ge=0)
    fmax_hz: float | None = Field(None, gt=0, description="<= Nyquist; null = Nyquist.")
    n_mfcc: PositiveInt = 20
    n_chroma: PositiveInt = 12
    tuning: float = Field(0.0, ge=-0.5, lt=0.5, description="Chroma bins; never estimated.")
    compute: tuple[Literal[FEATURES], ...] = Field(  # type: ignore[valid-type]
        ("mel", "mfcc", "centroid", "bandwidth", "chroma", "rms"),
        description="All but stft (big) and logmel (mfcc's input).")
    center: StrictBool = Field(True, description="Centre frames (pad n_fft // 2 each side).")
    pad_mode: Literal[PAD_MODES] = Field(  # type: ignore[valid-type]
        "constant", description="numpy.pad mode used when center is true.")
    power: float = Field(2.0, gt=0, description="Magnitude exponent of mel (2 = power).")
    top_db: float | None = Field(80.0, ge=0, description="dB range kept before MFCC and logmel.")
    fft_precision: Literal[FFT_PRECISIONS] = Field(  # type: ignore[valid-type]
        "float32", description="float64: librosa's precision, ~1.3x slower.")
    indices: IndexParams = Field(IndexParams(), description="Bands and thresholds of the acoustic indices.")

    def _in_use(self, name: str) -> bool:
        return name == "indices" and bool(self.index_names)

    @property
    def index_names(self) -> tuple[str, ...]:
        """The acoustic indices among ``compute`` (per clip and per frequency bin)."""
        return tuple(n for n in self.compute if n in INDICES or n in INDEX_SPECTRA)

    @property
    def frame_length(self) -> int:
        """Window length in samples actually used (``win_length`` or ``n_fft``)."""
        return self.n_fft if self.win_length is None else self.win_length

    @field_validator("n_fft")
    @classmethod
    def _even(cls, n_fft: int) -> int:
        if n_fft % 2:
            raise ValueError(f"n_fft ({n_fft}) must be even")
        return n_fft

    # Cross-field rules are field validators (fields validate in declaration order), so an
    # error names the key at fault and its value, not only the section.
    @field_validator("win_length")
    @classmethod
    def _window_fits(cls, win: int | None, info: ValidationInfo) -> int | None:
        n_fft = info.data.get("n_fft")
        if None not in (win, n_fft) and win > n_fft:  # type: ignore[operator]
            raise ValueError(f"win_length ({win}) must be <= n_fft ({n_fft})")
        return win

    @field_validator("fmax_hz")
    @classmethod
    def _band_not_empty(cls, fmax: float | None, info: ValidationInfo) -> float | None:
        fmin = info.data.get("fmin_hz")
        if None not in (fmax, fmin) and fmax <= fmin:  # type: ignore[operator]
            raise ValueError(f"fmax_hz ({fmax}) must exceed fmin_hz ({fmin})")
        return fmax

    @field_validator("n_mfcc")
    @classmethod
    def _mfcc_from_mels(cls, mfcc: int, info: ValidationInfo) -> int:
        mels = info.data.get("n_mels")
        if mels is not None and mfcc > mels:
            raise ValueError(f"n_mfcc ({mfcc}) must be <= n_mels ({mels})")
        return mfcc

    @field_validator("compute")
    @classmethod
    def _distinct(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) < len(names):
            raise ValueError(f"compute repeats a feature: {list(names)}")
        return names


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside a field annotation (``X``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_submodel, getattr(annotation, "__args__", ()))), None)


def _walk(loc: tuple[Any, ...], root: type[BaseModel],
          prefix: str) -> tuple[str, type[BaseModel] | None]:
    """Dotted key of an error location, and the model found at that location (if any).

    Parts that are neither field names nor indices (pydantic's union-member tags such as
    ``date`` or ``function-after[...]``) are dropped.
    """
    model: type[BaseModel] | None = root
    key = prefix
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif model is not None and part in model.model_fields:
            key = f"{key}.{part}" if key else part
            model = _submodel(model.model_fields[part].annotation)
    return key, model


def _describe_one(err: Any, root: type[BaseModel], prefix: str) -> str:
    key, _ = _walk(tuple(err["loc"]), root, prefix)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        parent_key, parent = _walk(tuple(err["loc"][:-1]), root, prefix)
        name = ".".join(filter(None, [parent_key, str(err["loc"][-1])]))
        allowed = ", ".join((parent or root).model_fields)
        return f"unknown key {name!r}; allowed keys here: {allowed}"
    if err["type"] == "missing":
        return f"{key} is required"
    if not key or isinstance(err.get("input"), dict):
        return f"{key + ': ' if key else ''}{msg}"
    return f"{key} = {err.get('input')!r} is invalid: {msg}"


def describe_errors(exc: ValidationError, root: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per distinct error of ``exc``, in order: the dotted key, the value and why.

    Parameters
    ----------
    exc : pydantic.ValidationError
        Raised while validating ``root`` (or a model nested in it).
    root : type of BaseModel
        The model that was validated; keys are found by walking its fields.
    prefix : str
        Put before every key (``"FeatureParams"`` gives ``FeatureParams.n_fft = ...``).
    """
    return list(dict.fromkeys(_describe_one(err, root, prefix) for err in exc.errors()))


def _explained(model: type[BaseModel], exc: ValidationError) -> str:
    return "; ".join(describe_errors(exc, model, prefix=model.__name__)) + "."
