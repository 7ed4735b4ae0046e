"""The peers on the projection's footing: ONNX Runtime (MLAS) and ExecuTorch + XNNPACK, AArch64.

The same LightAVSeg weights as an edgeavs artifact, exported for each peer, run in the
emulator's AArch64 guest under the same block-counting plugin and llvm-mca cost model as
``edgeavs device project`` (:mod:`edgeavs.device.projection`): single thread, the same seeded
inputs, a warm-up, then counted inferences between the markers of
:mod:`~edgeavs.device.projection_guest`. Everything the guest executes between the markers is
costed; per inference, ``inference_cycles`` = the peer's libraries + everything they call
(libc, libm, the Python call of ``InferenceSession.run``), the same sum as edgeavs' library +
its runtime (the Relax VM).

- **ONNX Runtime**: ``onnxruntime``'s manylinux aarch64 wheel (the version of this
  environment's onnxruntime, fetched with ``pip download`` into the cache), the graph of
  ``edgeavs export-onnx`` (dynamo exporter, opset 18), ``InferenceSession`` with the CPU
  execution provider, all graph optimisations, one intra-op and one inter-op thread, run by
  :file:`peer_runners/ort_guest.py` in the guest's Python. The counted code: its
  ``onnxruntime_pybind11_state`` library (MLAS inside). The wheel is stripped (two dynamic
  symbols): no per-kernel attribution.
- **ExecuTorch + XNNPACK**: a ``.pte`` exported on the host with ``XnnpackPartitioner``
  (:file:`peer_runners/export_pte.py`, run by a Python with ``executorch``: see
  :func:`export_python`), run by a small C++ runner (:file:`peer_runners/et_runner.cpp`,
  cross-compiled with ``aarch64-linux-gnu-g++`` against the ``executorch`` aarch64 wheel's
  ``libexecutorch*.so`` and headers). Not ExecuTorch's Python runtime: its aarch64 bindings
  link libtorch (``_C`` needs ``libtorch_cpu.so``, a ~500 MB wheel to load under qemu before
  the first inference), while the runner needs only the runtime, the optimised kernels and the
  XNNPACK backend. The counted code: those libraries; XNNPACK's exported ukernel symbols (a
  quarter of its code) name per-op classes, the rest is ``[unnamed]``.

The guest of the peers sees an Oryon-like CPU: qemu 7.2 passes the host's x86 ``/proc/cpuinfo``
through, on which cpuinfo (ORT's and XNNPACK's CPU detection) dereferences a null pointer. The
peers therefore run with an overlay sysroot (:func:`peer_sysroot`: the guest's sysroot plus an
AArch64 ``/proc/cpuinfo`` and ``/sys/devices/system/cpu`` of one Qualcomm Oryon core, MIDR
0x511F0011; qemu's ``-L`` prefix serves files that exist in it before the host's). One CPU also
means one worker thread by default; the runners ask for one anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeavs.errors import EdgeAVSError

RUNNERS = Path(__file__).with_name("peer_runners")
ORT_GUEST = RUNNERS / "ort_guest.py"
ET_RUNNER_SOURCE = RUNNERS / "et_runner.cpp"
EXPORT_PTE = RUNNERS / "export_pte.py"
EXECUTORCH_VERSION = "1.5.1"
ORT_FALLBACK_VERSION = "1.32.0"
CROSS_CXX = "aarch64-linux-gnu-g++"
CROSS_CXX_PACKAGE = "g++-aarch64-linux-gnu"
ET_LIBS = ("libexecutorch.so", "libexecutorch_backend_xnnpack.so",
           "libexecutorch_kernels_optimized.so", "libexecutorch_threadpool.so")
"""The executorch wheel's libraries the runner links (and the counted code ranges)."""
ORT_LIB = "onnxruntime_pybind11_state"
PEERS = ("onnxruntime", "xnnpack")
PEER_SYSROOT_VERSION = 1
CPUINFO = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
jscvt fcma lrcpc dcpop sha3 asimddp sha512 asimdfhm dit uscat ilrcpc flagm ssbs sb dcpodp \
flagm2 frint i8mm bf16 bti
CPU implementer\t: 0x51
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0x001
CPU revision\t: 1

