"""The package's folders show the architecture: no module name twice, no loose top-level modules
beyond the layer-0 basics and the workspace handle."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import fieldkit

PACKAGE = Path(fieldkit.__file__).resolve().parent

#: Top-level modules that stand alone on purpose: one rooted error hierarchy, the crash-point
#: hook the crash tests use, and the workspace handle every service receives.
LOOSE = {"errors.py", "faults.py", "workspace.py", "__init__.py"}


def test_no_module_name_appears_twice():
    places: dict[str, list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            places[path.name].append(str(path.relative_to(PACKAGE)))
    twice = {name: where for name, where in places.items() if len(where) > 1}
    assert not twice, f"module names used more than once: {twice}"


def test_only_the_basics_are_loose_at_the_top():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose <= LOOSE, f"put {sorted(loose - LOOSE)} in the package of its layer"
