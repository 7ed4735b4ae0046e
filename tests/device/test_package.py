"""``edgeavs package``: a Python-free bundle of a snapdragon8elite artifact, run in the guest.

The bundle's ``bin/edgeavs-run`` (our C++ runner over the TVM runtime and tvm-ffi built from
the installed wheels' sources with Debian's AArch64 cross g++) runs tiny at 64 under
``qemu-aarch64 -L <a sysroot holding only the guest's libc, libm, libgcc_s and libstdc++>``;
its logits are compared with the PyTorch float64 reference at verify's tolerance, its mask PNG
with its logits. Every shipped ELF file's NEEDED entries name no Python. The bad inputs are one
line each, exit 1, with nothing written.

The runtime cross build takes minutes the first time (179 s on 2 loaded cores, AMD EPYC; cached per
toolchain and TVM version under ``~/.cache/edgeavs/runtime``, reused by later runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.device.export import LINUX_LIBRARY

pytestmark = pytest.mark.slow

RESOLUTION = 64
NDK_VARS = ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
SYSTEM_LIBS = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libdl.so.2",
               "libpthread.so.0", "ld-linux-aarch64.so.1"}
OWN_LIBS = {"libtvm_ffi.so", "libtvm_runtime.so", "libedgeavs_model.so"}


def invoke(*args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def sd8e_artifact(tmp_path_factory, emulator):
    from edgeavs.compiler import compile_artifact

    saved = {v: os.environ.pop(v) for v in NDK_VARS if v in os.environ}
    try:
        out = tmp_path_factory.mktemp("pkg") / "tiny-64-sd8e"
        compile_artifact(out, target="snapdragon8elite", variant="tiny", resolution=RESOLUTION)
    finally:
        os.environ.update(saved)
    return out


@pytest.fixture(scope="module")
def bundle(sd8e_artifact, tmp_path_factory):
    """The Linux bundle, made through the CLI (no NDK: the one-line note, Linux only)."""
    out = tmp_path_factory.mktemp("bundles") / "tiny-sd8e-bundle"
    env = {v: None for v in NDK_VARS}
    result = invoke("package", sd8e_artifact, "-o", out, env=env)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "bundle.json").read_text()), result


def test_bundle_holds_the_device_files(bundle, sd8e_artifact):
    from edgeavs.device.bundle import elf_machine

    out, record, result = bundle
    assert "no Android bundle: no Android NDK configured" in result.stderr
    assert record["os"] == "linux" and record["triple"].startswith("aarch64")
    for rel in ("bin/edgeavs-run", "lib/libtvm_runtime.so", "lib/libtvm_ffi.so",
                "lib/libedgeavs_model.so", f"model/{LINUX_LIBRARY}", "model/manifest.json",
                "model/io.txt", "include/edgeavs_model.h", "examples/run_model.c", "README.md"):
        assert rel in record["files"], rel
        assert (out / rel).stat().st_size == record["files"][rel]["bytes"]
    elves = [rel for rel in record["files"] if elf_machine(out / rel) is not None]
    assert sorted(elves) == sorted(["bin/edgeavs-run", "lib/libtvm_runtime.so", "lib/libtvm_ffi.so",
                                    "lib/libedgeavs_model.so", f"model/{LINUX_LIBRARY}"])
    assert all(elf_machine(out / rel) == 183 for rel in elves)  # EM_AARCH64
    assert (out / "model" / "manifest.json").read_bytes() == \
        (sd8e_artifact / "manifest.json").read_bytes()
    assert (out / "model" / LINUX_LIBRARY).read_bytes() == \
        (sd8e_artifact / LINUX_LIBRARY).read_bytes()
    assert (out / "model" / "io.txt").read_text().splitlines()[1:] == [
        "frames 1 3 64 64", "waveform 1 32000", "logits 1 1 64 64"]
    readme = (out / "README.md").read_text()
    assert f"scp -r {out.name} DEVICE:" in readme
    assert f"./bin/edgeavs-run model/{LINUX_LIBRARY} --frames frames.npy" in readme


def test_no_shipped_file_needs_python(bundle):
    """readelf -d of every ELF file: only the bundle's own libraries and libc/libm/libstdc++."""
    from edgeavs.device.bundle import needed_libraries

    out, record, _ = bundle
    seen = {}
    for rel in record["files"]:
        deps = needed_libraries(out / rel)
        if deps is not None:
            seen[rel] = deps
    assert seen == record["needed"]
    assert len(seen) == 5
    everything = {d for deps in seen.values() for d in deps}
    assert not [d for d in everything if "python" in d.lower()]
    assert everything <= SYSTEM_LIBS | OWN_LIBS, everything - SYSTEM_LIBS - OWN_LIBS
    assert "libtvm_runtime.so" in seen["lib/libedgeavs_model.so"]


