"""Layer 3: processing runs — plan from the catalogue, Dask tasks, Zarr store, run records."""

from fieldkit.pipeline.driver import RunReport, run_workflow

__all__ = ["RunReport", "run_workflow"]