"""
SYS_CPU = {"possible": "0", "present": "0", "online": "0", "kernel_max": "0",
           "cpu0/regs/identification/midr_el1": "0x00000000511f0011",
           "cpu0/cpufreq/cpuinfo_max_freq": "4320000",
           "cpu0/cpufreq/cpuinfo_min_freq": "4320000",
           "cpu0/topology/core_siblings_list": "0",
           "cpu0/topology/cluster_cpus_list": "0",
           "cpu0/topology/thread_siblings_list": "0"}


def _say(log, msg: str) -> None:
    if log:
        log(msg)


def peers_dir() -> Path:
    from edgeavs.device.emulator import cache_dir

    return cache_dir() / "emulator" / "peers"


# ---------------------------------------------------------------- the guest's view of the CPU

def peer_sysroot() -> Path:
    """The guest sysroot with an Oryon-like ``/proc/cpuinfo`` and ``/sys/devices/system/cpu``
    (one core): top-level entries are symlinks to the emulator's sysroot."""
    from edgeavs.device.emulator import require_emulator

    guest = require_emulator()
    root = peers_dir() / f"sysroot-v{PEER_SYSROOT_VERSION}"
    stamp = root / ".edgeavs-peer-sysroot"
    if stamp.is_file() and stamp.read_text() == str(guest.sysroot):
        return root

    def build(tmp: Path) -> None:
        for entry in sorted(guest.sysroot.iterdir()):
            if entry.name not in ("proc", "sys"):
                os.symlink(entry, tmp / entry.name)
        (tmp / "proc").mkdir()
        (tmp / "proc" / "cpuinfo").write_text(CPUINFO)
        for rel, text in SYS_CPU.items():
            path = tmp / "sys" / "devices" / "system" / "cpu" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
        (tmp / stamp.name).write_text(str(guest.sysroot))

    _replace_dir(root, build)
    return root


# ---------------------------------------------------------------- installing the peers

def ort_version() -> str:
    """The onnxruntime of this environment (the guest gets the same release), else the pin."""
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return ORT_FALLBACK_VERSION


def _pip_download_aarch64(spec: str, dest: Path, log) -> Path:
    from edgeavs.device.emulator import GUEST_PYTHON, WHEEL_PLATFORMS, _run

    plat = [a for p in WHEEL_PLATFORMS for a in ("--platform", p)]
    _say(log, f"pip download {spec} (aarch64 wheel)")
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
          *plat, "--python-version", GUEST_PYTHON, "--implementation", "cp", "-d", str(dest),
          spec], f"pip download {spec} (aarch64)")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise EdgeAVSError(f"pip download {spec}: no aarch64 wheel")
    return wheels[0]


def _install_tree(root: Path, build, log) -> Path:
    """Build ``root`` once (``build(tmp)`` fills a sibling temporary folder, then it is renamed)."""
    if (root / ".complete").is_file():
        return root
    def complete(tmp: Path) -> None:
        build(tmp)
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    _replace_dir(root, complete)
    return root


def _replace_dir(root: Path, build) -> None:
    """``build(tmp)`` fills a temporary sibling of ``root``, which then replaces ``root`` (removed
    on failure, so a half-built tree never takes its place)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        build(tmp)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def setup_ort(log=None) -> Path:
    """The aarch64 onnxruntime package in the cache (~23 MB download, once): a folder for the
    guest's ``PYTHONPATH``."""
    version = ort_version()

    def build(tmp: Path) -> None:
        from edgeavs.device.emulator import _unpack_wheel

        wheel = _pip_download_aarch64(f"onnxruntime=={version}", tmp / "wheel", log)
        _unpack_wheel(wheel, tmp / "site")
        shutil.rmtree(tmp / "wheel")

    return _install_tree(peers_dir() / f"onnxruntime-{version}", build, log) / "site"


