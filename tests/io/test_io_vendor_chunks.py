"""wamd, bext, iXML and LIST/INFO parsers, and the sources registered for their chunks."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

import pytest

from fieldkit.errors import UnknownNameError
from fieldkit.io.recorders import registry
from fieldkit.io.recorders.bwf import originator_identity, parse_bext, parse_ixml
from fieldkit.io.recorders.info import parse_list_info
from fieldkit.io.recorders.wamd import parse_wamd, parse_wamd_gps
from fieldkit.testing import riffwriter as rw


def body(chunk: bytes) -> bytes:
    return chunk[8:8 + struct.unpack("<I", chunk[4:8])[0]]


@pytest.mark.reliability("B4")
def test_wamd_fields_unknown_ids_and_padding():
    data = body(rw.wamd_chunk([
        (0, struct.pack("<H", 2)), (1, "SM4BAT-FS\x00"), (2, "S4U01234"), (3, "2.2.1"),
        (5, "2014-04-02 22:59:14-05:00"), (6, "WGS84,40.1234,N,75.5678,W,120.5"),
        (15, struct.pack("<H", 10)), (17, b"\x01\x02\xff"), (42, b"\xde\xad"), (0xFFFF, b"\x00" * 4),
    ]))
    wamd = parse_wamd(data)
    assert wamd.fields["version"] == 2 and wamd.fields["model"] == "SM4BAT-FS"
    assert wamd.fields["serial"] == "S4U01234" and wamd.fields["time_expansion"] == 10
    assert wamd.fields["runstate"] == "0102ff" and wamd.fields["id_42"] == "dead"
    assert wamd.timestamp == datetime(2014, 4, 2, 22, 59, 14) and wamd.utc_offset == -timedelta(hours=5)
    assert (wamd.latitude_deg, wamd.longitude_deg, wamd.altitude_m) == (40.1234, -75.5678, 120.5)
    assert wamd.warnings == ()


def test_wamd_truncated_record_warns():
    wamd = parse_wamd(struct.pack("<HI", 1, 50) + b"short")
    assert wamd.fields["model"] == "short" and wamd.warnings


@pytest.mark.parametrize(
    ("text", "expected"),
    [("WGS84,50.7179417,1.76111,51.20000076293945", (50.7179417, 1.76111, 51.20000076293945)),
     ("WGS84, 33.5, S, 151.25, E", (-33.5, 151.25, None)),
     ("WGS84,-12.5,130.8", (-12.5, 130.8, None)), ("garbage", None)],
)
@pytest.mark.reliability("B4")
def test_wamd_gps_formats(text, expected):
    assert parse_wamd_gps(text) == expected


@pytest.mark.reliability("B4")
def test_bext_fields():
    data = body(rw.bext_chunk(
        description="sSPEED=023.976-ND\r\nsTAKE=1\r\nsTRK1=MKH516 A\r\n", originator="Sound Dev: 702T S#GR1112089007",
        originator_reference="USSDVGR1112089007", date="2018-12-31", time="12:40:06",
        time_reference=2_073_600_000, version=1, umid=b"\x01" * 64, coding_history="A=PCM,F=48000\r\n"))
    bext = parse_bext(data)
    assert bext.origination == datetime(2018, 12, 31, 12, 40, 6)
    assert bext.time_reference_samples == 2_073_600_000
    assert bext.description_fields == {"sSPEED": "023.976-ND", "sTAKE": "1", "sTRK1": "MKH516 A"}
    assert bext.umid == "01" * 64 and bext.coding_history.startswith("A=PCM")
    assert originator_identity(bext.originator) == ("Sound Devices", "702T", "GR1112089007")


def test_bext_odd_separators_short_and_bad_dates():
    assert parse_bext(body(rw.bext_chunk(date="2019:01:01", time="13:37:40"))).origination == datetime(2019, 1, 1, 13, 37, 40)
    assert parse_bext(body(rw.bext_chunk(date="2019-02-30", time="13:37:40"))).warnings
    assert parse_bext(b"too short").warnings
    assert parse_bext(body(rw.bext_chunk())).origination is None


IXML = """<?xml version="1.0" encoding="UTF-8"?>
<BWFXML><IXML_VERSION>1.5</IXML_VERSION><PROJECT>BMH</PROJECT><SCENE>A101</SCENE><TAKE>3</TAKE>
<TAPE>18Y12M31</TAPE><NOTE>wind</NOTE><FILE_SET><TOTAL_FILES>2</TOTAL_FILES>
<FAMILY_UID>USSDVGR1</FAMILY_UID><FILE_SET_INDEX>A</FILE_SET_INDEX></FILE_SET>
<TRACK_LIST><TRACK><NAME>MKH516 A</NAME></TRACK><TRACK><NAME>Boom</NAME></TRACK></TRACK_LIST></BWFXML>"""


def test_ixml_fields():
    ixml = parse_ixml(IXML.encode() + b"\x00\x00")
    assert ixml.fields["PROJECT"] == "BMH" and ixml.fields["TAKE"] == "3" and ixml.fields["NOTE"] == "wind"
    assert ixml.file_set == {"TOTAL_FILES": "2", "FAMILY_UID": "USSDVGR1", "FILE_SET_INDEX": "A"}
    assert ixml.track_names == ("MKH516 A", "Boom") and ixml.flags == ()


@pytest.mark.parametrize(
    "attack",
    ['<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><BWFXML>&b;</BWFXML>',
     '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><BWFXML>&e;</BWFXML>',
     '<?xml version="1.0"?><!DOCTYPE BWFXML SYSTEM "http://example.com/x.dtd"><BWFXML/>'],
)
@pytest.mark.reliability("B4")
def test_ixml_attacks_are_rejected_with_a_warning(attack):
    ixml = parse_ixml(attack.encode())
    assert ixml.flags == ("ixml_rejected",) and ixml.fields == {}


def test_broken_ixml_is_a_warning():
    ixml = parse_ixml(b"<BWFXML><PROJECT>x</BWFXML>")
    assert ixml.flags == ("ixml_broken",) and ixml.warnings


def test_list_info_odd_sizes_and_other_lists():
    data = body(rw.info_list(ICMT="odd!", IART="AudioMoth 24E144055E080032", ICRD="2010-12-28"))
    list_type, fields, warnings = parse_list_info(data)
    assert list_type == "INFO" and warnings == ()
    assert fields == {"ICMT": "odd!", "IART": "AudioMoth 24E144055E080032", "ICRD": "2010-12-28"}
    no_pad = b"INFO" + b"INAM" + struct.pack("<I", 3) + b"abc" + b"ISFT" + struct.pack("<I", 2) + b"xy"
    assert parse_list_info(no_pad)[1] == {"INAM": "abc", "ISFT": "xy"}
    assert parse_list_info(b"adtllabl")[1] == {}


def test_each_vendor_chunk_has_its_registered_source():
    assert set(registry.source_names()) >= {"guano", "info", "wamd", "bext", "ixml", "filename"}
    for name, chunk in (("wamd", "wamd"), ("bext", "bext"), ("ixml", "iXML"), ("info", "LIST")):
        assert registry.get_source(name).chunk_ids == (chunk,)
    with pytest.raises(UnknownNameError) as err:
        registry.get_source("zoom_f3")
    assert "zoom_f3" in str(err.value) and "guano" in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_source("wamd", ("wamd",))(lambda given: given)


# wamd timestamps share GUANO's parser, so Song Meter's one-digit hour offsets read the same way.
@pytest.mark.parametrize(("text", "offset"), [
    ("2020-10-17 13:05:00+1:00", timedelta(hours=1)), ("2020-10-17 13:05:00-5:00", -timedelta(hours=5)),
    ("2020-10-17 13:05:00+0530", timedelta(hours=5, minutes=30)), ("2020-10-17 13:05:00", None)])
def test_wamd_timestamp_offset_forms(text, offset):
    wamd = parse_wamd(body(rw.wamd_chunk([(0, struct.pack("<H", 2)), (5, text)])))
    assert (wamd.timestamp, wamd.utc_offset, wamd.warnings) == (datetime(2020, 10, 17, 13, 5), offset, ())


@pytest.mark.parametrize("zone", ["+15:00", "+1:0", "+05:60"])
def test_wamd_bad_offset_warns_and_keeps_local_time(zone):
    wamd = parse_wamd(body(rw.wamd_chunk([(0, struct.pack("<H", 2)), (5, f"2020-10-17 13:05:00{zone}")])))
    assert (wamd.timestamp, wamd.utc_offset) == (datetime(2020, 10, 17, 13, 5), None)
    assert len(wamd.warnings) == 1 and repr(zone) in wamd.warnings[0]
