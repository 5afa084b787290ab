"""Fixtures for the io tests: the shared real-file corpus beside the repository.

The corpus lives at ``../shared/data`` (``Path(__file__).resolve().parents[2].parent``); tests
that use it are marked ``shared_data`` and skip cleanly when it is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared() -> Callable[[str], Path]:
    """Return a function mapping a path relative to ``shared/data`` to a file, or skip."""

    def locate(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not SHARED_DATA.is_dir():
            pytest.skip(f"shared test data not found at {SHARED_DATA}")
        if not path.exists():
            pytest.skip(f"shared file missing: {relative}")
        return path

    return locate


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write bytes to ``tmp_path/name`` and return the path."""

    def _write(data: bytes, name: str = "x.wav") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write
