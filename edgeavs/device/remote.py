"""Run compiled libraries on a remote AArch64 device over TVM RPC.

Three ways to name the device, one code path: the emulated device is an RPC server under
qemu on 127.0.0.1 (:class:`~edgeavs.device.emulator.EmulatedDevice`), reached with the same
``tvm.rpc.connect`` as ``--rpc HOST:PORT``:

- ``--device emulated``: start the emulator, connect, stop it afterwards (also on error);
- ``--rpc HOST:PORT``: a server on a board or phone (``python -m tvm.exec.rpc_server``, TVM's
  Android RPC app, or :mod:`edgeavs.device.rpc_server`);
- ``--rpc-tracker HOST:PORT --rpc-key KEY``: ask a TVM RPC tracker for a device with that key.

On the session: ``upload`` the library, ``load_module`` it remotely, and drive a Relax VM whose
tensors live on the remote CPU: ``set_input`` + ``invoke_stateful`` + ``get_outputs`` (works for
tuple outputs too). Inputs go over as numpy, outputs come back as numpy.

:class:`DeviceSpec.runner_config` gives MetaSchedule's ``RPCConfig`` fields for tuning over RPC
(``edgeavs tune --rpc-tracker``, :mod:`edgeavs.tune.remote`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeavs.errors import EdgeAVSError

DEVICES = ("host", "emulated")
DEFAULT_SESSION_TIMEOUT_S = 0  # 0: no limit (TVM's convention)


def parse_address(text: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``, or a one-line error naming ``option``."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EdgeAVSError(f"{option} {text!r} is not HOST:PORT (e.g. 127.0.0.1:9190)")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class DeviceSpec:
    """Where to run: ``kind`` is ``emulated``, ``rpc`` or ``tracker``."""

    kind: str
    host: str | None = None
    port: int | None = None
    key: str = ""
    os: str = "linux"
    """Which of the artifact's libraries the device runs: ``linux`` or ``android``."""
    qemu_cpu: str | None = None
    """Emulated only: the qemu ``-cpu`` model (default: from the artifact's target)."""
    session_timeout: float = DEFAULT_SESSION_TIMEOUT_S

    def describe(self) -> str:
        if self.kind == "emulated":
            return ("emulated AArch64 (qemu-aarch64" +
                    (f" -cpu {self.qemu_cpu})" if self.qemu_cpu else ", CPU model from the target)"))
        if self.kind == "tracker":
            return f"device {self.key!r} from tracker {self.host}:{self.port}"
        return f"RPC server {self.host}:{self.port}"

    def runner_config(self) -> dict:
        """Keyword arguments for ``tvm.s_tir.meta_schedule.runner.RPCConfig`` (tuning over RPC).

        Only a tracker-reached device can serve MetaSchedule's runner; an emulated device for
        tuning is an emulator registered with a tracker (``rpc_server.py --tracker``)."""
        if self.kind != "tracker":
            raise EdgeAVSError("tuning over RPC needs --rpc-tracker HOST:PORT --rpc-key KEY")
        return {"tracker_host": self.host, "tracker_port": self.port, "tracker_key": self.key,
                "session_timeout_sec": int(self.session_timeout or 600)}


def device_spec(device: str | None = None, rpc: str | None = None, rpc_tracker: str | None = None,
                rpc_key: str | None = None, remote_os: str | None = None,
                qemu_cpu: str | None = None) -> DeviceSpec | None:
    """The device the CLI options name, or ``None`` for this machine (``--device host``)."""
    chosen = [name for name, v in (("--device emulated", device == "emulated"), ("--rpc", rpc),
                                   ("--rpc-tracker", rpc_tracker)) if v]
    if len(chosen) > 1:
        raise EdgeAVSError(f"choose one of {', '.join(chosen)}")
    if device not in (None, *DEVICES):
        raise EdgeAVSError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if rpc_key and not rpc_tracker:
        raise EdgeAVSError("--rpc-key needs --rpc-tracker HOST:PORT")
    if remote_os not in (None, "linux", "android"):
        raise EdgeAVSError(f"--remote-os {remote_os!r}: choose linux or android")
    if device == "emulated":
        return DeviceSpec("emulated", os="linux", qemu_cpu=qemu_cpu)
    if rpc:
        host, port = parse_address(rpc, "--rpc")
        return DeviceSpec("rpc", host, port, os=remote_os or "linux")
    if rpc_tracker:
        if not rpc_key:
            raise EdgeAVSError("--rpc-tracker needs --rpc-key KEY (the device key the server "
                               "registered with)")
        host, port = parse_address(rpc_tracker, "--rpc-tracker")
        return DeviceSpec("tracker", host, port, key=rpc_key, os=remote_os or "android")
    return None


