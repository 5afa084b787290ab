"""The design lives in the repository: docs/ links resolve; the package cites nothing outside it.

The package once cited design notes in a folder beside the repository (``../shared``) that a
reader of the repository does not have. These tests keep every reference inside: no such path in
``fieldkit/`` or ``migrations/``, every ``docs/...md`` the code names exists, and every relative
link of ``README.md`` and ``docs/`` resolves to a file (and a heading) in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

#: Text files of the package and the migrations, where a reference could hide.
TEXT_SUFFIXES = {".py", ".md", ".j2", ".yaml", ".yml", ".toml", ".json", ".mako"}
#: What pointed outside the repository: the sibling folder and the files it held.
OUTSIDE = re.compile(
    r"\.\./shared|\bshared/|DESIGN\.md|RELIABILITY\b|formats-and-faults|perf-anchors"
    r"|ecosystem\.md|code-models|\breference/"
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
DOCS_PATH = re.compile(r"\bdocs/[\w./-]+?\.md\b")
CASE = re.compile(r"^\| ([A-H]\d{1,2}) \|", re.MULTILINE)


def _text_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*")
                  if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts)


def _markdown() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {_slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


def _missing(target: Path) -> bool:
    return not target.exists()


def test_the_docs_exist():
    for name in ("architecture.md", "reliability.md", "where-to-change-what.md"):
        assert (DOCS / name).is_file(), name


def test_nothing_in_the_package_points_outside_the_repository():
    found = []
    for path in _text_files(REPO / "fieldkit", REPO / "migrations"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not found, "cite docs/ instead:\n" + "\n".join(found)


def test_the_docs_the_code_cites_exist():
    missing = set()
    for path in _text_files(REPO / "fieldkit", REPO / "migrations"):
        for cited in DOCS_PATH.findall(path.read_text(encoding="utf-8")):
            if _missing(REPO / cited):
                missing.add(f"{path.relative_to(REPO)} cites {cited}")
    assert not missing, sorted(missing)


@pytest.mark.parametrize("page", _markdown(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if REPO not in resolved.parents and resolved != REPO:
            broken.append(f"{target}: outside the repository")
        elif _missing(resolved):
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and resolved.exists() \
                and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_reliability_lists_the_forty_cases_once_each():
    cases = CASE.findall((DOCS / "reliability.md").read_text(encoding="utf-8"))
    expected = [f"{group}{n}" for group, count in zip("ABCDEFGH", (10, 6, 6, 4, 4, 3, 3, 4))
                for n in range(1, count + 1)]
    assert cases == expected


def test_the_cases_the_code_cites_are_documented():
    documented = set(CASE.findall((DOCS / "reliability.md").read_text(encoding="utf-8")))
    cited = set()
    citation = re.compile(r"docs/reliability\.md,? (?:cases )?([A-H0-9, and-]+)")
    for path in _text_files(REPO / "fieldkit"):
        for match in citation.finditer(path.read_text(encoding="utf-8")):
            for first, last in re.findall(r"([A-H]\d+)(?:-([A-H]\d+))?", match.group(1)):
                cited.update({first, last} - {""})
    assert cited and cited <= documented, sorted(cited - documented)
