"""Layer 3: processing runs — plan from the catalogue, Dask tasks, Zarr store, run records.

The driver is imported lazily: Dask workers import :mod:`fieldkit.pipeline.tasks`, and must
not pay for the driver's catalogue (SQLAlchemy) and planning imports in time and memory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunReport", "run_workflow"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fieldkit.pipeline import driver

        return getattr(driver, name)
    raise AttributeError(f"module 'fieldkit.pipeline' has no attribute {name!r}")
