"""Annotation tables (Raven, Audacity, CSV): tolerant readers, row validation, path resolution."""
