"""Layer 3: verified SD-card ingest (inventory → verified copy → catalogue → manifest) and verify."""

from fieldkit.ingest.report import FileOutcome, IngestReport
from fieldkit.ingest.service import IngestRequest, ingest_card, plan_ingest

__all__ = ["IngestRequest", "IngestReport", "FileOutcome", "ingest_card", "plan_ingest"]
