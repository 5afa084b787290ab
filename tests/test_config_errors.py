"""Settings precedence and the error hierarchy's messages."""

from __future__ import annotations

import pytest

from fieldkit.config.settings import (
    CONFIG_FILENAME,
    default_config_toml,
    find_workspace,
    load_settings,
)
from fieldkit.errors import (
    ConfigError,
    UnknownNameError,
    WorkspaceNotFoundError,
)


@pytest.fixture
def root(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(default_config_toml() + '\nstores_root = "elsewhere"\n'.replace(
        'stores_root = "elsewhere"', ""), encoding="utf-8")
    return tmp_path


def test_file_then_env_then_flags(root):
    (root / CONFIG_FILENAME).write_text('archive_root = "from-file"\n[dask]\nn_workers = 3\n')
    loaded = load_settings(root, flags={"dask.n_workers": 5},
                           env={"FIELDKIT_ARCHIVE_ROOT": "from-env", "FIELDKIT_DASK__N_WORKERS": "4"})
    assert loaded.settings.archive_root == "from-env"
    assert loaded.settings.dask.n_workers == 5
    assert loaded.sources["archive_root"] == "env" and loaded.sources["dask.n_workers"] == "flag"
    assert loaded.sources["exports_root"] == "default"
    assert loaded.paths.archive == root / "from-env"


def test_the_environment_layer(root):
    """``FIELDKIT_*``: any case, ``__`` into a section, a section as JSON, other names ignored."""
    loaded = load_settings(root, env={
        "fieldkit_log_level": "DEBUG", "FIELDKIT_INGEST": '{"read_retries": 4, "fsync": false}',
        "FIELDKIT_DASK__THREADS_PER_WORKER": "2", "FIELDKIT_WORKSPACE": "/elsewhere",
        "FIELDKIT_REQUIRE_SERVICES": "1", "OTHER_LOG_LEVEL": "ERROR",
    })
    s = loaded.settings
    assert (s.log_level, s.ingest.read_retries, s.ingest.fsync, s.dask.threads_per_worker) == ("DEBUG", 4, False, 2)
    assert {loaded.sources[k] for k in ("log_level", "ingest.read_retries", "ingest.fsync", "dask.threads_per_worker")} == {"env"}
    assert loaded.sources["dask.memory_limit"] != "env"


@pytest.mark.parametrize(("env", "named"), [
    ({"FIELDKIT_DASK__N_WORKER": "2"}, "dask.n_worker"),  # a typo inside a section
    ({"FIELDKIT_DASK__N_WORKERS": "many"}, "dask.n_workers"),
    ({"FIELDKIT_DASK": "{not json"}, "FIELDKIT_DASK"),
])
def test_a_bad_environment_value_is_an_error_naming_it(root, env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(root, env=env)


def test_relative_sqlite_url_is_made_absolute_and_others_are_kept(root):
    assert load_settings(root, env={}).paths.catalogue_url == f"sqlite:///{root / 'catalogue.sqlite'}"
    pg = "postgresql+psycopg://u@h/db"
    assert load_settings(root, env={"FIELDKIT_CATALOGUE_URL": pg}).paths.catalogue_url == pg


def test_unknown_key_in_file_is_an_error_naming_it(root):
    (root / CONFIG_FILENAME).write_text('archve_root = "typo"\n')
    with pytest.raises(ConfigError, match="archve_root"):
        load_settings(root, env={})


def test_broken_toml_names_the_file(root):
    (root / CONFIG_FILENAME).write_text("this is = = not toml")
    with pytest.raises(ConfigError, match=str(root / CONFIG_FILENAME)):
        load_settings(root, env={})


def test_find_workspace_walks_upward(root):
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace(cwd=deep) == root.resolve()


def test_find_workspace_error_message(tmp_path, monkeypatch):
    monkeypatch.delenv("FIELDKIT_WORKSPACE", raising=False)
    with pytest.raises(WorkspaceNotFoundError) as info:
        find_workspace(cwd=tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    assert "fieldkit init" in str(info.value) and str(tmp_path) in str(info.value)


def test_errors_keep_message_hint_and_builtin_base():
    err = ConfigError("bad value 3 for n_workers.", hint="Use 1 or more.")
    assert str(err) == "bad value 3 for n_workers. Use 1 or more."
    assert isinstance(err, ValueError) and err.exit_code == 78
    unknown = UnknownNameError("export format", "hdf9", ["zarr", "numpy", "parquet"])
    assert str(unknown) == "unknown export format 'hdf9'; known: numpy, parquet, zarr."
    assert isinstance(unknown, KeyError)
