"""Settings: ``fieldkit.toml`` < ``FIELDKIT_*`` environment < command-line flags.

A workspace is a directory holding ``fieldkit.toml``; it is found from ``--workspace``, the
``FIELDKIT_WORKSPACE`` variable, or by searching upward from the current directory (like git
finds ``.git``). :func:`load_settings` merges the three sources and remembers where every value
came from, which ``fieldkit config show --json`` prints.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from fieldkit.errors import ConfigError, WorkspaceNotFoundError

__all__ = [
    "CONFIG_FILENAME",
    "WORKSPACE_ENV",
    "ClusterSettings",
    "DaskSettings",
    "IngestSettings",
    "ServeSettings",
    "StorageSettings",
    "Settings",
    "LoadedSettings",
    "WorkspacePaths",
    "find_workspace",
    "load_settings",
    "default_config_toml",
    "flatten",
    "public_settings",
    "redact_url",
    "mask_option",
]

CONFIG_FILENAME = "fieldkit.toml"
WORKSPACE_ENV = "FIELDKIT_WORKSPACE"
ENV_PREFIX = "FIELDKIT_"


#: ``dask.cluster.kind`` values that submit Dask workers as batch jobs through dask-jobqueue.
JOBQUEUE_KINDS = ("slurm", "pbs", "sge", "lsf")


class ClusterSettings(BaseModel):
    """``[dask.cluster]``: where tasks run without a scheduler address, and the batch jobs of a
    SLURM, PBS, SGE or LSF cluster (dask-jobqueue; ``fieldkit.pipeline.jobqueue``).

    ``dask.cluster = "local"`` (a string, as before this section existed) means ``kind = "local"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["auto", "local", "inprocess", "slurm", "pbs", "sge", "lsf"] = Field(
        "auto", description="auto: one worker, a machine of under 3 cores, or a small job, runs in the driver's process, else a LocalCluster "
        "(fieldkit.pipeline.execution.choose_path); local: always a LocalCluster; inprocess: always in process; "
        "slurm, pbs, sge, lsf: Dask workers in batch jobs of that scheduler (dask-jobqueue)."
    )
    queue: str | None = Field(None, description="Batch jobs: the queue (SLURM partition) they are submitted to.")
    account: str | None = Field(None, description="Batch jobs: the account (SLURM, PBS) or project (SGE, LSF) charged.")
    cores: int = Field(1, ge=1, description="Batch jobs: cores of one job (its worker threads, over its processes).")
    memory: str = Field("4GiB", description="Batch jobs: memory of one job, shared by its worker processes.")
    processes: int = Field(1, ge=1, description="Batch jobs: Dask worker processes in one job.")
    walltime: str = Field("01:00:00", description="Batch jobs: wall-time limit of one job (HH:MM:SS).")
    job_script_prologue: list[str] = Field(
        default_factory=list, description="Batch jobs: shell lines run before the worker starts "
        "(e.g. 'module load python', 'source ~/venvs/fieldkit/bin/activate').")
    job_extra_directives: list[str] = Field(
        default_factory=list, description="Batch jobs: extra scheduler directives, e.g. '--qos=long' for SLURM.")
    local_directory: str | None = Field(None, description="Batch jobs: the worker's scratch directory on the node "
                                        "(e.g. $TMPDIR); default: the job's working directory.")
    min_workers: int = Field(1, ge=1, description="Batch jobs: workers kept while the run lasts (adaptive minimum; "
                             "the run waits for the first).")
    max_workers: int = Field(4, ge=1, description="Batch jobs: most workers at once (adaptive maximum; --workers "
                                                  "overrides it).")
    interface: str | None = Field(None, description="Batch jobs: network interface the scheduler and workers use "
                                  "(e.g. ib0); default: the host's address.")
    python: str | None = Field(None, description="Batch jobs: the Python the workers run (fieldkit installed); "
                               "default: the driver's own interpreter.")

    @field_validator("job_script_prologue", "job_extra_directives", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        """A list from the environment: a JSON list (``'["--qos=long"]'``) or one line."""
        if isinstance(value, str):
            return json.loads(value) if value.lstrip().startswith("[") else [value]
        return value


class DaskSettings(BaseModel):
    """Where and how processing runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler_address: str | None = Field(
        None, description="Address of an existing Dask scheduler; None starts a LocalCluster."
    )
    n_workers: int = Field(2, ge=1, description="LocalCluster worker processes.")
    threads_per_worker: int = Field(1, ge=1, description="Threads per LocalCluster worker.")
    memory_limit: str = Field("2GiB", description="Memory limit per LocalCluster worker.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to reach a scheduler before giving up "
                                   "(exit 75).")
    cluster: ClusterSettings = Field(
        ClusterSettings(), description="Where tasks run without a scheduler address ([dask.cluster]; a string "
        "sets its kind: auto, local, inprocess, slurm, pbs, sge or lsf)."
    )
    overlap: bool = Field(
        True, description="In process, read and resample the audio ahead of the features and write shards behind "
        "them on two more threads (a second core; same values, same CPU seconds, less wall time); false: one thread."
    )

    @field_validator("cluster", mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value


class IngestSettings(BaseModel):
    """How cards are copied into the archive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024, description="Copy block size.")
    read_retries: int = Field(2, ge=0, le=10, description="Retries of a failed card read.")
    free_space_margin_bytes: int = Field(
        256 * 1024 * 1024, ge=0, description="Free space kept at the destination after a copy."
    )
    fsync: bool = Field(True, description="fsync files and directories (only tests turn it off).")
    batch_files: int = Field(128, ge=1, le=10_000, description="Files committed to the catalogue per transaction.")
    describe_processes: int | None = Field(
        None, ge=0, le=64,
        description="Processes reading metadata and QC of archived copies while the next batch is copied "
                    "(0: in the ingest process; default: one less than the CPUs, for 256 files or more).",
    )
    default_timezone: str = Field(
        "UTC", description="Recorder clock zone when a deployment gives none (fixed offsets are safest)."
    )
    # G1: the zip-bomb limits of a card dump (fieldkit/ingest/dumps.py)
    dump_max_entries: int = Field(100_000, ge=1, description="Most entries a card dump (.zip/.tar) may hold.")
    dump_max_bytes: int = Field(2 * 1024**4, ge=1, description="Most bytes a card dump may expand to.")
    dump_max_ratio: float = Field(
        200.0, gt=1, description="Most an entry (zip) or a whole dump (tar.gz) may expand over its compressed size."
    )


