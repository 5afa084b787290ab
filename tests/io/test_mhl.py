"""ASC MHL manifests: C4 ids, generations, the chain, and crash safety, on real files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldkit.errors import IngestError, UnknownNameError, ValidationError
from fieldkit.io.manifests.mhl import (
    ASC_NS,
    CHAIN_FILENAME,
    DIRECTORY_NS,
    FIELDKIT_NS,
    C4Hasher,
    ChainLink,
    CreatorInfo,
    MhlEntry,
    append_to_chain,
    c4_file,
    c4_id,
    latest_hashes,
    list_manifests,
    manifest_name,
    next_sequence,
    read_chain,
    read_generation,
    verify_chain,
    write_generation,
)

C4_EMPTY = ("c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc"
            "1sFT")
C4_FOO = ("c45xZeXwMSpqXjpDumcHMA6mhoAmGHkUo7r9WmN2UgSEQzj9KjgseaQdkEJ11fGb5S1WEENcV3q8RFWwEeVpC7"
          "Fjk2")
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
T0 = datetime(2024, 5, 1, 6, 30, 15, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def creator(created: datetime = T0, **extra: str) -> CreatorInfo:
    return CreatorInfo(created=created, hostname="field-laptop", tool_version="0.1.0", **extra)


def entry(path: str, data: bytes, action: str = "original", **extra) -> MhlEntry:
    hashes = {"sha256": hashlib.sha256(data).hexdigest(), "c4": c4_id(data)}
    return MhlEntry(path, len(data), hashes, mtime=T0, action=action, **extra)


def write(folder: Path, entries, **kwargs) -> Path:
    kwargs = {"process": "transfer", "creator": creator(), "root_name": "CARD01", **kwargs}
    return write_generation(folder, entries=entries, **kwargs)


def make_writable(path: Path) -> None:
    path.chmod(0o644)


def _qualifier(namespace: str):
    return lambda tag: f"{{{namespace}}}{tag}"


# --- C4 -------------------------------------------------------------------------------------


def test_c4_known_vectors():
    assert c4_id(b"") == C4_EMPTY
    assert c4_id(b"foo") == C4_FOO
    assert len(C4_EMPTY) == len(C4_FOO) == 90


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=2000))
def test_c4_incremental_equals_one_shot_and_decodes_to_sha512(data, cut):
    hasher = C4Hasher()
    hasher.update(data[:cut])
    hasher.update(data[cut:])
    value = hasher.c4()
    assert value == c4_id(data)
    assert value.startswith("c4") and len(value) == 90 and set(value[2:]) <= set(BASE58)
    number = 0
    for digit in value[2:]:  # most significant digit first; leading '1's are zeros
        number = number * 58 + BASE58.index(digit)
    assert number.to_bytes(64, "big") == hashlib.sha512(data).digest()


def test_c4_file_streams_the_same_id(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one 1 MiB chunk
    (tmp_path / "f.bin").write_bytes(data)
    assert c4_file(tmp_path / "f.bin") == c4_id(data)


# --- writing and reading --------------------------------------------------------------------

_SEGMENT = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/\\\ufffe\uffff"),
    min_size=1, max_size=12,
).filter(lambda s: s not in (".", ".."))
_PATH = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)
_OFFSET = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m)))
_WHEN = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=_OFFSET)
_HEX = st.binary(min_size=8, max_size=32).map(bytes.hex)
_HASHES = st.fixed_dictionaries(
    {"sha256": _HEX}, optional={"c4": st.binary().map(c4_id), "md5": _HEX, "xxh64": _HEX})
_ENTRY = st.builds(
    MhlEntry, path=_PATH, size_bytes=st.integers(min_value=0, max_value=2**63), hashes=_HASHES,
    mtime=st.none() | _WHEN, action=st.sampled_from(["original", "verified", "failed"]),
    hashed_at=_WHEN,
)
_NOTE = st.none() | _SEGMENT.map(str.strip).filter(bool)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(_ENTRY, max_size=6), created=_WHEN, author=_NOTE, comment=_NOTE,
       process=st.sampled_from(["transfer", "in-place"]))
def test_write_read_round_trip(entries, created, author, comment, process):
    made = creator(created, author=author, comment=comment, location="Bialowieza")
    with tempfile.TemporaryDirectory() as folder:
        path = write_generation(folder, process=process, entries=entries, creator=made,
                                root_name="SD 07 ü")
        generation = read_generation(path)
    assert generation.entries == tuple(entries)
    assert generation.creator == made
    assert generation.process == process
    assert generation.sequence == 1


def test_hashdate_defaults_to_the_creation_date(tmp_path):
    path = write(tmp_path, [entry("a.wav", b"a")])
    assert read_generation(path).entries[0].hashed_at == T0


def test_entry_with_mixed_actions_reads_as_the_worst(tmp_path):
    manifest = tmp_path / "0001_X_2024-05-01_063015Z.mhl"
    manifest.write_text(textwrap.dedent(f"""\
        <hashlist version="2.0" xmlns="{ASC_NS}">
          <creatorinfo><creationdate>2024-05-01T06:30:15Z</creationdate>
            <hostname>h</hostname><tool version="1.1">ascmhl</tool></creatorinfo>
          <processinfo><process>in-place</process></processinfo>
          <hashes><hash><path size="3">a/b.wav</path>
            <xxh64 action="verified" hashdate="2024-05-01T06:30:15Z">0ea03b369a463d9d</xxh64>
            <md5 action="failed" hashdate="2024-05-01T06:31:00+00:00">900150983cd24fb0</md5>
          </hash></hashes>
        </hashlist>"""))
    (got,) = read_generation(manifest).entries
    assert got.action == "failed"
    assert got.hashes == {"xxh64": "0ea03b369a463d9d", "md5": "900150983cd24fb0"}
    assert got.hashed_at == datetime(2024, 5, 1, 6, 31, tzinfo=UTC)
    assert got.mtime is None and got.size_bytes == 3


@pytest.mark.parametrize(
    ("hash_xml", "message"),
    [
        ('<c4 hashdate="2024-05-01T06:30:15Z">c4x</c4>', "valid action"),
        ('<md5 action="done">ab</md5>', "valid action"),
        ('<md5 action="original" hashdate="2024-05-01T06:30:15">ab</md5>', "no UTC offset"),
    ],
)
def test_reader_is_strict_about_hash_attributes(tmp_path, hash_xml, message):
    manifest = tmp_path / "m.mhl"
    manifest.write_text(
        f'<hashlist version="2.0" xmlns="{ASC_NS}"><creatorinfo>'
        "<creationdate>2024-05-01T06:30:15Z</creationdate><hostname>h</hostname>"
        "<tool>t</tool></creatorinfo><processinfo><process>in-place</process></processinfo>"
        f'<hashes><hash><path size="1">a</path>{hash_xml}</hash></hashes></hashlist>')
    with pytest.raises(ValidationError, match=message):
        read_generation(manifest)


def test_reader_rejects_paths_outside_the_archive(tmp_path):
    manifest = write(tmp_path, [entry("x.wav", b"x")])
    evil = tmp_path / "evil.mhl"
    evil.write_bytes(manifest.read_bytes().replace(b">x.wav<", b">../../etc/passwd<"))
    with pytest.raises(ValidationError, match="clean relative POSIX path"):
        read_generation(evil)


def test_reader_refuses_entity_expansion(tmp_path):
    bomb = tmp_path / "bomb.mhl"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE h [<!ENTITY a "aaaa">]>'
                    f'<hashlist version="2.0" xmlns="{ASC_NS}">&a;</hashlist>')
    with pytest.raises(ValidationError, match="not well-formed, safe XML"):
        read_generation(bomb)


# --- XML shape ------------------------------------------------------------------------------


def test_manifest_is_well_formed_with_asc_and_extension_namespaces(tmp_path):
    only_sha = MhlEntry("b.wav", 1, {"sha256": "ab" * 32}, mtime=None)
    path = write(tmp_path, [entry("a b/é.wav", b"abc"), only_sha],
                 creator=creator(author="Ana", location="Plot 4", comment="dawn chorus"))
    root = ET.parse(path).getroot()
    q = _qualifier(ASC_NS)
    assert root.tag == q("hashlist") and root.get("version") == "2.0"
    info = root.find(q("creatorinfo"))
    order = ("creationdate", "hostname", "tool", "author", "location", "comment")
    assert [c.tag for c in info] == [q(t) for t in order]
    assert info.find(q("creationdate")).text == "2024-05-01T06:30:15+00:00"
    assert (info.find(q("tool")).text, info.find(q("tool")).get("version")) == ("fieldkit", "0.1.0")
    assert root.find(f"{q('processinfo')}/{q('process')}").text == "transfer"
    first, second = root.iterfind(f"{q('hashes')}/{q('hash')}")
    assert first.find(q("path")).attrib == {"size": "3", "lastmodificationdate": T0.isoformat()}
    c4 = first.find(q("c4"))
    assert c4.text == c4_id(b"abc")
    assert c4.attrib == {"action": "original", "hashdate": T0.isoformat()}
    sha = first.find(f"{q('metadata')}/{{{FIELDKIT_NS}}}sha256")
    assert sha.text == hashlib.sha256(b"abc").hexdigest() and sha.get("action") == "original"
    assert root.find(f".//{q('sha256')}") is None  # no SHA-256 inside the ASC namespace
    assert second.find(q("c4")) is None and second.find(q("md5")) is None
    assert "lastmodificationdate" not in second.find(q("path")).attrib


def test_chain_file_is_well_formed_in_the_directory_namespace(tmp_path):
    manifest = write(tmp_path, [entry("a.wav", b"a")])
    root = ET.parse(tmp_path / CHAIN_FILENAME).getroot()
    q = _qualifier(DIRECTORY_NS)
    assert root.tag == q("ascmhldirectory")
    (link,) = root.findall(q("hashlist"))
    assert link.get("sequencenr") == "1"
    assert link.find(q("path")).text == manifest.name
    assert link.find(q("c4")).text == c4_file(manifest)


# --- naming, sequence and immutability ------------------------------------------------------


def test_sequence_numbers_and_names(tmp_path):
    folder = tmp_path / "archive" / "mhl"
    east = datetime(2024, 5, 1, 16, 30, 15, tzinfo=timezone(timedelta(hours=10)))
    names = [write(folder, [entry("a.wav", b"a")], creator=creator(east)).name for _ in range(3)]
    assert names == [f"000{n}_CARD01_2024-05-01_063015Z.mhl" for n in (1, 2, 3)]
    assert write(folder, [], sequence=12).name == "0012_CARD01_2024-05-01_063015Z.mhl"
    assert next_sequence(folder) == 13
    assert [seq for seq, _ in list_manifests(folder)] == [1, 2, 3, 12]
    assert manifest_name(10_000, "R", T0) == "10000_R_2024-05-01_063015Z.mhl"


@pytest.mark.parametrize("root_name", ["", "a/b", ".hidden", "tab\there", "back\\slash"])
def test_root_name_must_fit_in_a_file_name(tmp_path, root_name):
    with pytest.raises(ValidationError, match="cannot be part of a manifest file name"):
        write(tmp_path, [], root_name=root_name)
    assert list(tmp_path.iterdir()) == []


def test_manifests_are_never_overwritten(tmp_path):
    squatter = tmp_path / manifest_name(1, "CARD01", T0)
    squatter.write_bytes(b"not mine")
    path = write(tmp_path, [entry("a.wav", b"a")])
    assert path.name == manifest_name(2, "CARD01", T0)
    with pytest.raises(IngestError, match="generation 1 already exists") as caught:
        write(tmp_path, [entry("a.wav", b"a")], sequence=1)
    assert str(caught.value) == (f"generation 1 already exists in {tmp_path}. Manifests are "
                                 "immutable; omit sequence to append a new one.")
    assert squatter.read_bytes() == b"not mine"
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []


@pytest.mark.reliability("D2")
def test_a_manifest_published_but_not_chained_is_chained_by_the_next_writer(tmp_path):
    """A writer stopped between linking its manifest and appending it to the chain (found by the
    D2 power-cut test): the next generation records it first, so the chain has no gap."""
    first = write(tmp_path, [entry("a.wav", b"a")])
    chain = tmp_path / CHAIN_FILENAME
    make_writable(chain)
    chain.unlink()  # as if the append never happened
    squatter = tmp_path / manifest_name(2, "CARD01", T0)
    squatter.write_bytes(b"not a manifest")  # not fieldkit's: never chained
    third = write(tmp_path, [entry("b.wav", b"b")])
    assert [(link.sequence, link.path) for link in read_chain(tmp_path)] == [(1, first.name), (3, third.name)]
    assert [problem for problem in verify_chain(tmp_path) if first.name in problem] == []


def test_a_sealed_manifest_is_read_only(tmp_path):
    path = write(tmp_path, [entry("a.wav", b"a")])
    assert path.stat().st_mode & 0o222 == 0


def test_failed_link_leaves_neither_manifest_nor_temp(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)  # as on a filesystem without hard links (exFAT)
    with pytest.raises(IngestError, match="must support hard links"):
        write(tmp_path, [entry("a.wav", b"a")])
    assert list(tmp_path.iterdir()) == []


CRASH_THEN_RESUME = """
import os, sys
from datetime import datetime, UTC
from fieldkit.io.manifests.mhl import CreatorInfo, MhlEntry, write_generation
made = CreatorInfo(datetime(2024, 5, 1, tzinfo=UTC), "h", "0.1.0")
if sys.argv[2] == "crash":
    os.link = lambda src, dst: os._exit(9)  # the process dies between temp write and link
