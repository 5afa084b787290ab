"""Workflow files (``workflows/*.yaml``): what to process and how, as a frozen, validated model.

A workflow names a *selection* of catalogued recordings and the parameters of every processing
step (docs/architecture.md, "Processing"). The steps' sections ``resample``, ``bit_depth`` and ``features``
are the parameter models of :mod:`fieldkit.config.params` themselves, the same objects the task
specs carry to the kernels. Every section forbids unknown keys; a mistake raises
:class:`~fieldkit.errors.ConfigError` naming the file, the dotted key, the value and what is
allowed. Conventions:

- **Dates** (``selection.start``/``end``) are UTC. A date means the whole UTC day (``end:
  2024-05-31`` includes the 31st); a datetime is an instant (naive = UTC, aware = converted),
  ``end`` exclusive. :meth:`Selection.utc_bounds` gives the half-open instants.
- **Time of day** is in the **deployment's local time zone** by default (``zone: local``, the
  catalogue's ``deployment.timezone``): "20:00-06:00" means the same evening hours at every
  site, which is what an ecologist means by "night". ``zone: utc`` uses UTC. ``start > end``
  wraps midnight; the window is ``[start, end)``.
- ``resample.target_rate_hz: null`` keeps the native rate; a store holds one rate, so the run
  then requires the selected recordings to share it (``selection.min/max_sample_rate_hz``).
  ``features.fmax_hz`` is checked against the target Nyquist here, else by the run.
- :meth:`Workflow.params_hash` covers every section but ``name`` and ``description``: selection
  and store settings decide which clips exist and how they are stored, so a store is resumed
  only by a workflow of the same hash.

:func:`load_workflow` reads YAML without 1.1's base-60 integers (``20:00`` stays a time, not
1200) and rejects duplicate keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fieldkit.config.params import (
    BitDepthParams,
    FeatureParams,
    PositiveInt,
    ResampleParams,
    describe_errors,
)
from fieldkit.errors import ConfigError, NotFoundError

__all__ = [
    "STATUSES", "Channels", "Clips", "Compressor", "Selection", "Store", "TimeOfDay", "Workflow",
    "load_workflow", "workflow_json_schema",
]

STATUSES = ("ok", "truncated", "quarantined")

Status = Literal[STATUSES]  # type: ignore[valid-type]


class _Section(BaseModel):
    """Frozen, strict about keys; every section of a workflow derives from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeOfDay(_Section):
    """Daily window ``[start, end)``; wraps midnight when ``start > end``."""

    start: dt.time = Field(description="Window start, HH:MM (local or UTC, see zone).")
    end: dt.time = Field(description="Window end (exclusive), HH:MM; before start wraps midnight.")
    zone: Literal["local", "utc"] = Field(
        "local", description="local: the deployment's time zone (default); utc: UTC.")

    @model_validator(mode="after")
    def _naive_and_not_empty(self) -> TimeOfDay:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("give clock times HH:MM without an offset; zone says local or utc")
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty; omit "
                             "time_of_day to keep the whole day")
        return self

    def contains(self, moment: dt.time) -> bool:
        """Whether a clock time (in this window's zone) falls inside the window."""
        moment = moment.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class Selection(_Section):
    """Which catalogued recordings a run processes (empty lists mean "all")."""

    sites: tuple[str, ...] = Field((), description="Site names; empty = all sites.")
    deployments: tuple[str, ...] = Field((), description="Deployment names; empty = all.")
    start: dt.datetime | dt.date | None = Field(None, description="UTC date or datetime.")
    end: dt.datetime | dt.date | None = Field(None, description="UTC date (inclusive) or "
                                              "datetime (exclusive).")
    time_of_day: TimeOfDay | None = None
    statuses: tuple[Status, ...] = Field(("ok", "truncated"), min_length=1)
    min_duration_s: float = Field(0.0, ge=0, description="Shorter recordings are skipped.")
    min_sample_rate_hz: PositiveInt | None = None
    max_sample_rate_hz: PositiveInt | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_instant(cls, value: Any) -> Any:
        try:
            if isinstance(value, str):
                value = dt.date.fromisoformat(value) if len(value) == 10 \
                    else dt.datetime.fromisoformat(value)
        except ValueError:
            value = "invalid"
        if value is not None and not isinstance(value, dt.date):
            raise ValueError("expected a date YYYY-MM-DD or an ISO 8601 datetime")
        if isinstance(value, dt.datetime):  # naive means UTC already
            return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Selection:
        (lo, hi), lo_hz, hi_hz = self.utc_bounds(), self.min_sample_rate_hz, self.max_sample_rate_hz
        if None not in (lo, hi) and lo >= hi:  # type: ignore[operator]
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        if None not in (lo_hz, hi_hz) and lo_hz > hi_hz:  # type: ignore[operator]
            raise ValueError(f"min_sample_rate_hz ({lo_hz}) exceeds max_sample_rate_hz ({hi_hz})")
        return self

    def utc_bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """Half-open ``[start, end)`` as aware UTC datetimes (None = unbounded)."""
        return _instant(self.start, 0), _instant(self.end, 1)


