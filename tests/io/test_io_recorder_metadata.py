"""read_recorder_metadata + reconcile_times + probe on real recorder files (expected-values table)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fieldkit.io.audio.probe import probe
from fieldkit.io.recorders import read_recorder_metadata
from fieldkit.io.riff.chunks import walk_riff, walk_riff_path
from fieldkit.model.times import reconcile_times
from fieldkit.testing import riffwriter as rw

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# path, deployment tz, expected metadata fields, start UTC, time source, (rate, channels, bits, frames)
TABLE = [
    ("opensoundscape/1min.wav", None,
     {"make": "Open Acoustic Devices", "model": "AudioMoth", "serial": "0FE081F80FE081F0", "gain": "2", "battery_v": 4.3},
     utc(2018, 5, 4, 9, 32), "audiomoth_comment", (32000, 1, 16, 1_920_000)),
    ("opensoundscape/metadata.wav", None,
     {"model": "AudioMoth", "serial": "24526B065D325963", "gain": "2", "battery_v": 4.7},
     utc(2020, 4, 4, 10, 25), "audiomoth_comment", (32000, 1, 16, 479_022)),
    ("opensoundscape/audiomoth_gps.wav", None,
     {"serial": "243B1F026488F56E", "gain": "medium", "battery_v": 3.8, "temperature_c": 12.8},
     utc(2024, 5, 28, 10), "audiomoth_comment", (48000, 1, 16, 95_999)),
    ("opensoundscape/LOCA_2021_09_24_652_3.wav", None, {"make": None},
     utc(2021, 9, 24, 6, 52), "opso", (22050, 1, 16, 22_050)),
    ("sonicscrewdriver/AUDIOMOTH.WAV", None,
     {"serial": "240435055C7B17DB", "gain": "medium", "battery_v": 4.1, "temperature_c": 5.8},
     utc(2021, 5, 1, 23, 32), "audiomoth_comment", (48000, 1, 16, 240_000)),
    ("batdetect2/AudiomothNoBatCalls.WAV", None,
     {"make": "Open Acoustic Devices", "model": "AudioMoth", "serial": "24E144055E080032",
          "firmware": "AudioMoth-Firmware-Basic (1.10.1)", "gain": "medium", "battery_v": 4.3, "temperature_c": 18.7},
     utc(2024, 9, 3, 18, 31, 30), "guano", (250000, 1, 16, 26_272)),
    ("batdetect2/0166_20240531_223911.wav", "+02:00",
     {"make": "BATLOGGER", "model": "S2", "serial": "22060166", "firmware": "1.1.0", "temperature_c": 15.4,
          "latitude_deg": 49.093119, "longitude_deg": 5.047867},
     utc(2024, 5, 31, 20, 39, 11), "guano", (312500, 1, 16, 1_260_544)),
    ("batdetect2/Echometer.wav", None,
     {"make": "Wildlife Acoustics", "model": "Echo Meter Touch 2 Standard Android", "serial": None,
          "firmware": "App 2.8.14", "latitude_deg": 50.7179417, "longitude_deg": -1.7611083},
     utc(2022, 8, 15, 20, 34, 14), "guano", (256000, 1, 16, 1_787_520)),
    ("birdnet-analyzer/ANPA-103486.wav", "-07:00",
     {"make": "Wildlife Acoustics", "model": "SMM-U1"},
     utc(2019, 8, 7, 6, 7, 49), "guano", (256000, 1, 16, 1_793_024)),
    ("batdetect2/20170701_213954-MYOMYS-LR_0_0.5.wav", "+01:00", {"make": None},
     utc(2017, 7, 1, 20, 39, 54), "filename", (500000, 1, 16, 250_000)),
    ("scikit-maad/S4A03895_20190522_060000.wav", "-05:00", {"make": None},
     utc(2019, 5, 22, 11), "filename", (22000, 1, 16, 220_000)),
    ("wavinfo/A101_1_1.WAV", "-08:00",
     {"make": "Sound Devices", "model": "702T", "serial": "GR1112089007"},
     utc(2018, 12, 31, 20, 40), "bext", (48000, 1, 24, 240_239)),
    ("wavinfo/A101_3.WAV", "-08:00", {"make": "Sound Devices", "model": "702T"},
     utc(2018, 12, 31, 20, 40, 6), "bext", (48000, 2, 24, 48_044)),
    ("wavinfo/Scene_1_2AG-T001_Tr1.WAV", "+00:00", {"make": "Zoom", "model": "F8"},
     utc(2019, 2, 13, 22, 40, 18), "bext", (48000, 1, 24, 528_000)),
    ("wavinfo/Sr001-2C-01_01.WAV", "+00:00", {"make": None},
     utc(2019, 1, 1, 13, 37, 40), "bext", (48000, 1, 24, 336_000)),
    ("hound/pro_tools_bext.wav", "+00:00", {"make": None},
     utc(2020, 12, 21, 20, 22, 14), "bext", (48000, 1, 24, 1)),
    ("hound/wav_agent_bext.wav", "+00:00", {"make": "Sound Devices"}, None, None, (44100, 1, 16, 1)),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_real_recorder_files(shared, row):
    relative, zone, fields, start, source, audio = row
    path = shared(relative)
    facts = probe(path)
    assert facts.status == "ok"
    assert (facts.sample_rate_hz, facts.channels, facts.bit_depth, facts.frames_present) == audio
    meta = read_recorder_metadata(path, path.name, facts.layout)
    for key, value in fields.items():
        assert getattr(meta, key) == value, key
    assert meta.chunk_ids == facts.layout.chunk_ids
    json.dumps(meta.to_dict())
    result = reconcile_times(meta.time_candidates, zone, now=NOW)
    assert (result.start_time_utc, result.time_source) == (start, source)
    assert "time_discrepancy" not in result.flags


@pytest.mark.shared_data
def test_echometer_keeps_conflicting_wamd(shared):
    path = shared("batdetect2/Echometer.wav")
    meta = read_recorder_metadata(path, path.name, walk_riff_path(path))
    assert meta.raw["wamd"]["longitude_deg"] == 1.76111  # sign lost by the app; GUANO wins
    assert meta.raw["guano"]["fields"]["Species Auto ID"] == "PIPPIP"
    assert {c.source for c in meta.time_candidates} == {"guano", "wamd", "filename"}


@pytest.mark.shared_data
@pytest.mark.reliability("B4")
def test_ixml_and_broken_ixml(shared):
    path = shared("wavinfo/A101_3.WAV")
    meta = read_recorder_metadata(path, path.name, walk_riff_path(path))
    assert meta.raw["ixml"]["fields"]["PROJECT"] == "BMH" and meta.raw["ixml"]["fields"]["SCENE"] == "A101"
    assert meta.raw["bext"]["description_fields"]["sTAKE"] == "3"
    broken = shared("hound/wav_agent_bext.wav")
    meta = read_recorder_metadata(broken, broken.name, walk_riff_path(broken))
    assert "ixml_broken" in meta.flags and any("iXML" in w for w in meta.warnings)


@pytest.mark.reliability("A2")
def test_header_only_audiomoth_still_gives_time_and_battery(tmp_path):
    comment = rw.audiomoth_comment("1.7.0", time=datetime(2024, 3, 1, 22, 0), utc_offset_minutes=600,
                                   battery_v=3.6, temperature_c=11.0)
    path = tmp_path / "20240301_220000.WAV"
    path.write_bytes(rw.audiomoth_header_only(comment))
    facts = probe(path)
    assert (facts.status, facts.reason) == ("quarantined", "header_only")
    meta = read_recorder_metadata(path, path.name, facts.layout)
    assert (meta.serial, meta.battery_v, meta.temperature_c) == ("24E144055E080032", 3.6, 11.0)
    result = reconcile_times(meta.time_candidates, None, now=NOW)
    assert result.start_time_utc == utc(2024, 3, 1, 12)
    assert result.candidates[1].offset_kind == "file"


def test_audiomoth_with_guano_from_a_file_object():
    comment = rw.audiomoth_comment("1.8.0", time=datetime(2024, 9, 3, 19, 31, 30), utc_offset_minutes=60)
    guano = rw.guano_text({"GUANO|Version": "1.0", "Make": "Open Acoustic Devices", "Model": "AudioMoth",
                           "Serial": "24E144055E080032", "Timestamp": "2024-09-03T19:31:30+01:00",
                           "OAD|Deployment ID": "0123456789ABCDEF", "Loc Position": "51.5 -0.12",
                           "Original Filename": "20240903_193130T.WAV"})
    guano += "" if len(guano) % 2 else "\n"  # odd length, as AudioMoth writes it (no pad byte)
    data = rw.audiomoth_wav(np.zeros(101), 48000, comment, guano=guano)
    layout = walk_riff(io.BytesIO(data), len(data))
    assert layout.chunks[-1].chunk_id == "guan" and layout.chunks[-1].odd_without_pad
    meta = read_recorder_metadata(io.BytesIO(data), "renamed.wav", layout)
    assert (meta.deployment_id, meta.latitude_deg, meta.longitude_deg) == ("0123456789ABCDEF", 51.5, -0.12)
    sources = [c.source for c in meta.time_candidates]
    assert sources == ["guano", "audiomoth_comment", "filename"]
    assert meta.time_candidates[2].note == "from GUANO Original Filename"


@pytest.mark.reliability("B5")
def test_hex_name_needs_audiomoth_identification(tmp_path):
    comment = "Recorded at 03:35:57 21/12/2017 by AudioMoth 0FE081F80FE081F0 at gain setting 2 while battery state was 4.3V"
    moth = rw.audiomoth_wav(np.zeros(10), 48000, comment, "0FE081F80FE081F0")
    layout = walk_riff(io.BytesIO(moth), len(moth))
    meta = read_recorder_metadata(io.BytesIO(moth), "5A3B2C1D.WAV", layout)
    result = reconcile_times(meta.time_candidates, None, now=NOW)
    assert [c.source for c in meta.time_candidates] == ["audiomoth_comment", "filename"]
    assert result.start_time_utc == utc(2017, 12, 21, 3, 35, 57) and result.max_discrepancy_s == 0
    plain = rw.wav_bytes(np.zeros(10), 48000)
    meta = read_recorder_metadata(io.BytesIO(plain), "5A3B2C1D.WAV", walk_riff(io.BytesIO(plain), len(plain)))
    assert meta.time_candidates == ()


@pytest.mark.reliability("B1")
def test_unparsed_comment_is_kept(tmp_path):
    data = rw.audiomoth_wav(np.zeros(10), 48000, "Registrato alle 10:00 del 01/01/2024")
    meta = read_recorder_metadata(io.BytesIO(data), "x.wav", walk_riff(io.BytesIO(data), len(data)))
    assert "metadata_unparsed" in meta.flags
    assert meta.raw["audiomoth_comment"]["raw"] == "Registrato alle 10:00 del 01/01/2024"
    assert meta.serial == "24E144055E080032"  # from IART


def test_non_riff_files_use_the_file_name_only():
    meta = read_recorder_metadata(io.BytesIO(b"fLaC"), "20191125T000000+1000_REC.flac", None)
    assert meta.chunk_ids == () and meta.time_candidates[0].utc_offset == timedelta(hours=10)
    result = reconcile_times(meta.time_candidates, None, now=NOW)
    assert result.start_time_utc == utc(2019, 11, 24, 14)
