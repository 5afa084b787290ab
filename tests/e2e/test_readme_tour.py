"""The README's "A tour of the CLI" runs as written, on the bundled sample card.

The commands are read from the README's code block (not copied here), so a tour edited into
something that no longer runs fails this test. They run in order through the installed console
script, each in a fresh process as a user types them, with two substitutions only:

- the card, ``/media/$USER/MOTH01``, is a copy of ``fieldkit/data/sample_card``;
- the label files, ``labels/...``, are read from a copy of ``fieldkit/data/sample_annotations``.

``cmd && cd DIR`` changes the directory of the following commands, as the shell would; a glob
(``labels/*``) is expanded as the shell would (sorted). Every command must exit 0, except
ingest, which exits 3 ("finished, but some files were quarantined": the sample card holds
broken files on purpose), as the README's table of exit codes says.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fieldkit
from fieldkit.errors import EXIT_OK, EXIT_PARTIAL

REPO = Path(__file__).resolve().parents[2]
DATA = Path(fieldkit.__file__).resolve().parent / "data"
CARD_IN_README = "/media/$USER/MOTH01"
LABELS_IN_README = "labels/"
#: Commands that finish with files quarantined on the sample card; every other one exits 0.
EXIT_CODES = {"ingest": EXIT_PARTIAL}

pytestmark = pytest.mark.slow  # ~25-40 s: eleven fresh processes, a Dask LocalCluster, a baseline


def tour_commands() -> list[str]:
    """The lines of the code block under "## A tour of the CLI" in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## A tour of the CLI", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md: no ```bash block under 'A tour of the CLI'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def substitute(token: str, card: Path, labels: Path) -> str:
    if token == CARD_IN_README:
        return str(card)
    if token.startswith(LABELS_IN_README):
        return str(labels / token.removeprefix(LABELS_IN_README))
    return token


def expand(token: str, cwd: Path) -> list[str]:
    """A glob as bash expands it (sorted, relative to ``cwd``); any other word as it is."""
    if not any(c in token for c in "*?["):
        return [token]
    found = sorted(glob.glob(token, root_dir=cwd))
    assert found, f"{token} matches nothing in {cwd}"
    return found


def test_the_tour_reads_like_a_users_session():
    commands = tour_commands()
    assert commands[0].startswith("fieldkit init ") and "&& cd " in commands[0]
    assert any(CARD_IN_README in c for c in commands)
    assert any(f" {LABELS_IN_README}" in c for c in commands)
    assert all(shlex.split(c, comments=True)[0] == "fieldkit" for c in commands)


def test_the_readme_tour_runs_as_written_on_the_sample_card(tmp_path):
    card, labels = tmp_path / "card", tmp_path / "labels"
    shutil.copytree(DATA / "sample_card", card)
    shutil.copytree(DATA / "sample_annotations", labels)
    exe = Path(sys.executable).with_name("fieldkit")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    cwd, ran = tmp_path, []
    for line in tour_commands():
        words = [substitute(w, card, labels) for w in shlex.split(line, comments=True)]
        while words:  # 'a && cd b': one command, then a change of directory
            command, words = (words[:words.index("&&")], words[words.index("&&") + 1:]) if "&&" in words \
                else (words, [])
            if command[0] == "cd":
                cwd = (cwd / command[1]).resolve()
                continue
            argv = [str(exe), *[a for w in command[1:] for a in expand(w, cwd)]]
            done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
            expected = EXIT_CODES.get(command[1], EXIT_OK)
            assert done.returncode == expected, (
                f"{shlex.join(command)} exited {done.returncode}, expected {expected}:\n{done.stderr[-3000:]}")
            assert "Traceback" not in done.stderr
            ran.append(command[1])
    # the tour's steps, in order (other lines may be added between them)
    steps = ["init", "ingest", "workflows", "process", "annotations", "dataset", "export", "baseline", "lineage"]
    assert [name for name in ran if name in steps] == steps
    workspace = tmp_path / "season-2026"
    assert (workspace / "workflows" / "birds-16k.yaml").is_file()
    assert (workspace / "exports" / "wood-birds-1-parquet" / "baseline").is_dir()
