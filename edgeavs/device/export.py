"""Link one compiled Relax executable for every place it has to run.

One code generation (``tvm.compile`` for the target's triple and CPU) gives object code; this
module links it into each library the target asks for, and returns the manifest's record of
which file is which:

==========  ======================  =========================================  ==========
link        file                    linked with                                role
==========  ======================  =========================================  ==========
host        model.so                the host C compiler                        host
cross       model.so                ``cross_cc`` (Linux AArch64)               device
ndk         model.so                the Android NDK's clang (if configured)    phone
ndk         model-linux-aarch64.so  ``cross_cc``, same object code             verify
==========  ======================  =========================================  ==========

The Android library needs an NDK: ``TVM_NDK_CC`` (the NDK clang++, TVM's convention) or
``ANDROID_NDK_HOME``/``ANDROID_NDK_ROOT`` (the clang for :data:`ANDROID_API` is found under
``toolchains/llvm/prebuilt``). Without one the phone library is skipped with a one-line reason
and everything else is still produced. The Linux library is the same machine code (TVM's
generated functions call only the TVM FFI and libm), so running it under
``qemu-aarch64 -cpu max,sve=off,sme=off`` checks the instructions the phone will execute.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgeavs.errors import EdgeAVSError

LIBRARY = "model.so"
LINUX_LIBRARY = "model-linux-aarch64.so"
ANDROID_API = 28
"""Android 9: the oldest API level the NDK clang wrapper is looked up for by default."""


def find_ndk_compiler(api: int = ANDROID_API) -> tuple[str | None, str]:
    """``(compiler, how)``: the NDK C++ compiler for aarch64 Android, or ``(None, why not)``."""
    env_cc = os.environ.get("TVM_NDK_CC")
    if env_cc:
        return env_cc, "TVM_NDK_CC"
    for var in ("ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"):
        home = os.environ.get(var)
        if not home:
            continue
        bins = sorted(Path(home).glob("toolchains/llvm/prebuilt/*/bin"))
        if not bins:
            return None, f"{var}={home} has no toolchains/llvm/prebuilt/*/bin"
        wrappers = {}
        for path in bins[0].glob("aarch64-linux-android*-clang++"):
            m = re.fullmatch(r"aarch64-linux-android(\d+)-clang\+\+", path.name)
            if m:
                wrappers[int(m.group(1))] = path
        if not wrappers:
            return None, f"{var}={home} has no aarch64-linux-android*-clang++"
        level = api if api in wrappers else max(wrappers)
        return str(wrappers[level]), f"{var} (API {level})"
    return None, "no Android NDK configured (set ANDROID_NDK_HOME or TVM_NDK_CC)"


def _export(ex, path: Path, compiler: str | None) -> None:
    from edgeavs.tvm_api import library_exporter

    fcompile = None if compiler is None else library_exporter("cross", compiler)
    try:
        ex.export_library(str(path), fcompile=fcompile)
    except Exception as exc:  # noqa: BLE001 - TVM raises RuntimeError/TVMError with the log
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        raise EdgeAVSError(f"linking {path.name} with {compiler or 'the host compiler'} failed: "
                           f"{lines[-1] if lines else type(exc).__name__}") from exc


def export_libraries(ex, directory, target, log=None) -> dict:
    """Link ``ex`` (a ``tvm.compile`` result for ``target``) into ``directory``.

    Returns ``{"library": name or None, "libraries": [...], "skipped": [...]}``: ``library``
    is what a plain ``load_artifact`` opens (``model.so``, absent when the NDK is missing),
    each ``libraries`` entry is ``{"file", "role", "os", "linker"}``, each ``skipped`` entry
    ``{"file", "role", "reason"}``.
    """
    say = log or (lambda _m: None)
    directory = Path(directory)
    libraries, skipped = [], []
    link = target.link
    if link == "host":
        _export(ex, directory / LIBRARY, None)
        libraries.append({"file": LIBRARY, "role": "host", "os": "host", "linker": "host cc"})
    elif link == "cross":
        _export(ex, directory / LIBRARY, target.cross_cc)
        libraries.append({"file": LIBRARY, "role": "device", "os": "linux",
                          "linker": target.cross_cc})
    elif link == "ndk":
        compiler, how = find_ndk_compiler()
        if compiler:
            _export(ex, directory / LIBRARY, compiler)
            libraries.append({"file": LIBRARY, "role": "phone", "os": "android",
                              "linker": f"NDK {Path(compiler).name} ({how})"})
        else:
            reason = f"Android library {LIBRARY} not produced: {how}"
            say(reason)
            skipped.append({"file": LIBRARY, "role": "phone", "reason": reason})
        if target.cross_cc:
            _export(ex, directory / LINUX_LIBRARY, target.cross_cc)
            libraries.append({"file": LINUX_LIBRARY, "role": "verify", "os": "linux",
                              "linker": target.cross_cc})
    else:
        raise EdgeAVSError(f"target {target.name}: unknown link mode {link!r}")
    primary = LIBRARY if any(lib["file"] == LIBRARY for lib in libraries) else None
    return {"library": primary, "libraries": libraries, "skipped": skipped}


def library_for(manifest: dict, os_name: str) -> str:
    """The artifact file to run on a device of ``os_name`` ("linux" or "android")."""
    libs = manifest.get("libraries")
    if not libs:  # an artifact from before the libraries record: one model.so
        if manifest.get("link", "host") == "host":
            raise EdgeAVSError("this artifact was compiled for the host, not for an AArch64 device")
        return manifest.get("library") or LIBRARY
    for lib in libs:
        if lib.get("os") == os_name:
            return lib["file"]
    have = ", ".join(f"{lib['file']} ({lib.get('os')})" for lib in libs) or "none"
    skipped = "; ".join(s.get("reason", "") for s in manifest.get("libraries_skipped", []))
    raise EdgeAVSError(f"the artifact has no library for a {os_name} device (it has: {have})"
                       + (f"; {skipped}" if skipped else ""))


def device_linker(target, os_name: str = "linux") -> str:
    """The compiler that links ``target``'s code for a device running ``os_name``.

    For tuning over RPC: MetaSchedule's builder exports each candidate with
    ``tvm_api.library_exporter("cross", device_linker(target))`` before the runner uploads it
    (an emulated or Linux device takes the ``cross_cc`` link, a phone the NDK's)."""
    if os_name == "android":
        compiler, why = find_ndk_compiler()
        if compiler is None:
            raise EdgeAVSError(f"cannot link for Android: {why}")
        return compiler
    if os_name != "linux":
        raise EdgeAVSError(f"unknown device OS {os_name!r}; choose linux or android")
    if target.link == "host" or not target.cross_cc:
        raise EdgeAVSError(f"target {target.name} names no cross_cc to link for AArch64 Linux")
    return target.cross_cc
