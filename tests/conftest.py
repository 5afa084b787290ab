"""Shared fixtures: real workspaces, real catalogues (SQLite files, PostgreSQL when available)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.testing.catalogue import PG_ENV, migrated_sqlite, postgres_database
from fieldkit.testing.s3server import S3_ENV
from fieldkit.workspace import init_workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer settings leak into tests."""
    for key in list(os.environ):
        if key.startswith("FIELDKIT_") and key not in (PG_ENV, S3_ENV):
            monkeypatch.delenv(key)


#: Set by .ci/run: a server or browser the tests need must be there; a missing one fails the test
#: instead of skipping it, so CI cannot go green with a silently skipped service.
REQUIRE_SERVICES_ENV = "FIELDKIT_REQUIRE_SERVICES"
_REQUIRE_SERVICES = os.environ.get(REQUIRE_SERVICES_ENV) == "1"  # read before tests clear FIELDKIT_*


def skip_unless_required(reason: str) -> None:
    """Skip a test whose service is missing — or fail it when the run requires every service."""
    if _REQUIRE_SERVICES:
        pytest.fail(f"{reason}; {REQUIRE_SERVICES_ENV}=1 requires it", pytrace=False)
    pytest.skip(reason)


def mount_or_skip(*argv: str) -> None:
    """``mount ARGV`` (real mounts need root, as in CI); skipped where the machine cannot mount."""
    done = subprocess.run(["mount", *argv], capture_output=True, check=False)
    if done.returncode != 0:
        skip_unless_required(f"cannot mount here: {done.stderr.decode().strip()}")


@contextlib.contextmanager
def mounted(target: Path, *argv: str) -> Iterator[Path]:
    """``target`` with ``mount ARGV target`` on it for the block (a tmpfs, a read-only bind mount)."""
    mount_or_skip(*argv, str(target))
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's standalone server) in its own process on 127.0.0.1:
    the one .ci/run started ($FIELDKIT_TEST_S3_ENDPOINT), else one started for this session."""
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        skip_unless_required(f"no S3 test server: {exc.name} is not installed")
    from fieldkit.testing.s3server import s3_server as serve

    with serve() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket on the test server, as ``s3://NAME``."""
    return f"s3://{s3_server.make_bucket()}"
@contextlib.contextmanager
def fuse_mounted(backing: Path, mountpoint: Path, **options) -> Iterator:
    """A :class:`fieldkit.testing.faultfs.FaultFS` over ``backing`` for the block, always unmounted;
    skipped where FUSE cannot mount (a failure under FIELDKIT_REQUIRE_SERVICES, as ``mounted``)."""
    from fieldkit.testing.faultfs import FaultFS, fuse_available

    if why := fuse_available():
        skip_unless_required(f"cannot mount FUSE here: {why}")
    fs = FaultFS(backing, mountpoint, **options)
    try:
        fs.mount()
    except RuntimeError as exc:
        fs.close()
        skip_unless_required(str(exc))
    try:
        yield fs
    finally:
        fs.close()


@pytest.fixture
def workspace(tmp_path: Path):
    """A freshly initialised workspace with a migrated SQLite catalogue."""
    with init_workspace(tmp_path / "ws") as ws:
        yield ws


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_catalogue_url(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty database URL on each backend (PostgreSQL only when FIELDKIT_TEST_PG is set)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalogue.sqlite'}"
        return
    yield from _fresh_postgres()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _fresh_postgres() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards; skipped without FIELDKIT_TEST_PG
    (a failure under FIELDKIT_REQUIRE_SERVICES)."""
    if not os.environ.get(PG_ENV):
        skip_unless_required(f"{PG_ENV} is not set (no PostgreSQL server for this run)")
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards), for PostgreSQL-only tests."""
    yield from _fresh_postgres()


def _backend(name: str) -> Iterator[str | None]:
    if name == "sqlite":
        yield None
        return
    yield from _fresh_postgres()


@pytest.fixture(params=BACKENDS)
def catalogue_backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each catalogue backend: ``None`` (the default SQLite file of a workspace), or the URL of a
    fresh PostgreSQL database of its own, dropped after the test."""
    yield from _backend(request.param)


@pytest.fixture(scope="module", params=BACKENDS)
def module_catalogue_backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """``catalogue_backend`` for a module's shared workspace (one database for the module)."""
    yield from _backend(request.param)


@pytest.fixture
def backend_workspace(tmp_path: Path, catalogue_backend: str | None):
    """A freshly initialised workspace on each catalogue backend (see ``catalogue_backend``)."""
    with init_workspace(tmp_path / "ws", catalogue_url=catalogue_backend) as ws:
        yield ws


@pytest.fixture
def sqlite_catalogue_url(tmp_path: Path) -> str:
    return migrated_sqlite(tmp_path)
