"""Every module imports; no import cycles; no lower layer imports a higher one (DESIGN.md)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import fieldkit

PACKAGE = Path(fieldkit.__file__).resolve().parent

#: DESIGN.md's layers. A module may import only from lower layers; the layer-2 adapters do not
#: import each other. `testing` is a helper kit for tests and may use anything; nothing else may
#: import it.
LAYERS = {
    "errors": 0, "faults": 0, "config": 0,
    "model": 1, "dsp": 1,
    "io": 2, "store": 2, "catalogue": 2,
    "workspace": 3, "ingest": 3, "pipeline": 3, "curate": 3, "export": 3, "listen": 3,
    "cli": 4,
}
ADAPTERS = {"io", "store", "catalogue"}
ALLOWED_ADAPTER_IMPORTS: set[tuple[str, str]] = set()


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


def test_every_top_level_module_has_a_layer():
    tops = {_top(m) for m in _modules()} - {None, "testing", "data"}
    assert tops <= set(LAYERS), f"add {tops - set(LAYERS)} to LAYERS (and to DESIGN.md's table)"


def test_no_lower_layer_imports_a_higher_one():
    problems = []
    for module in _modules():
        src = _top(module)
        if src in (None, "testing"):
            continue
        for target in _imports(module):
            dst = _top(target)
            if dst is None or dst == src:
                continue
            if dst == "testing":
                problems.append(f"{module} imports the test kit {target}")
            elif LAYERS[dst] > LAYERS[src]:
                problems.append(f"{module} (layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})")
            elif src in ADAPTERS and dst in ADAPTERS and (src, dst) not in ALLOWED_ADAPTER_IMPORTS:
                problems.append(f"adapter {module} imports adapter {target}")
    assert not problems, "\n".join(problems)


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
