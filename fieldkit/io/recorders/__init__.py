"""Recorder metadata: pure parsers registered by name, and the per-file reader.

Importing this package registers every parser (``registry.names()`` lists them):
``audiomoth_comment``, ``audiomoth_config``, ``opso_metadata``, ``guano``, ``wamd``, ``bext``,
``ixml``, ``info`` and ``filename``.
"""

from fieldkit.io.recorders import audiomoth, bwf, filenames, guano, info, registry, wamd
from fieldkit.io.recorders.reader import read_recorder_metadata

__all__ = [
    "audiomoth",
    "bwf",
    "filenames",
    "guano",
    "info",
    "read_recorder_metadata",
    "registry",
    "wamd",
]
