"""A deployment bundle: an artifact's library with the TVM runtime and a C++ runner, no Python.

``edgeavs package ARTIFACT -o BUNDLE`` writes a directory a user copies to the device::

    bin/edgeavs-run             the runner (bundle/edgeavs_run.cpp): files in, logits/mask out, latency
    lib/libtvm_runtime.so       TVM's runtime (Relax VM, library loader, CPU device, threads, tensors)
    lib/libtvm_ffi.so           tvm-ffi (objects, functions, modules)
    lib/libedgeavs_model.so     the C API of include/edgeavs_model.h (bundle/edgeavs_model.cc)
    include/edgeavs_model.h     that API, for an app
    examples/run_model.c        an app calling it from C
    model/<library>             the artifact's library for the device (its own name)
    model/manifest.json         the artifact's manifest, unchanged
    model/io.txt                input/output shapes, read by edgeavs-run for raw float32 files
    bundle.json                 what was packaged: OS, toolchain, versions, files (sha256, bytes),
                                each ELF file's NEEDED libraries
    README.md                   how to copy it to the device and run it

The TVM runtime and tvm-ffi are built from the sources the installed ``apache-tvm`` and
``apache-tvm-ffi`` wheels ship (``tvm/src/runtime``, ``tvm_ffi/src/ffi``), only the files a
Relax VM executable on the CPU needs (:data:`TVM_SOURCES`, :data:`FFI_SOURCES`). The wheel
does not ship the few ``support`` headers those sources include (``tvm/support/io.h``,
``serializer.h``, ``src/support/bytes_io.h``, ``base64.h``, ``utils.h``, ``cuda/nvtx.h``):
edgeavs supplies its own, written for the uses in those sources (``bundle/tvm_support/``). The
build is cached per toolchain (target triple, compiler and its version), TVM and tvm-ffi
version and source digest under ``<edgeavs cache>/runtime/``, built in a staging folder and
renamed; the runner and the C API are cached beside it by their own sources' digest.

Toolchains: Debian's ``aarch64-linux-gnu-g++`` for AArch64 Linux (``EDGEAVS_CROSS_CXX``
overrides; installed with apt as root when missing, as for the peers' runner), the NDK's
clang++ for Android (:func:`edgeavs.device.export.find_ndk_compiler`; libc++ linked
statically), the host ``g++`` (``EDGEAVS_HOST_CXX``) for an x86-64 bundle of a host artifact.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edgeavs.errors import EdgeAVSError

FORMAT = "edgeavs-bundle/1"
BUNDLE_JSON = "bundle.json"
SOURCES = Path(__file__).with_name("bundle")
RUNNER_SOURCE = SOURCES / "edgeavs_run.cpp"
API_SOURCE = SOURCES / "edgeavs_model.cc"
API_HEADER = SOURCES / "edgeavs_model.h"
EXAMPLE = SOURCES / "examples" / "run_model.c"
README_TEMPLATE = SOURCES / "README.md.in"
SUPPORT = SOURCES / "tvm_support"
BUILD_VERSION = 1
"""Bump when the build recipe changes: older cache entries are then not used."""
OSES = ("linux", "android", "host")
DEFAULT_JOBS = 2

TVM_SOURCES = (
    "cpu_device_api.cc", "device_api.cc", "file_utils.cc", "logging.cc", "module.cc",
    "memory/memory_manager.cc", "tensor.cc", "thread_pool.cc", "threading_backend.cc",
    "timer.cc", "workspace_pool.cc", "const_loader_module.cc", "static_library.cc",
    "vm/builtin.cc", "vm/bytecode.cc", "vm/executable.cc", "vm/vm.cc",
)
"""tvm/src/runtime files built: the Relax VM, its executable loader, the CPU device API, the
thread pool, tensors and memory managers. Left out: RPC, disco, the LLM helpers (KV caches,
tensor cache), GPU and Hexagon code, contrib libraries, fp16 builtins (fp32 models)."""
FFI_SOURCES = (
    "backtrace.cc", "object.cc", "error.cc", "function.cc", "tensor.cc", "dtype.cc",
    "container.cc", "init_once.cc", "custom_allocator.cc",
    "extra/structural_equal.cc", "extra/structural_hash.cc", "extra/structural_visit.cc",
    "extra/structural_mutate.cc", "extra/visit_error_context.cc", "extra/json_parser.cc",
    "extra/json_writer.cc", "extra/serialization.cc", "extra/dataclass.cc",
    "extra/reflection_extra.cc", "extra/module.cc", "extra/library_module.cc",
    "extra/library_module_system_lib.cc", "extra/library_module_dynamic_lib.cc",
    "extra/env_context.cc", "extra/env_c_api.cc",
)
"""tvm_ffi/src/ffi files built: the list of tvm-ffi's own CMakeLists.txt (core + extra C++ API),
without the Windows backtrace and libbacktrace (TVM_FFI_USE_LIBBACKTRACE=0)."""
CXXFLAGS = ("-O2", "-fPIC", "-std=c++17", "-DNDEBUG", "-DTVM_FFI_USE_LIBBACKTRACE=0",
            "-DTVM_FFI_BACKTRACE_ON_SEGFAULT=0")
PYTHON_LIB = re.compile(r"libpython|python3")


def _say(log, msg: str) -> None:
    if log:
        log(msg)


# ---------------------------------------------------------------- toolchains

@dataclass(frozen=True)
class Toolchain:
    """A C++ compiler for one device OS."""

    os: str            # linux | android | host
    cxx: str           # the compiler (absolute path)
    triple: str        # its -dumpmachine
    version: str       # the first line of its --version
    link_flags: tuple = ()

    @property
    def libs(self) -> tuple:
        return ("-ldl", "-lm") if self.os == "android" else ("-ldl", "-lpthread", "-lm")

    def describe(self) -> str:
        return f"{Path(self.cxx).name} ({self.version}, {self.triple})"


def _probe(cxx: str, what: str) -> Toolchain:
    path = shutil.which(cxx)
    if path is None:
        raise EdgeAVSError(f"{what}: the C++ compiler {cxx} is not found")
    try:
        triple = subprocess.run([path, "-dumpmachine"], capture_output=True, text=True,
                                timeout=60).stdout.strip()
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgeAVSError(f"{what}: {cxx} does not run ({exc})") from None
    if not triple:
        raise EdgeAVSError(f"{what}: {cxx} -dumpmachine printed nothing (not a gcc/clang driver?)")
    return Toolchain("host", path, triple, version[0].strip() if version else "unknown")


def host_toolchain() -> Toolchain:
    """This machine's g++ (``EDGEAVS_HOST_CXX``), for an x86-64 bundle of a host artifact."""
    tc = _probe(os.environ.get("EDGEAVS_HOST_CXX", "g++"), "the host build")
    return Toolchain("host", tc.cxx, tc.triple, tc.version)


