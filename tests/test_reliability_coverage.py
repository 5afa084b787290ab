"""Every case of docs/reliability.md (A1 … H4) is tried by a test marked
``@pytest.mark.reliability("ID")``: all 40 (``test_every_case_has_a_marked_test``).

The covered set must also equal ``COVERED`` below, so a test that loses its mark (or is deleted)
fails here. The
ids still missing are printed (``pytest -s``). The markers are read from the test files' syntax
trees (no test module is imported), and docs/reliability.md's table "Which tests try each case"
must list exactly the marked tests.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"

#: The cases with at least one marked test. Add an id when its first test lands; never remove one.
COVERED = frozenset({
    "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10",
    "B1", "B2", "B3", "B4", "B5", "B6",
    "C1", "C2", "C3", "C4", "C5", "C6",
    "D1", "D2", "D3", "D4",
    "E1", "E2", "E3", "E4",
    "F1", "F2", "F3",
    "G1", "G2", "G3",
    "H1", "H2", "H3", "H4",
})


def case_ids() -> list[str]:
    """The ids of the case tables of docs/reliability.md, in order."""
    cases = DOC.read_text(encoding="utf-8").split("## Which tests try each case")[0]
    return re.findall(r"^\| ([A-H]\d+) \|", cases, flags=re.MULTILINE)


def _reliability_ids(decorator: ast.expr) -> list[str]:
    """The ids of a ``pytest.mark.reliability(...)`` decorator, else []."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "reliability"):
        return []
    return [arg.value for arg in decorator.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]


def _module_ids(tree: ast.Module) -> list[str]:
    """The ids of a module-level ``pytestmark = pytest.mark.reliability(...)`` (or a list of marks),
    which marks every test of the module."""
    ids: list[str] = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                 for t in node.targets)):
            marks = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            for mark in marks:
                ids.extend(_reliability_ids(mark))
    return ids


def marked_tests() -> dict[str, set[str]]:
    """Case id -> the marked tests (``path::name``, or ``path::Class::name``); a module marked
    with ``pytestmark`` counts every test function in it."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        rel = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_ids = _module_ids(tree)
        scopes = [((), tree)]
        while scopes:
            prefix, node = scopes.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    scopes.append(((*prefix, child.name), child))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    cases = [c for d in child.decorator_list for c in _reliability_ids(d)]
                    if child.name.startswith("test"):
                        cases += module_ids
                    for case in cases:
                        found.setdefault(case, set()).add("::".join((rel, *prefix, child.name)))
    return found


def documented_tests() -> dict[str, set[str]]:
    """The table "Which tests try each case": case id -> the tests it lists."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Which tests try each case"):]
    table: dict[str, set[str]] = {}
    for case, tests in re.findall(r"^\| `([A-H]\d+)` \| ([^|]*) \|", section, flags=re.MULTILINE):
        table[case] = set(re.findall(r"`([^`]+)`", tests))
    return table


def test_the_document_has_the_40_cases():
    ids = case_ids()
    assert len(ids) == 40 and len(set(ids)) == 40, ids


def test_every_marker_names_a_case_of_the_document():
    unknown = set(marked_tests()) - set(case_ids())
    assert not unknown, f"reliability markers with ids that are not cases of docs/reliability.md: {sorted(unknown)}"


def test_every_case_has_a_marked_test():
    missing = sorted(set(case_ids()) - set(marked_tests()))
    assert not missing, f"cases of docs/reliability.md that no marked test tries: {missing}"


def test_coverage_is_the_pinned_set_and_never_shrinks():
    covered = set(marked_tests())
    missing = [case for case in case_ids() if case not in covered]
    print(f"reliability cases tried by a marked test: {len(covered)}/40; missing: {', '.join(missing)}")
    lost, gained = sorted(COVERED - covered), sorted(covered - COVERED)
    assert not lost, f"cases that lost their last marked test: {lost}"
    assert not gained, f"newly covered cases: add {gained} to COVERED in {Path(__file__).name}"


def test_the_document_lists_exactly_the_marked_tests():
    marked, documented = marked_tests(), documented_tests()
    for case in case_ids():
        assert documented.get(case, set()) == marked.get(case, set()), (
            f"{case}: docs/reliability.md lists {sorted(documented.get(case, set()))}, "
            f"the markers say {sorted(marked.get(case, set()))}")
