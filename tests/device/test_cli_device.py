"""``edgeavs device ...``: exit codes and the exact one-line errors."""

import json

from click.testing import CliRunner

from cli import main


def test_setup_emulator_is_idempotent(emulator):
    res = CliRunner().invoke(main, ["device", "setup-emulator", "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.output)
    assert status["ready"] and status["changed"] is False
    assert status["stamp"]["wheels"][0] == "apache-tvm==0.27.0.post1"
    assert status["stamp"]["guest_check"]["machine"] == "aarch64"


def test_emulator_status(emulator):
    res = CliRunner().invoke(main, ["device", "emulator-status"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("emulator: ready\n") and "qemu-aarch64 version 7.2" in res.output


def test_emulator_status_not_set_up(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEAVS_CACHE", str(tmp_path / "empty"))
    res = CliRunner().invoke(main, ["device", "emulator-status"])
    assert res.exit_code == 1
    assert res.output.startswith("emulator: not set up\n")


def test_emulated_run_without_guest_is_one_line_error(tmp_path, monkeypatch):
    """A device run on a machine without the guest says how to get it."""
    import pytest

    from edgeavs.device.emulator import EmulatedDevice
    from edgeavs.errors import EdgeAVSError

    monkeypatch.setenv("EDGEAVS_CACHE", str(tmp_path / "empty"))
    with pytest.raises(EdgeAVSError) as exc:
        EmulatedDevice().start()
    msg = str(exc.value)
    assert msg.startswith("the AArch64 emulator is not set up (no guest in ")
    assert msg.endswith("run 'edgeavs device setup-emulator'")


def test_check_library(aarch64_libs):
    ok = CliRunner().invoke(main, ["device", "check-library", str(aarch64_libs["matmul"])])
    assert ok.exit_code == 0 and "no SVE/SME" in ok.output
    bad = CliRunner().invoke(main, ["device", "check-library", str(aarch64_libs["eltwise_sve"])])
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: eltwise_sve.so contains ")
    assert "SVE/SME instruction(s)" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_serve_rejects_a_bad_tracker_address():
    res = CliRunner().invoke(main, ["device", "serve", "--tracker", "nowhere"])
    assert res.exit_code == 1
    assert res.output == "Error: --tracker 'nowhere' is not HOST:PORT (e.g. 127.0.0.1:9190)\n"


def test_verify_rejects_two_devices(tmp_path):
    res = CliRunner().invoke(main, ["verify", str(tmp_path), "--device", "emulated",
                                    "--rpc", "127.0.0.1:9090"])
    assert res.exit_code != 0
    assert "choose one of --device emulated, --rpc" in res.output


def test_stamp_decides_readiness(tmp_path, monkeypatch, emulator):
    """A guest whose pins changed, or that never passed its check under qemu, is not ready."""
    from edgeavs.device import emulator as emu

    monkeypatch.setenv("EDGEAVS_CACHE", str(tmp_path))
    guest = emu.Guest(emu.guest_dir())
    guest.python.parent.mkdir(parents=True)
    guest.python.touch()
    guest.site.mkdir()
    stamp = {**emu.expected_stamp(), "guest_check": {"machine": "aarch64"}}
    guest.stamp.write_text(json.dumps(stamp))
    assert emu.emulator_status()["ready"]
    guest.stamp.write_text(json.dumps({**stamp, "guest_check": None}))
    assert not emu.emulator_status()["ready"]
    monkeypatch.setattr(emu, "GUEST_WHEELS", emu.GUEST_WHEELS[:-1] + ("numpy==9.9",))
    guest.stamp.write_text(json.dumps(stamp))
    assert not emu.emulator_status()["ready"]