# ---------------------------------------------------------------- sessions

def _rpc():
    from edgeavs.tvm_api import relax, tvm

    return tvm, relax


def connect(spec: DeviceSpec):
    """A ``tvm.rpc`` session to an ``rpc`` or ``tracker`` device (one-line error if none)."""
    tvm, _ = _rpc()
    from tvm import rpc

    try:
        if spec.kind == "rpc":
            return rpc.connect(spec.host, spec.port, session_timeout=spec.session_timeout)
        if spec.kind == "tracker":
            tracker = rpc.connect_tracker(spec.host, spec.port)
            return tracker.request(spec.key, session_timeout=spec.session_timeout)
    except Exception as exc:  # noqa: BLE001 - TVM raises RuntimeError/TVMError/OSError
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        raise EdgeAVSError(f"cannot reach the {spec.describe()}: "
                           f"{lines[-1] if lines else type(exc).__name__}") from None
    raise EdgeAVSError(f"cannot connect to a {spec.kind!r} device directly")


class RemoteSession:
    """An open RPC session (and, for the emulated device, the emulator behind it)."""

    def __init__(self, sess, spec: DeviceSpec, emulator=None):
        self.sess = sess
        self.spec = spec
        self.emulator = emulator
        self.device = sess.cpu()

    def close(self) -> None:
        """End the RPC session. TVM closes the connection when the last reference to the
        session (and to remote modules/tensors) goes; a server serves one session at a time,
        so a session left open would block the next client."""
        import gc

        self.sess = None
        self.device = None
        gc.collect()

    def load_vm(self, library) -> "RemoteVM":
        """Upload ``library`` (a local .so), load it on the device, wrap it in a Relax VM."""
        _, relax = _rpc()
        library = Path(library)
        if not library.is_file():
            raise EdgeAVSError(f"library {library} not found")
        try:
            self.sess.upload(str(library))
            mod = self.sess.load_module(library.name)
            vm = relax.VirtualMachine(mod, self.device)
        except Exception as exc:  # noqa: BLE001
            raise self._error(f"loading {library.name} on the device failed", exc) from None
        return RemoteVM(self, vm)

    def _error(self, what: str, exc: Exception) -> EdgeAVSError:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        detail = lines[-1] if lines else type(exc).__name__
        crash = None
        if self.emulator is not None:  # the server logs how the session's process ended
            deadline = time.monotonic() + 3.0
            while crash is None and time.monotonic() < deadline:
                crash = next((ln.split("(", 1)[1].rstrip(")") for ln in reversed(self.emulator.server_log)
                              if "session ended (killed by" in ln), None)
                if crash is None:
                    if any("session ended (exit" in ln for ln in self.emulator.server_log):
                        break
                    time.sleep(0.1)
        if crash:
            hint = (" (an instruction this CPU does not have, e.g. SVE)" if "SIGILL" in crash else "")
            return EdgeAVSError(f"{what}: the device process was {crash}{hint}")
        if "kShutdown" in detail or "closed" in detail.lower():
            return EdgeAVSError(f"{what}: the device closed the session (crashed?): {detail}")
        return EdgeAVSError(f"{what}: {detail}")


class RemoteVM:
    """A Relax VM on the device: ``vm(*arrays) -> [numpy outputs]``."""

    def __init__(self, session: RemoteSession, vm):
        self.session = session
        self.vm = vm

    def __call__(self, *arrays, func: str = "main") -> list[np.ndarray]:
        tvm, _ = _rpc()
        dev = self.session.device
        try:
            args = [tvm.runtime.tensor(np.ascontiguousarray(a), dev) for a in arrays]
            self.vm.set_input(func, *args)
            self.vm.invoke_stateful(func)
            out = self.vm.get_outputs(func)
            outs = [out] if hasattr(out, "numpy") else list(out)
            return [o.numpy() for o in outs]
        except Exception as exc:  # noqa: BLE001
            raise self.session._error(f"running {func} on the device failed", exc) from None

    def time(self, *arrays, func: str = "main", number: int = 1, repeat: int = 3) -> list[float]:
        """Seconds per run on the device (``time_evaluator`` over ``invoke_stateful``).

        Meaningless under emulation; for a real phone or board."""
        tvm, _ = _rpc()
        dev = self.session.device
        self.vm.set_input(func, *[tvm.runtime.tensor(np.ascontiguousarray(a), dev) for a in arrays])
        timer = self.vm.time_evaluator("invoke_stateful", dev, number=number, repeat=repeat)
        return [float(t) for t in timer(func).results]


