"""Layer 3 service: hand a curated dataset to an ML team (docs/architecture.md, "Export").

:func:`~fieldkit.export.exporter.export_dataset` writes one dataset version, described by a plain
:class:`~fieldkit.export.request.ExportInput`, as arrays in a named format
(:data:`~fieldkit.export.formats.FORMATS`: ``zarr``, ``numpy``, ``parquet``), an index, the
lineage of every clip, a dataset card (``README.md``), Croissant metadata and a manifest of
SHA-256 hashes. :func:`~fieldkit.export.baseline.run_baseline` trains a reference classifier on
any export.

Import names from the submodule that defines them; nothing is re-exported here, so that
importing :mod:`.request` (the curation handoff, the CLI) does not import scikit-learn.
"""