def linux_toolchain(log=None) -> Toolchain:
    """Debian's AArch64 Linux g++ (``EDGEAVS_CROSS_CXX`` overrides; apt-installed as root when
    missing, like the peers' runner)."""
    from edgeavs.device.peers import CROSS_CXX, CROSS_CXX_PACKAGE, _cross_cxx

    env = os.environ.get("EDGEAVS_CROSS_CXX")
    if env:
        if shutil.which(env) is None:
            raise EdgeAVSError(f"EDGEAVS_CROSS_CXX={env}: the AArch64 C++ cross compiler is not "
                               "found")
        cxx = env
    elif shutil.which(CROSS_CXX):
        cxx = CROSS_CXX
    else:
        try:
            cxx = _cross_cxx(log)
        except EdgeAVSError as exc:
            raise EdgeAVSError(f"no AArch64 C++ cross compiler ({CROSS_CXX}): install "
                               f"{CROSS_CXX_PACKAGE} or set EDGEAVS_CROSS_CXX ({exc})") from None
    tc = _probe(cxx, "the AArch64 Linux build")
    if not tc.triple.startswith("aarch64") or "android" in tc.triple:
        raise EdgeAVSError(f"{cxx} builds for {tc.triple}, not aarch64 Linux")
    return Toolchain("linux", tc.cxx, tc.triple, tc.version)


