"""The emulated AArch64 device end to end: qemu RPC server, upload, remote Relax VM, stop."""

from pathlib import Path

import numpy as np
import pytest

from edgeavs.device.emulator import EmulatedDevice, qemu_cpu_for
from edgeavs.device.remote import DeviceSpec, device_spec, open_session
from edgeavs.errors import EdgeAVSError

from .conftest import matmul_reference


def test_round_trip_matches_numpy(aarch64_libs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64), dtype=np.float32)
    w = rng.standard_normal((64, 32), dtype=np.float32)
    with open_session(DeviceSpec("emulated"), mcpu="oryon-1") as session:
        assert session.spec.qemu_cpu == "max,sve=off,sme=off"
        emu = session.emulator
        uploads = Path(emu._work_root)
        assert uploads.is_dir()
        y, s = session.load_vm(aarch64_libs["matmul"])(x, w)  # a tuple output
        (z,) = session.load_vm(aarch64_libs["eltwise"])(x.ravel()[:1].repeat(10007),
                                                        np.full(10007, -0.5, np.float32))
    ry, rs = matmul_reference(x, w)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(s, rs, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(z, np.maximum(x.ravel()[0] - 0.5, 0).repeat(10007))
    assert emu.proc is None  # stopped when the block ended
    assert not uploads.exists()  # and the uploaded libraries are gone


def test_sve_library_dies_with_sigill_and_server_stops(aarch64_libs):
    """The guard: SVE code on the Oryon-like CPU (no SVE) is an illegal instruction."""
    ones = np.ones(10007, np.float32)
    with pytest.raises(EdgeAVSError) as exc:
        with open_session(DeviceSpec("emulated"), mcpu="oryon-1") as session:
            emu = session.emulator
            session.load_vm(aarch64_libs["eltwise_sve"])(ones, ones)
    assert "killed by SIGILL" in str(exc.value) and "\n" not in str(exc.value)
    assert emu.proc is None  # stopped on the error path too


def test_server_survives_a_crashed_session(aarch64_libs):
    """Each session is a forked child: after a SIGILL the next client is served."""
    ones = np.ones(10007, np.float32)
    with EmulatedDevice() as emu:
        spec = DeviceSpec("rpc", emu.host, emu.port)
        with open_session(spec) as s1:
            s1.emulator = emu
            with pytest.raises(EdgeAVSError, match="SIGILL"):
                s1.load_vm(aarch64_libs["eltwise_sve"])(ones, ones)
        with open_session(spec) as s2:
            out = s2.load_vm(aarch64_libs["eltwise"])(ones, ones)
        np.testing.assert_array_equal(out[0], 2 * ones)
        proc = emu.proc
    assert proc.poll() is not None


def test_unreachable_rpc_is_one_line_error():
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EdgeAVSError, match=rf"cannot reach the RPC server 127.0.0.1:{port}"):
        with open_session(device_spec(rpc=f"127.0.0.1:{port}")):
            pass


@pytest.mark.parametrize("kwargs, message", [
    ({"rpc": "phone"}, "--rpc 'phone' is not HOST:PORT"),
    ({"rpc": "h:99999"}, "is not HOST:PORT"),
    ({"rpc_tracker": "h:9190"}, "--rpc-tracker needs --rpc-key"),
    ({"rpc_key": "sd8e"}, "--rpc-key needs --rpc-tracker"),
    ({"device": "emulated", "rpc": "h:1"}, "choose one of --device emulated, --rpc"),
    ({"device": "phone"}, "--device 'phone'"),
])
def test_option_errors(kwargs, message):
    with pytest.raises(EdgeAVSError, match=message):
        device_spec(**kwargs)


def test_specs():
    assert device_spec() is None
    assert device_spec(device="emulated") == DeviceSpec("emulated")
    assert device_spec(rpc="10.1.2.3:9090") == DeviceSpec("rpc", "10.1.2.3", 9090, os="linux")
    t = device_spec(rpc_tracker="127.0.0.1:9190", rpc_key="sd8e")
    assert (t.kind, t.os, t.key) == ("tracker", "android", "sd8e")
    assert t.runner_config() == {"tracker_host": "127.0.0.1", "tracker_port": 9190,
                                 "tracker_key": "sd8e", "session_timeout_sec": 600}


def test_qemu_cpu_for_targets():
    assert qemu_cpu_for("oryon-1", ["+neon", "+i8mm"]) == "max,sve=off,sme=off"
    assert qemu_cpu_for("cortex-a76", ["+neon", "+dotprod"]) == "cortex-a76"
    assert qemu_cpu_for("neoverse-v1", ["+sve"]) == "max"


def test_through_a_tracker(aarch64_libs):
    """--rpc-tracker/--rpc-key: the emulator registers with a TVM tracker; two sessions in a row
    (a closed session frees the device for the next request)."""
    import tornado  # noqa: F401 - TVM's tracker needs it; a test extra, so its absence is a failure
    from edgeavs.tvm_api import tvm  # noqa: F401 - tvm.rpc below
    from tvm.rpc.tracker import Tracker

    tracker = Tracker(host="127.0.0.1", port=9190, port_end=9390, silent=True)
    try:
        address = f"127.0.0.1:{tracker.port}"
        spec = device_spec(rpc_tracker=address, rpc_key="sd8e-emu", remote_os="linux")
        ones = np.ones(10007, np.float32)
        with EmulatedDevice(key="sd8e-emu", tracker=address):
            for _ in range(2):
                with open_session(spec) as session:
                    (out,) = session.load_vm(aarch64_libs["eltwise"])(ones, ones)
                np.testing.assert_array_equal(out, 2 * ones)
    finally:
        tracker.terminate()


def test_aarch64_linux_board_on_cortex_a76_model(emulator, tmp_path):
    """The generic board target runs on qemu's own Cortex-A76 model."""
    from edgeavs.device.export import export_libraries
    from edgeavs.targets import load_checked_target
    from edgeavs.tvm_api import tvm

    from .conftest import matmul_module

    target = load_checked_target("aarch64-linux")
    rec = export_libraries(tvm.compile(matmul_module(), target=target.to_tvm()), tmp_path, target)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 64), dtype=np.float32)
    w = rng.standard_normal((64, 32), dtype=np.float32)
    with open_session(DeviceSpec("emulated"), mcpu=target.mcpu, mattr=target.mattr) as session:
        assert session.spec.qemu_cpu == "cortex-a76"
        y, s = session.load_vm(tmp_path / rec["library"])(x, w)
    ry, rs = matmul_reference(x, w)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(s, rs, rtol=1e-5, atol=1e-3)
