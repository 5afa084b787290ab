"""Recorder metadata: pure parsers, the sources that use them (registered by name), and the
per-file reader that walks the sources in their declared priority.

Importing this package registers every source (``registry.source_names()``, in the order the
reader consults them): ``guano``, ``info``, ``wamd``, ``bext``, ``ixml`` and ``filename``. The
parsers they call are plain functions of bytes or text, imported where they are used.
"""

from fieldkit.io.recorders import audiomoth, bwf, filenames, guano, info, registry, sources, wamd
from fieldkit.io.recorders.reader import read_recorder_metadata

__all__ = [
    "audiomoth",
    "bwf",
    "filenames",
    "guano",
    "info",
    "read_recorder_metadata",
    "registry",
    "sources",
    "wamd",
]
