"""fieldkit.dsp is layer 1: pure kernels that import no I/O, storage or higher layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fieldkit.dsp

DSP_DIR = Path(fieldkit.dsp.__file__).parent
FORBIDDEN_TOP = {"soundfile", "zarr", "xarray", "dask", "distributed", "sqlalchemy", "alembic",
                 "audioread", "fsspec", "pandas"}
ALLOWED_FIELDKIT = ("fieldkit.dsp", "fieldkit.errors", "fieldkit.config.params")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.append(base)
    return names


MODULES = sorted(DSP_DIR.glob("*.py"))


def test_the_dsp_package_has_modules():
    assert {p.stem for p in MODULES} >= {"resample", "bitdepth", "clipping", "qc",
                                         "features"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_only_pure_dependencies(path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_TOP, f"{path.name} imports {name}"
        if top == "fieldkit":
            assert name.startswith(ALLOWED_FIELDKIT), f"{path.name} imports {name} (a higher layer)"
        assert not name.startswith(".."), f"{path.name} uses a relative import beyond dsp: {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_is_short(path):
    assert len(path.read_text().splitlines()) < 400


def test_no_function_local_imports():
    for path in MODULES:
        tree = ast.parse(path.read_text())
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            inner = [n for n in ast.walk(func) if isinstance(n, (ast.Import, ast.ImportFrom))]
            assert not inner, f"{path.name}:{func.name} imports inside a function"
