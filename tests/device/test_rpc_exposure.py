"""TVM RPC runs whatever library a client uploads, unauthenticated: the servers edgeavs starts
listen on loopback unless told otherwise (``--allow-remote``), and then say what that means.

Nothing here binds or sends traffic to an address that is not loopback: every refusal happens
before the socket exists, and the one path that is allowed stops before listening."""

import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.device import emulator as emu
from edgeavs.device import rpc_server
from edgeavs.device.net import check_listen_host
from edgeavs.errors import EdgeAVSError

LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LocalHost",
            "::ffff:127.0.0.1"]
NOT_LOOPBACK = ["0.0.0.0", "", "::", "192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_is_allowed_without_a_word(host):
    assert rpc_server.is_loopback_host(host)
    assert check_listen_host(host) is None
    assert check_listen_host(host, allow_remote=True) is None


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_other_addresses_are_refused_without_the_flag(host):
    assert not rpc_server.is_loopback_host(host)
    with pytest.raises(EdgeAVSError) as exc:
        check_listen_host(host)
    assert str(exc.value) == (f"--host {host!r} is not a loopback address and TVM RPC runs any "
                              "library a client uploads, unauthenticated: pass --allow-remote "
                              "to listen there anyway")


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_with_the_flag_a_one_line_warning(host):
    warning = check_listen_host(host, allow_remote=True, port=9190)
    assert warning == (f"warning: anyone who can reach {host}:9190 can run code on this machine "
                       "(TVM RPC loads whatever library a client uploads, without authentication)")


def test_a_name_that_does_not_resolve_is_a_one_line_error():
    with pytest.raises(EdgeAVSError, match=r"^--host 'no-such-host\.invalid': cannot resolve the "
                                           r"address \(.+\)$"):
        check_listen_host("no-such-host.invalid", allow_remote=True)


def test_serve_refuses_a_public_host_before_starting_anything(monkeypatch):
    def no_emulator():  # the refusal comes first: nothing is started, nothing binds
        raise AssertionError("the emulator was started")

    monkeypatch.setattr(emu, "require_emulator", no_emulator)
    res = CliRunner().invoke(main, ["device", "serve", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 1
    assert res.output == ("Error: --host '0.0.0.0' is not a loopback address and TVM RPC runs any "
                          "library a client uploads, unauthenticated: pass --allow-remote to "
                          "listen there anyway\n")


def test_serve_with_allow_remote_warns_on_stderr(monkeypatch):
    def stop_before_listening():
        raise EdgeAVSError("stopped before listening")

    monkeypatch.setattr(emu, "require_emulator", stop_before_listening)
    res = CliRunner().invoke(main, ["device", "serve", "--host", "0.0.0.0", "--port", "9190",
                                    "--allow-remote"])
    assert res.exit_code == 1
    assert res.stderr.splitlines()[0] == (
        "warning: anyone who can reach 0.0.0.0:9190 can run code on this machine "
        "(TVM RPC loads whatever library a client uploads, without authentication)")
    assert res.stderr.splitlines()[-1] == "Error: stopped before listening"


def test_emulated_device_refuses_a_public_host(monkeypatch):
    monkeypatch.setattr(emu, "require_emulator", lambda: pytest.fail("the emulator was started"))
    with pytest.raises(EdgeAVSError, match=r"^--host '0\.0\.0\.0' is not a loopback address"):
        emu.EmulatedDevice(host="0.0.0.0").start()


def test_the_standalone_server_refuses_a_public_host_before_binding(monkeypatch):
    """``python3 rpc_server.py --host 0.0.0.0`` (a board): one line on stderr, exit status 1."""
    import socket

    def no_socket(*a, **k):
        raise AssertionError("a socket was created")

    monkeypatch.setattr(socket, "socket", no_socket)
    with pytest.raises(SystemExit) as exc:
        rpc_server.main(["--host", "0.0.0.0", "--port", "0"])
    assert str(exc.value.code) == ("rpc_server: --host '0.0.0.0' is not a loopback address; anyone "
                                   "who can reach it could run code here: pass --allow-remote to "
                                   "listen there anyway")
