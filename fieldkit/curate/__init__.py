"""Layer 3: curation — annotations into the catalogue, datasets with grouped splits, lineage,
and the catalogue side of a handoff to :mod:`fieldkit.export`."""
