"""Layer 3: processing runs — plan from the catalogue, Dask tasks, Zarr store, run records.

:func:`~fieldkit.pipeline.driver.run_workflow` lives in :mod:`.driver`. Import names from the
submodule that defines them; nothing is re-exported here: Dask workers import
:mod:`.tasks`, and must not pay for the driver's catalogue (SQLAlchemy) and planning imports in
time and memory.
"""
