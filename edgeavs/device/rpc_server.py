"""A small in-process TVM RPC server for an AArch64 guest (qemu user mode) or a Linux board.

Why not ``python -m tvm.exec.rpc_server``: its worker is a ``PopenWorker`` that re-executes
``sys.executable``; under qemu-user that is an AArch64 ELF the (x86) kernel cannot exec
(ENOEXEC). This server speaks the same wire protocol (so ``tvm.rpc.connect`` and
``edgeavs verify --rpc HOST:PORT`` work unchanged) and serves each session in a forked child
(``fork`` works under qemu-user; ``exec`` does not), so a crashing model (SIGILL from an
instruction the CPU lacks) ends that session only and is reported on stderr.

It needs only the TVM *runtime* (``libtvm_runtime.so``; the compiler library is not shipped
to the guest) and the standard library: it never imports edgeavs, so it runs as a plain
script::

    python3 rpc_server.py --host 127.0.0.1 --port 0 [--key KEY] [--tracker HOST:PORT]

It listens on loopback only unless ``--allow-remote`` is given (on a board reached over the
network): TVM's RPC protocol loads and runs whatever library a client uploads, with no
authentication, so anyone who can reach the port can run code on the machine; with the flag
the server says so on stderr. SIGTERM and SIGHUP stop it and its session, and a session's
forked child is killed when the server dies.

Once listening it prints exactly one line ``edgeavs-rpc-server listening on HOST:PORT``
(the real port when ``--port 0``) to stdout and flushes it; the emulator launcher waits for
that line.

For MetaSchedule's ``RPCRunner`` (tuning) a session also needs ``remove`` (in the runtime) and
``tvm.contrib.random.random_fill_for_measure``, which lives in ``libtvm_runtime_extra.so``: a
runtime-only TVM (``TVM_USE_RUNTIME_LIB=1``, as in the guest) does not load that library, so the
server loads it once at start-up. Clients that know this server call :data:`INFO_FUNC` to learn
what the device is, and in particular whether it is an emulator (``--emulator``, set by the
launcher), whose timings mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import resource
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time

READY = "edgeavs-rpc-server listening on"
INFO_FUNC = "edgeavs.rpc.server.info"
"""Global function on the server: a JSON object ``{"server", "os", "machine", "tvm",
"emulator"}`` (``emulator`` is null on real hardware)."""


REMOTE_WARNING = ("anyone who can reach {address} can run code on this machine "
                  "(TVM RPC loads whatever library a client uploads, without authentication)")


def is_loopback_host(host: str) -> bool:
    """``host`` names only loopback addresses (127.0.0.0/8, ::1, ``localhost``).

    A name is resolved (every address it resolves to must be loopback); ``""`` and
    ``0.0.0.0``/``::`` (every interface) are not loopback. Raises ``OSError`` for a name that
    does not resolve."""
    name = str(host).strip().strip("[]")
    if not name:
        return False
    try:
        addrs = [ipaddress.ip_address(name.split("%")[0])]
    except ValueError:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        addrs = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    mapped = [getattr(a, "ipv4_mapped", None) or a for a in addrs]  # ::ffff:127.0.0.1
    return bool(mapped) and all(a.is_loopback for a in mapped)


def _log(msg: str) -> None:
    sys.stderr.write(f"[rpc-server {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed the connection during the handshake")
        buf += chunk
    return buf


def _handshake(conn: socket.socket, key: str, base, server_key: str | None = None) -> bool:
    """TVM's RPC greeting: magic, then ``client:<key> [opts]``; we answer ``server:<key>``.

    An empty server key accepts every client key (a private server on loopback)."""
    (magic,) = struct.unpack("<i", _recv_exact(conn, 4))
    if magic != base.RPC_MAGIC:
        return False
    (keylen,) = struct.unpack("<i", _recv_exact(conn, 4))
    words = _recv_exact(conn, keylen).decode("utf-8").split()
    client_key = words[0] if words else ""
    if not client_key.startswith("client:") or (key and client_key != "client:" + key):
        conn.sendall(struct.pack("<i", base.RPC_CODE_MISMATCH))
        _log(f"rejected key {client_key!r}")
        return False
    server_key = ("server:" + (key if server_key is None else server_key)).encode("utf-8")
    conn.sendall(struct.pack("<i", base.RPC_CODE_SUCCESS))
    conn.sendall(struct.pack("<i", len(server_key)))
    conn.sendall(server_key)
    return True


def _load_runtime_extra() -> str | None:
    """Load ``libtvm_runtime_extra.so`` beside the TVM runtime, if present (registers the
    random fill MetaSchedule's runner allocates arguments with). Returns its path."""
    import ctypes

    import tvm

    path = os.path.join(os.path.dirname(tvm.__file__), "lib", "libtvm_runtime_extra.so")
    if not os.path.isfile(path):
        return None
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        _log(f"cannot load {os.path.basename(path)}: {exc}")
        return None
    return path


def server_info(emulator: str | None = None) -> dict:
    """What :data:`INFO_FUNC` answers."""
    import platform

    import tvm

    return {"server": "edgeavs", "os": platform.system().lower(), "machine": platform.machine(),
            "tvm": tvm.__version__, "emulator": emulator or None}


def _install_session_functions(workdir: str, info: dict | None = None) -> None:
    """The globals the client calls: where uploads go, loading an uploaded module, and what
    this device is."""
    import json

    import tvm_ffi
    from tvm.runtime import load_module

    info_json = json.dumps(info if info is not None else server_info())

    @tvm_ffi.register_global_func(INFO_FUNC, override=True)
    def _info():
        return info_json

    @tvm_ffi.register_global_func("tvm.rpc.server.workpath", override=True)
    def _workpath(path):
        return os.path.join(workdir, path)

    @tvm_ffi.register_global_func("tvm.rpc.server.load_module", override=True)
    def _load(file_name):
        path = os.path.join(workdir, file_name)
        _log(f"load_module {file_name}")
        return load_module(path)


def _serve_session(conn: socket.socket, workdir: str, info: dict | None = None) -> None:
    """Run one RPC session to its end in this process (a forked child)."""
    from tvm.rpc import _ffi_api

    os.chdir(workdir)
    _install_session_functions(workdir, info)
    _ffi_api.ServerLoop(conn.fileno())


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def _register_with_tracker(tracker: str, key: str, port: int, custom_addr: str | None):
    """Announce this server to a TVM RPC tracker (``[PUT, key, (port, matchkey), addr]``)."""
    import json

    from tvm.rpc import base

    host, _, tport = tracker.rpartition(":")
    sock = socket.create_connection((host, int(tport)))
    sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
    (magic,) = struct.unpack("<i", _recv_exact(sock, 4))
    if magic != base.RPC_TRACKER_MAGIC:
        raise RuntimeError(f"{tracker} is not a TVM RPC tracker")

    def call(msg):
        data = json.dumps(msg).encode("utf-8")
        sock.sendall(struct.pack("<i", len(data)) + data)
        (n,) = struct.unpack("<i", _recv_exact(sock, 4))
        return json.loads(_recv_exact(sock, n).decode("utf-8"))

    call([base.TrackerCode.UPDATE_INFO, {"key": "server:" + key, "addr": (custom_addr, port)}])
    matchkey = f"{key}:{os.getpid()}"
    call([base.TrackerCode.PUT, key, (port, matchkey), custom_addr])
    return sock, matchkey, call


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def _die_with_parent() -> None:
    """A session child (forked) is SIGKILLed when the server dies, however it dies: it holds a
    client's connection and must not outlive the server (Linux ``PR_SET_PDEATHSIG``; also under
    qemu-user, which passes it to the host)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def serve(host: str = "127.0.0.1", port: int = 0, key: str = "", tracker: str | None = None,
          custom_addr: str | None = None, fork: bool = True, once: bool = False,
          work_root: str | None = None, emulator: str | None = None,
          allow_remote: bool = False) -> None:
    """Listen on ``host:port`` and serve RPC sessions one after another until killed.

    Only on a loopback ``host`` unless ``allow_remote``: whoever reaches the port can run code
    here (a warning says so on stderr). SIGTERM and SIGHUP end the server and its session.

    Each session's uploads go to a fresh directory under ``work_root`` (default: the temp
    directory), removed when the session ends or the server is terminated (SIGTERM).
    ``emulator``: how this server is emulated (e.g. ``qemu-aarch64 -cpu max``), reported by
    :data:`INFO_FUNC`."""
    try:
        loopback = is_loopback_host(host)
    except OSError as exc:
        raise SystemExit(f"rpc_server: --host {host!r} does not resolve: {exc}") from None
    if not loopback:
        if not allow_remote:
            raise SystemExit(f"rpc_server: --host {host!r} is not a loopback address; anyone who "
                             "can reach it could run code here: pass --allow-remote to listen "
                             "there anyway")
        _log("warning: " + REMOTE_WARNING.format(address=f"{host}:{port}"))

    from tvm.rpc import base

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)

    # A session killed by SIGILL/SIGSEGV must not leave a qemu core file behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _load_runtime_extra()  # before forking: every session inherits it
    info = server_info(emulator)
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    host = host.strip("[]")
    listen = socket.socket(family, socket.SOCK_STREAM)
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listen.bind((host, port))
    listen.listen(4)
    port = listen.getsockname()[1]
    expected_key = key
    tracker_call = None
    if tracker:
        if not key:
            raise SystemExit("rpc_server: --tracker needs --key")
        _, expected_key, tracker_call = _register_with_tracker(tracker, key, port, custom_addr)
    print(f"{READY} {host}:{port}", flush=True)

    while True:
        conn, addr = listen.accept()
        try:
            ok = _handshake(conn, expected_key, base, server_key=key)
        except (ConnectionError, OSError, struct.error) as exc:
            _log(f"handshake with {addr} failed: {exc}")
            ok = False
        if not ok:
            conn.close()
            continue
        _log(f"session from {addr[0]}:{addr[1]}")
        workdir = tempfile.mkdtemp(prefix="edgeavs-rpc-", dir=work_root)
        if not fork:
            try:
                _serve_session(conn, workdir, info)
            finally:
                conn.close()
                os.chdir("/")
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            pid = os.fork()
            if pid == 0:  # child: serve, then leave without running the parent's cleanup
                code = 0
                try:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    signal.signal(signal.SIGHUP, signal.SIG_DFL)
                    _die_with_parent()
                    listen.close()
                    _serve_session(conn, workdir, info)
                except BaseException as exc:  # noqa: BLE001 - reported, then the child exits
                    _log(f"session error: {type(exc).__name__}: {exc}")
                    code = 1
                finally:
                    os._exit(code)
            conn.close()
            try:
                _, status = os.waitpid(pid, 0)
                _log(f"session ended ({_describe_status(status)})")
            finally:  # also when terminated mid-session: end the child, drop its uploads
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                shutil.rmtree(workdir, ignore_errors=True)
        if tracker_call is not None:  # a tracker hands out a match key once: offer it again
            tracker_call([base.TrackerCode.PUT, key, (port, expected_key), custom_addr])
        if once:
            return


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--key", default="", help="device key (empty: accept any client)")
    ap.add_argument("--tracker", help="HOST:PORT of a TVM RPC tracker to register with")
    ap.add_argument("--custom-addr", help="address the tracker hands to clients")
    ap.add_argument("--no-fork", action="store_true", help="serve sessions in this process")
    ap.add_argument("--once", action="store_true", help="exit after the first session")
    ap.add_argument("--work-root", help="directory for the sessions' uploads (default: temp)")
    ap.add_argument("--emulator", help="how this device is emulated (reported to clients)")
    ap.add_argument("--allow-remote", action="store_true",
                    help="listen on a --host that is not loopback (anyone who reaches the port "
                         "can run code on this machine)")
    args = ap.parse_args(argv)
    serve(args.host, args.port, args.key, args.tracker, args.custom_addr,
          fork=not args.no_fork, once=args.once, work_root=args.work_root,
          emulator=args.emulator, allow_remote=args.allow_remote)
    return 0


if __name__ == "__main__":
    sys.exit(main())
