"""The tolerant RIFF walker: synthetic layouts, round trips, and every shared file."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.errors import AudioFormatError
from fieldkit.io.riff.chunks import read_chunk_body, walk_riff, walk_riff_path
from fieldkit.testing import riffwriter as rw


def walk(data: bytes):
    return walk_riff(io.BytesIO(data), len(data))


class _CountingReader(io.BytesIO):
    """Counts bytes handed out, to prove the walker never reads sample data."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.bytes_read += len(out)
        return out


def test_plain_pcm_layout():
    data = rw.wav_bytes(np.zeros(100), 8000)
    layout = walk(data)
    assert layout.container == "RIFF" and layout.form_type == "WAVE"
    assert layout.chunk_ids == ("fmt ", "data")
    assert (layout.fmt.sample_rate_hz, layout.fmt.channels, layout.fmt.bits_per_sample) == (8000, 1, 16)
    assert (layout.data_offset, layout.data_size_declared, layout.data_bytes_present) == (44, 200, 200)
    assert layout.issues == ()


def test_walker_reads_headers_not_samples():
    data = rw.wav_bytes(np.zeros(500_000), 48_000, after=[rw.info_list(ICMT="x")])
    reader = _CountingReader(data)
    layout = walk_riff(reader, len(data))
    assert layout.chunk_ids == ("fmt ", "data", "LIST")
    assert reader.bytes_read < 200


@pytest.mark.reliability("A9")
def test_odd_chunk_without_pad_at_end_and_mid_file():
    at_end = rw.wav_bytes(np.zeros(10), 8000, after=[rw.guan_chunk("GUANO|Version:1.0\nA:b")])
    layout = walk(at_end)
    assert layout.chunk_ids[-1] == "guan" and layout.chunks[-1].odd_without_pad
    assert "odd_chunk_without_pad" in layout.issues
    mid = rw.wav_bytes(np.zeros(10), 8000, before=[rw.chunk("abcd", b"xyz", pad=False)])
    layout = walk(mid)
    assert layout.chunk_ids == ("abcd", "fmt ", "data")
    assert layout.chunks[0].odd_without_pad


def test_odd_chunk_with_pad_is_clean():
    data = rw.wav_bytes(np.zeros(10), 8000, before=[rw.chunk("abcd", b"xyz")])
    layout = walk(data)
    assert layout.chunk_ids == ("abcd", "fmt ", "data") and layout.issues == ()


@pytest.mark.reliability("A9")
def test_metadata_before_fmt_and_chunks_after_data():
    data = rw.wav_bytes(
        np.zeros(10), 8000,
        before=[rw.chunk("JUNK", bytes(28)), rw.bext_chunk(description="d"), rw.ixml_chunk("<BWFXML/>")],
        after=[rw.chunk("FLLR", bytes(100)), rw.chunk("PAD ", bytes(4))],
    )
    layout = walk(data)
    assert layout.chunk_ids == ("JUNK", "bext", "iXML", "fmt ", "data", "FLLR", "PAD ")
    assert layout.issues == ()
    bext = layout.find("bext")[0]
    assert read_chunk_body(io.BytesIO(data), bext)[:1] == b"d"


def test_truncated_data_is_reported_with_both_sizes():
    data = rw.wav_bytes(np.zeros(1000), 8000, truncate_to=44 + 300)
    layout = walk(data)
    assert layout.data_size_declared == 2000 and layout.data_bytes_present == 300
    assert {"data_size_exceeds_file", "riff_size_mismatch"} <= set(layout.issues)


def test_huge_claims_do_not_allocate():
    data = b"RIFF" + struct.pack("<I", 1_180_000_000) + b"WAVE" + b"oooo" + struct.pack("<I", 2_974_173_522) + b"FF"
    reader = _CountingReader(data)
    layout = walk_riff(reader, len(data))
    assert layout.chunks[0].size_declared == 2_974_173_522 and layout.chunks[0].size_available == 2
    assert {"chunk_overruns_file", "no_fmt", "no_data"} <= set(layout.issues)
    assert reader.bytes_read <= len(data) + 16


