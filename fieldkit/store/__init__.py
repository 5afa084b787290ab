"""Layer 2 adapter: the Zarr/xarray layout of a processing run's store (docs/architecture.md).

:mod:`.layout` says what a store holds, :mod:`.allocation` where each recording's clips go so that
every task owns whole shards, :mod:`.regions` writes one task's region (all a Dask worker needs:
zarr, not xarray) and :mod:`.zarr_store` creates, resumes and publishes it. Import names from the
submodule that defines them; nothing is re-exported here, so that importing one stays cheap.
"""
