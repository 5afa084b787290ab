"""Layer 3: verified SD-card ingest (inventory → verified copy → catalogue → manifest) and verify.

Names load on first use, so a describe worker process that imports
``fieldkit.ingest.describe`` does not pay for the catalogue (SQLAlchemy, ~0.4 s).
"""

from __future__ import annotations

__all__ = ["IngestRequest", "IngestReport", "FileOutcome", "ingest_card", "plan_ingest"]

_HOME = {"FileOutcome": "outcomes", "IngestReport": "outcomes", "IngestRequest": "service", "ingest_card": "service",
         "plan_ingest": "service"}


def __getattr__(name: str):
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"fieldkit.ingest.{_HOME[name]}"), name)
    raise AttributeError(f"module 'fieldkit.ingest' has no attribute {name!r}")