def _cross_cxx(log) -> str:
    path = shutil.which(CROSS_CXX)
    if path:
        return path
    from edgeavs.device.emulator import _Apt

    apt = _Apt(log)
    apt.install([CROSS_CXX_PACKAGE], why=f"{CROSS_CXX} (the ExecuTorch runner's compiler) "
                                          "is missing")
    path = shutil.which(CROSS_CXX)
    if not path:
        raise EdgeAVSError(f"after apt-get install {CROSS_CXX_PACKAGE}, {CROSS_CXX} is missing")
    return path


def setup_executorch(log=None) -> Path:
    """The executorch aarch64 runtime libraries and the runner built against them, in the cache
    (~18 MB download and one cross-compile, once). Returns the folder holding ``et_runner`` and
    the libraries."""
    def build_libs(tmp: Path) -> None:
        import zipfile

        wheel = _pip_download_aarch64(f"executorch=={EXECUTORCH_VERSION}", tmp / "wheel", log)
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = info.filename
                if name.startswith("executorch/include/") or any(
                        name == f"executorch/lib/{lib}" for lib in ET_LIBS):
                    zf.extract(info, tmp)
        for lib in ET_LIBS:
            src = tmp / "executorch" / "lib" / lib
            if not src.is_file():
                raise EdgeAVSError(f"the executorch {EXECUTORCH_VERSION} aarch64 wheel has no "
                                   f"{lib}")
            os.replace(src, tmp / lib)
            os.chmod(tmp / lib, 0o755)
        os.replace(tmp / "executorch" / "include", tmp / "include")
        shutil.rmtree(tmp / "executorch")
        shutil.rmtree(tmp / "wheel")

    libs = _install_tree(peers_dir() / f"executorch-{EXECUTORCH_VERSION}", build_libs, log)
    digest = hashlib.sha256(ET_RUNNER_SOURCE.read_bytes()).hexdigest()[:12]
    runner = libs / f"et_runner-{digest}"
    if runner.is_file():
        return runner
    cxx = _cross_cxx(log)
    inc = libs / "include"
    tmp = libs / f".{runner.name}.{os.getpid()}.tmp"
    cmd = [cxx, "-O2", "-std=c++17", "-DC10_USING_CUSTOM_GENERATED_MACROS", f"-I{inc}",
           f"-I{inc / 'executorch' / 'runtime' / 'core' / 'portable_type' / 'c10'}",
           "-o", str(tmp), str(ET_RUNNER_SOURCE), f"-L{libs}", "-Wl,--no-as-needed",
           "-lexecutorch_backend_xnnpack", "-lexecutorch_kernels_optimized", "-lexecutorch",
           "-Wl,--as-needed", "-Wl,-rpath,$ORIGIN"]
    _say(log, f"{CROSS_CXX} -O2 {ET_RUNNER_SOURCE.name} -> {runner}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        lines = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines()
        raise EdgeAVSError(f"building {ET_RUNNER_SOURCE.name} failed: "
                           f"{lines[0] if lines else proc.returncode}")
    os.replace(tmp, runner)
    return runner


def export_python(log=None) -> str:
    """A Python that imports ``executorch`` for the ``.pte`` export: ``$EDGEAVS_EXECUTORCH_PYTHON``;
    else this one if it has executorch; else a virtual environment in the cache with this
    environment's torch release and ``executorch==1.5.1`` (pip; created once)."""
    env = os.environ.get("EDGEAVS_EXECUTORCH_PYTHON")
    if env:
        if not Path(env).is_file():
            raise EdgeAVSError(f"EDGEAVS_EXECUTORCH_PYTHON={env}: no such file")
        return env
    import importlib.util

    if importlib.util.find_spec("executorch") is not None:
        return sys.executable
    from importlib import metadata

    torch_version = metadata.version("torch").split("+")[0]
    venv = peers_dir() / f"export-venv-et{EXECUTORCH_VERSION}-torch{torch_version}"
    python = venv / "bin" / "python"
    if (venv / ".complete").is_file():
        return str(python)
    from edgeavs.device.emulator import _run

    _say(log, f"python -m venv {venv} && pip install torch=={torch_version} "
              f"executorch=={EXECUTORCH_VERSION}")
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv)], "python -m venv (executorch export)")
    _run([str(python), "-m", "pip", "install", "-q", f"torch=={torch_version}",
          f"executorch=={EXECUTORCH_VERSION}"], "pip install executorch (export venv)")
    (venv / ".complete").write_text("")
    return str(python)