def _reference(artifact, frames, waveform):
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.verify import _weights_args, run_reference_process

    manifest = read_manifest(artifact)
    return run_reference_process(manifest["variant"], _weights_args(manifest, None), frames,
                                 waveform, float64=True)["logits"]


def test_runner_in_the_guest_matches_pytorch(bundle, sd8e_artifact, tmp_path):
    """edgeavs-run under qemu with libc/libstdc++ alone; .npy and raw inputs; logits and mask."""
    from PIL import Image

    from edgeavs.data.inputs import random_inputs
    from edgeavs.device.bundle import minimal_sysroot, parse_latency, run_bundle, runner_command
    from edgeavs.verify import compare

    out, record, _ = bundle
    cmd = runner_command(out, record, [])
    sysroot = minimal_sysroot()
    assert cmd[:2] == ["qemu-aarch64", "-cpu"] and cmd[cmd.index("-L") + 1] == str(sysroot)
    shipped = sorted(p.name for p in (sysroot / "lib" / "aarch64-linux-gnu").iterdir())
    assert not [n for n in shipped if "python" in n] and set(shipped) <= SYSTEM_LIBS

    frames, waveform = random_inputs(3, RESOLUTION, RESOLUTION)
    np.save(tmp_path / "frames.npy", frames.astype(np.float32))
    np.save(tmp_path / "audio.npy", waveform.astype(np.float32))
    frames.astype("<f4").tofile(tmp_path / "frames.f32")
    waveform.astype("<f4").tofile(tmp_path / "audio.f32")
    stdout = run_bundle(out, ["--frames", tmp_path / "frames.npy", "--audio", tmp_path / "audio.npy",
                              "--out", tmp_path / "logits.npy", "--mask", tmp_path / "mask.png",
                              "--runs", "3", "--warmup", "1", "--threads", "2"], record=record)
    latency = parse_latency(stdout)
    assert latency["runs"] == 3 and 0 < latency["min_ms"] <= latency["median_ms"] <= latency["max_ms"]
    got = np.load(tmp_path / "logits.npy")
    assert got.shape == (1, 1, RESOLUTION, RESOLUTION) and got.dtype == np.float32

    expected = _reference(sd8e_artifact, frames, waveform)
    verdict = compare(got, expected)
    assert verdict["pass"], verdict

    mask = np.array(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (RESOLUTION, RESOLUTION) and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask == 255, got[0, 0] > 0)

    run_bundle(out, ["--frames", tmp_path / "frames.f32", "--audio", tmp_path / "audio.f32",
                     "--out", tmp_path / "logits.f32", "--runs", "1", "--warmup", "0",
                     "--threads", "2"], record=record)
    raw = np.fromfile(tmp_path / "logits.f32", dtype="<f4").reshape(got.shape)
    assert np.array_equal(raw, got)  # same library, same inputs, one thread pool size: same bits


def test_runner_refuses_bad_inputs_in_one_line(bundle, tmp_path):
    from edgeavs.device.bundle import runner_command, runner_env

    out, record, _ = bundle
    np.save(tmp_path / "small.npy", np.zeros((1, 3, 32, 32), np.float32))
    np.save(tmp_path / "audio.npy", np.zeros((1, 32000), np.float32))
    cmd = runner_command(out, record, ["--frames", tmp_path / "small.npy", "--audio",
                                       tmp_path / "audio.npy", "--out", tmp_path / "o.npy"])
    proc = subprocess.run(cmd, env=runner_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"edgeavs-run: {tmp_path / 'small.npy'}: shape (1,3,32,32), the model takes frames (1,3,64,64)"]
    assert not (tmp_path / "o.npy").exists()


