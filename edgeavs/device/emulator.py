"""An emulated AArch64 device: qemu user mode running a Debian arm64 Python with the TVM runtime.

``setup_emulator()`` (``edgeavs device setup-emulator``) prepares, idempotently:

- on the host (apt, as root): ``qemu-user`` (7.2 on Debian 12) and the AArch64 cross toolchain
  ``gcc-aarch64-linux-gnu`` / ``binutils-aarch64-linux-gnu`` (links the verification library,
  ``objdump`` for the no-SVE check);
- for the cycle projection (:mod:`edgeavs.device.projection`): ``llvm-19`` (apt: ``llvm-mca-19``,
  ``llvm-mc-19``, ``llvm-nm-19``) and the qemu TCG plugin ``plugin/blockcount.c``, built with
  gcc into ``emulator/plugin/`` (once per source version);
- in the cache (``$EDGEAVS_CACHE`` or ``~/.cache/edgeavs``, under ``emulator/``): the *guest*,
  a Debian arm64 Python 3.11 sysroot (``apt-get download`` of :data:`GUEST_DEBS` after
  ``dpkg --add-architecture arm64``, unpacked with ``dpkg -x``, ~10 MB) and the AArch64 wheels
  of :data:`GUEST_WHEELS` (``pip download --platform manylinux_2_28_aarch64``, unpacked; the
  240 MB ``libtvm_compiler.so`` is dropped: the guest only needs the TVM runtime).
  A stamp file records what was installed; a second call with the same pins does nothing.

:class:`EmulatedDevice` starts :mod:`edgeavs.device.rpc_server` under
``qemu-aarch64 -cpu <model>`` on 127.0.0.1 and stops it (also on error). The qemu CPU model
stands in for the target CPU (:func:`qemu_cpu_for`): for the Snapdragon 8 Elite's Oryon cores,
which qemu 7.2 does not model, ``max,sve=off,sme=off`` (Armv8.x/9 with NEON, dotprod, i8mm,
fp16 but no SVE/SME), so a library with SVE instructions dies with SIGILL, as on the phone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgeavs.errors import EdgeAVSError

SETUP_VERSION = 1
"""Bump when the guest layout changes: an older stamp then triggers a rebuild."""

HOST_PACKAGES = ("qemu-user", "gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu",
                 "libc6-dev-arm64-cross")
HOST_TOOLS = {"qemu-aarch64": "qemu-user", "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
              "aarch64-linux-gnu-objdump": "binutils-aarch64-linux-gnu",
              # only a Recommends of the cross gcc, but `gcc -shared` needs its crti.o
              "aarch64 crti.o": "libc6-dev-arm64-cross"}

# A Debian 12 arm64 python3.11 and the C/C++ runtime the TVM runtime and numpy wheels need.
GUEST_DEBS = (
    "libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libexpat1", "libffi8", "libssl3",
    "libbz2-1.0", "liblzma5", "libcrypt1", "libuuid1",
    "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11-minimal",
)
GUEST_PYTHON = "3.11"
# The same TVM as the host (the RPC protocol and the library ABI must match); numpy and the
# small pure dependencies of tvm_ffi pinned for reproducible guests.
GUEST_WHEELS = (
    "apache-tvm==0.27.0.post1",
    "apache-tvm-ffi==0.1.14.post1",
    "numpy==2.4.6",
    "ml_dtypes==0.6.0",
    "typing_extensions==4.15.0",
)
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
# What the guest never needs: the compiler (LLVM inside, 240 MB) and the CUDA runtime.
GUEST_DROP = ("tvm/lib/libtvm_compiler.so", "tvm/lib/libtvm_runtime_cuda.so")

DEFAULT_QEMU_CPU = "max,sve=off,sme=off"
# CPU models qemu 7.2 emulates under the name LLVM uses (qemu-aarch64 -cpu help).
QEMU_MODELS = ("cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76",
               "neoverse-n1", "a64fx")
READY_TIMEOUT_S = 180.0


def _say(log, msg: str) -> None:
    if log:
        log(msg)


# ---------------------------------------------------------------- where things live

def cache_dir() -> Path:
    """``$EDGEAVS_CACHE``, else ``$XDG_CACHE_HOME/edgeavs``, else ``~/.cache/edgeavs``."""
    env = os.environ.get("EDGEAVS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "edgeavs"


@dataclass(frozen=True)
class Guest:
    """The AArch64 guest tree in the cache."""

    root: Path

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def site(self) -> Path:
        return self.root / "site-packages"

    @property
    def python(self) -> Path:
        return self.sysroot / "usr" / "bin" / f"python{GUEST_PYTHON}"

    @property
    def stamp(self) -> Path:
        return self.root / "stamp.json"

    def env(self, threads: int | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QEMU_"))}
        env.update({
            "PYTHONHOME": str(self.sysroot / "usr"),
            "PYTHONPATH": str(self.site),
            "PYTHONNOUSERSITE": "1",
            "TVM_USE_RUNTIME_LIB": "1",
            "TVM_NUM_THREADS": str(threads or _host_cores()),
        })
        return env


def guest_dir() -> Path:
    return cache_dir() / "emulator" / f"aarch64-py{GUEST_PYTHON}"


def _host_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def expected_stamp() -> dict:
    return {"setup_version": SETUP_VERSION, "debs": list(GUEST_DEBS), "wheels": list(GUEST_WHEELS)}


def _read_stamp(guest: Guest) -> dict | None:
    try:
        return json.loads(guest.stamp.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- host tools

def _has_cross_crt() -> bool:
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        return False
    proc = subprocess.run(["aarch64-linux-gnu-gcc", "-print-file-name=crti.o"],
                          capture_output=True, text=True)
    path = proc.stdout.strip()
    return proc.returncode == 0 and os.path.isabs(path) and os.path.isfile(path)


def missing_host_tools() -> list[str]:
    return [tool for tool in HOST_TOOLS
            if not (_has_cross_crt() if tool == "aarch64 crti.o" else shutil.which(tool))]


def _run(cmd, what: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    except FileNotFoundError:
        raise EdgeAVSError(f"{what}: {cmd[0]} not found") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines()
                 if ln.strip() and not ln.startswith(("W:", "WARNING:"))]
        errs = [ln for ln in lines if ln.startswith(("E:", "ERROR:"))]
        raise EdgeAVSError(f"{what} failed: {(errs or lines or [f'exit code {proc.returncode}'])[-1]}")
    return proc


class _Apt:
    """apt-get as root, with ``apt-get update`` run at most once per setup."""

    def __init__(self, log):
        self.log = log
        self.updated = False
        self.env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def require_root(self, why: str) -> None:
        if shutil.which("apt-get") is None:
            raise EdgeAVSError(f"{why}, and apt-get is not available: install "
                               f"{', '.join(HOST_PACKAGES)} (or their equivalents) by hand")
        if os.geteuid() != 0:
            raise EdgeAVSError(f"{why}: run 'edgeavs device setup-emulator' as root "
                               f"(it uses apt-get), or install {', '.join(HOST_PACKAGES)} first")

    def update(self) -> None:
        if not self.updated:
            _say(self.log, "apt-get update")
            _run(["apt-get", "update", "-q"], "apt-get update", env=self.env)
            self.updated = True

    def ensure_arm64(self) -> None:
        archs = _run(["dpkg", "--print-foreign-architectures"], "dpkg").stdout.split()
        if "arm64" not in archs:
            self.require_root("the arm64 Debian packages need 'dpkg --add-architecture arm64'")
            _say(self.log, "dpkg --add-architecture arm64")
            _run(["dpkg", "--add-architecture", "arm64"], "dpkg --add-architecture arm64")
            self.updated = False
        if subprocess.run(["apt-cache", "show", f"python{GUEST_PYTHON}-minimal:arm64"],
                          capture_output=True).returncode != 0:
            self.require_root("the arm64 package lists are missing")
            self.update()

    def install(self, packages, why: str | None = None) -> None:
        self.require_root(why or f"missing host tools ({', '.join(missing_host_tools())})")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
        _say(self.log, " ".join(cmd))
        try:
            _run(cmd, f"apt-get install {' '.join(packages)}", env=self.env)
        except EdgeAVSError:
            if self.updated:
                raise
            self.update()
            _run(cmd, f"apt-get install {' '.join(packages)}", env=self.env)

    def download(self, packages, dest: Path) -> list[Path]:
        cmd = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
               *[p if ":" in p else f"{p}:arm64" for p in packages]]
        _say(self.log, f"apt-get download {len(packages)} arm64 packages")
        _run(cmd, "apt-get download (arm64 guest packages)", cwd=dest, env=self.env)
        return sorted(dest.glob("*.deb"))


# ---------------------------------------------------------------- setup

def emulator_status() -> dict:
    """What is installed, without changing anything."""
    guest = Guest(guest_dir())
    stamp = _read_stamp(guest)
    missing = missing_host_tools()
    ready = (not missing and stamp is not None and _stamp_matches(stamp)
             and bool(stamp.get("guest_check"))  # written only after the guest ran under qemu
             and guest.python.is_file() and guest.site.is_dir())
    qemu = None
    if "qemu-aarch64" not in missing:
        out = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True).stdout
        qemu = out.splitlines()[0] if out else None
    return {"ready": bool(ready), "guest": str(guest.root), "missing_host_tools": missing,
            "qemu": qemu, "stamp": stamp}


def _stamp_matches(stamp: dict) -> bool:
    exp = expected_stamp()
    return all(stamp.get(k) == v for k, v in exp.items())


@contextlib.contextmanager
def _locked(path: Path):
    """One setup at a time (parallel test workers share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def setup_emulator(force: bool = False, log=None) -> dict:
    """Install the host tools and build the guest (idempotent); returns :func:`emulator_status`
    plus ``"changed"`` and ``"seconds"``."""
    t0 = time.perf_counter()
    root = guest_dir()
    with _locked(root.parent / f".{root.name}.lock"):
        status = emulator_status()
        if status["ready"] and _projection_ready() and not force:
            return {**status, "changed": False, "seconds": round(time.perf_counter() - t0, 2)}
        apt = _Apt(log)
        _setup_projection(apt, log, force)
        if emulator_status()["ready"] and not force:
            return {**emulator_status(), "changed": True,
                    "seconds": round(time.perf_counter() - t0, 2)}
        missing = missing_host_tools()
        if missing:
            apt.install(sorted({HOST_TOOLS[t] for t in missing}))
            still = missing_host_tools()
            if still:
                raise EdgeAVSError(f"after apt-get install, still missing: {', '.join(still)}")
        stamp = _read_stamp(Guest(root))
        if force or stamp is None or not _stamp_matches(stamp) or not Guest(root).python.is_file():
            _build_guest(root, apt, log)
        _say(log, "checking the guest: import tvm.rpc, numpy under qemu-aarch64")
        info = _smoke_test(Guest(root))
        stamp = {**_read_stamp(Guest(root)), "guest_check": info}
        Guest(root).stamp.write_text(json.dumps(stamp, indent=2) + "\n")
    return {**emulator_status(), "changed": True, "seconds": round(time.perf_counter() - t0, 2)}


def _projection_ready() -> bool:
    """llvm-19's tools and the qemu plugin of the cycle projection (edgeavs.device.projection)."""
    from edgeavs.device.projection_tools import missing_tools, plugin_file

    return not missing_tools() and plugin_file(cache_dir()).is_file()


def _setup_projection(apt: _Apt, log, force: bool = False) -> None:
    """``apt-get install llvm-19`` (llvm-mca, llvm-mc, llvm-nm) if missing; build the plugin."""
    from edgeavs.device.projection_tools import TOOLS, build_plugin, missing_tools

    missing = missing_tools()
    if missing:
        apt.install(sorted({TOOLS[t] for t in missing}), why=f"missing {', '.join(missing)}")
        still = missing_tools()
        if still:
            raise EdgeAVSError(f"after apt-get install, still missing: {', '.join(still)}")
    build_plugin(cache_dir(), log=lambda m: _say(log, m), force=force)


def _build_guest(root: Path, apt: _Apt, log) -> None:
    """Build the guest beside ``root`` and swap it in (a failed build leaves no half guest)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        guest = Guest(tmp)
        debs_dir = tmp / "debs"
        wheels_dir = tmp / "wheels"
        debs_dir.mkdir()
        wheels_dir.mkdir()
        apt.ensure_arm64()
        debs = apt.download(GUEST_DEBS, debs_dir)
        if not debs:
            raise EdgeAVSError("apt-get download fetched no arm64 packages")
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(guest.sysroot)], f"dpkg-deb -x {deb.name}")
        if not guest.python.is_file():
            raise EdgeAVSError(f"the arm64 packages did not provide {guest.python.name}")

        _say(log, f"pip download {len(GUEST_WHEELS)} aarch64 wheels (~115 MB)")
        plat = [a for p in WHEEL_PLATFORMS for a in ("--platform", p)]
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
              *plat, "--python-version", GUEST_PYTHON, "--implementation", "cp",
              "-d", str(wheels_dir), *GUEST_WHEELS], "pip download (aarch64 wheels)")
        wheels = sorted(wheels_dir.glob("*.whl"))
        if len(wheels) != len(GUEST_WHEELS):
            raise EdgeAVSError(f"pip download fetched {len(wheels)} of {len(GUEST_WHEELS)} "
                               "aarch64 wheels")
        guest.site.mkdir()
        for whl in wheels:
            _unpack_wheel(whl, guest.site)
        for rel in GUEST_DROP:
            (guest.site / rel).unlink(missing_ok=True)

        stamp = {**expected_stamp(),
                 "deb_files": [d.name for d in debs], "wheel_files": [w.name for w in wheels],
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        shutil.rmtree(debs_dir)
        shutil.rmtree(wheels_dir)
        guest.stamp.write_text(json.dumps(stamp, indent=2) + "\n")
        if root.exists():
            old = root.with_name(f".{root.name}.old.{os.getpid()}")
            os.replace(root, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unpack_wheel(whl: Path, dest: Path) -> None:
    """A wheel is a zip laid out for site-packages; keep the exec bits of shared objects."""
    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            path = zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)


def qemu_command(cpu: str, guest: Guest, *args: str) -> list[str]:
    return ["qemu-aarch64", "-cpu", cpu, "-L", str(guest.sysroot), str(guest.python), *args]


def _smoke_test(guest: Guest) -> dict:
    code = ("import platform, numpy, tvm, tvm.rpc; "
            "print(platform.machine(), tvm.__version__, numpy.__version__)")
    try:
        proc = subprocess.run(qemu_command(DEFAULT_QEMU_CPU, guest, "-c", code), env=guest.env(1),
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise EdgeAVSError("the emulated Python did not start within 300 s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise EdgeAVSError(f"the emulated Python cannot import the TVM runtime: "
                           f"{lines[-1] if lines else proc.returncode}")
    machine, tvm_version, numpy_version = proc.stdout.split()
    return {"machine": machine, "tvm": tvm_version, "numpy": numpy_version}


def require_emulator() -> Guest:
    """The ready guest, or a one-line error that says how to get one."""
    status = emulator_status()
    if not status["ready"]:
        why = (f"missing {', '.join(status['missing_host_tools'])}" if status["missing_host_tools"]
               else f"no guest in {status['guest']}")
        raise EdgeAVSError(f"the AArch64 emulator is not set up ({why}): run "
                           "'edgeavs device setup-emulator'")
    return Guest(guest_dir())


# ---------------------------------------------------------------- the emulated device

def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """``sig`` to ``proc``'s process group (it leads one: ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _wait_unreaped(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``proc`` to exit without reaping it (``WNOWAIT``), so its
    process-group id cannot be reused before :func:`_signal_group` has sent the last signal."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # reaped elsewhere
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def qemu_cpu_for(mcpu: str | None, mattr=()) -> str:
    """The qemu ``-cpu`` model that stands in for an LLVM CPU.

    qemu models it by name when it can; otherwise ``max`` with SVE and SME off (qemu 7.2 knows
    neither Oryon nor recent Cortex-X): a superset of the Armv8.x NEON/dotprod/i8mm/fp16 the
    phone has, without the scalable extensions the phone lacks. A target that asks for SVE
    gets plain ``max``.
    """
    if mcpu in QEMU_MODELS and not any(a.startswith("+s") for a in mattr):
        return mcpu
    if any(a in ("+sve", "+sve2", "+sme") for a in mattr):
        return "max"
    return DEFAULT_QEMU_CPU


class EmulatedDevice:
    """``with EmulatedDevice(cpu) as dev:`` an RPC server under qemu at ``dev.host:dev.port``;
    with ``tracker="HOST:PORT"`` and ``key`` it also registers with a TVM RPC tracker.

    ``host`` must be loopback unless ``allow_remote`` (then a warning goes to stderr: whoever
    reaches the port can run code here), see :func:`edgeavs.device.net.check_listen_host`.

    Stops the server (SIGTERM to its process group, then SIGKILL) when the block ends, normally
    or by an exception (wrap the block in :func:`edgeavs.device.process.terminate_as_interrupt`
    to have SIGTERM/SIGHUP end it too). qemu runs in its own process group, with its forked
    sessions, and on Linux is SIGKILLed if the thread that started it dies."""

    def __init__(self, cpu: str = DEFAULT_QEMU_CPU, host: str = "127.0.0.1", port: int = 0,
                 threads: int | None = None, ready_timeout: float = READY_TIMEOUT_S, log=None,
                 key: str = "", tracker: str | None = None, allow_remote: bool = False):
        self.cpu = cpu
        self.allow_remote = allow_remote
        self.key = key
        self.tracker = tracker
        self.host = host
        self.port = port
        self.threads = threads
        self.ready_timeout = ready_timeout
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._work_root: str | None = None
        self._stderr_lines: list[str] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "EmulatedDevice":
        from edgeavs.device.process import die_with_parent
        from edgeavs.device.net import check_listen_host

        warning = check_listen_host(self.host, self.allow_remote, port=self.port)
        if warning:
            sys.stderr.write(warning + "\n")
            sys.stderr.flush()
        guest = require_emulator()
        server = Path(__file__).with_name("rpc_server.py")
        self._work_root = tempfile.mkdtemp(prefix="edgeavs-emulator-")
        cmd = qemu_command(self.cpu, guest, str(server), "--host", self.host,
                           "--port", str(self.port), "--work-root", self._work_root,
                           "--emulator", f"qemu-aarch64 -cpu {self.cpu}")
        if self.tracker:  # tuning: MetaSchedule's RPC runner finds devices through a tracker
            cmd += ["--key", self.key, "--tracker", self.tracker, "--custom-addr", self.host]
        if warning:  # the server checks again; told here that the user allowed it
            cmd.append("--allow-remote")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=guest.env(self.threads), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=die_with_parent())
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, lines), daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        from edgeavs.device.rpc_server import READY

        deadline = time.monotonic() + self.ready_timeout
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                except queue.Empty:
                    line = ""
                if line is None or self.proc.poll() is not None:
                    raise EdgeAVSError(f"the emulated RPC server exited during start-up: "
                                       f"{self._last_error()}")
                if line.startswith(READY):
                    self.host, _, port = line[len(READY):].strip().rpartition(":")
                    self.port = int(port)
                    break
                if time.monotonic() > deadline:
                    raise EdgeAVSError(f"the emulated RPC server was not ready within "
                                       f"{self.ready_timeout:g} s")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.perf_counter() - t0, 2)
        _say(self.log, f"emulated AArch64 device (qemu -cpu {self.cpu}) listening on "
                       f"{self.address}, up in {self.startup_seconds} s")
        return self

    @staticmethod
    def _pump(stream, out: queue.Queue) -> None:
        for line in stream:
            out.put(line.rstrip("\n"))
        out.put(None)

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr_lines.append(line.rstrip("\n"))
            del self._stderr_lines[:-200]

    def _last_error(self) -> str:
        lines = [ln for ln in self._stderr_lines if ln.strip()]
        if lines:
            return lines[-1]
        code = self.proc.returncode if self.proc else None
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit code {'?' if code is None else code}"

    @property
    def server_log(self) -> list[str]:
        """The server's stderr so far (sessions, loads, 'killed by SIGILL')."""
        return list(self._stderr_lines)

    def stop(self) -> None:
        """End the server and every process of its group (its sessions), and wait for them.

        SIGTERM first, SIGKILL after 5 s, also when the wait itself is interrupted (Ctrl-C)."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.returncode is None:  # not reaped yet: the group is ours
                try:
                    _signal_group(proc, signal.SIGTERM)
                    _wait_unreaped(proc, 5.0)
                finally:  # sessions may outlive the server; its zombie keeps the group id ours
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait()
        finally:
            work_root, self._work_root = self._work_root, None
            if work_root:  # uploads of sessions the server could not clean up itself
                shutil.rmtree(work_root, ignore_errors=True)

    def __enter__(self) -> "EmulatedDevice":
        return self.start()

    def wait(self, poll: float = 1.0) -> None:
        """Block until the server exits; a one-line error with its last stderr line then.

        For ``edgeavs device serve``: Ctrl-C (or SIGTERM/SIGHUP under
        :func:`~edgeavs.device.process.terminate_as_interrupt`) ends the wait."""
        proc = self.proc
        while proc is not None and proc.poll() is None:
            time.sleep(poll)
        if proc is not None:
            raise EdgeAVSError(f"the emulated RPC server exited: {self._last_error()}")

    def __exit__(self, *exc) -> None:
        self.stop()
