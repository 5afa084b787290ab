"""Layer 3: the catalogue's annotations written for other tools (Raven, Audacity, OpenSoundscape).

Every annotation names its audio by the recording's archive file name, the name
``fieldkit annotations import`` matches on, so an export imports back onto the same recordings
(``tests/test_detector_formats.py`` checks the round trip for every format).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from fieldkit.catalogue import labels as label_rows
from fieldkit.errors import ExportError, NotFoundError
from fieldkit.io.annotations.writers import OutAnnotation, write_annotations, writer_names

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["AnnotationExport", "export_annotations"]


@dataclass(frozen=True)
class AnnotationExport:
    """What ``fieldkit annotations export`` wrote."""

    format: str
    out_dir: str
    files: list[str]
    annotations: int
    recordings: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the command."""
        return asdict(self)


def export_annotations(ws: Workspace, fmt: str, out_dir: Path, *, labels: tuple[str, ...] = (),
                       recording_ids: tuple[int, ...] = (), overwrite: bool = False) -> AnnotationExport:
    """Write the catalogue's annotations in ``fmt`` into ``out_dir``.

    Parameters
    ----------
    ws : Workspace
    fmt : str
        ``raven``, ``audacity`` or ``opensoundscape``.
    out_dir : Path
        A folder that is absent or empty (or, with ``overwrite``, holds earlier files).
    labels, recording_ids : tuple
        Only these labels / recordings (all when empty).
    overwrite : bool
        Replace files of the same name in a non-empty ``out_dir``.

    Returns
    -------
    AnnotationExport

    Raises
    ------
    NotFoundError
        No annotation matches the selection.
    ExportError
        ``out_dir`` is a file, or a non-empty folder without ``overwrite``.
    """
    if fmt not in writer_names():
        write_annotations([], fmt, out_dir)  # raises UnknownNameError listing the formats
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not overwrite)):
        raise ExportError(f"{out_dir} is {'a file' if not out_dir.is_dir() else 'not empty'}; nothing was written.",
                          hint="Choose an empty folder, or pass --overwrite to replace files there.")
    with ws.catalogue.read() as s:
        rows = label_rows.annotations_out(s, labels, recording_ids)
    if not rows:
        raise NotFoundError("no annotations match" + (f" labels {list(labels)}" if labels else "")
                            + (f" recordings {list(recording_ids)}" if recording_ids else "") + ".",
                            hint="See 'fieldkit catalog annotations'; import some with "
                                 "'fieldkit annotations import'.")
    out = [OutAnnotation(file=PurePosixPath(r.archive_path).name, begin_s=r.begin_s, end_s=r.end_s,
                         label=r.label, low_hz=r.low_hz, high_hz=r.high_hz, channel=r.channel,
                         confidence=r.confidence) for r in rows]
    written = write_annotations(out, fmt, out_dir)
    return AnnotationExport(format=fmt, out_dir=str(out_dir), files=[p.name for p in written],
                            annotations=len(rows), recordings=len({r.recording_id for r in rows}))
