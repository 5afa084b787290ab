"""Run on Dask workers by the tests: kept free of imports, so that unpickling it loads nothing."""

from __future__ import annotations

import sys

HEAVY = ("fieldkit.pipeline.driver", "fieldkit.catalogue", "sqlalchemy", "xarray", "pandas", "dask.array")


def heavy_modules() -> list[str]:
    return [m for m in HEAVY if m in sys.modules]