def test_c_example_builds_and_runs_in_the_guest(bundle, tmp_path):
    """examples/run_model.c, compiled as the bundle's README says, against the shipped header."""
    from edgeavs.device.bundle import minimal_sysroot, runner_env

    out, _, _ = bundle
    exe = tmp_path / "run_model"
    subprocess.run(["aarch64-linux-gnu-gcc", "-O2", f"-I{out / 'include'}",
                    str(out / "examples" / "run_model.c"), f"-L{out / 'lib'}", "-ledgeavs_model",
                    f"-Wl,-rpath,{out / 'lib'}", f"-Wl,-rpath-link,{out / 'lib'}", "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    proc = subprocess.run(["qemu-aarch64", "-cpu", "max,sve=off,sme=off", "-L", str(minimal_sysroot()),
                           str(exe), str(out / "model" / LINUX_LIBRARY)],
                          env=runner_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("output (1,1,64,64) float32, ")


def test_verify_accepts_the_bundle_on_the_emulated_device(bundle, tmp_path):
    out, _, _ = bundle
    report = tmp_path / "verify.json"
    result = invoke("verify", out, "--device", "emulated", "--seeds", "1", "--report", report)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["passed"] and "edgeavs-run under qemu-aarch64" in data["device"]
    assert data["worst"]["rel_l2"] <= data["tolerances"]["float32"]["rel_l2"]

    result = invoke("verify", out, "--seeds", "1")  # an AArch64 bundle needs --device emulated
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"Error: bundle {out} is for linux")


# ---------------------------------------------------------------- bad input

def _one_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for f in fragments:
        assert f in lines[0], lines[0]


def _no_leftovers(parent, name):
    assert not [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_host_artifact_is_refused(tmp_path):
    from edgeavs.compiler import compile_artifact

    host = tmp_path / "host64"
    compile_artifact(host, target="host", variant="tiny", resolution=RESOLUTION)
    dest = tmp_path / "b"
    _one_error(invoke("package", host, "-o", dest), "compiled for the host", "--os host")
    _one_error(invoke("package", host, "-o", dest, "--os", "linux"),
               "compiled for the host", "no library for --os linux")
    assert not dest.exists()
    _no_leftovers(tmp_path, "b")


def test_missing_cross_compiler(sd8e_artifact, tmp_path):
    dest = tmp_path / "b"
    _one_error(invoke("package", sd8e_artifact, "-o", dest, "--os", "linux",
                      env={"EDGEAVS_CROSS_CXX": str(tmp_path / "no-such-g++")}),
               "EDGEAVS_CROSS_CXX=", "cross compiler is not found")
    assert not dest.exists()


def test_artifact_without_an_aarch64_library(sd8e_artifact, tmp_path):
    from edgeavs.compiler.artifact import MANIFEST, file_sha256

    dest = tmp_path / "b"
    # compiled without an NDK: no Android library
    _one_error(invoke("package", sd8e_artifact, "-o", dest, "--os", "android"),
               "has no library for a android device", LINUX_LIBRARY)
    # the Linux library swapped for an x86-64 one (manifest re-hashed, so only the ELF tells)
    fake = tmp_path / "fake"
    shutil.copytree(sd8e_artifact, fake)
    shutil.copy2(shutil.which("true"), fake / LINUX_LIBRARY)
    manifest = json.loads((fake / MANIFEST).read_text())
    manifest["files"][LINUX_LIBRARY] = file_sha256(fake / LINUX_LIBRARY)
    (fake / MANIFEST).write_text(json.dumps(manifest))
    result = invoke("package", fake, "-o", dest)
    _one_error(result, LINUX_LIBRARY)
    assert not dest.exists()


def test_unwritable_and_existing_outputs(sd8e_artifact, bundle, tmp_path):
    _one_error(invoke("package", sd8e_artifact, "-o", "/proc/edgeavs-bundle"), "-o /proc/edgeavs-bundle")
    (tmp_path / "file").write_text("x")
    _one_error(invoke("package", sd8e_artifact, "-o", tmp_path / "file" / "b"), "is not a directory")

    out, record, _ = bundle
    before = (out / "bundle.json").read_bytes()
    _one_error(invoke("package", sd8e_artifact, "-o", out), "exists; pass --overwrite")
    assert (out / "bundle.json").read_bytes() == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    _one_error(invoke("package", sd8e_artifact, "-o", other, "--overwrite"), "not an edgeavs bundle")
    assert (other / "keep.txt").read_text() == "mine"

    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    (copy / "stale.txt").write_text("old")
    result = invoke("package", sd8e_artifact, "-o", copy, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (copy / "stale.txt").exists()
    again = json.loads((copy / "bundle.json").read_text())
    assert again["runtime_build"]["cached"] is True
    # the same files, bit for bit (the README names the folder: "again" here)
    assert {k: v["sha256"] for k, v in again["files"].items() if k != "README.md"} == \
        {k: v["sha256"] for k, v in record["files"].items() if k != "README.md"}
    assert "scp -r again DEVICE:" in (copy / "README.md").read_text()
    _no_leftovers(tmp_path, "again")
