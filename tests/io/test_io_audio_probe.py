"""probe(): format sniffing, truncation, quarantine reasons, QC - synthetic and real files."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest
import soundfile as sf

from fieldkit.io.audio.probe import flac_streaminfo, probe, sniff_format
from fieldkit.testing import riffwriter as rw

MOTH_COMMENT = rw.audiomoth_comment("1.6.0", time=datetime(2024, 9, 3, 19, 31, 30))


def test_clean_pcm16(write):
    samples = 0.5 * np.sin(np.linspace(0, 200 * np.pi, 8000))
    facts = probe(write(rw.wav_bytes(samples, 8000)))
    assert (facts.status, facts.reason, facts.detected_format) == ("ok", None, "wav")
    assert (facts.sample_rate_hz, facts.channels, facts.bit_depth, facts.subtype) == (8000, 1, 16, "PCM_16")
    assert facts.frames_declared == facts.frames_present == 8000
    assert facts.duration_s == pytest.approx(1.0)
    assert facts.qc.peak == pytest.approx(0.5, abs=1e-4)
    assert facts.qc.peak_dbfs == pytest.approx(-6.02, abs=0.01)
    assert facts.qc.clipped_samples == 0
    assert facts.messages == ()


@pytest.mark.reliability("A1")
def test_empty_file(write):
    facts = probe(write(b"", "EMPTY.WAV"))
    assert (facts.status, facts.reason, facts.file_size_bytes) == ("quarantined", "empty", 0)
    assert "EMPTY.WAV" in facts.messages[0] and "0 bytes" in facts.messages[0]


@pytest.mark.reliability("A5")
def test_null_file(write):
    facts = probe(write(bytes(128 * 1024)))
    assert (facts.status, facts.reason) == ("quarantined", "null_bytes")


@pytest.mark.reliability("A2")
def test_audiomoth_header_only_488_bytes(write):
    data = rw.audiomoth_header_only(MOTH_COMMENT)
    assert len(data) == 488
    facts = probe(write(data, "20240903_193130.WAV"))
    assert (facts.status, facts.reason, facts.frames_present) == ("quarantined", "header_only", 0)
    assert "header never finalised" in facts.messages[0]
    assert facts.layout.riff_size_declared == 480


@pytest.mark.reliability("A5")
def test_pre_allocated_44_byte_stub(write):
    facts = probe(write(rw.wav_bytes(np.zeros(0), 48000), "x.flac"))
    assert (facts.status, facts.reason) == ("quarantined", "stub")
    assert (facts.detected_format, facts.declared_extension) == ("wav", "flac")


@pytest.mark.reliability("A3")
def test_truncated_keeps_both_counts(write):
    samples = 0.1 * np.ones(1000)
    facts = probe(write(rw.wav_bytes(samples, 8000, truncate_to=44 + 601)))
    assert (facts.status, facts.frames_declared, facts.frames_present) == ("truncated", 1000, 300)
    assert facts.duration_s == pytest.approx(300 / 8000)
    assert facts.qc.frames_analysed == 300
    assert "1000 frames" in facts.messages[0] and "300 frames" in facts.messages[0]


@pytest.mark.reliability("A4")
def test_data_size_zero_but_full_length_is_inconsistent(write):
    samples = 0.3 * np.sin(np.linspace(0, 500, 4000))
    facts = probe(write(rw.wav_bytes(samples, 8000, data_size=0)))
    assert (facts.status, facts.reason) == ("quarantined", "header_inconsistent")
    assert "4000 frames" in facts.messages[0]


def test_clipping_counts_full_scale_codes(write):
    samples = np.array([1.0, 1.0, -1.0, 0.999, 0.0, 0.5])  # 1.0 rounds to 32767 (clipped)
    facts = probe(write(rw.wav_bytes(samples, 8000)))
    assert facts.qc.clipped_samples == 3
    assert facts.qc.peak == pytest.approx(1.0)


@pytest.mark.reliability("A7")
def test_float_keeps_headroom_and_flags_nan(write):
    fine = probe(write(rw.wav_bytes(np.array([0.0, 2.0, -1.5, 0.25]), 8000, bits=32, sample_format="float"), "f.wav"))
    assert (fine.status, fine.subtype) == ("ok", "FLOAT")
    assert fine.qc.peak == pytest.approx(2.0) and fine.qc.clipped_samples == 2
    bad = np.zeros(100)
    bad[[10, 70]] = np.nan
    bad[50] = np.inf
    facts = probe(write(rw.wav_bytes(bad, 8000, bits=32, sample_format="float"), "nan.wav"))
    assert (facts.status, facts.reason) == ("quarantined", "corrupt_samples")
    assert facts.qc.nonfinite_samples == 3 and facts.qc.nonfinite_frames == (10, 50, 70)


def test_dc_offset_and_silence(write):
    samples = np.zeros((1000, 2))
    samples[:, 1] = 0.25
    facts = probe(write(rw.wav_bytes(samples, 8000)))
    assert facts.channels == 2
    assert facts.qc.dc_offset == pytest.approx(0.25, abs=1e-4)
    assert facts.qc.silent_fraction == pytest.approx(0.5)
    assert not facts.qc.digital_silence
    silent = probe(write(rw.wav_bytes(np.zeros(100), 8000), "silent.wav"))
    assert silent.qc.digital_silence and silent.qc.peak_dbfs is None


def test_block_size_does_not_change_the_answer(write):
    rng = np.random.default_rng(1)
    path = write(rw.wav_bytes(rng.uniform(-1, 1, (10_001, 2)), 16_000))
    small, large = probe(path, block_frames=97), probe(path)
    assert small.qc == large.qc and small.frames_present == 10_001


@pytest.mark.reliability("A6")
def test_flac_named_wav_is_identified_by_magic(tmp_path):
    path = tmp_path / "really_flac.wav"
    sf.write(path, 0.1 * np.ones(1234), 16_000, format="FLAC", subtype="PCM_16")
    facts = probe(path)
    assert (facts.detected_format, facts.declared_extension, facts.status) == ("flac", "wav", "ok")
    assert facts.frames_declared == facts.frames_present == 1234


@pytest.mark.reliability("A3")
def test_truncated_flac_is_truncated(tmp_path):
    good = tmp_path / "good.flac"
    sf.write(good, np.random.default_rng(2).uniform(-0.5, 0.5, 48_000), 48_000, format="FLAC")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    facts = probe(cut)
    assert facts.frames_declared == 48_000
    assert facts.status == "truncated" and 0 < facts.frames_present < 48_000


def test_rf64_written_by_libsndfile(tmp_path):
    path = tmp_path / "big.wav"
    sf.write(path, np.zeros(1000), 8000, format="RF64", subtype="PCM_24")
    facts = probe(path)
    assert (facts.detected_format, facts.status, facts.frames_present, facts.bit_depth) == ("rf64", "ok", 1000, 24)


@pytest.mark.reliability("A5")
def test_not_audio(write):
    facts = probe(write(b"Device ID : 243B1F075C7B13FB\r\n", "CONFIG.TXT"))
    assert (facts.status, facts.reason) == ("quarantined", "not_audio")


@pytest.mark.parametrize(
    ("head", "expected"),
    [(b"RIFF\0\0\0\0WAVE", "wav"), (b"RIFX\0\0\0\0WAVE", "wav"), (b"RF64\xff\xff\xff\xffWAVE", "rf64"),
     (b"BW64\xff\xff\xff\xffWAVE", "rf64"), (b"fLaC\0\0\0\x22", "flac"), (b"OggS\0\2", "ogg"),
     (b"FORM\0\0\0\0AIFF", "aiff"), (b"ID3\3\0\0\0\0\0\0\xff\xfb", "mp3"),
     (b"ID3\3\0\0\0\0\0\0fLaC", "flac"), (b"\xff\xfb\x90\x00", "mp3"),
     (b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00", "w64"), (b"hello world", "unknown")],
)
@pytest.mark.reliability("A5")
def test_sniff_format(head, expected):
    assert sniff_format(head) == expected


@pytest.mark.reliability("A3")
def test_flac_streaminfo_unknown_total_and_md5():
    head = b"fLaC" + b"\x80\x00\x00\x22" + bytes(34)
    assert flac_streaminfo(head) == (None, False)


@pytest.mark.reliability("A7")
def test_probe_never_imports_stdlib_wave(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(rw.wav_bytes(np.zeros(10), 8000))
    code = (
        "import sys\n"
        "from fieldkit.io.audio.probe import probe\n"
        "import fieldkit.io.riff.chunks, fieldkit.io.recorders\n"
        f"probe({str(path)!r})\n"
        "assert 'wave' not in sys.modules, 'stdlib wave was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the shared corpus: every broken file, then good files with known answers ------------

BROKEN = [
    ("sonicscrewdriver/EMPTY.WAV", "quarantined", "empty"),
    ("wavefile-rb/empty.wav", "quarantined", "empty"),
    ("opensoundscape/empty_2c.wav", "quarantined", "header_only"),
    ("wavefile-rb/bad_riff_header.wav", "quarantined", "not_audio"),
    ("wavefile-rb/bad_wavefile_format.wav", "quarantined", "not_audio"),
    ("wavefile-rb/incomplete_riff_header.wav", "quarantined", "stub"),
    ("wavefile-rb/riff_chunk_has_no_child_chunks.wav", "quarantined", "stub"),
    ("wavefile-rb/no_data_chunk.wav", "quarantined", "stub"),
    ("scipy/test-44100Hz-le-1ch-4bytes-incomplete-chunk.wav", "quarantined", "stub"),
    ("wavefile-rb/data_chunk_has_incomplete_chunk_size.wav", "quarantined", "header_only"),
    ("scipy/test-44100Hz-le-1ch-4bytes-early-eof-no-data.wav", "quarantined", "header_only"),
    ("wavefile-rb/empty_format_chunk.wav", "quarantined", "unreadable"),
    ("wavefile-rb/insufficient_format_chunk.wav", "quarantined", "unreadable"),
    ("wavefile-rb/extensible_format_chunk_extension_truncated.wav", "quarantined", "unreadable"),
    ("wavefile-rb/float_format_chunk_oversized_extension_too_large.wav", "quarantined", "unreadable"),
    ("wavefile-rb/format_chunk_after_data_chunk.wav", "quarantined", "unreadable"),
    ("hound/crash-24728523ef4be15c838293b676f6853e73723bf4.wav", "quarantined", "unreadable"),
    ("hound/crash-e5471f5b58397287b509db7d026e95f1724454f5.wav", "quarantined", "unreadable"),
    ("hound/oom-48ae4cd061ff8578ad3f23dc87624bd365cf5216.wav", "quarantined", "unreadable"),
    ("wavefile-rb/data_chunk_truncated.wav", "truncated", None),
    ("scipy/test-44100Hz-le-1ch-4bytes-early-eof.wav", "truncated", None),
    ("wavefile-rb/smpl_chunk_truncated.wav", "ok", None),
    ("scipy/test-8000Hz-le-3ch-5S-24bit-inconsistent.wav", "ok", None),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("relative", "status", "reason"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_shared_files(shared, relative, status, reason):
    facts = probe(shared(relative))
    assert (facts.status, facts.reason) == (status, reason)
    if status != "ok":
        assert facts.messages and all(m.startswith(shared(relative).name) for m in facts.messages)


@pytest.mark.shared_data
def test_truncated_shared_counts(shared):
    facts = probe(shared("wavefile-rb/data_chunk_truncated.wav"))
    assert (facts.frames_declared, facts.frames_present) == (100_000, 2240)
    facts = probe(shared("scipy/test-44100Hz-le-1ch-4bytes-early-eof.wav"))
    assert (facts.frames_declared, facts.frames_present) == (4410, 236)


# path, format, rate, channels, bits, subtype, frames, clipped
GOOD = [
    ("opensoundscape/1min.wav", "wav", 32000, 1, 16, "PCM_16", 1_920_000, 0),
    ("opensoundscape/stereo.wav", "wav", 44100, 2, 32, "FLOAT", 5, 5),
    ("birdnet-analyzer/soundscape.wav", "wav", 16000, 1, 16, "PCM_16", 160_000, 1),
    ("avianz/Wb_Thunder_200.wav", "wav", 8000, 1, 16, "PCM_16", 80_000, 572),
    ("avianz/Wb_k800.wav", "wav", 8000, 1, 16, "PCM_16", 80_000, 131),
    ("wavinfo/A101_1_1.WAV", "wav", 48000, 1, 24, "PCM_24", 240_239, 0),
    ("wavinfo/izotoperx_cues_test.wav", "wav", 48000, 1, 32, "FLOAT", 48_000, 0),
    ("wavinfo/wavinfo Test Project - Audio - 5.1.wav", "wav", 48000, 6, 24, "PCM_24", 48_000, 0),
    ("hound/waveformatextensible-24bit-192kHz-mono.wav", "wav", 192000, 1, 24, "PCM_24", 4, 0),
    ("scipy/test-44100Hz-2ch-32bit-float-be.wav", "wav", 44100, 2, 32, "FLOAT", 441, 0),
    ("scipy/test-44100Hz-le-1ch-4bytes-rf64.wav", "rf64", 44100, 1, 32, "PCM_32", 4410, 0),
    ("scipy/test-48000Hz-2ch-64bit-float-le-wavex.wav", "wav", 48000, 2, 64, "DOUBLE", 480, 0),
    ("scipy/test-8000Hz-le-1ch-1byte-ulaw.wav", "wav", 8000, 1, 8, "ULAW", 9, 0),
    ("scipy/test-8000Hz-le-2ch-1byteu.wav", "wav", 8000, 2, 8, "PCM_U8", 800, 0),
    ("scipy/test-1234Hz-le-1ch-10S-20bit-extra.wav", "wav", 1234, 1, 20, "PCM_24", 10, 1),
    ("librosa-data/glacier-bay-humpback.ogg", "ogg", 22050, 1, None, "VORBIS", 1_429_039, 0),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("row", GOOD, ids=[g[0] for g in GOOD])
def test_good_shared_files(shared, row):
    relative, fmt, rate, channels, bits, subtype, frames, clipped = row
    facts = probe(shared(relative))
    assert facts.status == "ok" and facts.reason is None
    assert (facts.detected_format, facts.sample_rate_hz, facts.channels, facts.bit_depth, facts.subtype) == (
        fmt, rate, channels, bits, subtype)
    assert facts.frames_present == frames and facts.qc.frames_analysed == frames
    assert facts.duration_s == pytest.approx(frames / rate)
    assert facts.qc.clipped_samples == clipped
