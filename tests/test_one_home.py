"""Helpers that were written twice now have one home each, and stay that way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fieldkit
from fieldkit.config.checks import is_int
from fieldkit.io.durable import fsync_dir

PACKAGE = Path(fieldkit.__file__).resolve().parent


def _definitions(*names: str) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name in names:
                found.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    return found


@pytest.mark.parametrize(("names", "home"), [
    (("is_int", "_is_int"), "config/checks.py:is_int"),
    (("fsync_dir", "_fsync_dir"), "io/durable.py:fsync_dir"),
    (("fsync_file", "_fsync_file"), "io/durable.py:fsync_file"),
])
def test_each_helper_is_defined_once(names, home):
    assert _definitions(*names) == [home]


def test_is_int_refuses_bools_and_floats():
    assert is_int(0) and is_int(-3) and is_int(2**70)
    assert not is_int(True) and not is_int(False) and not is_int(1.0) and not is_int("1")


def test_fsync_dir_on_a_real_folder(tmp_path):
    (tmp_path / "new").write_bytes(b"x")
    fsync_dir(tmp_path)
    fsync_dir(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "missing")
