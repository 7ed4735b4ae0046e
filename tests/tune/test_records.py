"""Records directories: fingerprints, validation of the database, atomic publication."""

import json

import pytest

from edgeavs.errors import EdgeAVSError
from edgeavs.targets import load_target
from edgeavs.compiler.records import RecordsDir
from edgeavs.tune import parse_duration
from edgeavs.compiler.records import RECORDS, WORKLOADS


@pytest.fixture(scope="module")
def host():
    return load_target("host")


def _fake_db(d):
    (d / WORKLOADS).write_text(json.dumps(["0x1", "AAAA"]) + "\n" + json.dumps(["0x2", "BBBB"]) + "\n")
    (d / RECORDS).write_text(json.dumps([0, [[], [], [1e-5], None, None]]) + "\n")


def test_new_directory_gets_a_fingerprint_and_resumes(tmp_path, host):
    rec = RecordsDir(tmp_path / "rec")
    assert rec.create_or_resume(host) is False
    fp = rec.fingerprint()
    assert fp["target"] == host.tvm_dict() and fp["target_fingerprint"] == host.fingerprint()
    assert {"llvm", "tvm", "edgeavs"} <= set(fp)
    _fake_db(rec.path)
    assert rec.create_or_resume(host) is True
    assert rec.validate() == {"workloads": 2, "records": 1, "knobs": 0}


def test_fingerprint_mismatch_is_refused(tmp_path, host):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(host)
    other = load_target("aarch64-linux")
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(other)
    msg = str(exc.value)
    assert "\n" not in msg and "records were tuned for target" in msg and "tune again" in msg


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-shape"])
def test_corrupt_database_is_a_one_line_error(tmp_path, host, damage):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(host)
    _fake_db(rec.path)
    path = rec.path / RECORDS
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff\xfe not json\n")
    else:
        path.write_text(json.dumps({"a": 1}) + "\n")
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(host)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: line 1")


def test_corrupt_fingerprint_and_foreign_directory(tmp_path, host):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(host)
    (rec.path / "fingerprint.json").write_text('{"format": "edgeavs-rec')
    with pytest.raises(EdgeAVSError, match="not valid JSON"):
        rec.open(host)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    with pytest.raises(EdgeAVSError, match="holds no edgeavs records"):
        RecordsDir(foreign).create_or_resume(host)


def test_commit_publishes_only_complete_lines(tmp_path, host):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(host)
    work = tmp_path / "work"
    work.mkdir()
    rec.seed_workdir(work)
    _fake_db(work)
    rec.commit_from(work, knobs={"gemm/0123456789abcdef": {
        "kind": "gemm", "config": {"co_tile": 8, "pixel_vectors": 2, "lanes": 16}}})
    assert rec.validate() == {"workloads": 2, "records": 1, "knobs": 1}
    # A half-written line in the scratch database is never published.
    with open(work / RECORDS, "a") as f:
        f.write('[1, [[], [')
    with pytest.raises(EdgeAVSError):
        rec.commit_from(work)
    assert rec.validate()["records"] == 1
    assert not list(rec.path.glob(".*"))  # no temporary files left behind


def test_parse_duration():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90 and parse_duration("45") == 45
    with pytest.raises(EdgeAVSError, match="--time-budget"):
        parse_duration("soon")