# ---------------------------------------------------------------- models and inputs

def seeded_inputs(specs, seed: int = 0) -> list:
    """The arrays :func:`edgeavs.device.projection_guest.run_tvm` feeds an artifact: one
    ``default_rng(seed)``, standard normal, in input order."""
    import numpy as np

    rng = np.random.default_rng(int(seed))
    return [rng.standard_normal(s["shape"]).astype(s.get("dtype", "float32")) for s in specs]


def rel_l2(out, ref) -> float:
    import numpy as np

    out = np.asarray(out, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if out.shape != ref.shape:
        raise EdgeAVSError(f"output has {out.size} values, the reference {ref.size}")
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


def export_models(model, inputs, workdir: Path, peers=PEERS, log=None) -> dict:
    """``model`` (a LightAVSeg ``nn.Module``) on ``inputs`` (numpy arrays): the PyTorch
    reference output, ``model.onnx`` and ``model.pte`` (kept in ``workdir``: reused when there)."""
    import numpy as np
    import torch

    from edgeavs.compiler import frontend

    workdir.mkdir(parents=True, exist_ok=True)
    graph = frontend.inference_graph(model)
    tensors = tuple(torch.from_numpy(a) for a in inputs)
    out = {"dir": str(workdir)}
    ref_path = workdir / "reference.npy"
    if not ref_path.is_file():
        with torch.no_grad():
            np.save(ref_path, graph(*tensors).numpy())
    out["reference"] = ref_path
    if "onnxruntime" in peers:
        onnx = workdir / "model.onnx"
        if not onnx.is_file():
            t0 = time.perf_counter()
            frontend.export_onnx(graph, tensors, onnx)
            _say(log, f"export-onnx -> {onnx} in {time.perf_counter() - t0:.0f} s")
        out["onnx"] = onnx
    if "xnnpack" in peers:
        pte, report = workdir / "model.pte", workdir / "pte-export.json"
        if not (pte.is_file() and report.is_file()):
            t0 = time.perf_counter()
            pt2 = workdir / "program.pt2"
            with torch.no_grad():
                ep = torch.export.export(graph, tensors)
            torch.export.save(ep, str(pt2))
            python = export_python(log)
            proc = subprocess.run([python, str(EXPORT_PTE), str(pt2), str(pte), str(report)],
                                  capture_output=True, text=True)
            pt2.unlink(missing_ok=True)
            if proc.returncode != 0:
                lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
                raise EdgeAVSError(f"the ExecuTorch export failed: "
                                   f"{lines[-1] if lines else proc.returncode}")
            _say(log, f"ExecuTorch/XNNPACK export -> {pte} in {time.perf_counter() - t0:.0f} s")
        out["pte"] = pte
        out["pte_export"] = json.loads(report.read_text())
    return out


# ---------------------------------------------------------------- code ranges and symbols

def exec_spans(path) -> list:
    """``[[lo, hi]]`` of an ELF64 file's executable PT_LOAD segments (relative to its load base)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            raise EdgeAVSError(f"{Path(path).name}: not an ELF64 file")
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    spans = []
    for i in range(phnum):
        p_type, p_flags, _off, vaddr, _pa, _fsz, memsz = struct.unpack_from(
            "<IIQQQQQ", table, i * phentsize)
        if p_type == 1 and p_flags & 1:
            spans.append([vaddr, vaddr + memsz])
    if not spans:
        raise EdgeAVSError(f"{Path(path).name}: no executable segment")
    return spans


def dynamic_symbols(path, label: str) -> list:
    """``[(start, end, name)]`` covering the executable segments of a (stripped) shared library:
    its exported functions at their own sizes, and the code between them as
    ``[unnamed <label>]`` (a hidden function is not charged to the exported one before it)."""
    from edgeavs.device.projection_tools import LLVM_SUFFIX, _tool

    nm = _tool(f"llvm-nm{LLVM_SUFFIX}")
    proc = subprocess.run([nm, "-D", "--defined-only", "-S", str(path)], capture_output=True,
                          text=True)
    named = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwWiI" and int(parts[1], 16) > 0:
            start = int(parts[0], 16)
            named.append((start, start + int(parts[1], 16), parts[3].split("@")[0]))
    named = sorted(set(named))
    unnamed = f"[unnamed {label}]"
    out = []
    for lo, hi in exec_spans(path):
        cur = lo
        for s, e, n in named:
            if e <= lo or s >= hi or s < cur:
                continue
            if s > cur:
                out.append((cur, s, unnamed))
            out.append((s, e, n))
            cur = e
        if cur < hi:
            out.append((cur, hi, unnamed))
    return out


_XNN_CLASSES = (
    ("gemm/conv", r"_(gemm|igemm|ppmm|conv_hwc|spmm)"),
    ("depthwise conv", r"_dwconv"),
    ("pool", r"_(gavgpool|avgpool|maxpool|argmaxpool|rdsum|rsum|rmax|rminmax)"),
    ("softmax", r"_(raddstoreexpminusmax|raddexpminusmax|vscaleexpminusmax|vscale)"),
    ("activation", r"_(vclamp|vhswish|vsigmoid|vrelu|vlrelu|vtanh|velu|vgelu|vsqrt|vrsqrt|"
                   r"vabs|vneg|vsqr|vexp|vlog|vrnd)"),
    ("elementwise", r"_(vadd|vsub|vmul|vdiv|vmax|vmin|vsqrdiff|vprelu|vcopysign|vbinary)"),
    ("layout/copy", r"(transpose|_zip|packw|_pad|_fill|copy|memcpy|_unpool|gemm_goi)"),
    ("convert", r"_vcvt"),
    ("resize", r"_(ibilinear|resize)"),
)


def op_class(symbol: str | None) -> str:
    """The operator class of a peer's function symbol (XNNPACK's ukernel naming), else the
    library's ``[unnamed ...]`` / ``runtime`` group."""
    if not symbol:
        return "[unnamed]"
    if symbol.startswith("[unnamed"):
        return symbol
    if symbol.startswith("xnn_"):
        for name, pattern in _XNN_CLASSES:
            if re.search(pattern, symbol):
                return f"xnnpack {name}"
        return "xnnpack other"
    if "executorch" in symbol or symbol.startswith("_Z"):
        return "executorch runtime/kernels"
    return symbol


