"""``edgeavs tune`` over RPC on the emulated AArch64 device, then compile with its records and
verify under emulation.

A TVM RPC tracker on 127.0.0.1 (a free port) and the emulated device registered with it under
:data:`KEY`: the same path as a phone behind a tracker. The tune CLI links each candidate with
the cross gcc (edgeavs.tune.remote.CrossExport), MetaSchedule's RPCRunner uploads and times it
on the device, and the run says that emulated timings mean nothing. One small task is searched
(two trials) to keep the test short; the records must then compile for snapdragon8elite and the
result pass ``verify --device emulated``. Bad tracker address, unknown key and an Android
device without an NDK are one-line errors before anything is compiled.
"""

import json
import math
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

KEY = "sd8e-emu"
TASK = "concatenate4"  # a small function edgeavs's schedules leave to TVM (as in tests/tune/test_tune_e2e.py)
NO_NDK = ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tracker(emulator):
    """``HOST:PORT`` of a TVM tracker with the emulated device registered as :data:`KEY`."""
    import tornado  # noqa: F401 - TVM's tracker needs it; a test extra, so its absence is a failure
    from tvm.rpc.tracker import Tracker

    from edgeavs.device.emulator import EmulatedDevice

    port = _free_port()
    server = Tracker(host="127.0.0.1", port=port, port_end=min(port + 100, 65535), silent=True)
    try:
        address = f"127.0.0.1:{server.port}"
        with EmulatedDevice(key=KEY, tracker=address) as device:
            yield address, device
    finally:
        server.terminate()


def _tune(tracker_address, out, *extra):
    return CliRunner().invoke(main, ["tune", "--target", "snapdragon8elite", "--variant", "tiny",
                                     "--resolution", "64", "--rpc-tracker", tracker_address,
                                     "--rpc-key", KEY, "-o", str(out), *extra])


@pytest.fixture(scope="module")
def tuned(tracker, tmp_path_factory):
    """The tune CLI in its own process, as a user runs it. Also faster than in pytest's process
    (measured 140 s vs 205 s for this fixture): building the tuning context imports TVM's tensor
    intrinsics, whose TVMScript parser inspects the whole call stack for each of ~500 functions."""
    address, device = tracker
    out = tmp_path_factory.mktemp("tune-rpc") / "rec"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "tune", "--target", "snapdragon8elite",
                           "--variant", "tiny", "--resolution", "64", "--rpc-tracker", address, "--rpc-key", KEY,
                           "--trials", "2", "--only", TASK, "--time-budget", "10m", "--json", "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, proc.stderr, summary, device, seconds


def test_tune_measures_candidates_on_the_emulated_device(tuned):
    from edgeavs.compiler.records import RecordsDir

    out, output, summary, device, _ = tuned
    assert summary["target"] == "snapdragon8elite" and summary["trials"] == 2 and summary["tasks"] == 1
    assert summary["database"]["records"] >= 1
    # the device: found through the tracker, linked for Linux, known to be emulated
    dev = summary["device"]
    assert (dev["key"], dev["os"], dev["linker"], dev["machine"]) == (KEY, "linux", "aarch64-linux-gnu-gcc",
                                                                        "aarch64")
    assert dev["emulated"] and dev["emulator"] == f"qemu-aarch64 -cpu {device.cpu}"
    notes = [ln for ln in output.splitlines() if "timings are meaningless" in ln]
    assert notes == [f"note: the device is emulated (qemu-aarch64 -cpu {device.cpu}): its timings are "
                     "meaningless, tuning there only proves the build/upload/measure path works"]
    log = [json.loads(line) for line in (out / "tune_log.jsonl").read_text().splitlines()]
    assert {"device": dev} in log
    rounds = [e for e in log if "round" in e]
    assert rounds and rounds[0]["task"] == TASK and math.isfinite(rounds[0]["best_us"])
    # every record was measured on the device: finite, positive run times
    records = RecordsDir(out).database().get_all_tuning_records()
    assert len(records) == summary["database"]["records"]
    for rec in records:
        secs = [float(s) for s in rec.run_secs]
        assert secs and all(math.isfinite(s) and 0 < s < 1e9 for s in secs), secs
    # the server ran what the runner uploaded (the candidate library, loaded on the device)
    assert any("load_module candidate.so" in ln for ln in device.server_log)


def test_records_compile_for_the_phone_and_verify_under_emulation(tuned, tmp_path, monkeypatch):
    out, *_ = tuned
    for var in NO_NDK:
        monkeypatch.delenv(var, raising=False)
    art = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--target", "snapdragon8elite", "--variant", "tiny",
                                  "--resolution", "64", "--records", str(out), "-q", "-o", str(art)])
    assert r.exit_code == 0, r.output[-2000:]
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["records"]["records"] >= 1
    assert [lib["file"] for lib in manifest["libraries"]] == ["model-linux-aarch64.so"]
    r = CliRunner().invoke(main, ["verify", str(art), "--device", "emulated", "--seeds", "1"])
    assert r.exit_code == 0 and r.output.strip().splitlines()[-1] == "PASS", r.output[-2000:]


