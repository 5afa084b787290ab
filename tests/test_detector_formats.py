"""Detector and tool formats in and out: BirdNET, OpenSoundscape, Kaleidoscope, GUANO; Raven,
Audacity and OpenSoundscape written back; every format round-trips through a real workspace.

Where each layout comes from (the tests write the tables exactly as these sources do):

- BirdNET-Analyzer, ``birdnet_analyzer/analyze.py``
  (https://github.com/kahst/BirdNET-Analyzer/blob/main/birdnet_analyzer/analyze.py):
  ``RAVEN_TABLE_HEADER = "Selection\\tView\\tChannel\\tBegin Time (s)\\tEnd Time (s)\\tLow Freq (Hz)
  \\tHigh Freq (Hz)\\tCommon Name\\tSpecies Code\\tConfidence\\tBegin Path\\tFile Offset (s)"``, rows
  ``f"{id}\\tSpectrogram 1\\t1\\t{start}\\t{end}\\t{low}\\t{high}\\t{common}\\t{code}\\t{conf:.4f}\\t
  {afile_path}\\t{start}"``, a ``nocall``/``nocall`` placeholder row for a file without detections;
  ``CSV_HEADER = "Start (s),End (s),Scientific name,Common name,Confidence,File"``;
  ``KALEIDOSCOPE_HEADER = "INDIR,FOLDER,IN FILE,OFFSET,DURATION,scientific_name,common_name,
  confidence,lat,lon,week,overlap,sensitivity"``.
- Wildlife Acoustics Kaleidoscope ``id.csv``: the columns ``INDIR, OUTDIR, FOLDER, IN FILE,
  CHANNEL, OFFSET, DURATION, OUT FILE FS, OUT FILE ZC, DATE, TIME, HOUR, ..., AUTO ID*, PULSES,
  MATCH RATIO, MARGIN, ALTERNATE 1, ALTERNATE 2, ..., MANUAL ID`` as BirdNET's
  ``KALEIDOSCOPE_HEADER`` above imitates them (INDIR, FOLDER, IN FILE, OFFSET, DURATION) and as
  public analysis scripts read real files (``IdTable$`AUTO ID*```, ``$`MATCH RATIO```,
  ``$`IN FILE```, ``coalesce(`MANUAL ID`, ...)``). Wildlife Acoustics' own user guide was not in the
  references available here, so CHANNEL being 0-based (0 = the first channel) is an assumption.
- OpenSoundscape ``opensoundscape/annotations.py``
  (https://github.com/kitzeslab/opensoundscape/blob/master/opensoundscape/annotations.py):
  ``BoxedAnnotations.clip_labels()`` returns a one-hot frame indexed by
  ``(file, start_time, end_time)`` with one column per class (``to_csv`` writes that index as the
  first three columns); ``CNN.predict()`` returns the same layout with scores.
- GUANO specification v1.0 (https://github.com/riggsd/guano-py/blob/master/doc/guano_specification.md):
  ``Species Auto ID`` / ``Species Manual ID``, "optional, list of strings ... a comma-separated list
  of values", the example ``Species Auto ID:  MYLU`` / ``Species Manual ID:  Myosod``; real files: ``../shared/data/batdetect2/Echometer.wav``
  (Echo Meter Touch 2: both PIPPIP), ``../shared/data/birdnet-analyzer/ANPA-103486.wav`` (NABat:
  manual ANPA).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fieldkit.catalogue import labels as label_rows
from fieldkit.cli import app
from fieldkit.errors import EXIT_DATAERR, EXIT_OK
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.io.annotations.readers import (
    AnnotationError,
    ReadOptions,
    UnknownLayoutError,
    read_annotations,
    sniff_format,
)
from fieldkit.io.annotations.writers import OutAnnotation, write_annotations
from fieldkit.workspace import init_workspace, open_workspace

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CARD = REPO / "fieldkit" / "data" / "sample_card"
SAMPLE_ANNOTATIONS = REPO / "fieldkit" / "data" / "sample_annotations"
runner = CliRunner()

RAVEN_BIRDNET_HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)"
                        "\tCommon Name\tSpecies Code\tConfidence\tBegin Path\tFile Offset (s)")


def birdnet_raven(path: str, rows: list[tuple[float, float, str, str, float]]) -> str:
    """A BirdNET-Analyzer selection table for one file, written as generate_raven_table does."""
    lines = [RAVEN_BIRDNET_HEADER]
    for n, (start, end, common, code, conf) in enumerate(rows, 1):
        lines.append(f"{n}\tSpectrogram 1\t1\t{start}\t{end}\t0\t15000\t{common}\t{code}\t{conf:.4f}\t{path}\t{start}")
    if not rows:
        lines.append(f"1\tSpectrogram 1\t1\t0\t3\t0\t15000\tnocall\tnocall\t1.0\t{path}\t0")
    return "\n".join(lines) + "\n"


BIRDNET_CSV = """Start (s),End (s),Scientific name,Common name,Confidence,File
0.0,3.0,Turdus merula,Eurasian Blackbird,0.9731,/mnt/sd/birds_10s.wav
3.0,6.0,Erithacus rubecula,European Robin,0.4120,/mnt/sd/birds_10s.wav
6.0,9.0,Turdus merula,Eurasian Blackbird,0.1520,/mnt/sd/birds_10s.wav
"""
KALEIDOSCOPE_ID_CSV = (
    "INDIR,OUTDIR,FOLDER,IN FILE,CHANNEL,OFFSET,DURATION,OUT FILE FS,OUT FILE ZC,DATE,TIME,HOUR,"
    "AUTO ID*,PULSES,MATCH RATIO,MARGIN,ALTERNATE 1,ALTERNATE 2,MANUAL ID\n"
    "E:\\night1,E:\\out,,rugr_drum.wav,0,1.5,2.25,,,2020-04-04,22:01:00,22,BONUMB,12,0.8,0.1,,,\n"
    "E:\\night1,E:\\out,,rugr_drum.wav,0,4.0,3.5,,,2020-04-04,22:01:00,22,BONUMB,9,0.5,0.2,,,ruffed grouse\n")
BIRDNET_KALEIDOSCOPE = (
    "INDIR,FOLDER,IN FILE,OFFSET,DURATION,scientific_name,common_name,confidence,lat,lon,week,overlap,sensitivity\n"
    "/mnt,sd,birds_10s.wav,0.0,3.0,Turdus merula,Eurasian Blackbird,0.8000,-1.0000,-1.0000,-1,0.0,1.0\n")
OPSO_ONE_HOT = ("file,start_time,end_time,EATO,WOTH\n"
                "birds_10s.wav,0.0,5.0,1,0\nbirds_10s.wav,5.0,10.0,1,1\nrugr_drum.wav,0.0,5.0,0,0\n")
OPSO_SCORES = ("file,start_time,end_time,EATO,WOTH\n"
               "birds_10s.wav,0.0,5.0,2.31,-4.2\nbirds_10s.wav,5.0,10.0,0.05,1.7\n")


# -- readers, on the documented layouts -------------------------------------------------------------

def test_birdnet_raven_table_labels_scores_paths_and_placeholder():
    text = birdnet_raven("/home/me/BirdNET/birds_10s.wav",
                         [(0.0, 3.0, "Eurasian Blackbird", "eurbla", 0.81234), (3.0, 6.0, "Great Tit", "gretit1", 0.3)])
    assert sniff_format(text) == "raven"
    frame, _ = read_annotations(text, "raven")
    assert frame["label"].tolist() == ["Eurasian Blackbird", "Great Tit"]
    assert frame["confidence"].tolist() == [0.8123, 0.3] and frame["confidence"].dtype == "float64"
    assert set(frame["file_ref"]) == {"/home/me/BirdNET/birds_10s.wav"}
    codes, _ = read_annotations(text, "raven", ReadOptions(label_column="Species Code", min_confidence=0.5))
    assert codes["label"].tolist() == ["eurbla"] and codes.attrs["below_confidence"] == 1
    empty, _ = read_annotations(birdnet_raven("/x/quiet.wav", []), "raven")
    assert empty.empty  # BirdNET's nocall placeholder is no event


def test_birdnet_csv_and_min_confidence():
    assert sniff_format(BIRDNET_CSV) == "birdnet-csv"
    frame, _ = read_annotations(BIRDNET_CSV, "birdnet-csv")
    assert frame["label"].tolist() == ["Eurasian Blackbird", "European Robin", "Eurasian Blackbird"]
    assert frame["confidence"].tolist() == [0.9731, 0.412, 0.152]
    kept, _ = read_annotations(BIRDNET_CSV, "birdnet-csv", ReadOptions(min_confidence=0.4,
                                                                      label_column="Scientific name"))
    assert kept["label"].tolist() == ["Turdus merula", "Erithacus rubecula"] and kept.attrs["below_confidence"] == 1


def test_min_confidence_on_a_table_without_scores_is_refused():
    with pytest.raises(AnnotationError, match="no confidence values"):
        read_annotations("onset_s,offset_s,label\n0,1,a\n", "csv", ReadOptions(min_confidence=0.5))


def test_kaleidoscope_id_csv_prefers_the_manual_id():
    assert sniff_format(KALEIDOSCOPE_ID_CSV) == "kaleidoscope"
    frame, _ = read_annotations(KALEIDOSCOPE_ID_CSV, "kaleidoscope")
    assert frame[["begin_s", "end_s"]].values.tolist() == [[1.5, 3.75], [4.0, 7.5]]
    assert frame["label"].tolist() == ["BONUMB", "ruffed grouse"]
    assert [e["label_source"] for e in frame["extra"]] == ["auto", "manual"]
    assert frame["channel"].tolist() == [1, 1]  # Kaleidoscope counts channels from 0
    birdnet, _ = read_annotations(BIRDNET_KALEIDOSCOPE, "kaleidoscope", ReadOptions(min_confidence=0.5))
    assert birdnet["label"].tolist() == ["Eurasian Blackbird"] and birdnet["confidence"].tolist() == [0.8]


def test_opensoundscape_one_hot_and_scores():
    assert sniff_format(OPSO_ONE_HOT) == "opensoundscape"
    frame, _ = read_annotations(OPSO_ONE_HOT, "opensoundscape")
    assert list(zip(frame["file_ref"], frame["begin_s"], frame["end_s"], frame["label"])) == [
        ("birds_10s.wav", 0.0, 5.0, "EATO"), ("birds_10s.wav", 5.0, 10.0, "EATO"),
        ("birds_10s.wav", 5.0, 10.0, "WOTH")]
    with pytest.raises(AnnotationError, match="scores, not 0/1") as err:
        read_annotations(OPSO_SCORES, "opensoundscape")
    assert "--min-confidence" in err.value.hint
    scored, _ = read_annotations(OPSO_SCORES, "opensoundscape", ReadOptions(min_confidence=1.0))
    assert list(zip(scored["begin_s"], scored["label"], scored["confidence"])) == [
        (0.0, "EATO", 2.31), (5.0, "WOTH", 1.7)]
    with pytest.raises(AnnotationError, match=r"line 2, class: not a 0/1 value or score: 'yes'"):
        read_annotations("file,start_time,end_time,A\nx.wav,0,1,yes\n", "opensoundscape")


def test_an_unknown_layout_names_the_columns_found_and_the_formats_expected():
    with pytest.raises(UnknownLayoutError) as err:
        sniff_format("when,what,where\n1,2,3\n", "detections.csv")
    message = str(err.value)
    assert "detections.csv" in message and "'when', 'what', 'where'" in message
    for name in ("raven", "birdnet-csv", "kaleidoscope", "opensoundscape", "csv", "audacity"):
        assert f"{name} (" in message


def test_sniffing_the_bundled_samples():
    formats = {p.name: sniff_format(p.read_text(encoding="utf-8")) for p in SAMPLE_ANNOTATIONS.iterdir()}
    assert formats == {"S4A03895_20190522_060000.csv": "csv", "birds_10s.Table.1.selections.txt": "raven",
                       "rugr_drum.txt": "audacity"}


# -- writers: each read back by its reader ------------------------------------------------------------

OUT = [OutAnnotation("birds_10s.wav", 0.1, 0.30000000000000004, "a b", 1500.0, 8000.0, 1, 0.25),
       OutAnnotation("birds_10s.wav", 2.0, 2.0, "point", None, 4000.5),
       OutAnnotation("rugr_drum.wav", 1.0 / 3.0, 9.0, "drum")]


@pytest.mark.parametrize("fmt,reader", [("raven", "raven"), ("audacity", "audacity"),
                                        ("opensoundscape", "opensoundscape")])
def test_each_writer_reads_back_exactly(tmp_path, fmt, reader):
    files = write_annotations(OUT, fmt, tmp_path)
    got = []
    for path in files:
        assert sniff_format(path.read_text(encoding="utf-8")) == reader
        frame, _ = read_annotations(path, reader)
        for r in frame.itertuples():
            name = r.file_ref or path.name.split(".")[0] + ".wav"
            got.append((name, r.begin_s, r.end_s, r.label, None if math.isnan(r.low_hz) else r.low_hz,
                        None if math.isnan(r.high_hz) else r.high_hz,
                        None if math.isnan(r.confidence) else r.confidence))
    with_band = fmt != "opensoundscape"
    want = [(a.file, a.begin_s, a.end_s, a.label, a.low_hz if with_band else None,
             a.high_hz if with_band else None, a.confidence if fmt == "raven" else None) for a in OUT]
    assert sorted(got, key=repr) == sorted(want, key=repr)


def test_scikit_maad_reads_the_audacity_export(tmp_path):
    """The format's other reader: scikit-maad's read_audacity_annot (label and frequency lines in pairs)."""
    from maad.util import read_audacity_annot

    for path in write_annotations(OUT, "audacity", tmp_path):
        ours, _ = read_annotations(path, "audacity")
        theirs = read_audacity_annot(str(path))
        assert theirs["label"].tolist() == ours["label"].tolist() and len(theirs) == len(ours) > 0
        np.testing.assert_allclose(theirs[["min_t", "max_t"]].to_numpy(), ours[["begin_s", "end_s"]].to_numpy(),
                                   rtol=1e-6)  # maad reads float32
        theirs_bands = theirs[["min_f", "max_f"]].to_numpy(dtype=np.float64)  # -1: an unknown edge
        np.testing.assert_allclose(np.where(theirs_bands == -1, np.nan, theirs_bands),
                                   ours[["low_hz", "high_hz"]].to_numpy(), rtol=1e-6)


# -- through a real workspace: import, export, import again ---------------------------------------

@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """A workspace with the bundled sample card ingested (copied per test: tests import into it)."""
    root = tmp_path_factory.mktemp("detector-formats") / "ws"
    with init_workspace(root) as ws:
        ingest_card(ws, IngestRequest(SAMPLE_CARD, "Wood", "N1", timezone="+00:00", card_id="sample"))
    return root


@pytest.fixture
def ws_root(ingested, tmp_path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(ingested, target, symlinks=True)
    return target


def cli(ws_root: Path, *args: str) -> dict:
    result = runner.invoke(app, ["--workspace", str(ws_root), *args, "--json"])
    assert "Traceback" not in result.output
    return {**json.loads(result.stdout), "exit_code": result.exit_code}


def annotations(ws_root: Path, sources: set[str] | None = None, under: Path | None = None) -> list[tuple]:
    """(recording, begin, end, label, low, high, confidence) of the annotations from some files."""
    with open_workspace(ws_root) as ws, ws.catalogue.read() as s:
        rows = label_rows.annotations_out(s)
    picked = [r for r in rows if (sources is None or r.source_file in sources)
              and (under is None or Path(r.source_file).is_relative_to(under))]
    return sorted((r.recording_id, r.begin_s, r.end_s, r.label, r.low_hz, r.high_hz, r.confidence) for r in picked)


@pytest.mark.parametrize("fmt", ["raven", "audacity", "opensoundscape"])
def test_export_then_import_gives_the_same_annotations(ws_root, tmp_path, fmt):
    files = sorted(SAMPLE_ANNOTATIONS.iterdir())
    done = cli(ws_root, "annotations", "import", *map(str, files))
    assert done["exit_code"] == EXIT_OK and done["imported"] == 3, done
    before = annotations(ws_root, {str(f.resolve()) for f in files})
    out = tmp_path / f"out-{fmt}"
    exported = cli(ws_root, "annotations", "export", "--format", fmt, "--out", str(out))
    assert exported["exit_code"] == EXIT_OK and exported["annotations"] == len(before) == 3, exported
    assert sorted(p.name for p in out.iterdir()) == sorted(exported["files"])
    again = cli(ws_root, "annotations", "import", *(str(out / f) for f in exported["files"]))
    assert again["exit_code"] == EXIT_OK and again["imported"] == 3, again
    after = annotations(ws_root, under=out.resolve())
    if fmt == "opensoundscape":  # the one-hot layout has no frequency band
        before = [(*row[:4], None, None, row[6]) for row in before]
    assert after == before


FOREIGN = [  # name, file name, text, import options, events (file, begin, end, label, confidence)
    ("birdnet-raven", "birds_10s.BirdNET.selection.table.txt",
     birdnet_raven("C:\\Users\\me\\card\\birds_10s.wav", [(0.0, 3.0, "Eurasian Blackbird", "eurbla", 0.91),
                                                          (3.0, 6.0, "Great Tit", "gretit1", 0.2)]),
     ["--min-confidence", "0.5"], [("birds_10s.wav", 0.0, 3.0, "Eurasian Blackbird", 0.91)]),
    ("birdnet-csv", "birds_10s.BirdNET.results.csv", BIRDNET_CSV, [],
     [("birds_10s.wav", 0.0, 3.0, "Eurasian Blackbird", 0.9731), ("birds_10s.wav", 3.0, 6.0, "European Robin", 0.412),
      ("birds_10s.wav", 6.0, 9.0, "Eurasian Blackbird", 0.152)]),
    ("kaleidoscope", "id.csv", KALEIDOSCOPE_ID_CSV, [],
     [("rugr_drum.wav", 1.5, 3.75, "BONUMB", None), ("rugr_drum.wav", 4.0, 7.5, "ruffed grouse", None)]),
    ("opensoundscape", "clip_labels.csv", OPSO_ONE_HOT, [],
     [("birds_10s.wav", 0.0, 5.0, "EATO", None), ("birds_10s.wav", 5.0, 10.0, "EATO", None),
      ("birds_10s.wav", 5.0, 10.0, "WOTH", None)]),
]


@pytest.mark.parametrize("name,filename,text,options,events", FOREIGN, ids=[f[0] for f in FOREIGN])
def test_detector_output_imports_and_round_trips(ws_root, tmp_path, name, filename, text, options, events):
    table = tmp_path / "in" / filename
    table.parent.mkdir()
    table.write_text(text, encoding="utf-8")
    done = cli(ws_root, "annotations", "import", str(table), *options)
    assert done["exit_code"] == EXIT_OK and done["imported"] == len(events), done
    with open_workspace(ws_root) as ws, ws.catalogue.read() as s:
        names = {r.id: Path(r.archive_path).name for r in label_rows.recordings_for_matching(s)}
    stored = annotations(ws_root, {str(table.resolve())})
    assert [(names[r[0]], r[1], r[2], r[3], r[6]) for r in stored] == sorted(events)
    # out again in the tool's own layout (Raven for the detectors, OpenSoundscape for itself)
    fmt = "opensoundscape" if name == "opensoundscape" else "raven"
    out = tmp_path / "out"
    cli(ws_root, "annotations", "export", "--format", fmt, "--out", str(out),
        "--labels", ",".join({e[3] for e in events}))
    back = []
    for path in sorted(out.iterdir()):
        frame, _ = read_annotations(path, fmt)
        back += [(Path(r.file_ref).name, r.begin_s, r.end_s, r.label,
                  None if math.isnan(r.confidence) else r.confidence) for r in frame.itertuples()]
    assert sorted(back, key=repr) == sorted(events, key=repr)


def test_an_opensoundscape_table_exported_is_the_table_imported(ws_root, tmp_path):
    table = tmp_path / "clip_labels.csv"
    table.write_text(OPSO_ONE_HOT.replace("rugr_drum.wav,0.0,5.0,0,0\n", ""), encoding="utf-8")
    assert cli(ws_root, "annotations", "import", str(table))["exit_code"] == EXIT_OK
    cli(ws_root, "annotations", "export", "--format", "opensoundscape", "--out", str(tmp_path / "out"))
    read = pd.read_csv(tmp_path / "out" / "labels.csv", index_col=[0, 1, 2])  # as OpenSoundscape reads it
    assert read.equals(pd.read_csv(table, index_col=[0, 1, 2]))


def test_a_reference_outside_the_folder_is_matched_by_name_and_never_opened(ws_root, tmp_path):
    table = tmp_path / "t.txt"
    table.write_text(birdnet_raven("/nonexistent/elsewhere/rugr_drum.wav", [(1.0, 4.0, "Ruffed Grouse", "rufgro", 0.7)]))
    done = cli(ws_root, "annotations", "import", str(table))
    assert done["exit_code"] == EXIT_OK and done["imported"] == 1
    table.write_text(birdnet_raven("/data/not-catalogued.wav", [(1.0, 4.0, "Ruffed Grouse", "rufgro", 0.7)]))
    refused = cli(ws_root, "annotations", "import", str(table))
    assert refused["exit_code"] == EXIT_DATAERR and "matches no recording" in refused["files"][0]["error"]
    table.write_text(birdnet_raven("../../etc/rugr_drum.wav", [(1.0, 4.0, "x", "x", 0.7)]))
    climbing = cli(ws_root, "annotations", "import", str(table))
    assert climbing["exit_code"] == EXIT_DATAERR and "climbs out" in climbing["files"][0]["error"]


def test_a_reference_by_sha256_prefix(ws_root, tmp_path):
    with open_workspace(ws_root) as ws, ws.catalogue.read() as s:
        rec = next(r for r in label_rows.recordings_for_matching(s) if r.archive_path.endswith("rugr_drum.wav"))
    table = tmp_path / "t.csv"
    table.write_text(f"Start (s),End (s),Scientific name,Common name,Confidence,File\n"
                     f"1.0,2.0,Bonasa umbellus,Ruffed Grouse,0.9,/store/{rec.sha256[:12]}.wav\n")
    done = cli(ws_root, "annotations", "import", str(table))
    assert done["exit_code"] == EXIT_OK and done["files"][0]["recordings"] == [rec.id], done


def test_unknown_layout_through_the_cli(ws_root, tmp_path):
    table = tmp_path / "mystery.csv"
    table.write_text("when,what\n1,2\n")
    done = cli(ws_root, "annotations", "import", str(table))
    assert done["exit_code"] == EXIT_DATAERR
    assert "'when', 'what'" in done["files"][0]["error"] and "opensoundscape" in done["files"][0]["error"]


def test_format_overrides_the_sniffed_layout(ws_root, tmp_path):
    table = tmp_path / "rugr_drum.csv"  # a plain CSV whose time columns happen to be BirdNET's names
    table.write_text("Start (s),End (s),label\n2.0,9.0,drum\n", encoding="utf-8")
    sniffed = cli(ws_root, "annotations", "import", str(table))
    assert sniffed["exit_code"] == EXIT_DATAERR and sniffed["files"][0]["format"] == "birdnet-csv"
    assert "columns found: 'Start (s)', 'End (s)', 'label'" in sniffed["files"][0]["error"]
    forced = cli(ws_root, "annotations", "import", str(table), "--format", "csv",
                 "--begin-column", "Start (s)", "--end-column", "End (s)")
    assert forced["exit_code"] == EXIT_OK and forced["imported"] == 1, forced


def test_guano_species_become_labels(tmp_path, shared_data):
    card = tmp_path / "card"
    card.mkdir()
    for rel in ("batdetect2/Echometer.wav", "birdnet-analyzer/ANPA-103486.wav", "opensoundscape/rugr_drum.wav"):
        shutil.copy(shared_data / rel, card / Path(rel).name)
    with init_workspace(tmp_path / "ws") as ws:
        ingest_card(ws, IngestRequest(card, "Bats", "B1", timezone="+00:00", card_id="bats"))
    done = cli(tmp_path / "ws", "annotations", "import", "--from-guano", "manual")
    assert done["exit_code"] == EXIT_OK and done["imported"] == 2, done
    with open_workspace(tmp_path / "ws") as ws, ws.catalogue.read() as s:
        got = {(Path(r.archive_path).name, r.label, r.begin_s, round(r.end_s, 3)) for r in label_rows.annotations_out(s)}
    assert got == {("Echometer.wav", "PIPPIP", 0.0, round(got_duration(tmp_path / "ws", "Echometer.wav"), 3)),
                   ("ANPA-103486.wav", "ANPA", 0.0, 7.004)}
    auto = cli(tmp_path / "ws", "annotations", "import", "--from-guano", "auto")  # ANPA has no Auto ID
    assert auto["imported"] == 1 and len(auto["files"][0]["recordings"]) == 1
    again = cli(tmp_path / "ws", "annotations", "import", "--from-guano", "manual")  # replaces, never doubles
    assert again["imported"] == 2
    with open_workspace(tmp_path / "ws") as ws, ws.catalogue.read() as s:
        assert len(label_rows.annotations_out(s)) == 3


def got_duration(ws_root: Path, name: str) -> float:
    with open_workspace(ws_root) as ws, ws.catalogue.read() as s:
        return next(r.duration_s for r in label_rows.recordings_for_matching(s) if r.archive_path.endswith(name))


def test_a_combined_birdnet_table_places_each_row_in_its_own_file(ws_root, tmp_path):
    """BirdNET's combine_raven_tables: Begin/End Time run on across files, File Offset (s) is in-file."""
    table = tmp_path / "BirdNET_SelectionTable.txt"
    table.write_text(RAVEN_BIRDNET_HEADER + "\n"
                     "1\tSpectrogram 1\t1\t3.0\t6.0\t0\t15000\tGreat Tit\tgretit1\t0.9\t/card/birds_10s.wav\t3.0\n"
                     "2\tSpectrogram 1\t1\t11.13\t14.13\t0\t15000\tRuffed Grouse\trufgro\t0.8\t/card/rugr_drum.wav\t1.0\n")
    done = cli(ws_root, "annotations", "import", str(table))
    assert done["exit_code"] == EXIT_OK and done["imported"] == 2
    with open_workspace(ws_root) as ws, ws.catalogue.read() as s:
        names = {r.id: Path(r.archive_path).name for r in label_rows.recordings_for_matching(s)}
    got = [(names[r[0]], r[1], round(r[2], 9), r[3]) for r in annotations(ws_root, {str(table.resolve())})]
    assert sorted(got) == [("birds_10s.wav", 3.0, 6.0, "Great Tit"), ("rugr_drum.wav", 1.0, 4.0, "Ruffed Grouse")]