class ServeSettings(BaseModel):
    """How ``fieldkit serve`` lets browsers in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = Field(
        None, description="Token 'fieldkit serve' requires on every request (needed to bind a non-loopback "
                          "address; never printed by 'config show')."
    )


class ExportSettings(BaseModel):
    """Who publishes the exports: defaults of ``fieldkit export --licence/--creator/--url/--cite-as``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    licence: str = Field("CC-BY-4.0", description="SPDX licence id of exported datasets.")
    creator: str | None = Field(None, description="Who made the datasets (card and Croissant creator).")
    url: str | None = Field(None, description="Where the datasets are published (Croissant url).")
    cite_as: str | None = Field(None, description="How to cite them (Croissant citeAs; default: a BibTeX entry).")


class StorageSettings(BaseModel):
    """How URL roots (``s3://``, ``gs://``, ``az://``...) are reached: fsspec storage options.

    Credentials come from the standard chains (AWS environment variables, ``~/.aws`` config and
    profiles, instance roles); an option value may name an environment variable as ``${VAR}``,
    read on each machine when the root is opened (fieldkit.io.storage), so a secret never needs
    to be written here. Option values whose key names a secret are masked by ``config show``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options for every URL root, e.g. endpoint_url, profile, region_name "
                    "(values may be '${ENV_VAR}').",
    )
    block_bytes: int = Field(
        8 * 1024 * 1024, ge=256 * 1024,
        description="Bytes per ranged read and per multipart upload part of a URL root.",
    )


class Settings(BaseModel):
    """Every fieldkit setting, validated and frozen.

    Paths are relative to the workspace unless absolute (or fsspec URLs). A plain pydantic model:
    the file, environment and flag layers are merged by :func:`load_settings` (which records where
    each value came from), so pydantic-settings' sources are not needed - and importing that
    package (it imports asyncio) cost ~90 ms of every command's start (docs/notes/startup.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalogue_url: str = Field(
        "sqlite:///catalogue.sqlite",
        description="SQLAlchemy URL; a relative SQLite path is relative to the workspace.",
    )
    archive_root: str = Field("archive", description="Verified raw copies (immutable).")
    stores_root: str = Field("stores", description="Zarr stores of processing runs.")
    exports_root: str = Field("exports", description="Exports handed to ML teams.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    dask: DaskSettings = DaskSettings()
    ingest: IngestSettings = IngestSettings()
    serve: ServeSettings = ServeSettings()
    export: ExportSettings = ExportSettings()
    storage: StorageSettings = StorageSettings()

    @field_validator("catalogue_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"expected an SQLAlchemy URL such as sqlite:///catalogue.sqlite, got {value!r}")
        return value


@dataclass(frozen=True)
class WorkspacePaths:
    """Absolute locations inside a workspace."""

    root: Path
    settings: Settings

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILENAME

    def resolve(self, value: str) -> Path:
        """A root setting as a local folder (relative to the workspace); ``file://`` is stripped.

        A URL root (``s3://...``) has no local folder: code that can work on one reads it through
        ``Workspace.roots`` (fieldkit.io.storage); code that cannot raises this clear error.
        """
        if "://" in value:
            if not value.startswith("file://"):
                raise ConfigError(
                    f"{redact_url(value)} is a URL root; this command needs a local folder there.",
                    hint="Run it with a workspace whose roots are local folders, or see docs/architecture.md (storage roots).",
                    path=redact_url(value),
                )
            value = value[len("file://"):]
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def archive(self) -> Path:
        return self.resolve(self.settings.archive_root)

    @property
    def staging(self) -> Path:
        return self.archive / ".staging"

    @property
    def manifests(self) -> Path:
        return self.archive / "mhl"

    @property
    def stores(self) -> Path:
        return self.resolve(self.settings.stores_root)

    @property
    def exports(self) -> Path:
        return self.resolve(self.settings.exports_root)

    @property
    def catalogue_url(self) -> str:
        """The catalogue URL with a relative SQLite path made absolute."""
        url = self.settings.catalogue_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.root / url[len(prefix):])
        return url


@dataclass(frozen=True)
class LoadedSettings:
    """Merged settings plus, for every dotted key, the source it came from."""

    settings: Settings
    sources: Mapping[str, str]
    workspace: Path

    @property
    def paths(self) -> WorkspacePaths:
        return WorkspacePaths(self.workspace, self.settings)


def find_workspace(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """Locate the workspace root.

    Order: ``explicit`` (the ``--workspace`` flag), ``$FIELDKIT_WORKSPACE``, then the current
    directory and its parents. Raises :class:`WorkspaceNotFoundError` naming where it looked.
    """
    given = explicit if explicit is not None else os.environ.get(WORKSPACE_ENV) or None
    if given is not None:
        root = Path(given).expanduser().resolve()
        if (root / CONFIG_FILENAME).is_file():
            return root
        origin = "--workspace" if explicit is not None else f"${WORKSPACE_ENV}"
        raise WorkspaceNotFoundError(
            f"no fieldkit workspace at {root} (from {origin}): {CONFIG_FILENAME} is missing.",
            hint=f"Create one with 'fieldkit init {given}'.", path=root,
        )
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_FILENAME).is_file():
            return candidate
    raise WorkspaceNotFoundError(
        f"no fieldkit workspace in {start} or any parent directory ({CONFIG_FILENAME} not found).",
        hint="Create one with 'fieldkit init DIR', or pass --workspace DIR.", path=start,
    )


def load_settings(
    workspace: Path, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> LoadedSettings:
    """Merge ``fieldkit.toml`` < ``FIELDKIT_*`` env < ``flags`` (dotted keys) and validate."""
    layers = [
        ("file", _read_toml(workspace / CONFIG_FILENAME)),
        ("env", _read_env(env)),
        ("flag", _unflatten(dict(flags or {}))),
    ]
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {key: "default" for key in flatten(_defaults())}
    for origin, layer in layers:
        _cluster_kind_alone(layer)
        _deep_merge(merged, layer)
        sources.update({key: origin for key in flatten(layer)})
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc, workspace)) from exc
    return LoadedSettings(settings, dict(sorted(sources.items())), workspace)


