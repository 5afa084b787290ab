"""Layer 3: verified SD-card ingest (inventory → verified copy → catalogue → manifest) and verify.

:mod:`.service` holds :func:`~fieldkit.ingest.service.ingest_card` and its request,
:mod:`.outcomes` the report. Import names from the submodule that defines them; nothing is
re-exported here, so that a describe worker process importing :mod:`.describe` does not pay for
the catalogue (SQLAlchemy, ~0.4 s).
"""