def test_from_guano_takes_manual_auto_or_either(ws_root):
    done = cli(ws_root, "annotations", "import", "--from-guano", "sometimes")
    assert done["exit_code"] == 78 and "manual, auto, either" in done["error"]
    none = cli(ws_root, "annotations", "import", "--from-guano", "either")  # the sample card has no GUANO species
    assert none["exit_code"] == EXIT_OK and none["imported"] == 0


def test_a_guano_species_list_gives_one_label_each(tmp_path):
    """The specification's own example fields, with a comma-separated list (spec 1.0.0: multiple values)."""
    from fieldkit.testing import riffwriter as rw
    from fieldkit.testing.signals import tone

    text = rw.guano_text([("GUANO|Version", "  1.0"), ("Timestamp", "  2012-03-29T03:58:01+04:00"),
                          ("Species Auto ID", "  MYLU, EPFU"), ("Species Manual ID", "  Myosod")])
    card = tmp_path / "card"
    card.mkdir()
    (card / "d1000x.wav").write_bytes(rw.wav_bytes(tone(40000.0, 0.5, 500000), 500000, after=[rw.guan_chunk(text)]))
    with init_workspace(tmp_path / "ws") as ws:
        ingest_card(ws, IngestRequest(card, "Cave", "C1", timezone="+04:00", card_id="bat"))
    auto = cli(tmp_path / "ws", "annotations", "import", "--from-guano", "auto")
    manual = cli(tmp_path / "ws", "annotations", "import", "--from-guano", "manual")
    assert (auto["imported"], manual["imported"]) == (2, 1)
    with open_workspace(tmp_path / "ws") as ws, ws.catalogue.read() as s:
        assert sorted((r.label, r.begin_s, r.end_s) for r in label_rows.annotations_out(s)) == [
            ("EPFU", 0.0, 0.5), ("MYLU", 0.0, 0.5), ("Myosod", 0.0, 0.5)]
        species = label_rows.guano_species(s)  # the typed record (tests/pipeline/test_query_records.py)
    assert [(type(r).__name__, r.manual_id, r.auto_id) for r in species] == [
        ("RecordingSpecies", "Myosod", "MYLU, EPFU")]


def test_export_selects_and_refuses_clearly(ws_root, tmp_path):
    nothing = cli(ws_root, "annotations", "export", "--format", "raven", "--out", str(tmp_path / "none"))
    assert nothing["exit_code"] == 66 and "no annotations match" in nothing["error"]
    files = sorted(SAMPLE_ANNOTATIONS.iterdir())
    done = cli(ws_root, "annotations", "import", *map(str, files))
    one = done["files"][0]["recordings"][0]
    picked = cli(ws_root, "annotations", "export", "--format", "audacity", "--out", str(tmp_path / "one"),
                 "--recordings", str(one))
    assert picked["exit_code"] == EXIT_OK and (picked["annotations"], picked["recordings"]) == (1, 1)
    again = cli(ws_root, "annotations", "export", "--format", "audacity", "--out", str(tmp_path / "one"))
    assert again["exit_code"] == 73 and "not empty" in again["error"]
    replaced = cli(ws_root, "annotations", "export", "--format", "audacity", "--out", str(tmp_path / "one"),
                   "--overwrite")
    assert replaced["exit_code"] == EXIT_OK and replaced["annotations"] == 3
