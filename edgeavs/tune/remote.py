"""Tuning on a remote AArch64 device: build here with the device's linker, measure there.

MetaSchedule's ``LocalBuilder`` compiles each candidate on this machine; by default it exports
a tarball of object code for the host, which a device cannot load (there is no compiler on a
phone or in the emulated guest). :class:`CrossExport` links each candidate into a shared
library with the linker our artifacts use (:func:`edgeavs.device.export.device_linker`: the
target's ``cross_cc`` for a Linux device or the emulator, the Android NDK for a phone).
``RPCRunner`` then asks the tracker for the device, uploads the library, allocates random
arguments (``random_fill_for_measure``) and times it with the remote ``time_evaluator``.

:func:`connect_tuning_device` checks the tracker and the key first, so a wrong address or key
is a one-line error before any compilation starts, and asks the server what it is: our
:mod:`edgeavs.device.rpc_server` answers :data:`~edgeavs.device.rpc_server.INFO_FUNC`
(OS, machine and whether it runs under an emulator); a stock TVM server does not, and is then
taken for real hardware running the target's OS.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import tempfile
from dataclasses import dataclass

from edgeavs.errors import EdgeAVSError

EMULATION_NOTE = ("note: the device is emulated ({emulator}): its timings are meaningless, "
                  "tuning there only proves the build/upload/measure path works")
TRACKER_CONNECT_TIMEOUT_S = 5.0
PROBE_SESSION_TIMEOUT_S = 60


def build_candidate(mod, target, _params=None):
    """``f_build`` for the builder (host and remote): MetaSchedule's default build without its import of
    ``tvm.s_tir.tensor_intrin``.

    That import registers the tensor intrinsics by parsing a few hundred TVMScript functions:
    20-60 s on 2 cores, paid again in every round because ``LocalBuilder`` starts fresh worker
    processes each time. Intrinsics are looked up by name only while scheduling (``tensorize``,
    in the tuning process, which has them); the candidate the builder receives is already
    scheduled and builds without them."""
    from edgeavs.tvm_api import s_tir, tvm

    mod = s_tir.transform.RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm.driver.build(mod, target=target)


class CrossExport:
    """``f_export`` for MetaSchedule's ``LocalBuilder``: link a candidate with ``compiler``.

    A picklable object, not a closure: the builder sends it to its worker processes."""

    def __init__(self, compiler: str):
        self.compiler = compiler

    def __call__(self, mod) -> str:
        from edgeavs.tvm_api import library_exporter

        path = os.path.join(tempfile.mkdtemp(prefix="edgeavs-candidate-"), "candidate.so")
        mod.export_library(path, fcompile=library_exporter("cross", self.compiler))
        return path

    def __repr__(self) -> str:
        return f"CrossExport({self.compiler!r})"


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _check_tracker(host: str, port: int, key: str) -> None:
    """The tracker answers and has a server registered under ``key`` (one-line errors).

    TVM's own client retries a refused connection for 60 s and waits forever for a key no
    server has: check both up front."""
    from tvm import rpc

    where = f"{host}:{port}"
    try:
        socket.create_connection((host, port), timeout=TRACKER_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise EdgeAVSError(f"cannot reach the RPC tracker at {where}: "
                           f"{exc.strerror or _last_line(exc)}") from None
    try:
        summary = rpc.connect_tracker(host, port).summary()
    except Exception as exc:  # noqa: BLE001 - TVM raises RuntimeError/TVMError/OSError
        raise EdgeAVSError(f"{where} is not a TVM RPC tracker: {_last_line(exc)}") from None
    servers = {str(s.get("key", "")).removeprefix("server:") for s in summary.get("server_info", [])}
    if key not in servers:
        known = ", ".join(sorted(k for k in servers if k)) or "none"
        raise EdgeAVSError(f"no device registered with key {key!r} at the RPC tracker {where} "
                           f"(registered keys: {known})")


def probe_device(host: str, port: int, key: str) -> dict | None:
    """One session with the device: what our server says it is, or None (a stock server)."""
    from tvm import rpc

    from edgeavs.device.rpc_server import INFO_FUNC

    try:
        sess = rpc.connect_tracker(host, port).request(key, session_timeout=PROBE_SESSION_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        raise EdgeAVSError(f"cannot open a session with device {key!r} from the RPC tracker "
                           f"{host}:{port}: {_last_line(exc)}") from None
    try:
        try:
            info_func = sess.get_function(INFO_FUNC)
        except (AttributeError, RuntimeError):
            return None
        try:
            return json.loads(str(info_func()))
        finally:
            del info_func
    finally:
        del sess  # a server serves one session at a time: end this one now
        gc.collect()


@dataclass
class TuningDevice:
    """A device to measure on: its description (``info``, for the log and the summary), and
    the builder options and runner that go with it."""

    spec: object  # edgeavs.device.remote.DeviceSpec (kind "tracker")
    linker: str
    info: dict

    @property
    def emulated(self) -> bool:
        return bool(self.info.get("emulator"))

    def builder_options(self) -> dict:
        """Extra keyword arguments for ``LocalBuilder``: export with the device's linker."""
        return {"f_build": build_candidate, "f_export": CrossExport(self.linker)}

    def runner(self):
        """MetaSchedule's ``RPCRunner`` through the tracker. On an emulator each candidate is
        run once (its timing means nothing and qemu is slow); on hardware, TVM's defaults."""
        from edgeavs.tvm_api import meta_schedule as ms

        config = ms.runner.RPCConfig(**self.spec.runner_config())
        evaluator = (ms.runner.EvaluatorConfig(number=1, repeat=1, min_repeat_ms=0)
                     if self.emulated else None)
        return ms.runner.RPCRunner(config, evaluator)