# ---------------------------------------------------------------- the counted runs

def _qemu_env(site_paths=(), ld_path=None) -> tuple[list, dict]:
    from edgeavs.device.emulator import DEFAULT_QEMU_CPU, require_emulator

    guest = require_emulator()
    env = guest.env(1)
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    if site_paths:
        env["PYTHONPATH"] = os.pathsep.join([*map(str, site_paths), str(guest.site)])
    if ld_path:
        env["LD_LIBRARY_PATH"] = str(ld_path)
    return ["qemu-aarch64", "-cpu", DEFAULT_QEMU_CPU, "-L", str(peer_sysroot())], env


def _finish(kind: str, trace, cpu, libraries: dict, reference, output, wall0: float,
            log) -> dict:
    from edgeavs.device.projection import project_trace, summarize

    t0 = time.perf_counter()
    projected = project_trace(trace, cpu, libraries, name_of=lambda s: s, log=log)
    report = summarize(projected, cpu)
    groups: dict = {}
    for f in report["functions"]:
        g = groups.setdefault(op_class(f["name"]), {"cycles": 0.0, "flops": 0.0})
        g["cycles"] += f["cycles"]
        g["flops"] += f["flops"]
    hz = cpu.ghz * 1e9
    inference_cycles = report["total"]["cycles"] + report["outside"]["cycles"]
    report["op_classes"] = [
        {"class": k, "cycles": v["cycles"], "ms": v["cycles"] / hz * 1e3,
         "share": v["cycles"] / inference_cycles if inference_cycles else 0.0,
         "peak_fraction": v["flops"] / (v["cycles"] * cpu.flop_per_cycle) if v["cycles"] else 0.0}
        for k, v in sorted(groups.items(), key=lambda kv: -kv[1]["cycles"])]
    report["inference"] = inference_summary(report, cpu)
    report["peer"] = kind
    report["rel_l2_vs_pytorch"] = rel_l2(output, reference) if reference is not None else None
    report["guest"] = {k: trace.guest.get(k) for k in ("runs", "threads", "threads_at_start",
                                                       "output", "seconds", "versions")}
    report["wall_s"] = {"counted_run": trace.wall_s,
                        "costing": round(time.perf_counter() - t0, 2),
                        "total": round(time.perf_counter() - wall0, 2)}
    return report


