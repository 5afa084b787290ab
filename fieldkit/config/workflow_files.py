"""The workflow files fieldkit ships, and how a bare workflow name finds its file.

The shipped workflows have one home, ``fieldkit/data/workflows/`` inside the package, so the
editable and the wheel install both carry them (``pyproject.toml`` package data). ``fieldkit
init`` copies them into ``WORKSPACE/workflows/``, where a team edits its own versions.

A workflow argument is a *path* when it holds a path separator or names a file in the current
directory; otherwise it is a *name* (``birds-16k``, or ``birds-16k.yaml``), looked up first in
the workspace's ``workflows/`` and then among the shipped files, like a command on ``PATH``:
the copy a team edited wins over the one fieldkit ships.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from fieldkit.config.workflow import load_workflow
from fieldkit.errors import UnknownWorkflowError

__all__ = [
    "WORKSPACE_WORKFLOWS_DIR",
    "WorkflowFile",
    "available_workflows",
    "bundled_workflows_dir",
    "copy_bundled_workflows",
    "resolve_workflow",
]

#: The folder of a workspace that ``fieldkit init`` fills with the shipped workflows.
WORKSPACE_WORKFLOWS_DIR = "workflows"

_SUFFIX = ".yaml"


@dataclass(frozen=True)
class WorkflowFile:
    """A workflow file found by name: where it is, where it comes from, what it does."""

    name: str
    source: Literal["workspace", "bundled"]
    path: Path
    description: str

    @property
    def summary(self) -> str:
        """The description's first sentence, for a one-line listing."""
        first, dot, _ = self.description.partition(". ")
        return first + (dot.strip() if dot else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def bundled_workflows_dir() -> Path:
    """The folder of the workflow files shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "data" / "workflows"


def _files(folder: Path | None) -> dict[str, Path]:
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob(f"*{_SUFFIX}")) if p.is_file()}


def _by_name(workspace_root: Path | None) -> dict[str, tuple[Literal["workspace", "bundled"], Path]]:
    found: dict[str, tuple[Literal["workspace", "bundled"], Path]] = {
        name: ("bundled", path) for name, path in _files(bundled_workflows_dir()).items()}
    own = _files(workspace_root / WORKSPACE_WORKFLOWS_DIR) if workspace_root is not None else {}
    found.update({name: ("workspace", path) for name, path in own.items()})
    return dict(sorted(found.items()))


def available_workflows(workspace_root: Path | None = None) -> list[WorkflowFile]:
    """Every workflow a bare name can reach, sorted by name; a workspace copy hides the shipped one.

    Parameters
    ----------
    workspace_root
        The workspace whose ``workflows/`` folder is searched first; ``None`` for the shipped
        files only.

    Returns
    -------
    list of WorkflowFile
        One per name, with the description of the file (whitespace folded to one line).

    Raises
    ------
    ConfigError
        A file is not a valid workflow (the message names the file and key).
    """
    return [WorkflowFile(name, source, path, " ".join(load_workflow(path).description.split()))
            for name, (source, path) in _by_name(workspace_root).items()]


def _is_bare_name(arg: str, cwd: Path) -> bool:
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return not any(s in arg for s in separators) and not (cwd / arg).is_file()


def resolve_workflow(arg: str, workspace_root: Path | None = None, cwd: Path | None = None) -> Path:
    """The workflow file ``arg`` means: a path as given, or a bare name looked up.

    Parameters
    ----------
    arg
        A path (it holds a separator, or names a file in ``cwd``) or a bare name, with or
        without ``.yaml``.
    workspace_root
        The workspace whose ``workflows/`` copy of a name wins over the shipped file.
    cwd
        Where a relative path is read from (default: the current directory).

    Returns
    -------
    Path
        ``Path(arg)`` for a path (a missing file is the loader's error, exit 66); else the
        workspace's or the shipped file of that name.

    Raises
    ------
    UnknownWorkflowError
        A bare name no workflow has; the message lists the known names (exit 66).
    """
    if not _is_bare_name(arg, cwd or Path.cwd()):
        return Path(arg)
    name = arg.removesuffix(_SUFFIX)
    known = _by_name(workspace_root)
    if name not in known:
        raise UnknownWorkflowError("workflow", name, list(known))
    return known[name][1]


def copy_bundled_workflows(folder: Path) -> list[Path]:
    """Copy the shipped workflow files into ``folder``, keeping any file already there.

    Parameters
    ----------
    folder
        The destination, created if missing (a workspace's ``workflows/``).

    Returns
    -------
    list of Path
        The files copied, sorted by name (a file of the same name already there is not
        overwritten: it may hold a team's edits).
    """
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in _files(bundled_workflows_dir()).values():
        target = folder / path.name
        if not target.exists():
            shutil.copyfile(path, target)
            copied.append(target)
    return copied
