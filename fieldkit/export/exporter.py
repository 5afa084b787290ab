"""Export one dataset version: arrays by format, index, lineage, card, Croissant, manifest.

Everything is written into a temporary folder beside ``out_dir`` and renamed into place at the
end, so a failed export never leaves a half folder and an earlier export stays whole until the
new one is complete. A destination fieldkit may not write to is refused before anything is
written; on a FAT file system (files of at most 4 GiB - 1 bytes) the export is written into a
local temporary folder first and copied over (``manifest.json`` last) only when every file fits,
else refused naming the file (:mod:`fieldkit.io.destination`, docs/reliability.md C4). A
non-empty ``out_dir`` is refused unless it is an earlier export of the same dataset version and
``overwrite=True`` says to replace it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fieldkit.config.settings import redact_url
from fieldkit.errors import ExportError, ObjectExistsError, ValidationError
from fieldkit.export.card import write_card
from fieldkit.export.croissant import write_croissant, write_manifest
from fieldkit.export.flac_audio import audio_folder_path, resolve_audio_source, write_audio_folder
from fieldkit.export.formats import ExportFormat, get_format
from fieldkit.export.pooling import open_source
from fieldkit.export.request import ExportInput
from fieldkit.export.sidecars import write_sidecars
from fieldkit.io.destination import FAT_MAX_FILE_BYTES, Mount, check_writable, file_size_limit
from fieldkit.io.storage import Root

if TYPE_CHECKING:
    from fieldkit.export.augment import AugmentSpec

__all__ = ["ExportResult", "export_dataset", "export_to_root"]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: where, in which format, every file's SHA-256, clips per split."""

    out_dir: Path | str  # a local folder, or the URL of an export on object storage
    format: str
    files: dict[str, str]
    clips_per_split: dict[str, int]

    @property
    def n_clips(self) -> int:
        """Clips in the export, all splits together."""
        return sum(self.clips_per_split.values())


def _check_store(inp: ExportInput) -> None:
    """Every clip_id is a real clip of the store, of the recording the index says."""
    ds = open_source(inp.store)
    clip_ids = inp.index["clip_id"].to_numpy(dtype=np.int64)
    n = ds.sizes["clip"]
    outside = clip_ids[(clip_ids < 0) | (clip_ids >= n)]
    if outside.size:
        raise ValidationError(f"clip_id(s) {outside[:5].tolist()} are outside the store "
                              f"{inp.store_name} (clips 0..{n - 1}); was the index built "
                              "from another run?")
    stored = ds["recording_id"].values[clip_ids]
    wrong = clip_ids[stored != inp.index["recording_id"].to_numpy(dtype=np.int64)]
    if wrong.size:
        raise ValidationError(f"clip_id(s) {wrong[:5].tolist()} belong to other recordings "
                              f"(or are padding) in {inp.store_name}; rebuild the dataset "
                              "from this run.")


def _earlier_export(out_dir: Path) -> tuple[str, int] | None:
    try:
        meta = json.loads((out_dir / "export.json").read_text(encoding="utf-8"))
        return str(meta["name"]), int(meta["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_target(out_dir: Path, inp: ExportInput, overwrite: bool) -> None:
    """Refuse a file, a non-empty folder, or (with overwrite) another dataset's folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file; choose a folder for the export.")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise ExportError(f"{out_dir} is not empty; nothing was written.",
                          hint="Choose an empty folder, or pass overwrite=True to replace an "
                               f"earlier export of {inp.name} version {inp.version}.")
    found = _earlier_export(out_dir)
    if found != (inp.name, inp.version):
        what = f"{found[0]} version {found[1]}" if found else "not a fieldkit export"
        raise ExportError(f"{out_dir} holds {what}, not {inp.name} version {inp.version}; "
                          "refusing to replace it.", hint="Choose another folder.")


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``; an existing ``out_dir`` is moved aside, then removed."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        out_dir.rename(old / out_dir.name)
    try:
        tmp.rename(out_dir)
    except OSError:
        if old is not None:
            (old / out_dir.name).rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old)


def _copy_into_place(staged: Path, out_dir: Path) -> None:
    """Copy the files of ``staged`` into a new ``out_dir``, ``manifest.json`` last (as on object
    storage: an export is complete once its manifest is there); contents only, no modes or times
    (FAT has no permission bits, and refuses ``chmod``). The folder is written in place, not
    renamed into place: the FUSE FAT driver (fusefat) loses a renamed folder's contents. An
    earlier export there (``overwrite``) is moved aside until the copy is whole."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        out_dir.rename(old / out_dir.name)
    out_dir.mkdir()
    try:
        files = sorted(p.relative_to(staged) for p in staged.rglob("*") if p.is_file())
        for rel in sorted(files, key=lambda r: r.as_posix() == "manifest.json"):
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged / rel, out_dir / rel)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        if old is not None:
            (old / out_dir.name).rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old)