def _require(cpu) -> None:
    """The guest, the projection's tools and an AArch64 CPU model, before any download."""
    from edgeavs.device.emulator import require_emulator
    from edgeavs.device.projection import require_tools

    if cpu.arch != "aarch64":
        raise EdgeAVSError(f"--cpu {cpu.name}: the peers run in the AArch64 guest only")
    require_emulator()
    require_tools()


def inference_summary(report: dict, cpu) -> dict:
    """Everything between the markers per inference: the projected libraries + what ran
    outside them (an edgeavs artifact's VM; a peer's libc and Python call)."""
    hz, peak = cpu.ghz * 1e9, cpu.flop_per_cycle
    t, o = report["total"], report["outside"]
    cycles = t["cycles"] + o["cycles"]
    instructions = {k: t["instructions"].get(k, 0) + o["instructions"].get(k, 0)
                    for k in t["instructions"]}
    return {"cycles": cycles, "ms": cycles / hz * 1e3,
            "library_cycles": t["cycles"], "outside_cycles": o["cycles"],
            "instructions": instructions, "instructions_total": sum(instructions.values()),
            "flops": t["flops"],
            "peak_fraction": t["flops"] / (cycles * peak) if cycles else 0.0}


def project_ort(onnx, inputs, cpu, *, reference=None, runs: int = 2, timeout: float = 3600.0,
                log=None) -> dict:
    """ONNX Runtime (aarch64, MLAS) on ``onnx`` with ``inputs`` (numpy arrays, in the graph's
    input order) under the plugin; projected on ``cpu`` (a :class:`CpuModel`)."""
    import numpy as np

    from edgeavs.device.projection import MARKER_NR, run_counted

    _require(cpu)
    wall0 = time.perf_counter()
    site = setup_ort(log)
    lib = next((site / "onnxruntime" / "capi").glob(f"{ORT_LIB}*.so"), None)
    if lib is None:
        raise EdgeAVSError(f"the aarch64 onnxruntime in {site} has no {ORT_LIB} library")
    lib = Path(os.path.realpath(lib))
    workdir = Path(tempfile.mkdtemp(prefix="edgeavs-peer-ort-"))
    try:
        files = []
        for i, a in enumerate(inputs):
            path = workdir / f"input{i}.npy"
            np.save(path, a)
            files.append(str(path))
        report_path, out_path = workdir / "guest.json", workdir / "output.npy"
        cfg = {"model": str(Path(onnx).resolve()), "inputs": files, "output": str(out_path),
               "runs": runs, "marker_nr": MARKER_NR, "out": str(report_path),
               "regions": [{"path": str(lib), "spans": exec_spans(lib)}]}
        (workdir / "config.json").write_text(json.dumps(cfg))
        from edgeavs.device.emulator import require_emulator

        qemu, env = _qemu_env(site_paths=[site])
        qemu.append(str(require_emulator().python))
        trace = run_counted([str(ORT_GUEST), str(workdir / "config.json")], arch="aarch64",
                            qemu=qemu, env=env, workdir=workdir, report=report_path, runs=runs,
                            timeout=timeout, log=log)
        libraries = {str(lib): dynamic_symbols(lib, "onnxruntime")}
        report = _finish("onnxruntime", trace, cpu, libraries, reference, np.load(out_path),
                         wall0, log)
        report["model"] = str(onnx)
        report["method"] = (f"onnxruntime {ort_version()} aarch64 (CPU EP, MLAS), 1 intra-op "
                            f"thread, {runs} counted inferences after a warm-up")
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def project_xnnpack(pte, inputs, cpu, *, reference=None, runs: int = 2,
                    timeout: float = 3600.0, log=None) -> dict:
    """ExecuTorch + XNNPACK (aarch64) on the ``.pte`` with ``inputs`` under the plugin."""
    import numpy as np

    from edgeavs.device.projection import MARKER_NR, run_counted

    _require(cpu)
    wall0 = time.perf_counter()
    runner = setup_executorch(log)
    libdir = runner.parent
    workdir = Path(tempfile.mkdtemp(prefix="edgeavs-peer-et-"))
    try:
        argv = [str(runner), str(Path(pte).resolve())]
        for i, a in enumerate(inputs):
            path = workdir / f"input{i}.bin"
            np.ascontiguousarray(a, dtype=np.float32).tofile(path)
            argv += ["--input", f"{path}:{'x'.join(str(d) for d in a.shape)}"]
        report_path, out_path = workdir / "guest.json", workdir / "output.bin"
        argv += ["--output", str(out_path), "--report", str(report_path), "--runs", str(runs),
                 "--marker-nr", str(MARKER_NR)]
        libraries = {}
        for name in ET_LIBS:
            lib = Path(os.path.realpath(libdir / name))
            for lo, hi in exec_spans(lib):
                argv += ["--region", f"{lib}:{lo:#x}:{hi:#x}"]
            libraries[str(lib)] = dynamic_symbols(lib, name.split(".")[0].replace("lib", "", 1))
        qemu, env = _qemu_env(ld_path=libdir)
        trace = run_counted(argv, arch="aarch64", qemu=qemu, env=env, workdir=workdir,
                            report=report_path, runs=runs, timeout=timeout, log=log)
        output = np.fromfile(out_path, dtype=np.float32)
        report = _finish("xnnpack", trace, cpu, libraries, reference, output, wall0, log)
        report["model"] = str(pte)
        report["method"] = (f"ExecuTorch {EXECUTORCH_VERSION} aarch64 runtime + XNNPACK "
                            f"backend (C++ runner), {runs} counted inferences after a warm-up")
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def format_peer(report: dict, top: int = 8) -> str:
    inf = report["inference"]
    lines = [f"{report['peer']}: {inf['ms']:.3f} ms per inference projected on "
             f"{report['cpu']['name']} ({inf['peak_fraction'] * 100:.1f}% of fp32 peak), "
             f"rel-L2 vs PyTorch {report['rel_l2_vs_pytorch']:.2e}"]
    for g in report["op_classes"][:top]:
        lines.append(f"    {g['class']:<40} {g['ms']:9.4f} ms {g['share'] * 100:5.1f}%")
    return "\n".join(lines)