def android_toolchain() -> tuple[Toolchain | None, str]:
    """The NDK's clang++ for aarch64 Android, or ``(None, why not)``."""
    from edgeavs.device.export import find_ndk_compiler

    cxx, how = find_ndk_compiler()
    if cxx is None:
        return None, how
    tc = _probe(cxx, f"the Android build ({how})")
    if "android" not in tc.triple:
        raise EdgeAVSError(f"{cxx} ({how}) builds for {tc.triple}, not Android")
    return Toolchain("android", tc.cxx, tc.triple, tc.version,
                     link_flags=("-static-libstdc++",)), how


# ---------------------------------------------------------------- the runtime build

def _package_dir(name: str) -> Path:
    """An installed package's folder, found without importing it (TVM is heavy to import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EdgeAVSError(f"the {name} package is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise EdgeAVSError(f"{dist} is not installed") from None


@dataclass(frozen=True)
class RuntimeSources:
    tvm: Path            # site-packages/tvm
    ffi: Path            # site-packages/tvm_ffi
    tvm_version: str
    ffi_version: str

    @property
    def includes(self) -> list[str]:
        return [f"-I{SUPPORT / 'include'}", f"-I{self.tvm / 'include'}",
                f"-I{self.ffi / 'include'}", f"-I{self.ffi / '3rdparty' / 'dlpack' / 'include'}"]


def runtime_sources() -> RuntimeSources:
    """The C++ sources of the installed wheels, checked to hold every file the build needs."""
    src = RuntimeSources(_package_dir("tvm"), _package_dir("tvm_ffi"),
                         _version("apache-tvm"), _version("apache-tvm-ffi"))
    missing = [f"tvm/src/runtime/{f}" for f in TVM_SOURCES
               if not (src.tvm / "src" / "runtime" / f).is_file()]
    missing += [f"tvm_ffi/src/ffi/{f}" for f in FFI_SOURCES
                if not (src.ffi / "src" / "ffi" / f).is_file()]
    if missing:
        raise EdgeAVSError(f"the installed TVM wheels lack the runtime sources ({missing[0]}"
                           f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}): "
                           f"apache-tvm {src.tvm_version} / apache-tvm-ffi {src.ffi_version}")
    return src


def _digest(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _runtime_key(tc: Toolchain, src: RuntimeSources) -> str:
    files = [src.tvm / "src" / "runtime" / f for f in TVM_SOURCES]
    files += [src.ffi / "src" / "ffi" / f for f in FFI_SOURCES]
    files += sorted(p for p in SUPPORT.rglob("*.h"))
    return _digest([BUILD_VERSION, tc.os, tc.cxx, tc.triple, tc.version, *tc.link_flags,
                    *CXXFLAGS, src.tvm_version, src.ffi_version,
                    *[f"{f.name}:{f.read_bytes().hex()}" for f in files]])


def runtime_root() -> Path:
    from edgeavs.device.emulator import cache_dir

    return cache_dir() / "runtime"


def _compile(tc: Toolchain, src_file: Path, obj: Path, flags) -> None:
    cmd = [tc.cxx, *CXXFLAGS, *flags, "-c", str(src_file), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        errs = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines()
        raise EdgeAVSError(f"building {src_file.name} with {Path(tc.cxx).name} failed: "
                           f"{errs[0].strip() if errs else f'exit {proc.returncode}'}")


def _link(tc: Toolchain, out: Path, inputs, extra=()) -> None:
    cmd = [tc.cxx, "-shared", "-s", "-o", str(out), *map(str, inputs), *extra, *tc.link_flags,
           *tc.libs, "-Wl,--no-undefined", f"-Wl,-soname,{out.name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise EdgeAVSError(f"linking {out.name} with {Path(tc.cxx).name} failed: "
                           f"{lines[0].strip() if lines else f'exit {proc.returncode}'}")


def _staged(dest: Path, build) -> None:
    """``build(tmp)`` fills a staging folder beside ``dest``, renamed to ``dest`` when complete;
    one build at a time (parallel test workers share the cache); a finished ``dest`` is kept."""
    from edgeavs.device.emulator import _locked
    from edgeavs.device.peers import _replace_dir

    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.parent / f".{dest.name}.lock"):
        if not (dest / "complete.json").is_file():
            _replace_dir(dest, build)


@dataclass(frozen=True)
class RuntimeBuild:
    """The built runtime (``lib/``) and runner (``bin/edgeavs-run``, ``lib/libedgeavs_model.so``)."""

    toolchain: Toolchain
    root: Path         # lib/libtvm_ffi.so, lib/libtvm_runtime.so
    runner: Path       # lib/libedgeavs_model.so, bin/edgeavs-run
    info: dict         # complete.json of both

    @property
    def libraries(self) -> list[Path]:
        return [self.root / "lib" / "libtvm_ffi.so", self.root / "lib" / "libtvm_runtime.so",
                self.runner / "lib" / "libedgeavs_model.so"]

    @property
    def executable(self) -> Path:
        return self.runner / "bin" / "edgeavs-run"


def build_runtime(tc: Toolchain, jobs: int = DEFAULT_JOBS, log=None) -> RuntimeBuild:
    """The TVM runtime, tvm-ffi, the C API and ``edgeavs-run`` built with ``tc`` (cached)."""
    src = runtime_sources()
    key = _runtime_key(tc, src)
    root = runtime_root() / f"{tc.triple}-tvm{src.tvm_version}-{key[:12]}"

    def build(tmp: Path) -> None:
        t0 = time.perf_counter()
        (tmp / "lib").mkdir()
        obj = tmp / "obj"
        obj.mkdir()
        # the wheel's runtime sources with edgeavs' support headers where they expect them
        tree = tmp / "src"
        shutil.copytree(src.tvm / "src" / "runtime", tree / "runtime",
                        ignore=shutil.ignore_patterns("extra", "rpc", "__pycache__"))
        shutil.copytree(SUPPORT / "src" / "support", tree / "support")
        units = [(src.ffi / "src" / "ffi" / f, obj / f"ffi_{f.replace('/', '_')}.o",
                  ["-fvisibility=hidden", *src.includes]) for f in FFI_SOURCES]
        units += [(tree / "runtime" / f, obj / f"rt_{f.replace('/', '_')}.o", src.includes)
                  for f in TVM_SOURCES]
        _say(log, f"building the TVM runtime {src.tvm_version} and tvm-ffi {src.ffi_version} "
                  f"with {tc.describe()}: {len(units)} files, {jobs} at a time (minutes, once)")
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for fut in [pool.submit(_compile, tc, s, o, f) for s, o, f in units]:
                fut.result()
        ffi_objs = [u[1] for u in units[:len(FFI_SOURCES)]]
        rt_objs = [u[1] for u in units[len(FFI_SOURCES):]]
        _link(tc, tmp / "lib" / "libtvm_ffi.so", ffi_objs)
        _link(tc, tmp / "lib" / "libtvm_runtime.so", rt_objs,
              [f"-L{tmp / 'lib'}", "-ltvm_ffi", "-Wl,-rpath,$ORIGIN"])
        shutil.rmtree(obj)
        shutil.rmtree(tree)
        info = {"toolchain": tc.describe(), "cxx": tc.cxx, "triple": tc.triple, "os": tc.os,
                "tvm": src.tvm_version, "tvm_ffi": src.ffi_version, "key": key,
                "sources": {"tvm/src/runtime": list(TVM_SOURCES), "tvm_ffi/src/ffi": list(FFI_SOURCES)},
                "jobs": jobs, "build_seconds": round(time.perf_counter() - t0, 1)}
        (tmp / "complete.json").write_text(json.dumps(info, indent=2) + "\n")

    cached = (root / "complete.json").is_file()
    _staged(root, build)
    info = json.loads((root / "complete.json").read_text())
    runner = _build_runner(tc, src, root, log)
    rinfo = json.loads((runner / "complete.json").read_text())
    return RuntimeBuild(tc, root, runner, {"runtime": info, "runner": rinfo,
                                           "runtime_cached": cached})


def _build_runner(tc: Toolchain, src: RuntimeSources, root: Path, log) -> Path:
    key = _digest([API_SOURCE.read_bytes(), API_HEADER.read_bytes(), RUNNER_SOURCE.read_bytes()])
    dest = root / f"runner-{key[:12]}"

    def build(tmp: Path) -> None:
        t0 = time.perf_counter()
        (tmp / "lib").mkdir()
        (tmp / "bin").mkdir()
        _say(log, f"building edgeavs-run and libedgeavs_model.so with {Path(tc.cxx).name}")
        obj = tmp / "edgeavs_model.o"
        _compile(tc, API_SOURCE, obj, ["-fvisibility=hidden", *src.includes])
        _link(tc, tmp / "lib" / "libedgeavs_model.so", [obj],
              [f"-L{root / 'lib'}", "-Wl,--no-as-needed", "-ltvm_runtime", "-ltvm_ffi",
               "-Wl,--as-needed", "-Wl,-rpath,$ORIGIN"])
        obj.unlink()
        cmd = [tc.cxx, "-O2", "-std=c++17", "-s", f"-I{SOURCES}", "-o", str(tmp / "bin" / "edgeavs-run"),
               str(RUNNER_SOURCE), f"-L{tmp / 'lib'}", f"-L{root / 'lib'}", "-ledgeavs_model",
               f"-Wl,-rpath-link,{root / 'lib'}", "-Wl,-rpath,$ORIGIN/../lib", *tc.link_flags]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            errs = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines()
            raise EdgeAVSError(f"building {RUNNER_SOURCE.name} failed: "
                               f"{errs[0].strip() if errs else proc.returncode}")
        (tmp / "complete.json").write_text(json.dumps(
            {"key": key, "build_seconds": round(time.perf_counter() - t0, 1)}) + "\n")

    _staged(dest, build)
    return dest


# ---------------------------------------------------------------- ELF checks

def needed_libraries(path) -> list[str] | None:
    """The NEEDED entries of an ELF file (``readelf -d``), or None when it is not ELF."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
    readelf = shutil.which("readelf") or shutil.which("aarch64-linux-gnu-readelf")
    if readelf is None:
        raise EdgeAVSError("readelf (binutils) is needed to check the bundle's libraries")
    proc = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise EdgeAVSError(f"readelf -d {path.name} failed: {proc.stderr.strip()[:200]}")
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", proc.stdout)


