"""The reader walks the registered metadata sources in their declared priority (real file)."""

from __future__ import annotations

from pathlib import Path

import pytest

import fieldkit
from fieldkit.errors import UnknownNameError
from fieldkit.io.recorders import read_recorder_metadata, registry
from fieldkit.io.riff.chunks import walk_riff_path
from fieldkit.model.metadata import TimeCandidate

#: A real AudioMoth recording of the sample card: LIST/ICMT + IART, then an ``id3 `` chunk.
MOTH = Path(fieldkit.__file__).parent / "data" / "sample_card" / "20200404_102500.WAV"


def _read():
    return read_recorder_metadata(MOTH, MOTH.name, walk_riff_path(MOTH))


def _id3_source(given: registry.SourceInput) -> registry.Reading:
    """A test source: the size of the id3 chunk, and a serial and time of its own."""
    (body,) = given.bodies["id3 "]
    time = TimeCandidate("id3", "test", None)
    return registry.Reading({"serial": "ID3-SERIAL", "firmware": "id3-firmware"}, (time,),
                            {"id3": {"size": len(body), "found_make": given.found.get("make")}},
                            ("id3_seen",), ("id3: a test source",))


def test_the_walk_follows_the_declared_priority():
    assert registry.source_names() == registry.PRIORITY
    assert tuple(s.name for s in registry.sources()) == registry.PRIORITY
    assert registry.get_source("guano").chunk_ids == ("guan",)
    assert registry.get_source("filename").chunk_ids == ()


@pytest.mark.parametrize("before", ["info", None])
def test_a_registered_source_changes_what_is_read_until_it_is_removed(before):
    plain = _read()
    assert plain.serial == "24526B065D325963" and plain.firmware is None
    registry.register_source("id3_test", ("id3 ",), before=before)(_id3_source)
    try:
        assert "id3_test" in registry.source_names()
        meta = _read()
    finally:
        registry.unregister_source("id3_test")
    if before == "info":  # consulted before the AudioMoth comment: its serial wins, it sees no make
        assert meta.serial == "ID3-SERIAL" and meta.raw["id3"]["found_make"] is None
        assert [c.source for c in meta.time_candidates] == ["id3", "audiomoth_comment", "filename"]
    else:  # consulted last: it fills only what no other source gave, and sees the make
        assert meta.serial == plain.serial
        assert meta.raw["id3"]["found_make"] == "Open Acoustic Devices"
        assert [c.source for c in meta.time_candidates] == ["audiomoth_comment", "filename", "id3"]
    assert meta.firmware == "id3-firmware" and meta.raw["id3"]["size"] > 0
    assert "id3_seen" in meta.flags and "id3: a test source" in meta.warnings
    assert registry.source_names() == registry.PRIORITY
    assert _read() == plain


def test_source_registry_misses_are_helpful():
    with pytest.raises(UnknownNameError) as err:
        registry.get_source("zoom_f3")
    message = str(err.value)
    assert "zoom_f3" in message and "guano" in message and "filename" in message
    with pytest.raises(UnknownNameError, match="known: .*wamd"):
        registry.register_source("x", before="nothing")(_id3_source)
    with pytest.raises(UnknownNameError):
        registry.unregister_source("zoom_f3")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_source("wamd", ("wamd",))(_id3_source)
    with pytest.raises(ValueError, match="declared in registry.PRIORITY"):
        registry.unregister_source("guano")
    assert registry.source_names() == registry.PRIORITY
    assert "x" not in registry.source_names()