# ---------------------------------------------------------------- side by side

def compare_artifact(artifact, workdir, peers=PEERS, runs: int = 2, log=None) -> dict:
    """An AArch64 edgeavs artifact and the peers on its weights (the manifest's record) and its
    seeded inputs, projected on one Oryon prime core; every output against PyTorch's.

    ``workdir`` keeps the exports (``model.onnx``, ``model.pte``, ``reference.npy``) for reuse.
    Returns ``{"edgeavs": report, <peer>: report, ..., "ratios_edgeavs_over_peer": {...},
    "pte_export": ...}``; each report has ``inference`` (:func:`inference_summary`) and
    ``rel_l2_vs_pytorch``; edgeavs' also ``op_classes`` by the compiler's function classes."""
    import numpy as np

    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.compiler.build import build_torch_model
    from edgeavs.device.projection import cpu_model, project_artifact

    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise EdgeAVSError(f"unknown peer {unknown[0]!r}: expected {', '.join(PEERS)}")
    cpu = cpu_model("oryon-1")
    _require(cpu)
    directory = Path(artifact)
    manifest = read_manifest(directory)
    if not ((manifest.get("target") or {}).get("mtriple") or "").startswith("aarch64"):
        raise EdgeAVSError(f"artifact {artifact}: not an AArch64 artifact (compile it with "
                           f"--target snapdragon8elite)")
    workdir = Path(workdir)
    model = build_torch_model(manifest["variant"], manifest["weights"])
    inputs = seeded_inputs(manifest["inputs"], seed=0)
    exported = export_models(model, inputs, workdir, peers=peers, log=log)
    reference = np.load(exported["reference"])
    out: dict = {"weights": manifest["weights"], "inputs": manifest["inputs"]}
    if "pte_export" in exported:
        out["pte_export"] = exported["pte_export"]

    t0 = time.perf_counter()
    edge_out = workdir / "edgeavs-output.npy"
    report = project_artifact(directory, cpu="oryon-1", runs=runs, output_file=edge_out, log=log)
    report["inference"] = inference_summary(report, cpu)
    report["rel_l2_vs_pytorch"] = rel_l2(np.load(edge_out), reference)
    table = (manifest.get("schedules") or {}).get("functions") or {}
    groups: dict = {}
    for f in report["functions"]:
        cls = table.get(f["name"], {}).get("class", "not in the schedule table")
        g = groups.setdefault(cls, {"cycles": 0.0, "flops": 0.0})
        g["cycles"] += f["cycles"]
        g["flops"] += f["flops"]
    total = report["inference"]["cycles"]
    report["op_classes"] = [
        {"class": k, "cycles": v["cycles"], "ms": v["cycles"] / (cpu.ghz * 1e6),
         "share": v["cycles"] / total if total else 0.0,
         "peak_fraction": v["flops"] / (v["cycles"] * cpu.flop_per_cycle) if v["cycles"] else 0.0}
        for k, v in sorted(groups.items(), key=lambda kv: -kv[1]["cycles"])]
    report["wall_s"]["side_by_side"] = round(time.perf_counter() - t0, 2)
    out["edgeavs"] = report
    _say(log, f"edgeavs: {report['inference']['ms']:.3f} ms per inference, rel-L2 "
              f"{report['rel_l2_vs_pytorch']:.2e}")
    runners = {"onnxruntime": (project_ort, "onnx"), "xnnpack": (project_xnnpack, "pte")}
    for name in peers:
        fn, key = runners[name]
        rep = fn(exported[key], inputs, cpu, reference=reference, runs=runs, log=log)
        out[name] = rep
        _say(log, f"{name}: {rep['inference']['ms']:.3f} ms per inference, rel-L2 "
                  f"{rep['rel_l2_vs_pytorch']:.2e}, wall {rep['wall_s']['total']} s")
    out["ratios_edgeavs_over_peer"] = {
        name: report["inference"]["cycles"] / out[name]["inference"]["cycles"] for name in peers}
    return out