def elf_machine(path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF" or len(head) < 20:
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


# ---------------------------------------------------------------- packaging

_EM_AARCH64 = 183


def _choose_os(manifest: dict, requested: str | None, directory) -> tuple[str, str | None]:
    """``(os, note)``: the bundle's OS and, when a phone artifact gets a Linux bundle, why."""
    link = manifest.get("link", "host")
    name = manifest.get("target_name", "?")
    if link == "host":
        if requested in (None, "host"):
            if requested is None:
                raise EdgeAVSError(f"artifact {directory} was compiled for the host (target {name}), "
                                   "not for a device: compile with --target snapdragon8elite or "
                                   "aarch64-linux (or pass --os host for a bundle for this machine)")
            return "host", None
        raise EdgeAVSError(f"artifact {directory} was compiled for the host (target {name}); "
                           f"it has no library for --os {requested}")
    if requested == "host":
        raise EdgeAVSError(f"artifact {directory} is for target {name} (an AArch64 device), "
                           "not this machine: --os host takes a host artifact")
    if requested is not None:
        return requested, None
    if link == "ndk":
        tc, why = android_toolchain()
        has_android = any(lib.get("os") == "android" for lib in manifest.get("libraries", []))
        if tc is not None and has_android:
            return "android", None
        why = why if tc is None else "the artifact has no Android library (compiled without an NDK)"
        return "linux", f"no Android bundle: {why}; building the AArch64 Linux bundle only"
    return "linux", None


def _library_file(manifest: dict, os_name: str, directory: Path) -> str:
    from edgeavs.device.export import LIBRARY, library_for

    if os_name == "host":
        name = LIBRARY
    else:
        name = library_for(manifest, os_name)
    path = directory / name
    if not path.is_file():
        raise EdgeAVSError(f"artifact {directory}: {name} is missing")
    got = elf_machine(path)
    if os_name != "host" and got != _EM_AARCH64:  # a host library: validate_artifact checked it
        raise EdgeAVSError(f"artifact {directory}: {name} is not an AArch64 library "
                           f"(ELF machine {got})")
    return name


def _io_text(manifest: dict) -> str:
    lines = ["# name dims... (float32); read by edgeavs-run for raw inputs"]
    for spec in [*manifest["inputs"], *manifest["outputs"]]:
        lines.append(" ".join([spec["name"], *map(str, spec["shape"])]))
    return "\n".join(lines) + "\n"


def _readme(manifest: dict, os_name: str, library: str, name: str, tc: Toolchain) -> str:
    h, w = manifest["resolution"]
    fshape = next(s["shape"] for s in manifest["inputs"] if s["name"] == "frames")
    if os_name == "android":
        where, copy = "/data/local/tmp", f"adb push {name} /data/local/tmp/"
        shell = "adb shell"
    else:
        where, copy = "~", f"scp -r {name} DEVICE:"
        shell = "ssh DEVICE"
    example_cc = {"android": f"{Path(tc.cxx).name}", "linux": "aarch64-linux-gnu-gcc",
                  "host": "gcc"}[os_name]
    text = README_TEMPLATE.read_text()
    return text.format(name=name, target=manifest.get("target_name", "?"), os=os_name,
                       variant=manifest["variant"], h=h, w=w, n=fshape[0], library=library,
                       where=where, copy=copy, shell=shell, toolchain=tc.describe(),
                       tvm=manifest.get("tvm", "?"), example_cc=example_cc)


def _is_bundle(path: Path) -> bool:
    return (path / BUNDLE_JSON).is_file()


def check_output(out, overwrite: bool) -> Path:
    """``-o BUNDLE``: a new folder, or with ``overwrite`` an earlier bundle or an empty folder."""
    from edgeavs.io.atomic import check_writable

    out = Path(out)
    check_writable(out, "-o", kind="dir")
    if os.path.lexists(out):
        if not overwrite:
            raise EdgeAVSError(f"-o {out}: exists; pass --overwrite to replace it")
        if out.is_dir() and any(out.iterdir()) and not _is_bundle(out):
            raise EdgeAVSError(f"-o {out}: is a folder that is not an edgeavs bundle; "
                               "--overwrite replaces only a bundle (or an empty folder)")
    return out


def package(artifact, out, *, os_name: str | None = None, overwrite: bool = False,
            jobs: int = DEFAULT_JOBS, log=None) -> dict:
    """Write the bundle for ``artifact`` to ``out``; returns its ``bundle.json`` record."""
    from edgeavs.compiler.artifact import MANIFEST, file_sha256, staging_dir, validate_artifact

    if os_name is not None and os_name not in OSES:
        raise EdgeAVSError(f"--os {os_name}: choose one of {', '.join(OSES)}")
    directory = Path(artifact)
    out = check_output(out, overwrite)
    manifest = validate_artifact(directory, require_library=False)
    os_name, note = _choose_os(manifest, os_name, directory)
    library = _library_file(manifest, os_name, directory)
    if os_name == "android":
        tc, why = android_toolchain()
        if tc is None:
            raise EdgeAVSError(f"--os android: {why}")
    elif os_name == "linux":
        tc = linux_toolchain(log)
    else:
        tc = host_toolchain()
    if note:
        _say(log, note)
    t0 = time.perf_counter()
    build = build_runtime(tc, jobs=jobs, log=log)
    build_s = time.perf_counter() - t0

    with staging_dir(out) as tmp:
        for sub in ("bin", "lib", "include", "examples", "model"):
            (tmp / sub).mkdir()
        shutil.copy2(build.executable, tmp / "bin" / "edgeavs-run")
        for lib in build.libraries:
            shutil.copy2(lib, tmp / "lib" / lib.name)
        shutil.copy2(API_HEADER, tmp / "include" / API_HEADER.name)
        shutil.copy2(EXAMPLE, tmp / "examples" / EXAMPLE.name)
        shutil.copy2(directory / library, tmp / "model" / library)
        shutil.copy2(directory / MANIFEST, tmp / "model" / MANIFEST)
        (tmp / "model" / "io.txt").write_text(_io_text(manifest))
        (tmp / "README.md").write_text(_readme(manifest, os_name, library, out.name, tc))
        files, needed = {}, {}
        for p in sorted(q for q in tmp.rglob("*") if q.is_file()):
            rel = p.relative_to(tmp).as_posix()
            files[rel] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
            deps = needed_libraries(p)
            if deps is not None:
                needed[rel] = deps
        python = [f"{rel} needs {d}" for rel, deps in needed.items() for d in deps
                  if PYTHON_LIB.search(d)]
        if python:
            raise EdgeAVSError(f"the bundle would need Python: {python[0]}")
        record = {
            "format": FORMAT, "os": os_name, "triple": tc.triple,
            "target": manifest.get("target_name"), "variant": manifest["variant"],
            "resolution": manifest["resolution"], "artifact_created": manifest.get("created"),
            "library": f"model/{library}", "runner": "bin/edgeavs-run",
            "inputs": manifest["inputs"], "outputs": manifest["outputs"],
            "toolchain": tc.describe(), "tvm": build.info["runtime"]["tvm"],
            "tvm_ffi": build.info["runtime"]["tvm_ffi"],
            "runtime_build": {"cache": build.root.name, "cached": build.info["runtime_cached"],
                              "build_seconds": build.info["runtime"]["build_seconds"],
                              "this_call_seconds": round(build_s, 1)},
            "files": files, "needed": needed,
            "total_bytes": sum(f["bytes"] for f in files.values()),
        }
        (tmp / BUNDLE_JSON).write_text(json.dumps(record, indent=2) + "\n")
    return record


# ---------------------------------------------------------------- running a bundle

def read_bundle(directory) -> dict:
    """``bundle.json`` of a bundle, with every listed file present and matching its sha256."""
    from edgeavs.compiler.artifact import file_sha256

    directory = Path(directory)
    path = directory / BUNDLE_JSON
    if not path.is_file():
        raise EdgeAVSError(f"{directory}: not an edgeavs bundle (no {BUNDLE_JSON})")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EdgeAVSError(f"{path}: not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise EdgeAVSError(f"{path}: not an {FORMAT} record")
    for key in ("os", "library", "runner", "files", "inputs", "outputs"):
        if key not in record:
            raise EdgeAVSError(f"{path}: {key} is missing")
    root = directory.resolve()
    for rel, meta in record["files"].items():
        p = (directory / rel)
        if not p.resolve().is_relative_to(root):
            raise EdgeAVSError(f"{path}: {rel} lies outside the bundle")
        if not p.is_file():
            raise EdgeAVSError(f"bundle {directory}: {rel} is missing")
        if file_sha256(p) != meta.get("sha256"):
            raise EdgeAVSError(f"bundle {directory}: {rel} does not match its sha256 in {BUNDLE_JSON}")
    return record


def is_bundle(directory) -> bool:
    return _is_bundle(Path(directory))


def minimal_sysroot() -> Path:
    """The guest's C and C++ runtime alone (the dynamic loader, libc, libm, libgcc_s,
    libstdc++, libdl, libpthread): a sysroot for ``qemu-aarch64 -L`` in which the bundle runs
    with nothing else of the guest (no Python) within reach."""
    from edgeavs.device.emulator import require_emulator

    guest = require_emulator().sysroot
    root = runtime_root() / "guest-libc-sysroot"
    names = ("ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1",
             "libstdc++.so.6", "libdl.so.2", "libpthread.so.0")

    def build(tmp: Path) -> None:
        libdir = tmp / "lib" / "aarch64-linux-gnu"
        libdir.mkdir(parents=True)
        for name in names:
            src = next((d / name for d in (guest / "lib" / "aarch64-linux-gnu",
                                           guest / "usr" / "lib" / "aarch64-linux-gnu")
                        if (d / name).exists()), None)
            if src is None:
                raise EdgeAVSError(f"the emulator's guest has no {name}")
            shutil.copy2(src.resolve(), libdir / name)
        os.symlink("aarch64-linux-gnu/ld-linux-aarch64.so.1", tmp / "lib" / "ld-linux-aarch64.so.1")
        (tmp / "complete.json").write_text(json.dumps({"from": "the emulator guest",
                                                       "files": list(names)}) + "\n")

    _staged(root, build)
    return root


def runner_command(directory, record: dict, args, qemu_cpu: str | None = None) -> list[str]:
    """The command line that runs the bundle's ``edgeavs-run`` here: directly for a host
    bundle, under ``qemu-aarch64 -L <libc-only sysroot>`` for a Linux AArch64 one."""
    from edgeavs.device.emulator import DEFAULT_QEMU_CPU

    directory = Path(directory).resolve()
    exe = [str(directory / record["runner"]), str(directory / record["library"]), *map(str, args)]
    if record["os"] == "host":
        return exe
    if record["os"] != "linux":
        raise EdgeAVSError(f"bundle {directory} is for {record['os']}: the emulator runs Linux "
                           "AArch64 bundles only (push it to the phone and run bin/edgeavs-run there)")
    return ["qemu-aarch64", "-cpu", qemu_cpu or DEFAULT_QEMU_CPU, "-L", str(minimal_sysroot()), *exe]


def runner_env(threads: int | None = None) -> dict:
    """A plain environment for the runner: no Python variables, no LD_LIBRARY_PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "LD_", "QEMU_", "TVM_"))}
    if threads:
        env["TVM_NUM_THREADS"] = str(threads)
    return env


def run_bundle(directory, args, *, record=None, threads=None, timeout: float = 1800.0,
               qemu_cpu: str | None = None) -> str:
    """Run ``edgeavs-run`` with ``args``; its stdout, or a one-line error with its last stderr line."""
    record = record or read_bundle(directory)
    cmd = runner_command(directory, record, args, qemu_cpu)
    try:
        proc = subprocess.run(cmd, env=runner_env(threads), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgeAVSError(f"edgeavs-run did not finish within {timeout:g} s") from None
    except FileNotFoundError:
        raise EdgeAVSError(f"{cmd[0]} not found") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise EdgeAVSError(f"edgeavs-run failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


LATENCY = re.compile(r"latency_ms median=([\d.]+) min=([\d.]+) max=([\d.]+) runs=(\d+)")


def parse_latency(stdout: str) -> dict:
    m = LATENCY.search(stdout)
    if not m:
        raise EdgeAVSError("edgeavs-run printed no latency line")
    return {"median_ms": float(m[1]), "min_ms": float(m[2]), "max_ms": float(m[3]),
            "runs": int(m[4])}


class BundleModel:
    """A bundle as :func:`edgeavs.verify` runs a model: ``manifest`` and ``run_all``, each batch
    through one ``edgeavs-run`` process (emulated for an AArch64 Linux bundle)."""

    def __init__(self, directory, qemu_cpu: str | None = None):
        from edgeavs.compiler.artifact import read_manifest

        self.directory = Path(directory)
        self.record = read_bundle(directory)
        self.manifest = read_manifest(self.directory / "model")
        if qemu_cpu is None and self.record["os"] == "linux":
            from edgeavs.device.emulator import qemu_cpu_for

            target = self.manifest.get("target") or {}
            qemu_cpu = qemu_cpu_for(target.get("mcpu"), target.get("mattr") or ())
        self.qemu_cpu = qemu_cpu
        runner_command(self.directory, self.record, [], qemu_cpu)  # refuses an Android bundle

    def describe(self) -> str:
        if self.record["os"] == "host":
            return "this machine (bundle's edgeavs-run)"
        return (f"bundle's edgeavs-run under qemu-aarch64 -cpu {self.qemu_cpu}"
                " with the guest's libc/libstdc++ only")

    def run_all(self, frames, waveform) -> dict:
        import numpy as np

        spec = {s["name"]: s["shape"] for s in self.manifest["inputs"]}
        b = spec["frames"][0]
        n = len(frames)
        if n % b:
            raise EdgeAVSError(f"batch of {n} is not a multiple of the compiled batch {b}")
        outs = []
        with tempfile.TemporaryDirectory(prefix="edgeavs-bundle-run-") as tmp:
            for i in range(0, n, b):
                f, w, o = (Path(tmp) / x for x in ("frames.npy", "waveform.npy", "logits.npy"))
                np.save(f, np.ascontiguousarray(frames[i:i + b], dtype=np.float32))
                np.save(w, np.ascontiguousarray(waveform[i:i + b], dtype=np.float32))
                run_bundle(self.directory, ["--frames", f, "--audio", w, "--out", o,
                                            "--runs", "1", "--warmup", "0"],
                           record=self.record, qemu_cpu=self.qemu_cpu)
                outs.append(np.load(o))
        name = self.manifest["outputs"][0]["name"]
        return {name: np.concatenate(outs)}
