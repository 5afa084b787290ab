"""Layer 2 adapter: the Zarr/xarray layout of a processing run's store (DESIGN.md).

:mod:`.layout` says what a store holds, :mod:`.plan` where each recording's clips go so that
every task owns whole shards, and :mod:`.zarr_store` creates, fills, resumes and publishes it.
"""

from fieldkit.store.layout import (
    COORDINATES,
    DEFAULT_CLIPS_PER_CHUNK,
    DEFAULT_CLIPS_PER_SHARD,
    DEFAULT_COMPRESSION_LEVEL,
    FEATURE_VARIABLES,
    QC_VARIABLES,
    SCHEMA_VERSION,
    StoreLayout,
    VariableSpec,
)
from fieldkit.store.plan import RegionPlan, TaskRegion, plan_regions
from fieldkit.store.zarr_store import (
    completed_regions,
    create_store,
    finalize_store,
    open_store,
    padding_arrays,
    read_layout,
    region_is_complete,
    remove_partial_files,
    write_region,
)

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
