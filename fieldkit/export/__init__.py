"""Layer 3 service: hand a curated dataset to an ML team (docs/architecture.md, "Export").

:func:`export_dataset` writes one dataset version, described by a plain :class:`ExportInput`,
as arrays in a named format (:data:`FORMATS`: ``zarr``, ``numpy``, ``parquet``), an index, the
lineage of every clip, a dataset card (``README.md``), Croissant metadata and a manifest of
SHA-256 hashes. :func:`run_baseline` trains a reference classifier on any export.
"""

from fieldkit.export.baseline import load_export, run_baseline
from fieldkit.export.formats import FORMATS, ExportFormat, get_format
from fieldkit.export.request import ExportInput
from fieldkit.export.exporter import ExportResult, export_dataset

__all__ = [
    "FORMATS",
    "ExportFormat",
    "ExportInput",
    "ExportResult",
    "export_dataset",
    "get_format",
    "load_export",
    "run_baseline",
]