write_generation(sys.argv[1], process="transfer", creator=made, root_name="R",
                 entries=[MhlEntry("a.wav", 1, {"sha256": "ab" * 32})])
"""


def test_crash_between_temp_and_link_leaves_no_half_manifest(tmp_path):
    def run(mode: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-c", CRASH_THEN_RESUME, str(tmp_path), mode]
        return subprocess.run(argv, cwd=REPO, check=False, timeout=60)

    assert run("crash").returncode == 9
    (temp,) = tmp_path.iterdir()
    assert temp.name.startswith(".fieldkit-") and temp.name.endswith(".tmp")
    assert list_manifests(tmp_path) == [] and read_chain(tmp_path) == []
    assert latest_hashes(tmp_path) == {} and verify_chain(tmp_path) == []
    assert run("resume").returncode == 0  # a later process removes the stale temp
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0001_R_2024-05-01_000000Z.mhl", CHAIN_FILENAME]


def test_a_fresh_temp_of_a_live_writer_is_left_alone(tmp_path):
    live = tmp_path / f".fieldkit-{os.getpid()}-0123456789abcdef.tmp"
    live.write_bytes(b"<half")
    write(tmp_path, [entry("a.wav", b"a")])
    assert live.read_bytes() == b"<half"
    assert verify_chain(tmp_path) == []


# --- the chain ------------------------------------------------------------------------------


def test_chain_records_every_generation(tmp_path):
    paths = [write(tmp_path, [entry("a.wav", b"a")]) for _ in range(3)]
    expected = [ChainLink(i, p.name, c4_file(p)) for i, p in enumerate(paths, 1)]
    assert read_chain(tmp_path) == expected
    assert verify_chain(tmp_path) == []


def test_append_to_chain_is_idempotent_and_refuses_to_rewrite_history(tmp_path):
    path = write(tmp_path, [entry("a.wav", b"a")])
    before = (tmp_path / CHAIN_FILENAME).read_bytes()
    assert append_to_chain(tmp_path, path) == read_chain(tmp_path)[0]
    assert (tmp_path / CHAIN_FILENAME).read_bytes() == before
    impostor = tmp_path / manifest_name(1, "OTHER", T0)
    impostor.write_bytes(b"<other/>")
    with pytest.raises(IngestError, match="refusing to rewrite history"):
        append_to_chain(tmp_path, impostor)
    with pytest.raises(ValidationError, match="not an ASC-named manifest"):
        append_to_chain(tmp_path / "elsewhere", path)


def test_verify_chain_detects_a_modified_byte(tmp_path):
    paths = [write(tmp_path, [entry("a.wav", b"a")]) for _ in range(2)]
    make_writable(paths[0])
    data = bytearray(paths[0].read_bytes())
    data[data.index(b"field-laptop")] ^= 0x20  # 'f' -> 'F': still well-formed XML
    paths[0].write_bytes(bytes(data))
    (problem,) = verify_chain(tmp_path)
    assert problem.startswith(f"generation 1: {paths[0].name} was modified after it was sealed")


def test_verify_chain_detects_a_deleted_manifest_and_gaps(tmp_path):
    paths = [write(tmp_path, [entry("a.wav", b"a")]) for _ in range(3)]
    paths[1].unlink()
    assert verify_chain(tmp_path) == [
        f"generation 2: {paths[1].name} is listed in the chain but missing."]
    write(tmp_path, [], sequence=5)
    assert "generation 4 is missing from the chain (sequence gap)." in verify_chain(tmp_path)


def test_a_deleted_manifests_number_is_never_reused(tmp_path):
    paths = [write(tmp_path, [entry("a.wav", b"a")]) for _ in range(2)]
    paths[1].unlink()
    assert write(tmp_path, []).name.startswith("0003_")
    with pytest.raises(IngestError, match="generation 2 already exists"):
        write(tmp_path, [], sequence=2)
    assert verify_chain(tmp_path) == [
        f"generation 2: {paths[1].name} is listed in the chain but missing."]


def test_reader_rejects_an_unknown_process(tmp_path):
    manifest = write(tmp_path, [entry("x.wav", b"x")])
    odd = tmp_path / "odd.mhl"
    odd.write_bytes(manifest.read_bytes().replace(b">transfer<", b">teleport<"))
    with pytest.raises(ValidationError, match="process 'teleport' is not one of"):
        read_generation(odd)


def test_verify_chain_reports_unchained_manifests_and_a_broken_chain(tmp_path):
    path = write(tmp_path, [entry("a.wav", b"a")])
    chain = tmp_path / CHAIN_FILENAME
    chain.unlink()
    unchained = f"{path.name} is not in {CHAIN_FILENAME} (run append_to_chain to record it)."
    assert verify_chain(tmp_path) == [unchained]
    chain.write_text("<ascmhldirectory")
    (problem,) = verify_chain(tmp_path)
    assert "is not well-formed, safe XML" in problem


def test_chain_paths_cannot_point_outside_the_folder(tmp_path):
    (tmp_path / CHAIN_FILENAME).write_text(
        f'<ascmhldirectory xmlns="{DIRECTORY_NS}"><hashlist sequencenr="1">'
        f"<path>../../0001_x_2024-01-01_000000Z.mhl</path><c4>{C4_FOO}</c4></hashlist>"
        "</ascmhldirectory>")
    with pytest.raises(ValidationError, match="is not an ASC manifest name"):
        read_chain(tmp_path)


# --- latest hashes --------------------------------------------------------------------------


def test_latest_hashes_takes_the_newest_good_entry_per_path(tmp_path):
    write(tmp_path, [entry("a.wav", b"a1"), entry("b.wav", b"b1")])
    write(tmp_path, [entry("a.wav", b"a2", "verified"), entry("b.wav", b"bad", "failed")],
          process="in-place")
    write(tmp_path, [entry("c.wav", b"c1")])
    latest = latest_hashes(tmp_path)
    assert sorted(latest) == ["a.wav", "b.wav", "c.wav"]
    assert latest["a.wav"].hashes["sha256"] == hashlib.sha256(b"a2").hexdigest()
    assert latest["a.wav"].action == "verified"
    assert latest["b.wav"].hashes["c4"] == c4_id(b"b1")
    assert latest_hashes(tmp_path / "nothing-here") == {}


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/abs.wav", "a//b.wav", "a/./b", "../up.wav", "a/",
                                  "back\\slash.wav", "ctl\x01.wav", "cr\r.wav", "new\nline"])
def test_entry_paths_must_be_clean_relative_posix(path):
    with pytest.raises(ValidationError) as caught:
        MhlEntry(path, 1, {"sha256": "ab"})
    assert str(caught.value) == (
        f"MHL path {path!r} is not a clean relative POSIX path. Use '/'-separated names "
        "without '.', '..', backslashes or control characters.")


def test_entry_rejects_unknown_hashes_naive_times_and_bad_values():
    with pytest.raises(UnknownNameError) as caught:
        MhlEntry("a.wav", 1, {"sha3": "ab"})
    assert str(caught.value) == (
        "unknown hash format 'sha3'; known: c4, md5, sha1, sha256, xxh128, xxh3, xxh32, xxh64.")
    with pytest.raises(ValidationError) as naive:
        MhlEntry("a.wav", 1, {"md5": "ab"}, mtime=datetime(2024, 1, 1))
    assert str(naive.value) == (
        "a.wav: mtime 2024-01-01T00:00:00 has no UTC offset. Pass an aware datetime.")
    with pytest.raises(ValidationError, match="is not hex or base58"):
        MhlEntry("a.wav", 1, {"md5": "ab cd"})
    with pytest.raises(ValidationError, match="at least one hash"):
        MhlEntry("a.wav", 1, {})
    with pytest.raises(ValidationError, match="negative"):
        MhlEntry("a.wav", -1, {"md5": "ab"})


def test_entry_copies_the_callers_hashes():
    hashes = {"md5": "ab"}
    made = MhlEntry("a.wav", 1, hashes)
    hashes["md5"] = "cd"
    assert made.hashes == {"md5": "ab"}


def test_process_and_creator_are_checked(tmp_path):
    with pytest.raises(UnknownNameError, match="known: in-place, transfer"):
        write(tmp_path, [], process="flatten")
    with pytest.raises(ValidationError, match="CreatorInfo.comment"):
        creator(comment="bell\x07")
    with pytest.raises(ValidationError, match="no UTC offset"):
        creator(datetime(2024, 1, 1))


def test_creator_now_describes_this_host_and_version():
    made = CreatorInfo.now(author="Ana")
    assert made.tool_name == "fieldkit" and made.tool_version and made.hostname
    assert made.created.tzinfo is UTC and made.created.microsecond == 0
