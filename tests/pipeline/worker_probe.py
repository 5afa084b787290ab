"""Run on Dask workers by the tests: kept free of imports, so that unpickling it loads nothing."""

from __future__ import annotations

import sys

#: Workers do import pydantic: the task specs carry the steps' parameter models of
#: fieldkit.config.params (issue #11, about +0.1 s per worker start); not the workflow reader.
HEAVY = ("fieldkit.pipeline.driver", "fieldkit.catalogue", "sqlalchemy", "xarray", "pandas", "dask.array",
         "fieldkit.config.workflow")


def heavy_modules() -> list[str]:
    return [m for m in HEAVY if m in sys.modules]


def environ(*names: str) -> dict[str, str | None]:
    """The worker process's values of the environment variables ``names``."""
    import os

    return {name: os.environ.get(name) for name in names}


def loaded(*names: str) -> list[str]:
    """Which of the modules ``names`` the worker process has imported."""
    return [m for m in names if m in sys.modules]
