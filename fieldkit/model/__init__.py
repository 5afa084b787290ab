"""Layer 1: plain domain records (dataclasses), no I/O, no database."""
