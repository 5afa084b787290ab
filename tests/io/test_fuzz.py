"""A seeded slice of the parser fuzzer (``benchmarks/fuzz.py``, :mod:`fieldkit.testing.fuzz`).

The full run is 100 000 inputs; this slice runs 2 000 inputs of another seed on every
``make test``: the RIFF walker, every recorder parser and the annotation readers on mutations
of the real files in ``tests/data``, with no uncaught exception and no input over a second of
CPU. The harness itself is tried too: a parser that raises something untyped is reported with
its input, and the minimiser shrinks it, so the slice cannot pass by catching everything.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from fieldkit.testing import fuzz

DATA = Path(__file__).resolve().parents[1] / "data"
SLICE_SEED = 20261205
SLICE_COUNT = 2000


@pytest.fixture(scope="module")
def seeds() -> list[fuzz.Seed]:
    return fuzz.load_seeds(DATA)


def test_seeds_are_the_real_files_and_every_metadata_chunk(seeds: list[fuzz.Seed]) -> None:
    names = {s.name for s in seeds}
    assert "opensoundscape/audiomoth_gps.wav" in names
    assert "crowsetta/raven-chronister-2021/Recording_1_Segment_02.Table.1.selections.txt" in names
    kinds = {s.kind for s in seeds}
    assert kinds == {"wav", "table", "config"}
    blob = b"".join(s.data for s in seeds if s.kind == "wav")
    for chunk_id in (b"guan", b"LIST", b"wamd", b"bext", b"iXML", b"ds64"):
        assert chunk_id in blob, chunk_id


def test_inputs_are_a_function_of_seed_and_index(seeds: list[fuzz.Seed]) -> None:
    first = fuzz.make_input(seeds, 7, 123)
    again = fuzz.make_input(seeds, 7, 123)
    other = fuzz.make_input(seeds, 8, 123)
    assert first == again
    assert (first.data, first.seed_name) != (other.data, other.seed_name)


def test_seeded_slice_has_no_crash_and_no_slow_input(tmp_path: Path) -> None:
    report = fuzz.run_fuzz(DATA, seed=SLICE_SEED, count=SLICE_COUNT, workers=2,
                           crash_dir=tmp_path / "crashes")
    summary = fuzz.format_report(report)
    assert report.inputs == SLICE_COUNT
    assert report.crashes == [], summary
    assert report.slow == [], summary
    assert not (tmp_path / "crashes").exists(), summary
    # every target and every mutation was exercised
    assert set(report.per_target) == {"riff", "recorders", "annotations"}, summary
    assert min(report.per_target.values()) > 100, summary
    assert set(report.per_mutation) == {
        "bit_flip", "byte_set", "truncate", "chunk_size_lie", "insert_chunk", "guano_text",
        "comment_text", "ixml_text", "vendor_chunk", "splice", "text_lines"}, summary


def test_an_untyped_exception_is_a_crash_and_is_minimised(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    def fragile(data: bytes, name: str) -> None:
        if b"guan" in data:  # a parser that trips over a chunk id
            raise IndexError("list index out of range")

    monkeypatch.setitem(fuzz._TARGETS, "wav", {"riff": fragile})
    outcome = fuzz.run_targets("wav", b"RIFF\x10\x00\x00\x00WAVEguan\x00\x00\x00\x00xx", "x.wav")
    assert [(t, e) for t, e, _ in outcome.crashes] == [("riff", "IndexError")]
    assert "list index out of range" in outcome.crashes[0][2]
    small = fuzz.minimise("wav", b"RIFF\x10\x00\x00\x00WAVEguan\x00\x00\x00\x00xx", "x.wav",
                          "riff", "IndexError")
    assert small == b"guan"


def test_a_typed_error_is_allowed_only_where_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    from fieldkit.errors import AudioFormatError

    def not_riff(data: bytes, name: str) -> None:
        raise AudioFormatError("not a RIFF/RF64 file")

    monkeypatch.setitem(fuzz._TARGETS, "wav", {"riff": not_riff, "recorders": not_riff})
    outcome = fuzz.run_targets("wav", b"OggS", "x.ogg")
    # the walker documents AudioFormatError; the recorder parsers promise never to raise
    assert [(t, e) for t, e, _ in outcome.crashes] == [("recorders", "AudioFormatError")]


# --- regressions: crashes the fuzzer found, minimised ------------------------------------------


@pytest.mark.parametrize("declaration", [
    b'<?xml version="" encoding="U"?>',  # minimised from 100k-run input #82524 (seed 14)
    b'<?xml version="1.0" encoding="UTF-0"?><BWFXML><NOTE>n</NOTE></BWFXML>',
    b'<?xml version="1.0" encoding="UTF-16"?><BWFXML/>',
])
def test_ixml_with_an_unknown_encoding_is_a_warning_not_a_crash(declaration: bytes) -> None:
    """Seed 14, #82524: wavinfo/Scene_1_2AG-T001_Tr1.WAV, ixml_text + bit_flip turned the iXML
    declaration's encoding into ``UTF-0``; expat raised LookupError through parse_ixml."""
    from fieldkit.io.recorders.bwf import parse_ixml
    from fieldkit.io.recorders.reader import read_recorder_metadata
    from fieldkit.io.riff.chunks import walk_riff
    from fieldkit.testing import riffwriter as rw

    parsed = parse_ixml(declaration)
    assert parsed.flags == ("ixml_broken",) and parsed.warnings
    wav = rw.wav_bytes(np.zeros(16), 8000, before=[rw.ixml_chunk(declaration)])
    meta = read_recorder_metadata(io.BytesIO(wav), "x.wav", walk_riff(io.BytesIO(wav), len(wav)))
    assert "ixml_broken" in meta.flags
    assert fuzz.run_targets("wav", wav, "x.wav").crashes == []
