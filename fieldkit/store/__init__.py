"""Layer 2 adapter: the Zarr/xarray layout of a processing run's store (docs/architecture.md).

:mod:`.layout` says what a store holds, :mod:`.allocation` where each recording's clips go so that
every task owns whole shards, and :mod:`.zarr_store` creates, fills, resumes and publishes it.
"""

__all__ = [
    "COORDINATES",
    "DEFAULT_CLIPS_PER_CHUNK",
    "DEFAULT_CLIPS_PER_SHARD",
    "DEFAULT_COMPRESSION_LEVEL",
    "FEATURE_VARIABLES",
    "QC_VARIABLES",
    "SCHEMA_VERSION",
    "RegionPlan",
    "StoreLayout",
    "TaskRegion",
    "VariableSpec",
    "completed_regions",
    "create_store",
    "finalize_store",
    "open_store",
    "padding_arrays",
    "plan_regions",
    "read_layout",
    "region_is_complete",
    "remove_partial_files",
    "write_region",
]

_HOME = {
    **dict.fromkeys(("COORDINATES", "DEFAULT_CLIPS_PER_CHUNK", "DEFAULT_CLIPS_PER_SHARD",
                     "DEFAULT_COMPRESSION_LEVEL", "FEATURE_VARIABLES", "QC_VARIABLES", "SCHEMA_VERSION",
                     "StoreLayout", "VariableSpec"), "layout"),
    **dict.fromkeys(("RegionPlan", "TaskRegion", "plan_regions"), "allocation"),
    **dict.fromkeys(("padding_arrays", "read_layout", "region_is_complete", "completed_regions",
                     "write_region"), "regions"),
    **dict.fromkeys(("create_store", "finalize_store", "open_store", "read_variables", "remove_partial_files"),
                    "zarr_store"),
}


def __getattr__(name: str):
    """Submodules load on first use: a Dask worker needs ``regions`` (zarr) but not xarray."""
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"fieldkit.store.{_HOME[name]}"), name)
    raise AttributeError(f"module 'fieldkit.store' has no attribute {name!r}")
