"""What the root command hands to its sub-commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import typer

if TYPE_CHECKING:
    from fieldkit.workspace import Workspace

__all__ = ["CliState", "state"]


@dataclass
class CliState:
    workspace: Optional[str] = None

    def open(self, **kwargs: Any) -> Workspace:
        from fieldkit.workspace import open_workspace

        return open_workspace(self.workspace, **kwargs)


def state(ctx: typer.Context) -> CliState:
    return ctx.find_root().obj or CliState()