def test_candidate_is_built_without_tensor_intrinsics_and_linked_for_aarch64(tmp_path):
    """The remote builder's f_build/f_export, as a builder worker process runs them."""
    from edgeavs.device.isa import check_no_sve

    from .conftest import ORYON

    code = f"""
import sys
from edgeavs.tvm_api import IRModule, make_target, te
from edgeavs.tune.remote import CrossExport, build_candidate
a = te.placeholder((1024,), name="a")
b = te.compute((1024,), lambda i: a[i] * 2.0 + 1.0, name="b")
lib = build_candidate(IRModule({{"main": te.create_prim_func([a, b])}}), make_target({ORYON!r}))
print(CrossExport("aarch64-linux-gnu-gcc")(lib), "tvm.s_tir.tensor_intrin" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    path, intrinsics_imported = proc.stdout.split()
    try:
        assert intrinsics_imported == "False"
        header = Path(path).read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
        assert check_no_sve(path) > 0
    finally:  # MetaSchedule removes a candidate's directory after measuring it; here we do
        shutil.rmtree(Path(path).parent)


def test_unreachable_tracker_is_one_line(tmp_path):
    port = _free_port()  # nothing listens there any more
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, ["tune", "--target", "snapdragon8elite", "--variant", "tiny",
                                  "--resolution", "64", "--rpc-tracker", f"127.0.0.1:{port}",
                                  "--rpc-key", KEY, "-o", str(tmp_path / "rec")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (f"Error: cannot reach the RPC tracker at 127.0.0.1:{port}: "
                                                 "Connection refused")
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "rec").exists()


def test_unknown_key_is_one_line(tracker, tmp_path):
    address, _ = tracker
    r = CliRunner().invoke(main, ["tune", "--target", "snapdragon8elite", "--variant", "tiny",
                                  "--rpc-tracker", address, "--rpc-key", "no-such-phone",
                                  "-o", str(tmp_path / "rec")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (f"Error: no device registered with key 'no-such-phone' "
                                                 f"at the RPC tracker {address} (registered keys: {KEY})")
    assert not (tmp_path / "rec").exists()


def test_android_device_without_ndk_is_one_line(tracker, tmp_path, monkeypatch):
    address, _ = tracker
    for var in NO_NDK:
        monkeypatch.delenv(var, raising=False)
    r = _tune(address, tmp_path / "rec", "--remote-os", "android")
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == ("Error: cannot link for Android: no Android NDK configured "
                                                 "(set ANDROID_NDK_HOME or TVM_NDK_CC)")
    assert not (tmp_path / "rec").exists()


def test_knob_search_times_our_kernels_on_the_device(tracker, tmp_path):
    """Over RPC the knob spaces of edgeavs's own schedules are searched too: each candidate linked for the
    device and timed there; winners (if the emulator's meaningless timings give any) must also win end to end
    on the device before they are kept, and whatever is kept compiles."""
    from edgeavs.compiler.records import RecordsDir

    address, device = tracker
    out = tmp_path / "rec"
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "tune", "--target", "snapdragon8elite",
                           "--variant", "tiny", "--resolution", "64", "--rpc-tracker", address, "--rpc-key", KEY,
                           "--trials", "3", "--only", "fused_conv2d2_", "--time-budget", "10m", "--json",
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    k = summary["knobs"]
    assert k["functions"] >= 1 and 1 <= k["trials"] <= 3
    entries = RecordsDir(out).read_knobs()
    assert len(entries) == k["functions"]
    for e in entries.values():
        assert e["measured"] == "device" and e["default_us"] > 0 and e["candidates"] >= 1
        if e["config"] is not None:
            assert e["best_us"] < e["default_us"]
    kept = sum(1 for e in entries.values() if e["config"] is not None)
    assert kept == k["tuned"]
    if any("rejected" in e or e["config"] is not None for e in entries.values()):
        assert k["end_to_end"]["default_ms"] > 0 and k["end_to_end"]["tuned_ms"] > 0
    log = [json.loads(line) for line in (out / "tune_log.jsonl").read_text().splitlines()]
    assert [e["knobs"]["measured"] for e in log if "knobs" in e] == ["device"]
    r = CliRunner().invoke(main, ["compile", "--target", "snapdragon8elite", "--variant", "tiny",
                                  "--resolution", "64", "--records", str(out), "-q", "-o", str(tmp_path / "art")])
    assert r.exit_code == 0, r.output[-2000:]
    used = json.loads((tmp_path / "art" / "manifest.json").read_text())["schedules"]["knobs"]
    assert used["records"] == kept and used["stale"] == 0