@contextlib.contextmanager
def open_session(spec: DeviceSpec, *, mcpu: str | None = None, mattr=(), log=None):
    """``with open_session(spec) as s:`` a :class:`RemoteSession`; an emulated device is
    started for the block (qemu model from ``spec.qemu_cpu`` or the target's ``mcpu``/``mattr``)
    and stopped after it, whatever happens inside."""
    if spec.kind != "emulated":
        session = RemoteSession(connect(spec), spec)
        try:
            yield session
        finally:
            session.close()
        return
    from edgeavs.device.emulator import EmulatedDevice, qemu_cpu_for

    cpu = spec.qemu_cpu or qemu_cpu_for(mcpu, mattr)
    with EmulatedDevice(cpu, log=log) as emu:
        rpc_spec = DeviceSpec("rpc", emu.host, emu.port, os="linux",
                              session_timeout=spec.session_timeout)
        session = RemoteSession(connect(rpc_spec), DeviceSpec("emulated", emu.host, emu.port,
                                                              os="linux", qemu_cpu=cpu),
                                emulator=emu)
        try:
            yield session
        finally:
            session.close()


# ---------------------------------------------------------------- artifacts

class RemoteArtifact:
    """An artifact's library running on a device: the interface of
    ``edgeavs.compiler.artifact.CompiledModel`` (``manifest``, ``run_all``, ``run``)."""

    def __init__(self, directory, manifest: dict, session: RemoteSession):
        from edgeavs.device.export import library_for

        self.directory = Path(directory)
        self.manifest = manifest
        self.inputs = manifest["inputs"]
        self.outputs = manifest["outputs"]
        self.session = session
        self.library = library_for(manifest, session.spec.os)
        self.vm = session.load_vm(self.directory / self.library)

    @property
    def batch(self) -> int:
        return int(self.inputs[0]["shape"][0])

    def run_all(self, frames, waveform) -> dict:
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        waveform = np.ascontiguousarray(waveform, dtype=np.float32)
        n, b = frames.shape[0], self.batch
        if n % b or waveform.shape[0] != n:
            raise EdgeAVSError(f"batch of {n} frames / {waveform.shape[0]} waveforms does not "
                               f"fit the compiled batch {b}")
        chunks = [self.vm(frames[i:i + b], waveform[i:i + b]) for i in range(0, n, b)]
        return {spec["name"]: np.concatenate([c[k] for c in chunks], axis=0)
                for k, spec in enumerate(self.outputs)}

    def run(self, frames, waveform) -> np.ndarray:
        return self.run_all(frames, waveform)["logits"]


def _manifest(directory: Path) -> dict:
    from edgeavs.compiler.artifact import read_manifest

    return read_manifest(directory)


def _validated_manifest(directory: Path) -> dict:
    """Every file the manifest lists exists and matches its sha256 (an artifact compiled
    without an NDK has no model.so, so the host loader's 'model.so is required' does not
    apply here)."""
    from edgeavs.compiler.artifact import validate_artifact

    return validate_artifact(directory, require_library=False)


@contextlib.contextmanager
def open_artifact(directory, spec: DeviceSpec, *, validate: bool = True, log=None):
    """``with open_artifact(dir, spec) as model:`` the artifact loaded on the device.

    For ``edgeavs verify``: use ``model`` where the host path uses ``load_artifact(dir)``."""
    directory = Path(directory)
    manifest = _validated_manifest(directory) if validate else _manifest(directory)
    target = manifest.get("target") or {}
    triple = str(target.get("mtriple") or "")
    if not triple.startswith(("aarch64", "arm64")):
        raise EdgeAVSError(f"artifact {directory} is for {manifest.get('target_name', 'the host')} "
                           f"({triple or 'host triple'}), not an AArch64 device: compile with "
                           "--target snapdragon8elite or aarch64-linux")
    with open_session(spec, mcpu=target.get("mcpu"), mattr=tuple(target.get("mattr") or ()),
                      log=log) as session:
        if log:
            log(f"running {manifest.get('target_name', '')} artifact on the {session.spec.describe()}")
        artifact = RemoteArtifact(directory, manifest, session)
        try:
            yield artifact
        finally:
            artifact.vm = None  # the remote module holds the session open
