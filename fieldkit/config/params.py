"""Parameters of the DSP kernels: frozen, validated, hashable dataclasses.

Each parameter set is saved next to every output it produced (Zarr attributes, the
``processing_run`` row, export cards), so each has ``to_dict()`` returning plain JSON-friendly
values and ``from_dict()`` that rebuilds an equal object (the round trip is an identity and is
tested). Invalid values raise :class:`fieldkit.errors.ConfigError` naming the field, the value
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, TypeVar

from fieldkit.config.checks import is_int as _is_int
from fieldkit.errors import ConfigError

__all__ = [
    "RESAMPLE_QUALITIES",
    "BIT_DEPTH_POLICIES",
    "DITHERS",
    "WINDOWS",
    "PAD_MODES",
    "FEATURE_NAMES",
    "FFT_PRECISIONS",
    "ResampleParams",
    "BitDepthParams",
    "ClippingParams",
    "QCParams",
    "FeatureParams",
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
#: Feature names understood by :func:`fieldkit.dsp.features.compute_features`.
FEATURE_NAMES = ("stft", "mel", "logmel", "mfcc", "centroid", "bandwidth", "chroma", "rms")

P = TypeVar("P", bound="_Params")


def _fail(cls_name: str, field: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{cls_name}.{field} = {value!r} is invalid; expected {allowed}.")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Params:
    """Shared ``to_dict``/``from_dict`` and validation helpers of the parameter dataclasses."""

    _tuple_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly values (tuples become lists)."""
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls: type[P], data: dict[str, Any]) -> P:
        """Rebuild from :meth:`to_dict` output; unknown keys raise ConfigError."""
        known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{cls.__name__} got unknown field(s) {unknown}; known fields: {', '.join(known)}."
            )
        values = {k: tuple(v) if k in cls._tuple_fields else v for k, v in data.items()}
        return cls(**values)

    def _check(self, field: str, ok: bool, allowed: str) -> None:
        if not ok:
            raise _fail(type(self).__name__, field, getattr(self, field), allowed)

    def _check_choice(self, field: str, choices: tuple[str, ...]) -> None:
        self._check(field, getattr(self, field) in choices, f"one of {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class ResampleParams(_Params):
    """Band-limited resampling with soxr.

    Parameters
    ----------
    target_rate_hz : float
        Output sample rate in Hz, > 0 (any ratio to the input rate is allowed).
    quality : str
        soxr preset, one of :data:`RESAMPLE_QUALITIES`; ``"HQ"`` by default.
    """

    target_rate_hz: float
    quality: str = "HQ"

    def __post_init__(self) -> None:
        rate = self.target_rate_hz
        self._check("target_rate_hz", _is_real(rate) and rate > 0, "a finite number of Hz > 0")
        self._check_choice("quality", RESAMPLE_QUALITIES)


@dataclasses.dataclass(frozen=True)
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

    policy: str = "float32"
    dither: str = "tpdf"
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_choice("policy", BIT_DEPTH_POLICIES)
        self._check_choice("dither", DITHERS)
        self._check("seed", _is_int(self.seed) and self.seed >= 0, "an integer >= 0")


@dataclasses.dataclass(frozen=True)
class ClippingParams(_Params):
    """Clipping detection on the original samples.

    Parameters
    ----------
    min_run : int
        Shortest run of consecutive full-scale samples that counts as clipping (>= 1).
    fraction : float
        Threshold as a fraction of full scale, in (0, 1]; 1.0 means exactly full scale.
    """

    min_run: int = 1
    fraction: float = 1.0

    def __post_init__(self) -> None:
        self._check("min_run", _is_int(self.min_run) and self.min_run >= 1, "an integer >= 1")
        ok = _is_real(self.fraction) and 0.0 < self.fraction <= 1.0
        self._check("fraction", ok, "a number in (0, 1]")


@dataclasses.dataclass(frozen=True)
class QCParams(_Params):
    """Quality-control metrics.

    Parameters
    ----------
    frame_s : float
        Length in seconds of the non-overlapping frames used for the silent fraction, > 0.
    silence_threshold_dbfs : float
        A frame whose RMS is below this level (dB re full scale, <= 0) counts as silent.
    """

    frame_s: float = 0.05
    silence_threshold_dbfs: float = -60.0

    def __post_init__(self) -> None:
        self._check("frame_s", _is_real(self.frame_s) and self.frame_s > 0, "seconds > 0")
        level = self.silence_threshold_dbfs
        self._check("silence_threshold_dbfs", _is_real(level) and level <= 0, "a dBFS value <= 0")


@dataclasses.dataclass(frozen=True)
class FeatureParams(_Params):
    """Short-time features computed from one shared STFT; names follow librosa 0.11.

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
    center : bool
        Pad ``n_fft // 2`` samples on each side so frame t is centred at ``t * hop_length``.
    pad_mode : str
        numpy.pad mode used when ``center`` is true, one of :data:`PAD_MODES`.
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
    power : float
        Exponent of the magnitude for the mel spectrogram (1 = magnitude, 2 = power), > 0.
    top_db : float or None
        Dynamic range kept by the dB conversion before MFCC and log-mel (librosa's 80).
    features : tuple of str
        Features to compute, from :data:`FEATURE_NAMES`.
    fft_precision : str
        ``"float32"`` (fast; agrees with librosa to ~1e-7 whenever the signal has a noise
        floor above ~-130 dB of its peak, i.e. any recording) or ``"float64"`` (librosa's
        own precision, ~1.3x slower; agrees to rounding on noiseless synthetic signals too).
        Outputs are float32 either way.
    """

    _tuple_fields: ClassVar[tuple[str, ...]] = ("features",)

    n_fft: int = 1024
    hop_length: int = 256
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    n_mels: int = 64
    fmin_hz: float = 0.0
    fmax_hz: float | None = None
    n_mfcc: int = 20
    n_chroma: int = 12
    tuning: float = 0.0
    power: float = 2.0
    top_db: float | None = 80.0
    features: tuple[str, ...] = ("mel", "mfcc", "centroid", "bandwidth", "chroma", "rms")
    fft_precision: str = "float32"

    def __post_init__(self) -> None:
        self._check_framing()
        self._check_bands()
        self._check_features()

    @property
    def frame_length(self) -> int:
        """Window length in samples actually used (``win_length`` or ``n_fft``)."""
        return self.n_fft if self.win_length is None else self.win_length

    def _check_framing(self) -> None:
        n_fft = self.n_fft
        self._check("n_fft", _is_int(n_fft) and n_fft >= 16 and n_fft % 2 == 0,
                    "an even integer >= 16")
        self._check("hop_length", _is_int(self.hop_length) and self.hop_length >= 1,
                    "an integer >= 1")
        win = self.win_length
        self._check("win_length", win is None or (_is_int(win) and 1 <= win <= n_fft),
                    f"None or an integer in [1, n_fft={n_fft}]")
        self._check_choice("window", WINDOWS)
        self._check("center", isinstance(self.center, bool), "True or False")
        self._check_choice("pad_mode", PAD_MODES)
        self._check_choice("fft_precision", FFT_PRECISIONS)

    def _check_bands(self) -> None:
        self._check("n_mels", _is_int(self.n_mels) and self.n_mels >= 1, "an integer >= 1")
        self._check("fmin_hz", _is_real(self.fmin_hz) and self.fmin_hz >= 0, "a number of Hz >= 0")
        fmax = self.fmax_hz
        self._check("fmax_hz", fmax is None or (_is_real(fmax) and fmax > self.fmin_hz),
                    f"None (Nyquist) or a number of Hz > fmin_hz={self.fmin_hz}")
        self._check("n_mfcc", _is_int(self.n_mfcc) and 1 <= self.n_mfcc <= self.n_mels,
                    f"an integer in [1, n_mels={self.n_mels}]")
        self._check("n_chroma", _is_int(self.n_chroma) and self.n_chroma >= 1, "an integer >= 1")
        self._check("tuning", _is_real(self.tuning) and -0.5 <= self.tuning < 0.5,
                    "a number of chroma bins in [-0.5, 0.5)")
        self._check("power", _is_real(self.power) and self.power > 0, "a number > 0")
        top_db = self.top_db
        self._check("top_db", top_db is None or (_is_real(top_db) and top_db >= 0),
                    "None or a number of dB >= 0")

    def _check_features(self) -> None:
        names = self.features
        ok = isinstance(names, tuple) and len(names) > 0 and all(n in FEATURE_NAMES for n in names)
        self._check("features", ok and len(set(names)) == len(names),
                    f"a non-empty tuple of distinct names from {', '.join(FEATURE_NAMES)}")
