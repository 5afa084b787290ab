"""Catalogue rows cross into the services as typed records, never as dictionaries.

A static scan of every module outside ``fieldkit.catalogue`` for a string key (or
``.get("...")``) used on a value that came from a catalogue query. What the query functions
return on a real catalogue is checked in ``tests/pipeline/test_query_records.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import fieldkit
from fieldkit.catalogue import browse, labels, queries, records, runs, writes

PACKAGE = Path(fieldkit.__file__).resolve().parent
QUERY_MODULES = (queries, runs, labels, writes, browse)
RECORD_NAMES = {name for name in records.__all__ if name != "Record"}
#: Record fields that hold records themselves (``dataset.items``, ``lineage.sources``, ``page.rows``); other fields
#: are values, some of them free-form JSON documents (a run's ``parameters``) that may be keyed.
ROW_FIELDS = {f.name for name in RECORD_NAMES for f in dataclasses.fields(getattr(records, name))
              if RECORD_NAMES & set(str(f.type).replace("[", " ").replace("]", " ").replace(",", " ").split())}
#: Calls that hand their argument's rows through (``sorted(rows)``, ``next(r for r in rows)``).
PASS_THROUGH = {"sorted", "list", "tuple", "reversed", "next", "iter", "filter", "enumerate", "zip"}


def _record_returning_functions() -> set[str]:
    """Public query functions whose return annotation names a record."""
    names = set()
    for module in QUERY_MODULES:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.returns is not None \
                    and RECORD_NAMES & {n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}:
                names.add(node.name)
    return names


QUERY_FUNCTIONS = _record_returning_functions()


class _RowFlow:
    """Which names of one function hold catalogue rows (or containers of them), and where a
    string key is used on one. A deliberately simple flow analysis: assignments, loops and
    comprehensions, fixed-point; ``.to_dict()`` ends the flow (its result is a document)."""

    def __init__(self, func: ast.AST) -> None:
        self.func = func
        self.rows: set[str] = set()
        args = getattr(func, "args", None)
        for arg in (args.posonlyargs + args.args + args.kwonlyargs) if args else ():
            if arg.annotation is not None and RECORD_NAMES & {
                    n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)}:
                self.rows.add(arg.arg)

    def carries_rows(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Name):
            return node.id in self.rows
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in QUERY_FUNCTIONS:
                return True
            return name in PASS_THROUGH and any(self.carries_rows(a) for a in node.args)
        if isinstance(node, ast.Attribute):
            return node.attr in ROW_FIELDS and self.carries_rows(node.value)
        if isinstance(node, (ast.Subscript, ast.Starred)):
            return self.carries_rows(node.value)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            return self.carries_rows(node.elt)
        if isinstance(node, ast.DictComp):
            return self.carries_rows(node.value)
        if isinstance(node, ast.IfExp):
            return self.carries_rows(node.body) or self.carries_rows(node.orelse)
        if isinstance(node, ast.BoolOp):
            return any(self.carries_rows(v) for v in node.values)
        return False

    def _bind(self, target: ast.AST, source: ast.AST) -> bool:
        if not self.carries_rows(source):
            return False
        names = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} - self.rows
        self.rows |= names
        return bool(names)

    def _step(self) -> bool:
        changed = False
        for node in ast.walk(self.func):
            if isinstance(node, ast.Assign):
                changed |= any(self._bind(t, node.value) for t in node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                changed |= self._bind(node.target, node.value)
            elif isinstance(node, (ast.For, ast.comprehension)):
                changed |= self._bind(node.target, node.iter)
        return changed

    def string_keys(self) -> list[ast.AST]:
        while self._step():
            pass
        return [node for node in ast.walk(self.func) if self._keyed(node)]

    def _keyed(self, node: ast.AST) -> bool:
        """``row["key"]``, ``row[f"..."]`` or ``row.get("key")`` on a value that carries rows."""
        if isinstance(node, ast.Subscript) and isinstance(node.slice, (ast.Constant, ast.JoinedStr)):
            return not isinstance(getattr(node.slice, "value", ""), int) and self.carries_rows(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            return bool(node.args) and isinstance(node.args[0], ast.Constant) and self.carries_rows(node.func.value)
        return False


def string_keyed_rows(source: str) -> list[str]:
    """``line: code`` of every string-key access to a catalogue row in one module's source."""
    tree = ast.parse(source)
    hits = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            hits += [f"{n.lineno}: {ast.unparse(n)}" for n in _RowFlow(func).string_keys()]
    return sorted(set(hits))


def _service_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if "catalogue" not in p.relative_to(PACKAGE).parts[:1] and "testing" not in p.parts)


def test_the_scan_knows_the_query_functions():
    assert ROW_FIELDS == {"items", "sources", "rows"}
    assert {"list_recordings", "session_files", "get_run", "list_runs", "get_dataset", "recording_lineage",
            "card_sessions", "archived_recordings", "recordings_in_scope", "annotations_for",
            "browse_recordings", "recording_uses"} <= QUERY_FUNCTIONS


def test_the_scan_finds_string_keys_on_rows():
    """The scan itself: each of these is the kind of access the records replaced."""
    bad = '''
def a(s):
    rows = queries.list_recordings(s)
    return [r["archive_path"] for r in rows if r["status"] == "ok"]

def b(s, run_id):
    run = run_rows.get_run(s, run_id)
    return ws.root / run["store_path"]

def c(s):
    latest = next(x for x in writes.card_sessions(s, 1) if x.get("state"))
    return latest

def d(rec: RecordingRow):
    return rec["sha256"]

def e(s):
    recs = label_rows.recording_lineage(s, [1])
    return [src["card"] for src in recs[1].sources]
'''
    good = '''
def f(s):
    rows = [r.to_dict() for r in queries.list_recordings(s)]
    doc = {**run_rows.get_run(s, 1).to_dict(), "derivatives": []}
    return rows[0]["id"], doc["derivatives"], coords["recording_id"]
'''
    hits = string_keyed_rows(bad)
    assert len(hits) == 6, hits
    assert string_keyed_rows(good) == []


def test_no_catalogue_row_is_indexed_by_string_outside_the_catalogue():
    offenders = {str(p.relative_to(PACKAGE)): hits for p in _service_modules()
                 if (hits := string_keyed_rows(p.read_text(encoding="utf-8")))}
    assert not offenders, f"use record attributes, not string keys: {offenders}"


def test_recording_rows_hold_every_documented_column():
    """The recordings JSON Schema documents fields of ``catalog recordings --json``: each is a field."""
    schema = json.loads((PACKAGE.parent / "schemas" / "recordings.schema.json").read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(records.RecordingRow)}
    assert set(schema["properties"]) <= fields, set(schema["properties"]) - fields
