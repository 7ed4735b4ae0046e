"""``edgeavs device serve`` leaves nothing behind: SIGTERM/SIGHUP stop qemu like Ctrl-C, and a
parent killed outright (SIGKILL) takes its emulator with it. Loopback ports only."""

import os
import selectors
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

SERVE = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())",
         "device", "serve", "--port", "0"]


def _start_serving(tmp_path):
    """The serve process, its port and its children, once it prints that it serves."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen(SERVE, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                text=True, env=env)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and not line.startswith("serving on "):
        if proc.poll() is not None:
            pytest.fail(f"serve exited early: {(tmp_path / 'err').read_text()}")
        if sel.select(timeout=1.0):
            line = proc.stdout.readline()
    assert line.startswith("serving on 127.0.0.1:"), (tmp_path / "err").read_text()
    port = int(line.split()[2].rstrip(";").rpartition(":")[2])
    children = psutil.Process(proc.pid).children(recursive=True)
    assert any("qemu-aarch64" in " ".join(c.cmdline()) for c in children)
    return proc, port, children


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(procs, timeout=15.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in procs if not _gone(p)]
        if not left:
            return []
        time.sleep(0.1)
    return left


def _kill(proc, children) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for p in children:
        if not _gone(p):
            p.kill()


def _port_closed(port: int, timeout: float = 10.0) -> bool:
    """Nothing listens on ``port`` within ``timeout``. A killed qemu's thread-group leader shows as a
    zombie while its other threads still tear down and hold the listening socket (measured: up to
    ~1 s on a loaded machine), so the check polls instead of connecting once."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.settimeout(2.0)
            try:
                s.connect(("127.0.0.1", port))
            except ConnectionRefusedError:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_signal_stops_the_emulator(emulator, tmp_path, sig):
    proc, port, children = _start_serving(tmp_path)
    try:
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0  # a requested stop, cleaned up like Ctrl-C
        assert "stopping the emulated device" in (tmp_path / "err").read_text()
        assert _wait_gone(children, timeout=1.0) == []  # waited for, not merely signalled
        assert _port_closed(port)
    finally:  # only on failure: nothing of this test outlives it
        _kill(proc, children)


def test_killed_parent_takes_the_emulator_with_it(emulator, tmp_path):
    """SIGKILL allows no clean-up: qemu gets SIGKILL from the kernel (PR_SET_PDEATHSIG)."""
    proc, port, children = _start_serving(tmp_path)
    try:
        proc.kill()
        proc.wait(timeout=30)
        assert _wait_gone(children) == []
        assert _port_closed(port)
    finally:
        _kill(proc, children)


def test_terminate_as_interrupt_runs_the_cleanup_once_and_restores_handlers():
    from edgeavs.device.process import terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    cleaned = []
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with terminate_as_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # interrupted at once
            finally:
                os.kill(os.getpid(), signal.SIGHUP)  # a second signal does not cut clean-up short
                cleaned.append(True)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before


def test_serve_reports_an_emulator_that_died_on_its_own(emulator, tmp_path):
    proc, port, children = _start_serving(tmp_path)
    try:
        qemu = next(c for c in children if "qemu-aarch64" in " ".join(c.cmdline()))
        qemu.kill()
        assert proc.wait(timeout=30) == 1
        last = (tmp_path / "err").read_text().strip().splitlines()[-1]
        assert last == "Error: the emulated RPC server exited: killed by SIGKILL"
        assert _port_closed(port)
    finally:
        _kill(proc, children)
