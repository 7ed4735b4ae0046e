"""int8 builds end to end: compile --precision int8 --calibration, the calibration report in the manifest, verify's
int8 row, the emulated AArch64 sdot build, and the refusals (no or bad calibration data, a target without dotprod,
--calibration on another precision), each one line with nothing written."""

import json
import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.errors import EdgeAVSError
from tests.precision_helpers import compile_for_emulation, cortex_a53

SIZE = 64
FRAMES = 8
AARCH64_NO_DOTPROD = cortex_a53("a53-nodot", "Cortex-A53 class, no dot product")


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib") / "s4"
    r = CliRunner().invoke(main, ["data", "synth", "--task", "s4", "--clips", "5", "--size", str(SIZE), str(root)])
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture(scope="module")
def int8_artifact(tmp_path_factory, calib):
    out = tmp_path_factory.mktemp("int8") / "art"
    r = CliRunner().invoke(main, ["compile", "--target", "host", "--variant", "tiny", "--resolution", str(SIZE),
                                  "--precision", "int8", "--calibration", str(calib), "--calibration-frames",
                                  str(FRAMES), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "1x1 convs in int8" in r.output and "kept fp32:" in r.output
    return out


@pytest.mark.slow
def test_int8_manifest_records_the_calibration(int8_artifact, calib):
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.targets import load_target
    from kernels.int8_conv import isa_for

    m = read_manifest(int8_artifact)
    assert m["precision"] == "int8"
    rep = m["precision_report"]
    cal = rep["calibration"]
    assert rep["isa"] == isa_for(load_target("host").to_tvm()) and rep["converted"] == cal["int8_sites"] > 50
    assert cal["calibration"] == {"root": os.fspath(calib), "task": "s4", "split": "train", "frames": FRAMES,
                                  "clips": 2}
    assert rep["kept"].get("last conv (logits)") == 1
    layers = cal["layers"]
    assert len(layers) == rep["sites"] - 1  # every site but the logits conv was calibrated
    for row in layers:
        assert -128 <= row["zero_point"] <= 127 and row["scale"] > 0
        assert row["int8"] == (row["snr_db"] >= cal["min_snr_db"])
    snrs = sorted(r["snr_db"] for r in layers)
    assert [r["snr_db"] for r in cal["least_robust"]] == snrs[:10]
    assert cal["site_macs_int8"] > 0


@pytest.mark.slow
def test_int8_artifact_passes_its_rule_and_is_not_fp32(int8_artifact, tmp_path):
    from edgeavs.verify import TOLERANCES

    report_path = tmp_path / "v.json"
    r = CliRunner().invoke(main, ["verify", str(int8_artifact), "--seeds", "2", "--report", str(report_path)])
    assert r.exit_code == 0, r.output
    report = json.loads(report_path.read_text())
    assert report["precision"] == "int8" and report["rule"] == "int8" and report["passed"]
    # judged on real frames (the calibration tree's val split), not on the random seeds
    assert [c["input"] for c in report["cases"]] == [f"s4-val.npz[{i}]" for i in range(5)]
    worst = report["worst"]
    assert worst["rel_l2"] <= TOLERANCES["int8"]["rel_l2"]
    assert worst["rel_l2"] > TOLERANCES["float32"]["rel_l2"]  # int8 rounding is there


@pytest.mark.slow
def test_int8_artifact_fails_when_the_rule_is_tightened(int8_artifact, monkeypatch):
    import edgeavs.verify as V

    monkeypatch.setitem(V.TOLERANCES, "int8", dict(V.TOLERANCES["float32"]))
    r = CliRunner().invoke(main, ["verify", str(int8_artifact), "--seeds", "1"])
    assert r.exit_code == 1 and "FAIL" in r.output


@pytest.mark.slow
def test_int8_verify_without_its_calibration_tree(int8_artifact, tmp_path):
    """The tree is gone: verify says to pass --inputs (a usage error: exit 2), and --inputs works."""
    import shutil

    from edgeavs.compiler.artifact import read_manifest

    art = tmp_path / "art"
    shutil.copytree(int8_artifact, art)
    m = json.loads((art / "manifest.json").read_text())
    m["precision_report"]["calibration"]["calibration"]["root"] = str(tmp_path / "gone")
    (art / "manifest.json").write_text(json.dumps(m))
    read_manifest(art)  # still a valid manifest
    r = CliRunner().invoke(main, ["verify", str(art)])
    assert r.exit_code == 2 and "pass --inputs" in r.output and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def _one_line_error(r, *needles):
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    for n in needles:
        assert n in r.output, r.output


def _compile(tmp_path, *extra, target="host"):
    out = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--target", target, "--variant", "tiny", "--resolution", str(SIZE),
                                  "-o", str(out), *extra])
    return r, out


def test_int8_needs_calibration(tmp_path):
    r, out = _compile(tmp_path, "--precision", "int8")
    _one_line_error(r, "--precision int8 needs --calibration DIR")
    assert not out.exists()


def test_calibration_must_be_a_tree(tmp_path, calib):
    r, out = _compile(tmp_path, "--precision", "int8", "--calibration", str(tmp_path / "nope"))
    _one_line_error(r, "nope: not a folder")
    (tmp_path / "empty").mkdir()
    r, out = _compile(tmp_path, "--precision", "int8", "--calibration", str(tmp_path / "empty"))
    _one_line_error(r, "empty: no AVSBench metadata")
    assert not out.exists()


@pytest.mark.slow
def test_calibration_frames_beyond_the_tree(tmp_path, calib):
    r, out = _compile(tmp_path, "--precision", "int8", "--calibration", str(calib), "--calibration-frames", "500")
    _one_line_error(r, "--calibration-frames 500", "has only 15 train frames")
    assert not out.exists()


