"""AudioMoth comments of every firmware era, the opso wrapper and CONFIG.TXT."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.io.recorders.audiomoth import (
    parse_audiomoth_comment,
    parse_config_txt,
    parse_opso_metadata,
)
from fieldkit.testing import riffwriter as rw

H = timedelta(hours=1)

# Literal comments, one per era / wording (formats-and-faults §2.1, RELIABILITY B1).
LITERALS = [
    # 1.0: no zone, hex-name era, "< 3.6V"
    ("Recorded at 12:00:00 01/06/2017 by AudioMoth 0FE081F80FE081F0 at gain setting 2 while "
     "battery state was 4.3V",
     {"time": datetime(2017, 6, 1, 12), "utc_offset": timedelta(0), "zone_stated": False,
          "serial": "0FE081F80FE081F0", "gain": "2", "battery_v": 4.3, "era": "1.0"}),
    ("Recorded at 12:00:00 01/06/2017 by AudioMoth 0FE081F80FE081F0 at gain setting 4 while "
     "battery state was < 3.6V",
     {"battery_v": 3.6, "battery_qualifier": "<", "gain": "4"}),
    ("Recorded at 12:00:00 01/06/2017 by AudioMoth 0FE081F80FE081F0 at gain setting 1 while "
     "battery state was > 5.0V",
     {"battery_v": 5.0, "battery_qualifier": ">"}),
    # 1.0.1-1.1.0 (opensoundscape/1min.wav, 2018)
    ("Recorded at 09:32:00 04/05/2018 (UTC) by AudioMoth 0FE081F80FE081F0 at gain setting 2 "
     "while battery state was 4.3V",
     {"time": datetime(2018, 5, 4, 9, 32), "utc_offset": timedelta(0), "zone_stated": True,
          "era": "1.0.1-1.3.x"}),
    # 1.2.0: (UTC+N) / (UTC-N), trailing full stop
    ("Recorded at 10:25:00 04/04/2020 (UTC+10) by AudioMoth 24526B065D325963 at gain setting 2 "
     "while battery state was 4.7V.",
     {"utc_offset": 10 * H, "battery_v": 4.7}),
    ("Recorded at 22:00:00 01/11/2019 (UTC-5) by AudioMoth 24526B065D325963 at gain setting 3 "
     "while battery state was 3.9V.",
     {"utc_offset": -5 * H, "gain": "3"}),
    # 1.2.1: cancelled
    ("Recorded at 22:00:00 01/11/2019 (UTC) by AudioMoth 24526B065D325963 at gain setting 2 "
     "while battery state was 3.6V. Recording cancelled before completion due to low battery "
     "voltage.",
     {"stop_reason": "low battery voltage"}),
    # 1.2.2: fractional offsets
    ("Recorded at 05:30:00 15/10/2019 (UTC+5:30) by AudioMoth 24526B065D325963 at gain setting "
     "2 while battery state was 4.5V.",
     {"utc_offset": timedelta(hours=5, minutes=30)}),
    ("Recorded at 05:30:00 15/10/2019 (UTC-3:30) by AudioMoth 24526B065D325963 at gain setting "
     "2 while battery state was 4.5V.",
     {"utc_offset": -timedelta(hours=3, minutes=30)}),
    # 1.4.0 (sonicscrewdriver/AUDIOMOTH.WAV, 2021)
    ("Recorded at 23:32:00 01/05/2021 (UTC) by AudioMoth 240435055C7B17DB at medium gain "
     "setting while battery state was 4.1V and temperature was 5.8C.",
     {"gain": "medium", "battery_v": 4.1, "temperature_c": 5.8, "era": "1.4.0-1.5.x"}),
    ("Recorded at 23:32:00 01/05/2021 (UTC) by AudioMoth 240435055C7B17DB at low-medium gain "
     "setting while battery state was less than 2.5V and temperature was -3.2C.",
     {"gain": "low-medium", "battery_v": 2.5, "battery_qualifier": "<", "temperature_c": -3.2}),
    ("Recorded at 23:32:00 01/05/2021 (UTC) by AudioMoth 240435055C7B17DB at high gain setting "
     "while battery state was greater than 4.9V and temperature was 21.0C. Amplitude threshold "
     "was 128 with 2s minimum trigger duration.",
     {"battery_qualifier": ">", "gain": "high",
          "trigger_text": "Amplitude threshold was 128 with 2s minimum trigger duration"}),
    # 1.5.0: deployment ID and external microphone
    ("Recorded at 01:00:00 02/02/2021 (UTC+1) during deployment 0123456789ABCDEF using external "
     "microphone at medium gain setting while battery state was 4.2V and temperature was 18.9C.",
     {"deployment_id": "0123456789ABCDEF", "serial": None, "external_mic": True, "utc_offset": H}),
    # 1.6.0 (batdetect2/AudiomothNoBatCalls.WAV)
    ("Recorded at 19:31:30 03/09/2024 (UTC+1) by AudioMoth 24E144055E080032 at medium gain while "
     "battery was 4.3V and temperature was 18.7C. High-pass filter with frequency of 15.0kHz "
     "applied. Amplitude threshold was 4% with 5s minimum trigger duration.",
     {"time": datetime(2024, 9, 3, 19, 31, 30), "utc_offset": H, "serial": "24E144055E080032",
          "battery_v": 4.3, "temperature_c": 18.7, "era": "1.6.0+",
          "filter_text": "High-pass filter with frequency of 15.0kHz applied",
          "trigger_text": "Amplitude threshold was 4% with 5s minimum trigger duration"}),
    ("Recorded at 19:31:30 03/09/2024 (UTC) by AudioMoth 24E144055E080032 at medium gain while "
     "battery was 4.2V and temperature was 18.9C. Band-pass filter with frequencies of 1.0kHz "
     "and 10.0kHz applied.",
     {"filter_text": "Band-pass filter with frequencies of 1.0kHz and 10.0kHz applied"}),
    # 1.7.0: stop reasons
    ("Recorded at 03:00:00 12/03/2022 (UTC) by AudioMoth 24E144055E080032 at medium gain while "
     "battery was 3.6V and temperature was 10.0C. Recording stopped due to low voltage.",
     {"stop_reason": "low voltage"}),
    ("Recorded at 03:00:00 12/03/2022 (UTC) by AudioMoth 24E144055E080032 at medium gain while "
     "battery was 3.6V and temperature was 10.0C. Recording stopped due to switch position "
     "change.",
     {"stop_reason": "switch position change"}),
    # 1.8.0: frequency trigger
    ("Recorded at 03:00:00 12/06/2022 (UTC+2) by AudioMoth 24E144055E080032 at high gain while "
     "battery was 4.0V and temperature was 12.5C. Frequency trigger (48.0kHz and window length "
     "of 16 samples) threshold was 10% with 1s minimum trigger duration.",
     {"trigger_text": "Frequency trigger (48.0kHz and window length of 16 samples) threshold "
                       "was 10% with 1s minimum trigger duration"}),
]


@pytest.mark.parametrize(("comment", "expected"), LITERALS, ids=range(len(LITERALS)))
@pytest.mark.reliability("B1")
def test_literal_comments(comment, expected):
    parsed = parse_audiomoth_comment(comment + "\x00" * 20)
    assert parsed.parsed and parsed.flags == ()
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key


@pytest.mark.reliability("B1")
def test_unknown_wording_is_flagged_not_raised():
    parsed = parse_audiomoth_comment("Aufgenommen um 10:00 am 01.01.2024")
    assert not parsed.parsed and parsed.flags == ("metadata_unparsed",)
    assert parsed.raw == "Aufgenommen um 10:00 am 01.01.2024" and parsed.time is None


def test_unknown_trailing_sentence_is_kept():
    comment = ("Recorded at 03:00:00 12/03/2022 (UTC) by AudioMoth 24E144055E080032 at medium gain "
               "while battery was 3.6V and temperature was 10.0C. Sun was shining brightly.")
    parsed = parse_audiomoth_comment(comment)
    assert parsed.parsed and parsed.flags == ("metadata_partial",)
    assert parsed.unparsed_text == "Sun was shining brightly."
    assert parsed.battery_v == 3.6


def test_impossible_date_is_a_warning():
    parsed = parse_audiomoth_comment(
        "Recorded at 10:00:00 31/02/2020 (UTC) by AudioMoth 24526B065D325963 at gain setting 2 "
        "while battery state was 4.7V.")
    assert parsed.parsed and parsed.time is None and parsed.warnings


@pytest.mark.parametrize("zone", ["+15", "-14:30", "+5:60"])
def test_impossible_offset_is_a_warning_and_never_utc(zone):
    # Same rule as GUANO (#13): the local time is kept without an offset, the warning names it.
    parsed = parse_audiomoth_comment(
        f"Recorded at 22:00:00 01/11/2019 (UTC{zone}) by AudioMoth 24526B065D325963 at gain setting 3 "
        "while battery state was 3.9V.")
    assert (parsed.time, parsed.utc_offset) == (datetime(2019, 11, 1, 22), None)
    assert any(f"UTC{zone}" in w for w in parsed.warnings)


@settings(max_examples=200, deadline=None)
@given(
    era=st.sampled_from(rw.AUDIOMOTH_ERAS),
    when=st.datetimes(datetime(2015, 1, 1), datetime(2035, 1, 1)).map(lambda d: d.replace(microsecond=0)),
    offset_min=st.sampled_from([0, 60, -300, 330, -210, 600, 765]),
    gain=st.integers(0, 4),
    volts=st.sampled_from([2.6, 3.6, 4.2, 4.9]),
    bound=st.sampled_from([None, "low", "high"]),
    temp=st.floats(-30, 60).map(lambda t: round(t, 1)),
    deployment=st.booleans(),
    stop=st.sampled_from([None, "low voltage", "magnetic switch", "file size limit"]),
)
def test_writer_parser_round_trip(era, when, offset_min, gain, volts, bound, temp, deployment, stop):
    version = tuple(int(p) for p in era.split("."))
    comment = rw.audiomoth_comment(
        era, time=when, utc_offset_minutes=offset_min, gain=gain, battery_v=volts,
        battery_bound=bound, temperature_c=temp,
        deployment_id="0123456789ABCDEF" if deployment else None, stop_reason=stop)
    parsed = parse_audiomoth_comment(comment)
    assert parsed.parsed and parsed.flags == (), comment
    assert parsed.time == when
    expected_offset = timedelta(0) if version == (1, 0) else timedelta(minutes=offset_min)
    assert parsed.utc_offset == expected_offset
    if bound is None:
        assert parsed.battery_v == volts and parsed.battery_qualifier is None
    else:
        assert parsed.battery_qualifier == ("<" if bound == "low" else ">")
    if version >= (1, 4):
        assert parsed.temperature_c == temp
        assert parsed.gain == ("low", "low-medium", "medium", "medium-high", "high")[gain]
    else:
        assert parsed.gain == str(gain)
    if deployment and version >= (1, 5):
        assert (parsed.deployment_id, parsed.serial) == ("0123456789ABCDEF", None)
    else:
        assert parsed.serial == "24E144055E080032"
    assert parsed.stop_reason == (stop if version >= (1, 2, 1) else None)


def test_opso_wrapper():
    text = ('opso_metadata{"artist": "AudioMoth 243B1F026488F56E", "comment": "Recorded at '
            '10:00:00 28/05/2024 (UTC) by AudioMoth 243B1F026488F56E at medium gain while battery '
            'was 3.8V and temperature was 12.8C.", "recording_start_time": '
            '"2024-05-28T10:00:00+00:00"}\x00\x00')
    value, warnings = parse_opso_metadata(text)
    assert warnings == () and value["recording_start_time"] == "2024-05-28T10:00:00+00:00"
    assert parse_audiomoth_comment(value["comment"]).battery_v == 3.8
    assert parse_opso_metadata("opso_metadata{broken")[0] is None
    assert parse_opso_metadata("Recorded at ...") == (None, ())


def test_config_txt_crlf_and_placeholders():
    text = ("Device ID                       : 243B1F075C7B13FB\r\n"
            "Firmware                        : AudioMoth-Firmware-Basic (1.11.1)\r\n\r\n"
            "Time zone                       : UTC+5:30\r\n"
            "Sample rate (Hz)                : 48000\r\n"
            "Recording period 1              : 00:00 - 06:00 (UTC+5:30)\r\n"
            "Recording period 2              : 18:00 - 24:00 (UTC+5:30)\r\n"
            "Filter                          : -\r\n"
            "Earliest recording time         : ---------- --:--:--\r\n")
    config = parse_config_txt(text.encode("ascii"))
    assert config.device_id == "243B1F075C7B13FB"
    assert config.utc_offset == timedelta(hours=5, minutes=30)
    assert config.sample_rate_hz == 48000
    assert config.recording_periods == ("00:00 - 06:00 (UTC+5:30)", "18:00 - 24:00 (UTC+5:30)")
    assert config.fields["Filter"] == "-"


@pytest.mark.shared_data
def test_shared_config_txt(shared):
    config = parse_config_txt(shared("sonicscrewdriver/CONFIG.TXT").read_bytes())
    assert config.device_id == "243B1F075C7B13FB"
    assert config.firmware == "AudioMoth-Firmware-Basic (1.8.1)"
    assert (config.time_zone, config.utc_offset) == ("UTC", timedelta(0))
    assert (config.sample_rate_hz, config.gain) == (192000, "Medium")
    assert (config.sleep_duration_s, config.recording_duration_s) == (600, 300)
    assert config.recording_periods == ("00:00 - 24:00 (UTC)",)
    assert config.fields["Enable GPS time setting"] == "No" and config.warnings == ()