def _instant(value: dt.date | None, days_after: int) -> dt.datetime | None:
    """A datetime as is; a date as the UTC midnight starting it (or ``days_after`` later)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days_after)


class Channels(_Section):
    """What to do with multichannel recordings (``channel`` coordinate: -1 when mixed)."""

    policy: Literal["keep", "mix", "pick"] = Field(
        "mix", description="keep: one clip per channel; mix: mean of channels; pick: one.")
    pick: int | None = Field(None, ge=0, description="Channel index (0-based) for policy pick.")

    @model_validator(mode="after")
    def _pick_iff_policy(self) -> Channels:
        if (self.policy == "pick") != (self.pick is not None):
            raise ValueError("pick (a channel index >= 0) is required with policy 'pick' only")
        return self


class Clips(_Section):
    """Fixed-length clips cut from each recording."""

    length_s: float = Field(gt=0, description="Clip length in seconds.")
    hop_s: float | None = Field(None, gt=0, description="Seconds between clips; default length_s.")
    min_valid_fraction: float = Field(0.5, ge=0, le=1, description="Keep a last clip this real.")
    pad: Literal["zero"] = Field("zero", description="How the last clip is padded.")

    @model_validator(mode="before")
    @classmethod
    def _default_hop(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("hop_s") is None and "length_s" in data:
            return {**data, "hop_s": data["length_s"]}
        return data


class Compressor(_Section):
    """Blosc compressor of every stored array (always with bit-shuffle)."""

    name: Literal["zstd"] = "zstd"
    level: int = Field(1, ge=0, le=9)


class Store(_Section):
    """How the run's Zarr store is laid out (see fieldkit.store for the measured defaults)."""

    waveform: bool = Field(True, description="Store the clips' samples too.")
    dtype: Literal["float32", "float16"] = Field(
        "float32", description="Feature dtype; centroid and bandwidth (Hz, up to Nyquist: beyond float16 above "
        "131 kHz) are float32 whatever this says.")
    clips_per_chunk: PositiveInt = 16
    clips_per_shard: PositiveInt = 128
    compressor: Compressor = Compressor()

    @model_validator(mode="after")
    def _shard_of_chunks(self) -> Store:
        if self.clips_per_shard % self.clips_per_chunk:
            raise ValueError(f"clips_per_shard ({self.clips_per_shard}) must be a multiple of "
                             f"clips_per_chunk ({self.clips_per_chunk})")
        return self


class Workflow(_Section):
    """One workflow file. ``clips`` is the only section without defaults."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="Short name (letters, digits, . _ -); names run stores.")
    description: str = ""
    selection: Selection = Selection()
    resample: ResampleParams = ResampleParams()
    bit_depth: BitDepthParams = BitDepthParams()
    channels: Channels = Channels()
    clips: Clips
    features: FeatureParams = FeatureParams()
    store: Store = Store()

    @model_validator(mode="after")
    def _consistent_across_sections(self) -> Workflow:
        rate = self.resample.target_rate_hz
        problems = [] if rate is None else _rate_problems(self, rate)
        if not self.store.waveform and not self.features.compute:
            problems.append("store.waveform is false and features.compute is empty: the store "
                            "would hold no data")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def params_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of every section except name and description."""
        params = self.model_dump(mode="json", exclude={"name", "description"})
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly values; ``Workflow.from_dict(w.to_dict()) == w``."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Workflow:
        """Validate ``data``; errors become one ConfigError naming ``source`` and each key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid workflow {source}: " + "; ".join(describe_errors(exc, cls)) + ".",
                              hint="See schemas/workflow.schema.json for every key.") from exc


def _rate_problems(workflow: Workflow, rate: int) -> list[str]:
    nyquist, feats, clips = rate / 2, workflow.features, workflow.clips
    problems = []
    if feats.fmax_hz is not None and feats.fmax_hz > nyquist:
        problems.append(f"features.fmax_hz = {feats.fmax_hz} exceeds the Nyquist frequency "
                        f"{nyquist:g} Hz of resample.target_rate_hz = {rate}; expected a value "
                        f"<= {nyquist:g} (or null for Nyquist)")
    if feats.fmin_hz >= nyquist:
        problems.append(f"features.fmin_hz = {feats.fmin_hz} must be below the Nyquist "
                        f"frequency {nyquist:g} Hz of resample.target_rate_hz = {rate}")
    for key, seconds in (("length_s", clips.length_s), ("hop_s", clips.hop_s or 0.0)):
        samples = seconds * rate
        if abs(samples - round(samples)) > 1e-6 or round(samples) < 1:
            problems.append(f"clips.{key} = {seconds} is {samples:g} samples at {rate} Hz; "
                            "expected a whole number of samples >= 1")
    return problems


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 numbers (no base-60: ``20:00`` stays a string, ``1e5`` is a
    float) that rejects duplicate keys instead of keeping the last one silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_INT, re.compile(
    r"^[-+]?(?:0|[1-9][0-9_]*|0b[01_]+|0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def load_workflow(path: str | Path) -> Workflow:
    """Read and validate a workflow YAML file.

    Raises NotFoundError if the file does not exist; ConfigError if it cannot be read, is not
    YAML, or a key or value is invalid: the message names the file, each dotted key, the value
    found and what is allowed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:  # missing input (exit 66), not a configuration mistake
        raise NotFoundError(f"workflow file {path} does not exist.",
                            hint="Give the path of a workflow YAML file, or the name of one "
                            "('fieldkit workflows list').") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read workflow file {path}: {exc.strerror or exc}.") from exc
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"workflow file {path} is not valid YAML: {exc}".rstrip(".") + ".",
                          hint="Check the indentation and quoting around the line shown.") from exc
    return Workflow.from_dict(data, source=str(path))


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema of workflow files (``schemas/workflow.schema.json``)."""
    return Workflow.model_json_schema()
