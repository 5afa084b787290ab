"""Every module imports; no import cycles; the imports follow the layers of docs/layers.md."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import fieldkit

PACKAGE = Path(fieldkit.__file__).resolve().parent
LAYERS_DOC = Path(__file__).resolve().parents[1] / "docs" / "layers.md"


def _layer_table(text: str) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """The layer of every package and the declared same-layer edges, from docs/layers.md's table."""
    layers: dict[str, int] = {}
    edges: set[tuple[str, str]] = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].isdigit():
            continue
        package = cells[1].strip("`")
        assert package not in layers, f"docs/layers.md: {package} has two rows"
        layers[package] = int(cells[0])
        edges.update((package, target) for target in re.findall(r"`([a-z_]+)`", cells[2]))
    return layers, edges


#: docs/layers.md, written once: a module may import any lower layer, and its own layer only
#: along a declared edge; `testing` is the top layer, so nothing else may import it.
LAYERS, EDGES = _layer_table(LAYERS_DOC.read_text(encoding="utf-8"))


def _modules() -> list[str]:
    names = ["fieldkit"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="fieldkit."):
        names.append(info.name)
    return sorted(names)


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "fieldkit" else None


def _source(module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    pkg = PACKAGE / rel / "__init__.py"
    return pkg if pkg.is_file() else PACKAGE / rel.with_suffix(".py")


def _imports(module: str) -> set[str]:
    tree = ast.parse(_source(module).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fieldkit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fieldkit") and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    known = set(_modules())
    return {m for m in found if m in known}


@pytest.mark.parametrize("module", _modules())
def test_every_module_imports(module):
    importlib.import_module(module)


def _top_level() -> set[str]:
    return {_top(m) for m in _modules()} - {None}


def test_the_layer_table_parses():
    assert LAYERS["errors"] == 0 and LAYERS["cli"] == 4 and ("config", "errors") in EDGES
    for src, dst in EDGES:
        assert LAYERS.get(src) == LAYERS.get(dst), f"docs/layers.md: {src} -> {dst} crosses layers"


def test_every_top_level_module_has_a_row():
    missing = _top_level() - set(LAYERS)
    assert not missing, f"add a row for {sorted(missing)} to docs/layers.md"


def test_every_row_names_a_package():
    unknown = set(LAYERS) - _top_level()
    assert not unknown, f"docs/layers.md has rows for {sorted(unknown)}, which fieldkit does not have"


def _cross_package_imports() -> list[tuple[str, str, str, str]]:
    """(module, its package, imported module, its package) for every import between packages with a row."""
    found = []
    for module in _modules():
        src = _top(module)
        for target in _imports(module):
            dst = _top(target)
            if src in LAYERS and dst in LAYERS and dst != src:
                found.append((module, src, target, dst))
    return found


def test_no_lower_layer_imports_a_higher_one():
    problems = [f"{module} (layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})"
                for module, src, target, dst in _cross_package_imports() if LAYERS[dst] > LAYERS[src]]
    assert not problems, "\n".join(problems)


def test_imports_within_a_layer_follow_declared_edges():
    problems = [f"{module} imports {target}: {src} -> {dst} is not declared in docs/layers.md"
                for module, src, target, dst in _cross_package_imports()
                if LAYERS[dst] == LAYERS[src] and (src, dst) not in EDGES]
    assert not problems, "\n".join(problems)


def test_every_declared_edge_is_used():
    used = {(src, dst) for _, src, _, dst in _cross_package_imports()}
    stale = sorted(EDGES - used)
    assert not stale, f"docs/layers.md declares {stale}, which no module imports any more: remove them"


def test_no_import_cycles():
    graph = {m: {t for t in _imports(m) if t != m} for m in _modules()}
    # a package's __init__ importing its own submodules is not a cycle of concern
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module)


def test_sqlalchemy_only_in_catalogue():
    def imports_sqlalchemy(module: str) -> bool:
        lines = _source(module).read_text(encoding="utf-8").splitlines()
        return any(line.strip().startswith(("import sqlalchemy", "from sqlalchemy")) for line in lines)

    offenders = [m for m in _modules() if _top(m) not in ("catalogue", "testing") and imports_sqlalchemy(m)]
    assert not offenders, offenders