def _too_large(staged: Path, limit: int) -> list[tuple[str, int]]:
    """(relative path, bytes) of every staged file over ``limit`` bytes, largest first."""
    sizes = [(p.relative_to(staged).as_posix(), p.stat().st_size) for p in staged.rglob("*") if p.is_file()]
    return sorted(((name, size) for name, size in sizes if size > limit), key=lambda f: -f[1])


def _size_hint(inp: ExportInput, format_name: str, size: int, limit: int) -> str:
    other = "or export onto a file system without this limit (exFAT, NTFS, ext4)."
    if format_name == "webdataset":
        fits = max(1, inp.shard_size * limit // size)
        return f"Use a smaller --shard-size (now {inp.shard_size} clips per shard; about {fits} fit), {other}"
    return f"Export in the zarr format (many small files), {other}"


def _export_within_limit(inp: ExportInput, format_name: str, out_dir: Path, published: date | None,
                         augment: AugmentSpec | None, limit: int, mount: Mount) -> dict[str, str]:
    """Export onto a file system with a file-size limit (FAT): staged in a local temporary folder,
    refused there when a file is over ``limit``, else copied into ``out_dir``: nothing too large
    ever reaches the destination, and a failed copy is removed."""
    with tempfile.TemporaryDirectory(prefix=f"fieldkit-export-{out_dir.name}-") as staged:
        files = _write_all(inp, format_name, Path(staged), published, out_dir, augment)
        over = _too_large(Path(staged), limit)
        if over:
            name, size = over[0]
            raise ExportError(
                f"{out_dir / name} would be {size:,} bytes, but {mount.mount_point} is a {mount.fstype} (FAT) file "
                f"system that holds files of at most {limit:,} bytes ({len(over)} file(s) too large); nothing was "
                f"written to {out_dir}.", hint=_size_hint(inp, format_name, size, limit), path=out_dir / name)
        _copy_into_place(Path(staged), out_dir)
    return files


def _audio_refs(inp: ExportInput, fmt: ExportFormat, source: str) -> dict[int, str]:
    """clip_id -> where its FLAC is in the export (the index's ``audio`` column)."""
    if source == "none":
        return {}
    refs: dict[int, str] = {}
    for split in inp.splits:
        ids = inp.split_index(split)["clip_id"].astype(int).tolist()
        where = (fmt.audio_refs(inp, split) if fmt.audio_refs is not None
                 else [audio_folder_path(split, c) for c in ids])
        refs.update(zip(ids, where))
    return refs


def _write_all(inp: ExportInput, format_name: str, tmp: Path,
               published: date | None, out_dir: Path | str, augment: AugmentSpec | None = None) -> dict[str, str]:
    fmt = get_format(format_name)
    source = resolve_audio_source(inp)
    files: dict[str, str] = {}
    if fmt.audio_refs is None:  # formats that embed the FLAC write it themselves
        files |= write_audio_folder(inp, tmp, source)
    files |= fmt.export(inp, tmp)
    files |= write_sidecars(inp, fmt.name, tmp, audio=_audio_refs(inp, fmt, source),
                            audio_source=source, final_dir=out_dir)
    files |= write_card(inp, fmt, tmp, files)
    if augment is not None:  # train items only, in their own folder; adds a section to the card
        from fieldkit.export.augment import write_augmented
        files |= write_augmented(inp, augment, tmp, files)
    files |= write_croissant(inp, tmp, files, published)
    write_manifest(inp, fmt.name, tmp, files)
    return files


def _check_request(inp: ExportInput, format: str) -> None:
    fmt = get_format(format)  # an unknown name fails before anything is touched
    # so does an audio source the input cannot provide
    if resolve_audio_source(inp) == "none" and fmt.needs_audio:
        raise ValidationError(f"the {format} format carries each clip's audio; audio 'none' "
                              "leaves it nothing to carry.",
                              hint="Use --audio processed or --audio original.")


def export_to_root(inp: ExportInput, root: Root, rel: str, *, format: str = "zarr",
                   published: date | None = None, augment: AugmentSpec | None = None) -> ExportResult:
    """Export one dataset version to ``rel`` under a storage root (object storage).

    The export is written exactly as :func:`export_dataset` writes it, into a local temporary
    folder (every format's writer stays a plain file writer), then each finished file is
    uploaded create-only (:meth:`fieldkit.io.storage.Root.put_new`), ``manifest.json`` last, and
    each upload's SHA-256, hashed while sent, is checked against the manifest's. An export on
    object storage is never replaced: a prefix that holds any object is refused.

    Parameters
    ----------
    inp : ExportInput
        The dataset (see :func:`export_dataset`).
    root : Root
        The exports root (``ws.roots.exports``).
    rel : str
        The export's folder under ``root`` (``<name>-<version>-<format>``).
    format, published, augment
        As for :func:`export_dataset`.

    Returns
    -------
    ExportResult
        ``out_dir`` is the export's URL.
    """
    _check_request(inp, format)
    uri = root.uri(rel)
    root.check_reachable()  # a wrong endpoint, bucket or credential fails before anything is written
    if root.list(rel):
        raise ExportError(f"{redact_url(uri)} already holds an export (or a part of one); an export on object "
                          "storage is never replaced, nothing was written.", path=redact_url(uri),
                          hint="Export a new dataset version ('fieldkit dataset create' again), or write to a "
                               "local folder with --out.")
    _check_store(inp)
    with tempfile.TemporaryDirectory(prefix=f"fieldkit-export-{Path(rel).name}-") as tmp:
        files = _write_all(inp, format, Path(tmp), published, uri, augment)
        try:
            sent = root.put_tree(rel, Path(tmp))
        except ObjectExistsError as exc:
            raise ExportError(f"{redact_url(uri)}: another export wrote into this prefix meanwhile; "
                              "nothing of it was replaced.", path=redact_url(uri),
                              hint="Export a new dataset version.") from exc
    changed = sorted(name for name, sha in files.items() if sent.get(name, ("",))[0] != sha)
    if changed:
        raise ExportError(f"{redact_url(uri)}: {len(changed)} file(s) changed between writing and upload "
                          f"({', '.join(changed[:3])}).", path=redact_url(uri),
                          hint="Export a new dataset version; check the machine's temporary folder.")
    return ExportResult(uri, format, files, {s: len(inp.split_index(s)) for s in inp.splits})


def export_dataset(inp: ExportInput, out_dir: Path, *, format: str = "zarr",
                   overwrite: bool = False, published: date | None = None,
                   augment: AugmentSpec | None = None, fat_max_file_bytes: int = FAT_MAX_FILE_BYTES) -> ExportResult:
    """Export one dataset version into ``out_dir``.

    Parameters
    ----------
    inp : ExportInput
        The dataset: index, labels, splits, lineage, and the run's store.
    out_dir : Path
        Target folder; must be absent or empty, or hold an earlier export of the same name
        and version when ``overwrite`` is true.
    format : str
        A name from :data:`fieldkit.export.formats.FORMATS` (``zarr``, ``numpy``, ``parquet``,
        ``webdataset``, ``lhotse``). Each clip's audio is included as the input's ``audio``
        option says (:mod:`fieldkit.export.flac_audio`).
    overwrite : bool
        Replace an earlier export of the same dataset version.
    published : date, optional
        ``datePublished`` of the Croissant metadata (default: today, UTC).
    augment : AugmentSpec, optional
        Augmented copies of the train clips to add (:mod:`fieldkit.export.augment`).
    fat_max_file_bytes : int
        The largest file a FAT destination holds (4 GiB - 1 bytes); tests lower it.

    Returns
    -------
    ExportResult

    Raises
    ------
    OutputUnavailableError
        ``out_dir`` is on a read-only file system or in a folder the user may not write to.
    ExportError
        On a FAT destination, a file of the export would be larger than it can hold.
    """
    _check_request(inp, format)
    out_dir = Path(out_dir)
    _check_target(out_dir, inp, overwrite)
    check_writable(out_dir.parent, "the export")
    limit = file_size_limit(out_dir.parent, fat_max_file_bytes)
    _check_store(inp)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if limit is not None:
        files = _export_within_limit(inp, format, out_dir, published, augment, *limit)
        return ExportResult(out_dir, format, files, {s: len(inp.split_index(s)) for s in inp.splits})
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; an export is meant to be shared
    try:
        files = _write_all(inp, format, tmp, published, out_dir, augment)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out_dir, format, files,
                        {s: len(inp.split_index(s)) for s in inp.splits})
