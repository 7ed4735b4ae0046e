"""Tuning a device target without the device (``edgeavs tune --target snapdragon8elite``, no RPC): the knob
search ranks candidates by projected Oryon cycles, the records say so, compile says so, and projected and
measured records are never mixed."""

import json

import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.compiler.records import MEASURED, RecordsDir, describe_cost, projected_cost
from edgeavs.errors import EdgeAVSError
from edgeavs.targets import load_target
from edgeavs.tune.knobs import MARGIN
from edgeavs.tune.projected import projection_cpu


@pytest.fixture(scope="module")
def phone():
    return load_target("snapdragon8elite")


def test_the_target_names_its_projection_core(phone):
    assert projection_cpu(phone).name == "oryon-1"
    assert projection_cpu(load_target("aarch64-linux")) is None  # cortex-a76: no model, a device is needed
    assert projection_cpu(load_target("host")) is None


def test_a_target_without_a_model_still_needs_a_device(tmp_path):
    out = tmp_path / "rec"
    r = CliRunner().invoke(main, ["tune", "--target", "aarch64-linux", "--variant", "tiny", "--resolution", "64",
                                  "-o", str(out)])
    assert r.exit_code == 1
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("Error: target aarch64-linux is not this machine and the cycle projection has no "
                           "model of its core (cortex-a76")
    assert "--rpc-tracker" in line and not out.exists()


def test_projected_and_measured_records_are_not_mixed(tmp_path, phone):
    proj = RecordsDir(tmp_path / "projected")
    assert proj.create_or_resume(phone, cost=projected_cost("oryon-1", "mca")) is False
    assert proj.create_or_resume(phone, cost=projected_cost("oryon-1", "mca")) is True  # same kind: resumes
    with pytest.raises(EdgeAVSError) as exc:
        proj.create_or_resume(phone)  # a measured run (a phone on RPC) into it
    assert str(exc.value) == (f"{proj.path}: holds projected oryon-1 cycles, not measured records; this run's are "
                              "measured: the two are not mixed, tune into another directory")
    meas = RecordsDir(tmp_path / "measured")
    meas.create_or_resume(phone)
    with pytest.raises(EdgeAVSError, match="holds measured records; this run's are projected oryon-1 cycles"):
        meas.create_or_resume(phone, cost=projected_cost("oryon-1", "mca"))
    with pytest.raises(EdgeAVSError, match="projected oryon-2 cycles"):  # another core's projection neither
        proj.create_or_resume(phone, cost=projected_cost("oryon-2", "mca"))
    assert proj.info()["cost"]["source"] == "projected" and meas.info()["cost"] == MEASURED
    assert describe_cost(MEASURED) == "measured"


def test_records_of_another_precision_are_refused(tmp_path, phone):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(phone, precision="int8")
    assert rec.info()["precision"] == "int8"
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(phone)  # an fp32 compile
    assert str(exc.value) == (f"{rec.path}: records were tuned for a int8 build, this is fp32; tune the fp32 build "
                              "into its own records directory")
    assert rec.open(phone, precision="int8") is rec


def test_fingerprints_from_before_are_measured_fp32(tmp_path, phone):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(phone)
    fp = json.loads((rec.path / "fingerprint.json").read_text())
    del fp["cost"], fp["precision"]
    (rec.path / "fingerprint.json").write_text(json.dumps(fp))
    info = rec.open(phone).info()
    assert info["cost"] == MEASURED and info["precision"] == "fp32"
    fp["cost"] = {"source": "guessed"}
    (rec.path / "fingerprint.json").write_text(json.dumps(fp))
    with pytest.raises(EdgeAVSError, match='"cost" must be'):
        rec.open(phone)


@pytest.mark.slow
def test_tune_by_projection_then_compile_and_project(tmp_path, emulator, phone):
    """tiny at 64, the functions named matmul only, 3 candidates: the records hold projected figures, marked so,
    and the artifact compiled with them projects (``edgeavs device project``) to the tuned figure tune reported."""
    out = tmp_path / "rec"
    r = CliRunner().invoke(main, ["tune", "--target", "snapdragon8elite", "--variant", "tiny", "--resolution", "64",
                                  "--only", "matmul", "--trials", "3", "--json", "-o", str(out)])
    assert r.exit_code == 0, r.output[-3000:]
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["tasks"] == 0  # MetaSchedule's tasks need measured timings: left alone
    assert summary["projected"]["cpu"] == "oryon-1" and summary["projected"]["untuned_ms"] > 0
    rec = RecordsDir(out)
    assert rec.fingerprint()["cost"]["source"] == "projected"
    entries = rec.read_knobs()
    assert entries and all(e["measured"] == "projected" and e["cpu"] == "oryon-1" for e in entries.values())
    assert sum(e["candidates"] for e in entries.values()) == summary["knobs"]["trials"] <= 3
    kept = {k: e for k, e in entries.items() if e["config"] is not None}
    for e in kept.values():
        assert e["best_us"] < e["default_us"] * (1 - MARGIN)
    if kept:
        assert summary["projected"]["tuned_ms"] < summary["projected"]["untuned_ms"]

    art = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--target", "snapdragon8elite", "--variant", "tiny", "--resolution",
                                  "64", "--records", str(out), "-o", str(art)])
    assert r.exit_code == 0, r.output[-3000:]
    assert "tuned knobs (projected oryon-1 cycles, not measured)" in r.output
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["records"]["cost"]["source"] == "projected"

    report = tmp_path / "proj.json"
    r = CliRunner().invoke(main, ["device", "project", str(art), "--json", str(report)])
    assert r.exit_code == 0, r.output[-3000:]
    # The artifact compile --records makes projects to what tune said of its build: tune's rounds are built as
    # compile builds (weights linked), so the same functions under the same names at the same cost.
    functions = {f["name"]: f["ms"] * 1e3 for f in json.loads(report.read_text())["functions"]}
    assert sum(functions.values()) / 1e3 == pytest.approx(summary["projected"]["tuned_ms"], rel=1e-3)
    for e in entries.values():
        us = sum(functions[n] for n in e["functions"])
        assert us == pytest.approx(e["best_us"], rel=1e-3, abs=2e-3), (e["functions"], us, e["best_us"])