def test_calibration_on_other_precisions_is_refused(tmp_path, calib):
    r, out = _compile(tmp_path, "--calibration", str(calib))
    _one_line_error(r, "--calibration applies to --precision int8 (this build is fp32)")
    r, out = _compile(tmp_path, "--precision", "fp16", "--calibration-frames", "4")
    _one_line_error(r, "--calibration-frames applies to --precision int8")
    r, out = _compile(tmp_path, "--precision", "int8", "--calibration", str(calib), "--accumulate", "fp16")
    _one_line_error(r, "--accumulate applies to --precision fp16 (an int8 build accumulates in int32)")
    assert not out.exists()


def test_int8_on_a_target_without_dotprod(tmp_path, calib):
    from edgeavs.compiler.build import check_precision
    from edgeavs.targets import load_target

    (tmp_path / "a53.yaml").write_text(AARCH64_NO_DOTPROD)
    r, out = _compile(tmp_path, "--precision", "int8", "--calibration", str(calib), target=str(tmp_path / "a53.yaml"))
    _one_line_error(r, "target a53-nodot", "has no +dotprod")
    assert not out.exists()
    check_precision("int8", load_target("snapdragon8elite"))
    check_precision("int8", load_target("x86-avx2"))  # no VNNI: the generic kernel
    check_precision("int8", load_target("aarch64-linux"))  # Cortex-A76: +dotprod


def test_calibration_inputs_read_the_train_frames(calib):
    from edgeavs.compiler.calibrate import calibration_inputs

    clips, info = calibration_inputs(calib, (SIZE, SIZE), frames=7)
    assert len(clips) == 7 and info["clips"] == 2 and info["task"] == "s4"
    frames, wave = clips[0]
    assert frames.shape == (1, 3, SIZE, SIZE) and wave.shape == (1, 32000)
    assert frames.dtype == np.float32 and np.isfinite(frames).all()
    with pytest.raises(EdgeAVSError, match="calibration reads square frames"):
        calibration_inputs(calib, (SIZE, 2 * SIZE), frames=1)


@pytest.mark.slow
def test_int8_on_emulated_aarch64_passes_its_rule(tmp_path, calib):
    """The snapdragon8elite int8 build (sdot kernels) under qemu-aarch64 -cpu max: verify with the int8 row, and the
    sdot instructions really are in the library."""
    from edgeavs.device.export import LINUX_LIBRARY
    from edgeavs.device.remote import DeviceSpec
    from edgeavs.verify import verify_artifact

    out = tmp_path / "sd8e-int8"
    manifest = compile_for_emulation(out, variant="tiny", resolution=SIZE, precision="int8", calibration=calib,
                                     calibration_frames=FRAMES)
    assert manifest["precision"] == "int8" and manifest["precision_report"]["isa"] == "sdot"
    dis = subprocess.run(["llvm-objdump-19", "-d", "--mattr=+dotprod", str(out / LINUX_LIBRARY)],
                         capture_output=True, text=True, check=True).stdout
    assert "sdot" in dis
    report = verify_artifact(out, seeds=1, device=DeviceSpec("emulated"))
    assert report["rule"] == "int8" and report["passed"], report.get("worst")

    # the Python-free bundle of the same build: edgeavs-run in the guest passes the same int8 row on the same
    # hold-out frames, with the figures of the library it ships (the runtime cross build is cached and locked)
    bundle = tmp_path / "sd8e-int8-bundle"
    r = CliRunner().invoke(main, ["package", str(out), "--os", "linux", "-o", str(bundle)])
    assert r.exit_code == 0, r.output
    from_bundle = verify_artifact(bundle, seeds=1, device=DeviceSpec("emulated"))
    assert from_bundle["rule"] == "int8" and from_bundle["passed"], from_bundle.get("worst")
    assert "edgeavs-run under qemu-aarch64" in from_bundle["device"]
    for key in ("rel_l2", "max_abs"):
        assert from_bundle["worst"][key] == pytest.approx(report["worst"][key], rel=1e-4), key


@pytest.mark.slow
def test_tune_int8_records_are_int8_and_compile_takes_them(tmp_path, calib):
    """`tune --precision int8` searches the int8 kernels' knobs (calibrated as compile is); its records are
    marked int8: an int8 compile takes them, an fp32 compile refuses them in one line."""
    rec = tmp_path / "rec"
    r = CliRunner().invoke(main, ["tune", "--target", "host", "--variant", "tiny", "--resolution", str(SIZE),
                                  "--precision", "int8", "--calibration", str(calib), "--calibration-frames",
                                  str(FRAMES), "--only", "int8_conv", "--trials", "3", "--time-budget", "10m",
                                  "-o", str(rec)])
    assert r.exit_code == 0, r.output
    assert "calibrate" in r.output and "edgeavs functions (by workload)" in r.output
    fp = json.loads((rec / "fingerprint.json").read_text())
    assert fp["precision"] == "int8"
    knobs = json.loads((rec / "edgeavs_knobs.json").read_text())
    assert knobs and all(k.startswith("int8_conv") for k in knobs.get("functions", knobs))
    r, out = _compile(tmp_path, "--precision", "int8", "--calibration", str(calib), "--calibration-frames",
                      str(FRAMES), "--records", str(rec))
    assert r.exit_code == 0, r.output
    other = tmp_path / "fp32"
    other.mkdir()
    r, out2 = _compile(other, "--records", str(rec))
    _one_line_error(r, "tuned for a int8 build, this is fp32")
    assert not out2.exists()
