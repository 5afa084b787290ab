"""Layer 4: the ``fieldkit`` command line (typer + rich). Commands parse, call one service, render."""

from fieldkit.cli.app import app, main

__all__ = ["app", "main"]