def connect_tuning_device(target, rpc_tracker: str, rpc_key: str, remote_os: str | None = None,
                          log=None) -> TuningDevice:
    """Check the tracker and the device, choose the linker; say so when it is an emulator.

    The device's OS: ``remote_os`` when given, else what our server reports, else the target's
    (``android`` for a target linked with the NDK, ``linux`` otherwise). Our server reports
    ``platform.system()``, which is ``linux`` under Android too (e.g. in Termux): pass
    ``remote_os="android"`` there. Android without a configured NDK is a one-line error."""
    from edgeavs.device.export import device_linker
    from edgeavs.device.remote import device_spec

    say = log or (lambda _m: None)
    spec = device_spec(rpc_tracker=rpc_tracker, rpc_key=rpc_key, remote_os=remote_os or "linux")
    _check_tracker(spec.host, spec.port, spec.key)
    server = probe_device(spec.host, spec.port, spec.key)
    os_name = remote_os or (server or {}).get("os") or ("android" if target.link == "ndk" else "linux")
    if os_name not in ("linux", "android"):
        raise EdgeAVSError(f"device {spec.key!r} runs {os_name!r}; edgeavs links for linux or android")
    linker = device_linker(target, os_name)
    emulator = (server or {}).get("emulator")
    info = {"tracker": f"{spec.host}:{spec.port}", "key": spec.key, "os": os_name,
            "linker": linker, "server": (server or {}).get("server", "tvm"),
            "machine": (server or {}).get("machine"), "emulated": bool(emulator),
            "emulator": emulator}
    device = TuningDevice(spec=device_spec(rpc_tracker=rpc_tracker, rpc_key=rpc_key,
                                           remote_os=os_name),
                          linker=linker, info=info)
    say(f"  measuring on device {spec.key!r} from tracker {info['tracker']} ({os_name}"
        f"{', ' + info['machine'] if info['machine'] else ''}); candidates linked with {linker}")
    if device.emulated:
        say(EMULATION_NOTE.format(emulator=emulator))
    return device
