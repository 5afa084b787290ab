"""Annotation readers on real Raven / Audacity / CSV files, per-row errors, G2 file references."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest

from fieldkit.errors import ConfigError, UnknownNameError, ValidationError
from fieldkit.io.annotations.readers import (
    COLUMNS,
    AnnotationError,
    FileRefError,
    ReadOptions,
    RowProblem,
    get_reader,
    labels_from_names,
    read_annotations,
    read_audacity,
    read_csv,
    read_raven,
    reader_names,
    resolve_file_ref,
)

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
RAVEN_HEADER = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)"


def data_file(rel: str) -> Path:
    """The permissive copy under tests/data when there is one, else ../shared/data."""
    for base in (TEST_DATA, SHARED_DATA):
        if (base / rel).is_file():
            return base / rel
    pytest.skip(f"{rel} is not present (tests/data or ../shared/data)")


# Counted from the files themselves (label lines, not views / frequency lines / headers).
REAL_FILES = [
    # path, format, rows, distinct labels
    ("opensoundscape/EmptyExample.Table.1.selections.txt", "raven", 0, 0),  # header only
    ("opensoundscape/raven_with_Annotation_col.txt", "raven", 1, 1),  # "Annotation", no final EOL
    ("crowsetta/raven-chronister-2021/Recording_1_Segment_02.Table.1.selections.txt", "raven", 6, 1),
    ("crowsetta/raven-chronister-2021/Recording_1_Segment_05.Table.1.selections.txt", "raven", 205, 6),
    ("crowsetta/raven-chronister-2021/Recording_1_Segment_12.Table.1.selections.txt", "raven", 221, 11),
    ("crowsetta/audacity-giraudon-2022/100_marron1_May_24_2016_62101389.audacity.txt", "audacity", 77, 23),
    ("crowsetta/audacity-giraudon-2022/101_marron1_May_24_2016_64441045.audacity.txt", "audacity", 48, 22),
    ("scikit-maad/spinetail.txt", "audacity", 18, 2),  # 36 lines: label + frequency line
    ("scikit-maad/cold_forest_daylight_label.txt", "audacity", 160, 8),  # 320 lines, 160 regions
    ("sonicscrewdriver/Audacity_labels.txt", "audacity", 2, 2),
    ("crowsetta/csv/birdsongrec_Bird0_Annotation.csv", "csv", 7652, 9),  # all 135 songs
    ("crowsetta/simple-csv-hmbg/HHL15-3___20150402_202543.csv", "csv", 11, 11),
    ("crowsetta/simple-csv-hmbg/NABB-STB17-2_20170313_184921.csv", "csv", 32, 10),
]


@pytest.mark.parametrize(("rel", "fmt", "rows", "n_labels"), REAL_FILES, ids=lambda v: str(v))
def test_real_files_give_the_right_rows(rel, fmt, rows, n_labels):
    frame, problems = read_annotations(data_file(rel), fmt)
    assert problems == []
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == rows
    assert frame["label"].nunique() == n_labels
    assert (frame["end_s"] >= frame["begin_s"]).all()
    assert frame["source_line"].is_unique


def test_opensoundscape_table_with_an_empty_species_is_reported_by_line():
    path = data_file("opensoundscape/MSD-0003_20180427_2minstart00.Table.1.selections.txt")
    with pytest.raises(AnnotationError) as caught:
        read_raven(path)
    assert caught.value.problems == [RowProblem(11, "label", "empty label")]
    assert str(caught.value) == (
        f"{path}: 1 bad row (line 11, label: empty label). "
        "Fix these rows, or pass --skip-bad-rows to import only the good ones."
    )
    frame = read_raven(path, ReadOptions(skip_bad_rows=True))
    assert len(frame) == 9 and frame.attrs["problems"] == caught.value.problems
    assert Counter(frame["label"]) == {"WOTH": 4, "EATO": 4, "LOWA": 1}
    # the mostly-empty annotator columns survive verbatim (opensoundscape#735)
    assert frame["extra"][0] == {"Selection": "1", "View": "Spectrogram 1", "distance": "",
                                 "type": ""}
    assert frame["channel"].tolist() == [1] * 9


def test_raven_crlf_table_values():
    frame = read_raven(data_file(
        "crowsetta/raven-chronister-2021/Recording_1_Segment_02.Table.1.selections.txt"))
    first = frame.iloc[0]
    assert (first.source_line, first.begin_s, first.end_s) == (2, 154.387792767, 154.911598217)
    assert (first.low_hz, first.high_hz, first.label) == (2878.2, 4049.0, "EATO")
    assert first.file_ref is None and math.isnan(first.file_offset_s)


def test_spinetail_frequency_lines_belong_to_the_label_above():
    frame = read_audacity(data_file("scikit-maad/spinetail.txt"))
    assert frame["source_line"].tolist()[:3] == [1, 3, 5]
    first = frame.iloc[0]
    assert (first.begin_s, first.end_s, first.label) == (0.101385, 0.367520, "SP")
    assert (first.low_hz, first.high_hz) == (6441.064453, 12296.577148)
    assert frame["low_hz"].notna().all() and frame["high_hz"].notna().all()
    assert set(frame["label"]) == {"SP", "CRER"}


def test_audacity_labels_with_spaces():
    frame = read_audacity(data_file("sonicscrewdriver/Audacity_labels.txt"))
    assert frame["label"].tolist() == ["Test Label 1", "Label"]
    assert frame["low_hz"].isna().all() and frame["extra"].tolist() == [{}, {}]


def test_bird0_csv_has_900_syllables_in_9_classes_for_the_20_songs_present():
    frame = read_csv(data_file("crowsetta/csv/birdsongrec_Bird0_Annotation.csv"))
    wave = SHARED_DATA / "crowsetta" / "birdsongrec" / "Bird0" / "Wave"
    if not wave.is_dir():
        pytest.skip("Bird0 audio is not present")
    present = frame[frame["file_ref"].isin({p.name for p in wave.glob("*.wav")})]
    assert len(present) == 900
    assert Counter(present["label"]) == {"0": 257, "5": 162, "6": 90, "2": 80, "8": 80,
                                         "1": 76, "3": 53, "4": 53, "7": 49}
    assert all(resolve_file_ref(ref, wave).is_file() for ref in present["file_ref"].unique())
    assert present["extra"].iloc[0]["annotation"] == "0"  # kept, not taken as the label
    with pytest.raises(FileRefError, match="no such file"):
        resolve_file_ref("134.wav", wave)  # held out: annotated, audio absent


def test_quoted_csv_labels_keep_their_commas():
    frame = read_csv(data_file("crowsetta/simple-csv-hmbg/HHL15-3___20150402_202543.csv"))
    assert "Common Pips, Noctule, P50 and Soprano Pip and social calls" in set(frame["label"])


# --- Raven details ---------------------------------------------------------------------------


def test_raven_keeps_one_row_per_selection_preferring_the_spectrogram_view():
    text = "\r\n".join([
        RAVEN_HEADER + "\tSpecies\t",
        "1\tWaveform 1\t1\t0.5\t1.0\t0\t0\tWOTH\t",
        "1\tSpectrogram 1\t1\t0.5\t1.0\t1200\t3000\tWOTH\t",
        "2\tSpectrogram 1\t1\t2.0\t2.5\t900\t4000\tEATO\t",
        "2\tWaveform 1\t1\t2.0\t2.5\t0\t0\tEATO\t",
        "3\tWaveform 1\t2\t4.0\t4.5\t0\t0\tTUTI\t",
    ]) + "\r\n"
    frame = read_raven(text)
    assert frame["source_line"].tolist() == [3, 4, 6]
    assert frame["low_hz"].tolist() == [1200, 900, 0]
    assert frame["channel"].tolist() == [1, 1, 2]


@pytest.mark.parametrize("column", ["Species", "species", "Annotation", "annotation", "label",
                                    "Label", "Call Type"])
def test_raven_label_column_aliases(column):
    frame = read_raven(f"{RAVEN_HEADER}\t{column}\n1\tSpectrogram 1\t1\t0\t1\t0\t100\tx\n")
    assert frame["label"].tolist() == ["x"]


def test_a_missing_label_column_lists_the_columns_and_the_option():
    text = f"{RAVEN_HEADER}\tSpp\n1\tSpectrogram 1\t1\t0\t1\t0\t100\tWOTH\n"
    with pytest.raises(AnnotationError) as caught:
        read_raven(text)
    message = str(caught.value)
    assert "no label column" in message and "'Spp'" in message and "'Begin Time (s)'" in message
    assert message.endswith("Name the column with --label-column NAME.")
    assert read_raven(text, ReadOptions(label_column="Spp"))["label"].tolist() == ["WOTH"]


def test_raven_file_columns_and_heterogeneous_extras():
    header = f"{RAVEN_HEADER}\tBegin File\tFile Offset (s)\tSpecies\tobserver\n"
    one = read_raven(header + "1\tSpectrogram 1\t1\t60\t61\t0\t9\tWave/a.wav\t3.5\tX\tLC\n")
    two = read_raven(f"{RAVEN_HEADER}\tSpecies\tconfidence\n1\tSpectrogram 1\t1\t0\t1\t0\t9\tY\t3\n")
    both = pd.concat([one, two], ignore_index=True)
    assert both["file_ref"].tolist() == ["Wave/a.wav", None]
    assert both["file_offset_s"].tolist()[0] == 3.5
    assert [sorted(e) for e in both["extra"]] == [["Selection", "View", "observer"], ["Selection", "View"]]
    assert both["confidence"].isna().tolist() == [True, False] and both["confidence"][1] == 3.0


def test_raven_reads_a_windows_1252_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(f"{RAVEN_HEADER}\tSpecies\n1\tSpectrogram 1\t1\t0\t1\t0\t9\tM\xe9sange\n"
                     .encode("cp1252"))
    assert read_raven(path)["label"].tolist() == ["Mésange"]


# --- Audacity and CSV details ----------------------------------------------------------------


def test_audacity_point_labels_and_undefined_frequency_edges():
    frame = read_audacity("1.5\t1.5\tclick\n\\\t-1\t8000\n2\t3\tsong\n")
    assert frame["begin_s"].tolist() == [1.5, 2.0] and frame["end_s"].tolist() == [1.5, 3.0]
    assert math.isnan(frame["low_hz"][0]) and frame["high_hz"][0] == 8000


@pytest.mark.parametrize("header", ["onset_s,offset_s,label", "begin_s,end_s,label",
                                    "start,end,label", "onset,offset,Label", "Start,End,species"])
def test_csv_column_aliases(header):
    frame = read_csv(f"{header}\n0.5,1.5,a\n2,3,b\n")
    assert frame[["begin_s", "end_s", "label"]].values.tolist() == [[0.5, 1.5, "a"], [2.0, 3.0, "b"]]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiter_is_sniffed(delimiter):
    text = delimiter.join(["file", "onset_s", "offset_s", "label"]) + "\n"
    text += delimiter.join(["a.wav", "0,5" if delimiter == ";" else "0.5", "1", "x y"]) + "\n"
    frame, problems = read_annotations(text, "csv", ReadOptions(skip_bad_rows=True))
    if delimiter == ";":  # a decimal comma is not a number: reported, never guessed
        assert problems == [RowProblem(2, "begin_s", "not a number: '0,5'")]
    else:
        assert frame["file_ref"].tolist() == ["a.wav"] and frame["label"].tolist() == ["x y"]


def test_csv_configured_columns_and_multi_line_records():
    text = 't0,t1,who,wav\n1,2,"two\nlines",x.wav\n3,4,c,y.wav\n'
    options = ReadOptions(begin_column="t0", end_column="t1", label_column="who",
                          file_column="wav")
    frame = read_csv(text, options)
    assert frame["source_line"].tolist() == [2, 4]
    assert frame["label"].tolist() == ["two\nlines", "c"]
    assert frame["file_ref"].tolist() == ["x.wav", "y.wav"]


def test_a_named_column_that_is_missing_is_an_error():
    with pytest.raises(AnnotationError, match="--file-column"):
        read_csv("onset_s,offset_s,label\n1,2,a\n", ReadOptions(file_column="wav"))


# --- malformed files: every bad row, with its line -------------------------------------------

MALFORMED_CSV = """onset_s,offset_s,label,low_hz
0.0,1.0,ok,100
-1.0,2.0,negative,
3.0,2.0,reversed,
abc,4.0,text,
5.0,6.0,,
7.0,,missing,
8.0,9.0,negative freq,-5
10.0,inf,infinite,
11.0,12.0,also ok,
"""


@pytest.mark.reliability("G2")
def test_every_bad_row_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(MALFORMED_CSV)
    with pytest.raises(AnnotationError) as caught:
        read_csv(path)
    assert caught.value.problems == [
        (3, "begin_s", "must be >= 0 (got -1.0)"),
        (4, "end_s", "end_s (2.0) is before begin_s (3.0)"),
        (5, "begin_s", "not a number: 'abc'"),
        (6, "label", "empty label"),
        (7, "end_s", "missing value"),
        (8, "low_hz", "must be >= 0 (got -5.0)"),
        (9, "end_s", "not a finite number: 'inf'"),
    ]
    assert isinstance(caught.value, ValidationError) and caught.value.exit_code == 65
    assert str(caught.value).startswith(f"{path}: 7 bad rows (line 3, begin_s: must be >= 0")


def test_skip_bad_rows_returns_the_good_rows_and_the_problems(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(MALFORMED_CSV)
    frame, problems = read_annotations(path, "csv", ReadOptions(skip_bad_rows=True))
    assert frame["label"].tolist() == ["ok", "also ok"]
    assert frame["source_line"].tolist() == [2, 10]
    assert [p.line for p in problems] == [3, 4, 5, 6, 7, 8, 9]


def test_malformed_audacity_and_raven_rows(tmp_path):
    audacity = tmp_path / "labels.txt"
    audacity.write_text("\\\t100\t200\n0\t1\tok\njunk\n2\tx\tbad\n3\t2.5\tback\n")
    with pytest.raises(AnnotationError) as caught:
        read_audacity(audacity)
    assert [(p.line, p.column) for p in caught.value.problems] == [
        (1, "low_hz"), (3, "end_s"), (4, "end_s"), (5, "end_s")]
    raven = tmp_path / "t.selections.txt"
    raven.write_text(f"{RAVEN_HEADER}\tSpecies\n1\tSpectrogram 1\tone\t0\t1\t-3\t9\tA\n")
    with pytest.raises(AnnotationError) as caught:
        read_raven(raven)
    assert caught.value.problems == [(2, "channel", "not a number: 'one'")]


def test_many_problems_are_summarised():
    text = "onset_s,offset_s,label\n" + "".join(f"{i},x,a\n" for i in range(25))
    message = str(pytest.raises(AnnotationError, read_csv, text).value)
    assert message.startswith("<text>: 25 bad rows (line 2, end_s: not a number: 'x';")
    assert "; and 15 more)." in message


# --- registry and options ----------------------------------------------------------------------


def test_readers_are_registered_by_name():
    assert reader_names() == ("audacity", "birdnet-csv", "csv", "kaleidoscope", "opensoundscape", "raven")
    assert get_reader("raven") is read_raven
    with pytest.raises(UnknownNameError) as caught:
        get_reader("textgrid")
    assert str(caught.value) == ("unknown annotation format 'textgrid'; known: audacity, birdnet-csv, csv, "
                                 "kaleidoscope, opensoundscape, raven.")


def test_read_options_round_trip():
    options = ReadOptions(label_column="Spp", skip_bad_rows=True, label_aliases=("a", "b"))
    assert ReadOptions.from_dict(options.to_dict()) == options
    assert ReadOptions.from_dict(ReadOptions().to_dict()) == ReadOptions()


# --- G2: file references resolve only inside the root ------------------------------------------

ESCAPES = [
    "../../etc/passwd", "a/../../x.wav", "..", "/etc/passwd", "//server/share/x.wav",
    "\\\\server\\share\\x.wav", "sub\\x.wav", "C:\\x.wav", "C:/x.wav", "file:///etc/passwd",
    "%2e%2e/x.wav", "%2E%2E%2Fx.wav", "a%2fb.wav", "%252e%252e/x.wav", "x.wav\x00.txt",
    "x.wav\nother.wav", "x\r.wav", "", "   ",
]


@pytest.mark.parametrize("ref", ESCAPES, ids=repr)
@pytest.mark.reliability("G2")
def test_every_escape_is_rejected_with_the_reference_named(tmp_path, ref):
    (tmp_path / "x.wav").write_bytes(b"")
    with pytest.raises(FileRefError) as caught:
        resolve_file_ref(ref, tmp_path, must_exist=False)
    assert caught.value.ref == ref and repr(ref) in str(caught.value)


@pytest.mark.reliability("G2")
def test_a_symlink_out_of_the_root_is_rejected(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (outside / "secret.wav").write_bytes(b"")
    os.symlink(outside, root / "link")
    with pytest.raises(FileRefError, match="outside"):
        resolve_file_ref("link/secret.wav", root)


def test_good_references_resolve_inside_the_root(tmp_path):
    (tmp_path / "Wave").mkdir()
    (tmp_path / "Wave" / "0 a.wav").write_bytes(b"")
    assert resolve_file_ref("Wave/0 a.wav", tmp_path) == (tmp_path / "Wave" / "0 a.wav").resolve()
    assert resolve_file_ref("./Wave/0 a.wav", tmp_path).name == "0 a.wav"
    assert resolve_file_ref("Wave/missing.wav", tmp_path, must_exist=False).parent.name == "Wave"
    with pytest.raises(FileRefError, match="no such file"):
        resolve_file_ref("Wave/missing.wav", tmp_path)


# --- labels from file names -------------------------------------------------------------------


def test_fsdd_digits_from_the_filename_prefix():
    folder = SHARED_DATA / "fsdd" / "recordings"
    if not folder.is_dir():
        pytest.skip("FSDD recordings are not present")
    names = sorted(p.name for p in folder.glob("*.wav"))
    labels = labels_from_names(names, r"^(?P<label>\d)_")
    assert labels.unmatched == [] and len(labels) == 600
    assert Counter(labels.values()) == {str(d): 60 for d in range(10)}
    assert labels["0_jackson_0.wav"] == "0"


def test_class_folders_and_unmatched_files_are_reported():
    paths = [PurePosixPath("WOTH/a.wav"), "EATO/b.wav", "loose.wav", PurePosixPath("x/WOTH/c.wav")]
    labels = labels_from_names(paths, r"(?P<label>[^/]+)/[^/]+$")
    assert dict(labels) == {"WOTH/a.wav": "WOTH", "EATO/b.wav": "EATO", "x/WOTH/c.wav": "WOTH"}
    assert labels.unmatched == ["loose.wav"]


@pytest.mark.parametrize(("pattern", "message"), [(r"^(\d)_", "no named group 'label'"),
                                                  (r"^(?P<label>\d_", "not a regular expression")])
def test_bad_label_patterns_are_config_errors(pattern, message):
    with pytest.raises(ConfigError, match=message):
        labels_from_names(["0_a.wav"], pattern)
