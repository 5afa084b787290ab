"""Ingest manifests: ASC-MHL-style generations, their records and C4 ids."""
