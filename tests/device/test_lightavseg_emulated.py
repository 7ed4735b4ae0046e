"""LightAVSeg-tiny compiled for the Snapdragon 8 Elite and verified on the emulated device.

Cross-compiles on this x86 machine (``--target snapdragon8elite``, no NDK: the Android library
is skipped with a one-line reason, the AArch64 Linux twin is linked with Debian's cross gcc),
checks the code has no SVE/SME instruction, then runs ``verify --device emulated``: the library
under ``qemu-aarch64 -cpu max,sve=off,sme=off`` over RPC against the PyTorch reference, with the
host's tolerance table.
"""

import json
import os

import pytest
from click.testing import CliRunner

from edgeavs.device.export import LINUX_LIBRARY
from edgeavs.device.isa import check_no_sve
from edgeavs.device.remote import DeviceSpec

pytestmark = pytest.mark.slow

RESOLUTION = 64


@pytest.fixture(scope="module")
def sd8e_artifact(tmp_path_factory, emulator):
    from edgeavs.compiler import compile_artifact

    saved = {v: os.environ.pop(v) for v in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
             if v in os.environ}
    logged = []
    try:
        out = tmp_path_factory.mktemp("sd8e") / "tiny-64-sd8e"
        manifest = compile_artifact(out, target="snapdragon8elite", variant="tiny",
                                    resolution=RESOLUTION, log=logged.append)
    finally:
        os.environ.update(saved)
    return out, manifest, logged


def test_compile_makes_the_linux_twin_without_ndk(sd8e_artifact):
    out, manifest, logged = sd8e_artifact
    assert manifest["target"]["mtriple"] == "aarch64-linux-android"
    assert manifest["target"]["mcpu"] == "oryon-1"
    assert manifest["library"] is None
    assert [(lib["file"], lib["role"], lib["os"]) for lib in manifest["libraries"]] == [
        (LINUX_LIBRARY, "verify", "linux")]
    assert [s["file"] for s in manifest["libraries_skipped"]] == ["model.so"]
    assert any(m.startswith("Android library model.so not produced") for m in logged)
    assert sorted(manifest["files"]) == [LINUX_LIBRARY]
    assert check_no_sve(out / LINUX_LIBRARY) > 10000


def test_verify_on_emulated_device(sd8e_artifact, tmp_path):
    from edgeavs.verify import TOLERANCES, verify_artifact

    out, _, _ = sd8e_artifact
    report = verify_artifact(out, seeds=2, device=DeviceSpec("emulated"))
    assert report["passed"], report["worst"]
    worst = report["worst"]
    tol = TOLERANCES["float32"]
    assert worst["max_abs_rms"] <= tol["max_abs"] and worst["rel_l2"] <= tol["rel_l2"]
    assert worst["max_abs"] > 0 or worst["rel_l2"] == 0  # a real comparison happened
    assert "emulated" in report["device"]
    (tmp_path / "report.json").write_text(json.dumps(report))


def test_cli_verify_device_emulated(sd8e_artifact, tmp_path):
    from cli import main

    out, _, _ = sd8e_artifact
    res = CliRunner().invoke(main, ["verify", str(out), "--device", "emulated", "--seeds", "1",
                                    "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] and "emulated" in report["device"]


def test_host_verify_refuses_the_device_artifact(sd8e_artifact):
    from cli import main

    out, _, _ = sd8e_artifact
    res = CliRunner().invoke(main, ["verify", str(out), "--seeds", "1"])
    assert res.exit_code != 0
    assert "--device emulated" in res.output and "Traceback" not in res.output
