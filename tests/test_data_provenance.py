"""Every shipped or test data file is listed, hashed and permissively licensed.

``tests/data/PROVENANCE.md`` and ``fieldkit/data/SAMPLE_CARD_PROVENANCE.md`` each hold one
Markdown table row per file (path, licence, size in bytes, sha256). These tests keep those
tables and the files on disk in step, and enforce the licence rule: nothing non-commercial,
GPL or share-alike may be copied into the repository.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS_DATA = REPO / "tests" / "data"
TESTS_PROVENANCE = TESTS_DATA / "PROVENANCE.md"
SAMPLE_CARD = REPO / "fieldkit" / "data" / "sample_card"
CARD_PROVENANCE = REPO / "fieldkit" / "data" / "SAMPLE_CARD_PROVENANCE.md"

MAX_TESTS_DATA_BYTES = 8_000_000
MAX_SAMPLE_CARD_BYTES = 6_000_000

# Abbreviations are matched case-sensitively as whole words, spelled-out terms in any case.
FORBIDDEN_LICENCE = re.compile(
    r"\b(?:NC|SA|GPL|LGPL|AGPL)\b"
    r"|(?i:non-?commercial|share-?alike|general public licen[cs]e)"
)

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str]:
    """Split one Markdown table row on unescaped pipes."""
    return [cell.strip() for cell in _CELL_SPLIT.split(line.strip())[1:-1]]


def _parse_file_table(md_path: Path) -> dict[str, dict[str, str]]:
    """Return {relative path: row} from the table whose header names sha256 and size."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in md_path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            if any(c.lower() == "sha256" for c in cells):
                header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the |---|---| separator
        row = dict(zip(header, cells))
        path = cells[0].strip("`")
        assert path not in rows, f"{md_path.name}: {path!r} listed twice"
        rows[path] = row
    assert rows, f"no file table with a sha256 column found in {md_path}"
    return rows


def _column(row: dict[str, str], prefix: str) -> str:
    for key, value in row.items():
        if key.startswith(prefix):
            return value.strip("`")
    raise KeyError(f"no column starting with {prefix!r} in {sorted(row)}")


def _files_under(root: Path, exclude: set[Path]) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p not in exclude
    }


CASES = [
    pytest.param(
        TESTS_DATA, TESTS_PROVENANCE, {TESTS_PROVENANCE}, MAX_TESTS_DATA_BYTES, id="tests-data"
    ),
    pytest.param(SAMPLE_CARD, CARD_PROVENANCE, set(), MAX_SAMPLE_CARD_BYTES, id="sample-card"),
]


@pytest.mark.parametrize(("root", "provenance", "exclude", "max_bytes"), CASES)
def test_every_file_is_listed_with_matching_size_and_sha256(root, provenance, exclude, max_bytes):
    rows = _parse_file_table(provenance)
    on_disk = _files_under(root, exclude)

    assert sorted(set(on_disk) - set(rows)) == [], f"files missing from {provenance.name}"
    assert sorted(set(rows) - set(on_disk)) == [], f"rows in {provenance.name} with no file"

    for rel, path in on_disk.items():
        data = path.read_bytes()
        row = rows[rel]
        assert int(_column(row, "size")) == len(data), f"{rel}: size differs from provenance"
        assert _column(row, "sha256") == hashlib.sha256(data).hexdigest(), (
            f"{rel}: sha256 differs from provenance"
        )

    total = sum(p.stat().st_size for p in on_disk.values())
    assert total <= max_bytes, f"{root} holds {total} bytes, budget is {max_bytes}"


@pytest.mark.parametrize(("root", "provenance", "exclude", "max_bytes"), CASES)
def test_no_listed_licence_is_noncommercial_or_copyleft(root, provenance, exclude, max_bytes):
    rows = _parse_file_table(provenance)
    offending = {
        path: _column(row, "licen")
        for path, row in rows.items()
        if not _column(row, "licen") or FORBIDDEN_LICENCE.search(_column(row, "licen"))
    }
    assert offending == {}, f"{provenance.name}: missing or NC/GPL/SA licences"


def test_sample_card_has_no_provenance_file_of_its_own():
    """The card must look like a recorder card; its description lives beside it."""
    names = {p.name.lower() for p in SAMPLE_CARD.rglob("*")}
    assert not names & {"provenance.md", "readme.md"}


def test_licence_pattern_catches_forbidden_and_allows_permissive():
    for bad in ["CC BY-NC 4.0", "CC BY-NC-SA 4.0", "GPL-3.0", "CC BY-SA 4.0", "LGPL-2.1"]:
        assert FORBIDDEN_LICENCE.search(bad), bad
    for good in ["MIT", "BSD-3-Clause", "Apache-2.0", "CC0", "CC BY 4.0", "public domain"]:
        assert not FORBIDDEN_LICENCE.search(good), good