def _cluster_kind_alone(layer: dict[str, Any]) -> None:
    """``dask.cluster = "slurm"`` is ``[dask.cluster] kind = "slurm"``: so written in the layer, its
    source is recorded under ``dask.cluster.kind``, the key ``config show`` prints."""
    dask = layer.get("dask")
    if isinstance(dask, dict) and isinstance(dask.get("cluster"), str):
        dask["cluster"] = {"kind": dask["cluster"]}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc}).", hint="Fix the file or recreate it with 'fieldkit init'."
        ) from exc
    return data.get("fieldkit", data)


def _read_env(env: Mapping[str, str] | None) -> dict[str, Any]:
    """The ``FIELDKIT_*`` layer: ``FIELDKIT_LOG_LEVEL``, ``FIELDKIT_DASK__N_WORKERS`` (``__``
    descends into a section), or a whole section as JSON (``FIELDKIT_DASK='{"n_workers": 4}'``).

    Names are matched case-insensitively against the declared settings; other top-level
    ``FIELDKIT_*`` variables (``FIELDKIT_WORKSPACE``, test switches) are not settings and are
    ignored, while an unknown key inside a section is kept so that validation names it. Values stay
    strings for pydantic to coerce, as in the file layer's validation.
    """
    environ = os.environ if env is None else env
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == WORKSPACE_ENV:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        model: type[BaseModel] = Settings
        for depth, key in enumerate(path):
            field_info = model.model_fields.get(key)
            if field_info is None:
                if depth:  # inside a section: kept, so that validation names the unknown key
                    _deep_merge(out, _unflatten({".".join(path): value}))
                break
            nested = field_info.annotation
            last = depth == len(path) - 1
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                if last:
                    section = value if nested is ClusterSettings and not value.lstrip().startswith("{") else \
                        _json_section(name, value)  # FIELDKIT_DASK__CLUSTER=local: the kind alone
                    _deep_merge(out, _unflatten({".".join(path): section}))
                    break
                model = nested
            elif last:
                _deep_merge(out, _unflatten({".".join(path): value}))
    return out