@pytest.mark.reliability("A8")
def test_rf64_sizes_come_from_ds64():
    samples = np.linspace(-0.5, 0.5, 300)
    layout = walk(rw.rf64_bytes(samples, 8000))
    assert layout.container == "RF64" and layout.ds64 is not None
    assert layout.data_size_declared == 600 and layout.data_bytes_present == 600
    assert layout.issues == ()


@pytest.mark.reliability("A8")
def test_rf64_wrong_32bit_data_size_is_flagged_not_truncated():
    layout = walk(rw.rf64_bytes(np.zeros(300), 8000, data_size_32=0x00FF))
    assert layout.data_size_declared == 600
    assert "rf64_data_size_mismatch" in layout.issues


def test_rifx_big_endian():
    body = struct.pack(">HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data = b"RIFX" + struct.pack(">I", 4 + 24 + 8 + 4) + b"WAVE" + b"fmt " + struct.pack(">I", 16) + body
    data += b"data" + struct.pack(">I", 4) + b"\x00\x01\x00\x02"
    layout = walk(data)
    assert layout.container == "RIFX" and layout.fmt.sample_rate_hz == 8000
    assert layout.data_size_declared == 4 and layout.issues == ()


def test_extensible_subformat():
    data = rw.wav_bytes(np.zeros(4), 192_000, bits=24, extensible=True)
    fmt = walk(data).fmt
    assert (fmt.format_tag, fmt.subformat_tag, fmt.effective_tag, fmt.valid_bits) == (0xFFFE, 1, 1, 24)


def test_unfinalised_data_size_with_samples_following():
    samples = np.sin(np.linspace(0, 100, 4000)) * 0.5
    layout = walk(rw.wav_bytes(samples, 8000, data_size=0, riff_size=36))
    assert "data_size_unfinalised" in layout.issues


@pytest.mark.parametrize("head", [b"", b"fLaC\x00\x00", b"This is not audio", b"\x00" * 16])
def test_not_riff_raises(head):
    with pytest.raises(AudioFormatError, match="not a RIFF"):
        walk(head)


def test_short_and_foreign_riff_headers():
    assert walk(b"RIFF").issues == ("truncated_riff_header",)
    assert walk(b"RIFF\x04\x00\x00\x00AVI ").issues == ("not_wave",)


_ids = st.text(alphabet=st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=4, max_size=4)
_chunks = st.lists(st.tuples(_ids, st.binary(max_size=40)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(before=_chunks, after=_chunks, frames=st.integers(0, 50))
def test_writer_walker_round_trip(before, after, frames):
    data = rw.wav_bytes(np.zeros(frames), 8000,
                        before=[rw.chunk(i, b) for i, b in before],
                        after=[rw.chunk(i, b) for i, b in after])
    layout = walk(data)
    expected = [i for i, _ in before] + ["fmt ", "data"] + [i for i, _ in after]
    assert list(layout.chunk_ids) == expected
    sizes = [len(b) for _, b in before] + [16, 2 * frames] + [len(b) for _, b in after]
    assert [c.size_declared for c in layout.chunks] == sizes
    assert layout.issues == ()
    stream = io.BytesIO(data)
    for (chunk_id, body), found in zip(before + after, [c for c in layout.chunks if c.chunk_id not in ("fmt ", "data")]):
        assert read_chunk_body(stream, found) == body


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
@pytest.mark.reliability("A9")
def test_walker_never_raises_on_garbage_after_riff_magic(tail):
    layout = walk(b"RIFF" + tail)
    assert layout.file_size == 4 + len(tail)


# --- every RIFF file in the shared corpus ------------------------------------------------

SHARED_LAYOUTS = [
    ("opensoundscape/1min.wav", ("fmt ", "data", "LIST", "id3 "), ()),
    ("batdetect2/AudiomothNoBatCalls.WAV", ("fmt ", "LIST", "data", "guan"), ("odd_chunk_without_pad",)),
    ("batdetect2/Echometer.wav", ("fmt ", "data", "guan", "wamd"), ()),
    ("wavinfo/A101_1_1.WAV", ("fmt ", "bext", "iXML", "data"), ("odd_chunk_without_pad",)),
    ("wavinfo/A101_3.WAV", ("bext", "iXML", "fmt ", "data"), ()),
    ("wavinfo/Scene_1_2AG-T001_Tr1.WAV", ("bext", "iXML", "fmt ", "PAD ", "data"), ()),
    ("wavinfo/Sr001-2C-01_01.WAV", ("bext", "fmt ", "data", "iXML", "iXTC"), ()),
    ("wavinfo/new_camera bumb 1.wav", ("JUNK", "fmt ", "data", "umid", "minf", "ovwf", "ID3 ", "LIST"), ("riff_size_mismatch",)),
    ("wavinfo/umid.wav", ("JUNK", "bext", "fmt ", "minf", "elm1", "data", "FLLR", "regn", "umid", "DGDA"), ()),
    ("hound/wav_agent_bext.wav", ("fmt ", "data", "LIST", "id3 ", "iXML", "bext"), ()),
    ("hound/oom-48ae4cd061ff8578ad3f23dc87624bd365cf5216.wav", ("oooo",), ("chunk_overruns_file", "riff_size_mismatch", "no_fmt", "no_data")),
    ("scipy/test-44100Hz-le-1ch-4bytes-rf64.wav", ("ds64", "fmt ", "fact", "data"), ()),
    ("scipy/test-44100Hz-le-1ch-4bytes-early-eof.wav", ("fmt ", "fact", "data"), ("data_size_exceeds_file", "riff_size_mismatch")),
    ("wavefile-rb/format_chunk_after_data_chunk.wav", ("data", "fmt "), ("data_before_fmt",)),
    ("wavefile-rb/smpl_chunk_truncated.wav", ("fmt ", "data", "smpl"), ("chunk_overruns_file", "riff_size_mismatch")),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("relative", "ids", "issues"), SHARED_LAYOUTS, ids=[r for r, _, _ in SHARED_LAYOUTS])
def test_shared_layouts(shared, relative, ids, issues):
    layout = walk_riff_path(shared(relative))
    assert layout.chunk_ids == ids
    assert set(layout.issues) == set(issues)


@pytest.mark.shared_data
def test_rf64_shared_file_uses_ds64(shared):
    layout = walk_riff_path(shared("scipy/test-44100Hz-le-1ch-4bytes-rf64.wav"))
    assert layout.container == "RF64" and layout.data_size_declared == 17640
    assert layout.ds64.data_size == 17640


@pytest.mark.slow
@pytest.mark.reliability("A8")
def test_plain_riff_over_4gib_with_wrapped_size_is_flagged(tmp_path):
    from fieldkit.io.audio.probe import probe

    path = tmp_path / "huge.wav"
    total_data = (1 << 32) + 4000  # true data bytes; the 32-bit field wraps to 4000
    header = rw.riff_file([rw.fmt_chunk(48_000, 1, 16), rw.data_chunk(b"", size=total_data & 0xFFFFFFFF)],
                          riff_size=(36 + total_data) & 0xFFFFFFFF)
    with open(path, "wb") as out:
        out.write(header)
        out.truncate(len(header) + total_data)  # sparse: no 4 GiB is written
    if path.stat().st_blocks * 512 > 64 * 1024 * 1024:
        pytest.skip("filesystem does not support sparse files")
    layout = walk_riff_path(path)
    assert "data_size_wrapped" in layout.issues and layout.data_size_declared == 4000
    facts = probe(path)
    assert (facts.status, facts.reason) == ("quarantined", "header_inconsistent")
    assert str(total_data) in facts.messages[0]