def _json_section(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ConfigError(
            f"${name} is not a JSON object ({exc}).",
            hint=f"Set one key at a time instead, e.g. {name}__KEY=value.",
        ) from exc


def _defaults() -> dict[str, Any]:
    return Settings().model_dump()


def public_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready values with every secret masked: tokens (``SecretStr``), the
    password of any URL (``postgresql+psycopg://user:***@host/db``) and storage options whose key
    names a secret (``secret``, ``key``, ``token``, ``password``...) unless given as ``${VAR}``.
    What ``config show`` prints."""
    values = _mask_url_passwords(settings.model_dump(mode="json"))  # SecretStr -> "**********"
    values["storage"]["options"] = {k: mask_option(k, v) for k, v in values["storage"]["options"].items()}
    return values


_SECRET_WORDS = ("secret", "password", "token", "credential", "signature", "key")


def mask_option(key: str, value: Any) -> Any:
    """A storage option as it may be shown: secrets given literally become ``***``."""
    if isinstance(value, Mapping):
        return {k: mask_option(str(k), v) for k, v in value.items()}
    if isinstance(value, str):
        if value and not value.startswith("${") and any(word in key.lower() for word in _SECRET_WORDS):
            return "***"
        return redact_url(value)
    return value


def _mask_url_passwords(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_url_passwords(v) for k, v in value.items()}
    if isinstance(value, str):
        return redact_url(value)
    return value


def redact_url(url: str) -> str:
    """``url`` with any password (and query-string secrets) replaced by ``***``.

    The one home of URL redaction: ``config show``, error messages naming a catalogue or a
    storage root, logs. ``s3://bucket/prefix`` and plain paths come back unchanged.
    """
    if "://" not in url or ("@" not in url and "?" not in url):
        return url
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL after all (e.g. a bad port): show nothing after the scheme
        return url.split("://", 1)[0] + "://***"
    if password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    if parts.query:
        query = [(k, "***" if any(w in k.lower() for w in _SECRET_WORDS) else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return urlunsplit(parts)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _deep_merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _describe_validation(exc: ValidationError, workspace: Path) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        parts.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid settings for workspace {workspace}: " + "; ".join(parts)


def default_config_toml() -> str:
    """The commented ``fieldkit.toml`` that ``fieldkit init`` writes."""
    s = Settings()
    return f"""# fieldkit workspace settings. Precedence: this file < FIELDKIT_* environment < flags.
# Paths are relative to this directory unless absolute. See 'fieldkit config show'.

catalogue_url = "{s.catalogue_url}"   # any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db
archive_root = "{s.archive_root}"
stores_root = "{s.stores_root}"
exports_root = "{s.exports_root}"

[dask]
# scheduler_address = "tcp://127.0.0.1:8786"   # connect to a cluster instead of a LocalCluster
n_workers = {s.dask.n_workers}
threads_per_worker = {s.dask.threads_per_worker}
memory_limit = "{s.dask.memory_limit}"

[dask.cluster]
kind = "{s.dask.cluster.kind}"   # auto | local | inprocess | slurm | pbs | sge | lsf: where tasks run
# Batch jobs (kind = slurm, pbs, sge or lsf; README "A season on your university's SLURM cluster"):
# queue = "short"                  # SLURM partition / PBS, SGE, LSF queue
# account = "my-lab"
# cores = {s.dask.cluster.cores}                        # per job
# memory = "{s.dask.cluster.memory}"                  # per job
# processes = {s.dask.cluster.processes}                    # Dask workers per job
# walltime = "{s.dask.cluster.walltime}"
# min_workers = {s.dask.cluster.min_workers}
# max_workers = {s.dask.cluster.max_workers}
# job_script_prologue = ["source ~/venvs/fieldkit/bin/activate"]
# job_extra_directives = ["--qos=normal"]
# local_directory = "$TMPDIR"
# interface = "ib0"

[ingest]
chunk_bytes = {s.ingest.chunk_bytes}
read_retries = {s.ingest.read_retries}
default_timezone = "{s.ingest.default_timezone}"

[serve]
# token = "a-long-random-string"   # required by 'fieldkit serve --host' on a non-loopback address

[export]
licence = "{s.export.licence}"
# creator = "Your lab"                     # card and Croissant creator
# url = "https://example.org/datasets"     # Croissant url
"""
