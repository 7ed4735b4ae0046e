"""Projected cycles of real machine code: count executed blocks under qemu, cost them with llvm-mca.

``edgeavs device project ARTIFACT --cpu oryon-1`` answers "how fast would this AArch64 library
be on one Snapdragon 8 Elite prime core?" without a phone:

1. **Count.** The library runs in the emulator's guest (``qemu-aarch64``, single thread, fixed
   seeded inputs) with the TCG plugin ``plugin/blockcount.c`` (built by ``setup-emulator`` into
   the cache). The guest (:mod:`edgeavs.device.projection_guest`) tells the plugin the code
   ranges of the library (its function symbols' span, relative to the load base read from the
   guest's ``/proc/self/maps``), warms up, and marks the counted inferences (default 2) with a
   marker system call, so start-up (Python, imports, loading, the first call) is not counted.
   The plugin counts every translated block's executions; a block outside the ranges (libm's
   ``expf``, a PLT stub, the VM between two calls) is counted under the last in-range block
   that ran before it, its caller.
2. **Attribute.** Guest addresses become symbols with the library's symbol table
   (``llvm-nm``) and the load base. A TVM function is its ``__tvm_ffi_<name>`` entry and its
   ``<name>_compute_`` body. Blocks in helper code (libm, libgcc, the library's own PLT) are
   charged to the function that called them; everything else outside the ranges (runtime,
   interpreter, libc) is reported apart as ``outside``.
3. **Cost.** Each distinct executed block (by content) is disassembled (``llvm-mc``) and given
   to ``llvm-mca -mcpu=<cpu>`` as its own code region: its steady-state cycles per iteration
   (total cycles / iterations over 100 iterations). A function's projected cycles are the sum
   over its blocks of executions x cycles per iteration. Results are cached per block content
   hash and CPU in ``$EDGEAVS_CACHE/projection/``. LLVM 19's ``oryon-1`` model lacks scheduling
   data for some instruction forms (e.g. ``fmaxnm``, ``ldr w, [x, #imm]``): mca skips them, and
   such a block is charged at least its pipe occupancy (each instruction class over its pipes:
   6 integer, 4 load, 2 store, 4 vector; all instructions over the dispatch width of 14); the
   report gives the share of executed instructions that lacked a model.
4. **Report**, per function and for the whole inference: executed instructions by class
   (vector multiply-add, other vector, load, store, scalar, branch), cycles, time at the core's
   clock (4.32 GHz), fp32 FLOP per cycle and the fraction of peak (4 x 128-bit FMLA pipes: 32
   fp32 FLOP per cycle), the bytes the function moves (its tensor arguments) with the memory
   time at the DRAM bandwidth (LPDDR5X, 84.8 GB/s) when its working set does not fit in the
   cache (12 MiB, an Oryon cluster's L2), and which bound won.

What it is not: a cycle-accurate simulation. Blocks are costed in isolation and in steady state
(no cache misses, branch mispredictions or cross-block overlap); the host validation
(``bench/bench_arm_projection.py``: the same method on an x86-64 AVX2 build under
``qemu-x86_64`` against ``edgeavs profile`` on this machine) says how far it can be trusted.

The counting and costing (:func:`run_counted`, :func:`project_trace`) know nothing of TVM: any
guest process that marks its regions with :mod:`~edgeavs.device.projection_guest` (an ONNX
Runtime or ExecuTorch runner) is projected by the same code; only :func:`project_artifact`
knows edgeavs' artifacts.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeavs.device.projection_tools import (LLVM_SUFFIX, TOOLS, _tool, build_plugin,  # noqa: F401
                                             missing_tools, plugin_file)
from edgeavs.errors import EdgeAVSError

GUEST_SCRIPT = Path(__file__).with_name("projection_guest.py")
MARKER_NR = 0x45A0
MCA_ITERATIONS = 100
MCA_CHUNK = 1500
"""Code regions per llvm-mca process."""
CLASSES = ("vector_fma", "vector_other", "load", "store", "scalar", "branch")
HELPER_LIBS = re.compile(r"/(libm\.so|libm-|libmvec|libgcc_s)")
"""Shared libraries whose blocks are charged to the calling function (math helpers)."""
OUTSIDE = "[outside]"
UNNAMED = "[unnamed code]"
MIB = 1 << 20


@dataclass(frozen=True)
class CpuModel:
    """A core the projection targets: the llvm-mca model and what turns cycles into time."""

    name: str
    arch: str                     # "aarch64" | "x86_64"
    mcpu: str                     # llvm-mca -mcpu
    ghz: float
    flop_per_cycle: float         # fp32 peak per cycle
    dram_gbps: float
    cache_bytes: int
    dispatch: int
    pipes: dict = field(default_factory=dict)   # pipe class -> count, for unmodeled instructions
    mattr: str = ""
    source: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "arch": self.arch, "mcpu": self.mcpu, "ghz": self.ghz,
                "fp32_flop_per_cycle": self.flop_per_cycle, "dram_gbps": self.dram_gbps,
                "cache_bytes": self.cache_bytes, "dispatch_width": self.dispatch,
                "pipes": dict(self.pipes), "source": self.source}


CPUS = {
    "oryon-1": CpuModel(
        "oryon-1", "aarch64", "oryon-1", ghz=4.32, flop_per_cycle=32.0, dram_gbps=84.8,
        cache_bytes=12 * MIB, dispatch=14,
        pipes={"int": 6, "load": 4, "store": 2, "vector": 4},
        mattr="+neon,+dotprod,+i8mm,+fullfp16,+bf16",
        source="Snapdragon 8 Elite prime core: 4.32 GHz (Qualcomm product brief); 4 x 128-bit "
               "FP/SIMD pipes (LLVM AArch64SchedOryon: 14-wide dispatch, 6 int, 4 load, 2 store, "
               "4 vector pipes); LPDDR5X-5300 x 64 bit = 84.8 GB/s; 12 MiB L2 per cluster"),
}
X86_DEFAULTS = {"dispatch": 4, "pipes": {"int": 4, "load": 2, "store": 1, "vector": 3},
                "flop_per_cycle": 32.0}
"""A generic AVX2 core (2 x 256-bit FMA): for x86-64 validation runs."""



def _home_relative(path) -> str:
    """``path`` with the home folder written ``~`` (reports are shared; the cache's place is not theirs)."""
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home != "/" and text.startswith(home + os.sep) else text

def cpu_model(name: str, ghz: float | None = None, dram_gbps: float | None = None,
              cache_mib: float | None = None) -> CpuModel:
    """``oryon-1`` (the phone), or any x86-64 CPU llvm-mca knows (host validation; give
    ``ghz``, the clock the measured times ran at, and this machine's streaming bandwidth and
    per-core cache). Each given figure replaces the model's."""
    over = {k: v for k, v in (("ghz", ghz), ("dram_gbps", dram_gbps)) if v}
    if cache_mib:
        over["cache_bytes"] = int(cache_mib * MIB)
    if name in CPUS:
        return CpuModel(**{**CPUS[name].__dict__, **over})
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,40}", name or ""):
        raise EdgeAVSError(f"--cpu {name!r} is not a CPU name")
    mca = _tool(f"llvm-mca{LLVM_SUFFIX}")
    proc = subprocess.run([mca, "-mtriple=x86_64", f"-mcpu={name}", "/dev/null"],
                          capture_output=True, text=True)
    if "is not a recognized processor" in proc.stderr or "not a recognized" in proc.stderr:
        raise EdgeAVSError(f"--cpu {name}: neither {', '.join(CPUS)} nor an x86-64 CPU "
                           f"llvm-mca{LLVM_SUFFIX} knows")
    return CpuModel(**{"name": name, "arch": "x86_64", "mcpu": name, "ghz": 3.0,
                       "dram_gbps": 20.0, "cache_bytes": 1 * MIB,
                       "source": "x86-64 validation model", **X86_DEFAULTS, **over})


# ---------------------------------------------------------------- tools and the plugin

def plugin_path() -> Path:
    from edgeavs.device.emulator import cache_dir

    return plugin_file(cache_dir())


def require_tools() -> Path:
    """The built plugin, or a one-line error naming what is missing."""
    missing = missing_tools()
    if missing:
        _tool(missing[0])
    path = plugin_path()
    if not path.is_file():
        raise EdgeAVSError(f"the qemu plugin is not built ({path.name} not in the cache): run "
                           "'edgeavs device setup-emulator'")
    return path


# ---------------------------------------------------------------- running and counting

@dataclass
class Block:
    id: int
    vaddr: int
    n_insns: int
    count: int
    in_range: bool
    code: bytes
    sizes: tuple

    @property
    def key(self) -> str:
        return hashlib.sha1(self.code + bytes(self.sizes)).hexdigest()


@dataclass
class Trace:
    """What one counted run gave: blocks, foreign blocks' counts by caller, the guest's maps."""

    arch: str
    blocks: dict
    pairs: list            # (foreign block id, caller block id, count)
    events: int
    maps: list
    runs: int
    guest: dict
    wall_s: float


def parse_counts(path) -> tuple[dict, list, int]:
    blocks, pairs, events = {}, [], 0
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "B":
                bid, vaddr, n, count, inr = (int(parts[1]), int(parts[2], 16), int(parts[3]),
                                             int(parts[4]), parts[5] == "1")
                code = bytes.fromhex(parts[6]) if len(parts) > 6 else b""
                sizes = tuple(int(s) for s in parts[7].split(",")) if len(parts) > 7 else ()
                blocks[bid] = Block(bid, vaddr, n, count, inr, code, sizes)
            elif parts[0] == "F":
                pairs.append((int(parts[1]), int(parts[2]), int(parts[3])))
            elif parts[0] == "E":
                events = int(parts[1])
    return blocks, pairs, events


def run_counted(argv, *, arch: str, qemu: list, env: dict, workdir: Path, report: Path,
                runs: int, timeout: float = 3600.0, log=None) -> Trace:
    """Run ``qemu + [-plugin ...] + argv``; the guest must mark its regions and counted section
    and write its JSON ``report`` (with ``"maps"``)."""
    plugin = require_tools()
    counts = workdir / "counts.txt"
    cmd = [qemu[0], "-plugin", f"{plugin},out={counts},sys={MARKER_NR}", *qemu[1:], *argv]
    if log:
        log(" ".join(cmd[:1] + ["-plugin", plugin.name] + cmd[3:4]) + " ...")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise EdgeAVSError(f"{qemu[0]} not found: run 'edgeavs device setup-emulator'") from None
    except subprocess.TimeoutExpired:
        raise EdgeAVSError(f"the counted run did not finish within {timeout:g} s") from None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        if proc.returncode < 0:
            import signal as _signal

            why = f"killed by {_signal.Signals(-proc.returncode).name}" + (
                f" ({lines[-1]})" if lines else "")
        raise EdgeAVSError(f"the counted run under {qemu[0]} failed: {why}")
    if not counts.is_file() or not report.is_file():
        raise EdgeAVSError(f"the counted run under {qemu[0]} wrote no counts (the guest never "
                           "marked the end of its counted section)")
    blocks, pairs, events = parse_counts(counts)
    guest = json.loads(report.read_text())
    return Trace(arch, blocks, pairs, events, parse_maps(guest.get("maps", "")), runs, guest,
                 round(wall, 2))


# ---------------------------------------------------------------- addresses -> symbols

@dataclass(frozen=True)
class Mapping:
    lo: int
    hi: int
    offset: int
    perms: str
    path: str


def parse_maps(text: str) -> list:
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        out.append(Mapping(lo, hi, int(parts[2], 16), parts[1],
                           parts[5].strip() if len(parts) == 6 else ""))
    return sorted(out, key=lambda m: m.lo)


def function_symbols(path) -> list:
    """``[(start, end, name)]`` of the defined code symbols of an ELF file, sorted."""
    nm = _tool(f"llvm-nm{LLVM_SUFFIX}")
    proc = subprocess.run([nm, "--defined-only", "-n", "-S", str(path)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise EdgeAVSError(f"{Path(path).name}: llvm-nm cannot read its symbols")
    syms = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            start, size = int(parts[0], 16), int(parts[1], 16)
            syms.append([start, start + size, parts[3]])
        elif len(parts) == 3 and parts[1] in "tTwW":
            syms.append([int(parts[0], 16), 0, parts[2]])
    syms = sorted(s for s in syms if not s[2].startswith("$"))
    # A symbol's code runs to the next symbol: code generators leave local helpers unnamed
    # (TVM's outlined loop bodies follow their ``<name>_compute_`` without a symbol of their own).
    for i, s in enumerate(syms):
        if i + 1 < len(syms) and syms[i + 1][0] > s[0]:
            s[1] = max(s[1], syms[i + 1][0])
        elif s[1] <= s[0]:
            s[1] = s[0] + 4
    return [tuple(s) for s in syms]


def code_span(symbols) -> tuple[int, int]:
    """The span of the functions proper (excludes the PLT and ``_init``/``_fini`` stubs)."""
    skip = {"_init", "_fini", "call_weak_fn", "deregister_tm_clones", "register_tm_clones",
            "__do_global_dtors_aux", "frame_dummy"}
    body = [s for s in symbols if s[2] not in skip]
    if not body:
        raise EdgeAVSError("the library has no function symbols")
    return min(s[0] for s in body), max(s[1] for s in body)


class AddressMap:
    """Guest address -> (mapped file, symbol) for the region libraries."""

    def __init__(self, maps: list, libraries: dict):
        self.maps = maps
        self.libs = {}  # real path -> (base, sorted starts, symbols)
        for real, symbols in libraries.items():
            bases = [m.lo for m in maps if m.path == real and m.offset == 0]
            if not bases:
                raise EdgeAVSError(f"{Path(real).name} was not mapped in the guest")
            self.libs[real] = (min(bases), [s[0] for s in symbols], symbols)
        self._starts = [m.lo for m in maps]

    def mapping(self, addr: int) -> Mapping | None:
        import bisect

        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self.maps[i].lo <= addr < self.maps[i].hi:
            return self.maps[i]
        return None

    def symbol(self, addr: int) -> str | None:
        import bisect

        m = self.mapping(addr)
        if m is None or m.path not in self.libs:
            return None
        base, starts, symbols = self.libs[m.path]
        rel = addr - base
        i = bisect.bisect_right(starts, rel) - 1
        if i >= 0 and symbols[i][0] <= rel < symbols[i][1]:
            return symbols[i][2]
        return None


def tvm_function_name(symbol: str | None) -> str | None:
    """``__tvm_ffi_conv2d1`` / ``conv2d1_compute_`` (and its lambdas) -> ``conv2d1``."""
    if symbol is None:
        return None
    name = symbol[len("__tvm_ffi_"):] if symbol.startswith("__tvm_ffi_") else symbol
    m = re.match(r"(.+?)_compute_", name)
    return m.group(1) if m else name


# ---------------------------------------------------------------- instructions

_A64_BRANCH = {"b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz", "braa", "brab",
               "blraa", "blrab", "retaa", "retab", "eret"}
_A64_MAC = {"fmla", "fmls", "mla", "mls", "sdot", "udot", "usdot", "sudot", "smlal", "smlal2",
            "umlal", "umlal2", "smlsl", "smlsl2", "umlsl", "umlsl2", "bfdot", "bfmmla", "smmla",
            "ummla", "usmmla", "fmlal", "fmlal2", "fmlsl", "fmlsl2", "bfmlalb", "bfmlalt",
            "sqdmlal", "sqdmlal2", "sadalp", "uadalp"}
_A64_FP1 = {"fadd", "fsub", "fmul", "fdiv", "fmax", "fmin", "fmaxnm", "fminnm", "fabd", "faddp",
            "fmulx", "fsqrt", "fmaxp", "fminp", "fmaxnmp", "fminnmp", "frecps", "frsqrts"}
_A64_FP2 = {"fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub"}
_A64_PC_REL = {"b", "bl", "cbz", "cbnz", "tbz", "tbnz", "adr", "adrp"}
_VREG = re.compile(r"\bv\d+\.(\d*)([bhsd])\b")
_FPREG = re.compile(r"\b[qdshb]\d+\b")
_X86_VEC = re.compile(r"%[xyz]mm\d+")


def _a64_lanes(ops: str) -> tuple[int, str] | None:
    m = _VREG.search(ops)
    if m:
        return int(m.group(1) or 1), m.group(2)
    m = re.match(r"\s*([sdh])\d+", ops)
    if m:
        return 1, m.group(1)
    return None


def classify(arch: str, text: str) -> tuple[str, str, int]:
    """``(class, pipe, fp32 flops)`` of one disassembled instruction."""
    mnem, _, ops = text.strip().partition("\t")
    mnem = mnem.strip()
    ops = ops.split("//")[0].split("#", 1)[0] if arch == "x86_64" else ops.split("//")[0]
    if arch == "aarch64":
        base = mnem.split(".")[0]
        vector = bool(_VREG.search(ops))
        fpreg = vector or bool(_FPREG.search(ops))
        if base in _A64_BRANCH or mnem.startswith("b."):
            return "branch", "int", 0
        if mnem.startswith(("ld", "prfm")):
            return "load", "load", 0
        if mnem.startswith("st") and not mnem.startswith("stz"):
            return "store", "store", 0
        flops = 0
        lanes = _a64_lanes(ops)
        if lanes and lanes[1] == "s":
            if base in _A64_FP2:
                flops = 2 * lanes[0]
            elif base in _A64_FP1:
                flops = lanes[0]
        if vector and base in _A64_MAC:
            return "vector_fma", "vector", flops
        if vector:
            return "vector_other", "vector", flops
        return "scalar", "vector" if fpreg else "int", flops
    # x86-64, AT&T syntax: the destination is the last operand
    if mnem.startswith("j") or mnem.startswith(("call", "ret", "loop")):
        return "branch", "int", 0
    operands = [o.strip() for o in re.split(r",(?![^(]*\))", ops) if o.strip()]
    vec = [o for o in operands if _X86_VEC.match(o)]
    width = max((256 if o.startswith("%y") else 512 if o.startswith("%z") else 128)
                for o in vec) if vec else 0
    flops = 0
    fma = re.match(r"v?f(n)?m(add|sub)(sub|add)?\d*(ps|ss)$", mnem)
    if fma:
        flops = 2 * (width // 32 if mnem.endswith("ps") else 1)
    elif re.match(r"v?(add|sub|mul|div|max|min)(ps|ss)$", mnem):
        flops = width // 32 if mnem.endswith("ps") else 1
    mem = any("(" in o for o in operands) and not mnem.startswith(("lea", "nop"))
    if fma and mnem.endswith("ps") or re.match(r"vp(dpbusds?|dpwssds?|maddwd|maddubsw)$", mnem):
        return "vector_fma", "vector", flops
    if mem and operands and "(" in operands[-1]:
        return "store", "store", flops
    if mem:
        return "load", "load", flops
    if vec:
        return "vector_other", "vector", flops
    return "scalar", "int", flops


def disassemble(arch: str, blocks: list, mattr: str = "") -> list:
    """One ``llvm-mc --disassemble`` over every block's bytes, one instruction per input line;
    an encoding LLVM does not know becomes ``<unknown>``. Returns per block its lines."""
    mc = _tool(f"llvm-mc{LLVM_SUFFIX}")
    lines, owner = [], []
    for bi, b in enumerate(blocks):
        off = 0
        for size in b.sizes:
            lines.append(" ".join(f"0x{x:02x}" for x in b.code[off:off + size]))
            owner.append(bi)
            off += size
    if not lines:
        return [[] for _ in blocks]
    triple = "aarch64" if arch == "aarch64" else "x86_64"
    cmd = [mc, "--disassemble", f"-triple={triple}"]
    if arch == "aarch64":
        cmd.append("-mattr=+all")
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True)
    bad = {int(m.group(1)) - 1 for m in re.finditer(r"<stdin>:(\d+):\d+: warning", proc.stderr)}
    out = [ln.strip() for ln in proc.stdout.splitlines()
           if ln.strip() and not ln.strip().startswith(".")]
    texts, it = [], iter(out)
    for i in range(len(lines)):
        texts.append("<unknown>" if i in bad else next(it, "<unknown>"))
    result = [[] for _ in blocks]
    for i, text in enumerate(texts):
        if arch == "x86_64":
            text = text.split("#", 1)[0].rstrip()
        result[owner[i]].append(text)
    return result


def _mca_line(arch: str, text: str) -> str:
    """An instruction as llvm-mca's assembler takes it (pc-relative targets become ``.``)."""
    if text == "<unknown>":
        return "nop"
    if arch == "aarch64":
        mnem, _, ops = text.partition("\t")
        ops = ops.split("//")[0].strip()
        if (mnem in _A64_PC_REL or mnem.startswith("b.")
                or (mnem.startswith(("ldr", "prfm")) and "[" not in ops)):
            parts = [p.strip() for p in ops.split(",")]
            if parts and parts[-1].startswith("#"):
                parts[-1] = "."
            ops = ", ".join(parts)
        return f"{mnem}\t{ops}" if ops else mnem
    return text


# ---------------------------------------------------------------- llvm-mca

class McaCache:
    """``{block key: [cycles per iteration of the modelled part, [unmodelled instruction
    indices]]}`` per CPU, in ``$EDGEAVS_CACHE/projection/``."""

    def __init__(self, cpu: CpuModel):
        from edgeavs.device.emulator import cache_dir

        version = subprocess.run([_tool(f"llvm-mca{LLVM_SUFFIX}"), "--version"],
                                 capture_output=True, text=True).stdout
        m = re.search(r"LLVM version (\S+)", version)
        tag = f"{cpu.arch}-{cpu.mcpu}-llvm{m.group(1) if m else LLVM_SUFFIX.strip('-')}"
        self.path = cache_dir() / "projection" / f"mca-{tag}-i{MCA_ITERATIONS}.json"
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.hits = 0

    def save(self) -> None:
        from edgeavs.io.atomic import write_json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # merge with what a parallel run may have added
            on_disk = json.loads(self.path.read_text())
        except (OSError, ValueError):
            on_disk = {}
        on_disk.update(self.data)
        write_json(self.path, on_disk, indent=None)


def _run_mca(cpu: CpuModel, regions: list) -> dict:
    """``regions``: ``[(key, [mca lines])]`` -> ``{key: [cycles, [unmodelled indices]]}``."""
    mca = _tool(f"llvm-mca{LLVM_SUFFIX}")
    text, where = [], {}  # input line number -> (key, instruction index)
    for key, insns in regions:
        text.append(f"# LLVM-MCA-BEGIN {key}")
        for i, ins in enumerate(insns):
            text.append(ins)
            where[len(text)] = (key, i)
        text.append("# LLVM-MCA-END")
    triple = "aarch64" if cpu.arch == "aarch64" else "x86_64"
    cmd = [mca, f"-mtriple={triple}", f"-mcpu={cpu.mcpu}", f"-iterations={MCA_ITERATIONS}",
           "--json", "-skip-unsupported-instructions=any", "-"]
    if cpu.mattr:
        cmd.insert(3, f"-mattr={cpu.mattr}")
    proc = subprocess.run(cmd, input="\n".join(text) + "\n", capture_output=True, text=True)
    if proc.returncode != 0:
        if len(regions) > 1:  # one bad region must not sink the others
            half = len(regions) // 2
            return {**_run_mca(cpu, regions[:half]), **_run_mca(cpu, regions[half:])}
        key, insns = regions[0]
        return {key: [0.0, list(range(len(insns)))]}
    # what mca skipped: parse failures by line, instructions without a model by their text
    skipped_lines = {int(m.group(1)) for m in re.finditer(r"<stdin>:(\d+):\d+: error", proc.stderr)}
    unmodelled = {m.group(1).strip() for m in
                  re.finditer(r"note: instruction: (.*)", proc.stderr)}
    norm = {re.sub(r"\s+", " ", u) for u in unmodelled}
    data = json.loads(proc.stdout)
    out = {}
    for region in data.get("CodeRegions", []):
        summary = region.get("SummaryView", {})
        iters = summary.get("Iterations") or MCA_ITERATIONS
        out[region["Name"]] = [summary.get("TotalCycles", 0) / iters, []]
    for (line_no, (key, i)) in where.items():
        if line_no in skipped_lines:
            out.setdefault(key, [0.0, []])[1].append(i)
    for key, insns in regions:
        entry = out.setdefault(key, [0.0, list(range(len(insns)))])
        for i, ins in enumerate(insns):
            if re.sub(r"\s+", " ", ins.strip()) in norm and i not in entry[1]:
                entry[1].append(i)
    return out


def block_costs(cpu: CpuModel, blocks: list, texts: list, log=None) -> tuple[list, dict]:
    """Cycles per execution of each block (llvm-mca, cached) and how the cache did."""
    cache = McaCache(cpu)
    todo, seen = [], set()
    for b, insns in zip(blocks, texts):
        key = b.key
        if key in cache.data:
            continue
        if key not in seen:
            seen.add(key)
            todo.append((key, [_mca_line(cpu.arch, t) for t in insns]))
    cached = len({b.key for b in blocks}) - len(todo)
    t0 = time.perf_counter()
    if todo:
        if log:
            log(f"llvm-mca -mcpu={cpu.mcpu}: {len(todo)} new blocks ({cached} cached)")
        chunks = [todo[i:i + MCA_CHUNK] for i in range(0, len(todo), MCA_CHUNK)]
        workers = max(1, min(len(chunks), len(os.sched_getaffinity(0))))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for result in pool.map(lambda c: _run_mca(cpu, c), chunks):
                cache.data.update(result)
        cache.save()
    costs = []
    for b, insns in zip(blocks, texts):
        cycles, unmodelled = cache.data[b.key]
        if unmodelled:  # at least the pipe occupancy of every instruction
            per_pipe: dict = {}
            for t in insns:
                pipe = classify(cpu.arch, t)[1]
                per_pipe[pipe] = per_pipe.get(pipe, 0) + 1
            bound = max([len(insns) / cpu.dispatch] +
                        [n / cpu.pipes.get(p, 1) for p, n in per_pipe.items()])
            cycles = max(cycles, bound)
        costs.append((cycles, len(unmodelled)))
    return costs, {"blocks": len(set(b.key for b in blocks)), "new": len(todo),
                   "cached": cached, "seconds": round(time.perf_counter() - t0, 2),
                   "cache": _home_relative(cache.path)}


# ---------------------------------------------------------------- projection

def _empty() -> dict:
    return {"instructions": {c: 0 for c in CLASSES}, "cycles": 0.0, "flops": 0, "unmodelled": 0}


def project_trace(trace: Trace, cpu: CpuModel, libraries: dict, name_of=None, log=None) -> dict:
    """Per region (a function of a region library, by ``name_of(symbol)``) and for the whole
    counted section: instructions by class, cycles, flops, per counted run."""
    name_of = name_of or (lambda s: s)
    amap = AddressMap(trace.maps, libraries)
    blocks = list(trace.blocks.values())
    texts = disassemble(trace.arch, blocks, cpu.mattr)
    costs, mca_info = block_costs(cpu, blocks, texts, log=log)
    info = {b.id: (b, t, c) for b, t, c in zip(blocks, texts, costs)}

    def region_of_inrange(b: Block) -> str:
        return name_of(amap.symbol(b.vaddr)) or UNNAMED

    regions: dict = {}
    outside_libs: dict = {}

    def charge(region: str, bid: int, count: int) -> None:
        b, insns, (cycles, unmod) = info[bid]
        r = regions.setdefault(region, _empty())
        for t in insns:
            cls, _, flops = classify(trace.arch, t)
            r["instructions"][cls] += count
            r["flops"] += flops * count
        r["cycles"] += cycles * count
        r["unmodelled"] += unmod * count

    for b in blocks:
        if b.count and b.in_range:
            charge(region_of_inrange(b), b.id, b.count)
        elif b.count:  # foreign, before any in-range block ran
            charge(OUTSIDE, b.id, b.count)
            m = amap.mapping(b.vaddr)
            lib = Path(m.path).name if m and m.path else "[anonymous]"
            outside_libs[lib] = outside_libs.get(lib, 0) + b.count * b.n_insns
    for bid, caller, count in trace.pairs:
        b = trace.blocks[bid]
        m = amap.mapping(b.vaddr)
        helper = m is not None and (m.path in libraries or bool(HELPER_LIBS.search(m.path)))
        if helper:
            charge(region_of_inrange(trace.blocks[caller]), bid, count)
        else:
            charge(OUTSIDE, bid, count)
            lib = Path(m.path).name if m and m.path else "[anonymous]"
            outside_libs[lib] = outside_libs.get(lib, 0) + count * b.n_insns
    runs = max(1, trace.runs)
    for r in regions.values():
        r["instructions"] = {k: v / runs for k, v in r["instructions"].items()}
        r["cycles"] /= runs
        r["flops"] /= runs
        r["unmodelled"] /= runs
    return {"regions": regions, "outside_libraries": {k: v / runs for k, v in
                                                      sorted(outside_libs.items(),
                                                             key=lambda kv: -kv[1])},
            "mca": mca_info, "events": trace.events / runs}


def summarize(projected: dict, cpu: CpuModel, calls: dict | None = None) -> dict:
    """Times, fraction of peak, memory term and bound per function; totals."""
    calls = calls or {}
    hz = cpu.ghz * 1e9
    functions = []
    total = _empty()
    total_bound_s = 0.0
    for name, r in projected["regions"].items():
        if name == OUTSIDE:
            continue
        n_insns = sum(r["instructions"].values())
        compute_s = r["cycles"] / hz
        moved = calls.get(name, {}).get("bytes")
        n_calls = calls.get(name, {}).get("calls")
        per_call = moved / n_calls if moved and n_calls else None
        fits = per_call is not None and per_call <= cpu.cache_bytes
        memory_s = 0.0 if moved is None or fits else moved / (cpu.dram_gbps * 1e9)
        bound = "memory" if memory_s > compute_s else "compute"
        total_bound_s += max(compute_s, memory_s)
        functions.append({
            "name": name, "calls": n_calls, "instructions": r["instructions"],
            "instructions_total": n_insns, "cycles": r["cycles"], "ms": compute_s * 1e3,
            "flops": r["flops"],
            "flop_per_cycle": r["flops"] / r["cycles"] if r["cycles"] else 0.0,
            "peak_fraction": r["flops"] / (r["cycles"] * cpu.flop_per_cycle) if r["cycles"] else 0.0,
            "fma_pipe_use": (r["instructions"]["vector_fma"] / (r["cycles"] * cpu.pipes.get("vector", 1))
                             if r["cycles"] else 0.0),
            "bytes": moved, "fits_in_cache": fits if moved is not None else None,
            "memory_ms": memory_s * 1e3, "bound": bound,
            "unmodelled_fraction": r["unmodelled"] / n_insns if n_insns else 0.0,
        })
        for k, v in r["instructions"].items():
            total["instructions"][k] += v
        total["cycles"] += r["cycles"]
        total["flops"] += r["flops"]
        total["unmodelled"] += r["unmodelled"]
    functions.sort(key=lambda f: -f["cycles"])
    for f in functions:
        f["share"] = f["cycles"] / total["cycles"] if total["cycles"] else 0.0
    n_total = sum(total["instructions"].values())
    outside = projected["regions"].get(OUTSIDE, _empty())
    return {
        "cpu": cpu.to_json(),
        "total": {
            "instructions": total["instructions"], "instructions_total": n_total,
            "cycles": total["cycles"], "ms": total["cycles"] / hz * 1e3,
            "ms_with_memory_bound": total_bound_s * 1e3,
            "flops": total["flops"],
            "peak_fraction": (total["flops"] / (total["cycles"] * cpu.flop_per_cycle)
                              if total["cycles"] else 0.0),
            "unmodelled_fraction": total["unmodelled"] / n_total if n_total else 0.0,
        },
        "outside": {"instructions": outside["instructions"],
                    "instructions_total": sum(outside["instructions"].values()),
                    "cycles": outside["cycles"], "ms": outside["cycles"] / hz * 1e3,
                    "by_library": projected["outside_libraries"]},
        "functions": functions,
        "mca": projected["mca"],
    }


# ---------------------------------------------------------------- edgeavs artifacts

def _artifact_library(directory: Path, cpu: CpuModel) -> tuple[Path, dict]:
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.device.export import library_for

    manifest = read_manifest(directory)
    triple = (manifest.get("target") or {}).get("mtriple") or ""
    is_arm = triple.startswith("aarch64")
    if cpu.arch == "aarch64":
        if not is_arm:
            raise EdgeAVSError(f"artifact {directory}: compiled for the host "
                               f"({triple or 'host triple'}), not for AArch64; project an "
                               f"AArch64 artifact, or pass an x86-64 --cpu for a host build")
        name = library_for(manifest, "linux")
    else:
        if is_arm:
            raise EdgeAVSError(f"artifact {directory}: an AArch64 library; --cpu {cpu.name} "
                               f"is an x86-64 model (use --cpu oryon-1)")
        name = manifest.get("library") or "model.so"
    path = directory / name
    if not path.is_file():
        raise EdgeAVSError(f"artifact {directory}: {name} is missing")
    return path, manifest


def project_library(library, inputs: list, cpu: CpuModel, *, runs: int = 2, seed: int = 0,
                    qemu_cpu: str | None = None, timeout: float = 3600.0, output_file=None,
                    log=None) -> dict:
    """Count and project one TVM Relax library (``vm["main"]`` on seeded normal inputs of
    ``inputs = [{"shape", "dtype"}]``) on ``cpu``; AArch64 runs in the emulator's guest, x86-64
    under ``qemu-x86_64`` with this machine's Python. ``output_file``: where the guest saves
    the first output of the last counted run (``.npy``), to compare with a reference."""
    library = Path(library).resolve()
    symbols = function_symbols(library)
    lo, hi = code_span(symbols)
    workdir = Path(tempfile.mkdtemp(prefix="edgeavs-project-"))
    try:
        report = workdir / "guest.json"
        cfg = {"library": str(library), "inputs": inputs, "seed": seed, "runs": runs,
               "marker_nr": MARKER_NR, "out": str(report),
               "regions": [{"path": str(library), "spans": [[lo, hi]]}]}
        if output_file:
            cfg["output_file"] = str(Path(output_file).resolve())
        (workdir / "config.json").write_text(json.dumps(cfg))
        argv = [str(GUEST_SCRIPT), str(workdir / "config.json")]
        if cpu.arch == "aarch64":
            from edgeavs.device.emulator import DEFAULT_QEMU_CPU, require_emulator

            guest = require_emulator()
            qemu = ["qemu-aarch64", "-cpu", qemu_cpu or DEFAULT_QEMU_CPU, "-L",
                    str(guest.sysroot), str(guest.python)]
            env = guest.env(1)
        else:
            if shutil.which("qemu-x86_64") is None:
                raise EdgeAVSError("qemu-x86_64 not found: run 'edgeavs device setup-emulator' "
                                   "(it installs qemu-user)")
            qemu = ["qemu-x86_64", "-cpu", qemu_cpu or "max", sys.executable]
            env = {k: v for k, v in os.environ.items() if not k.startswith("QEMU_")}
            env.update({"TVM_NUM_THREADS": "1", "TVM_USE_RUNTIME_LIB": "1",
                        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        trace = run_counted(argv, arch=cpu.arch, qemu=qemu, env=env, workdir=workdir,
                            report=report, runs=runs, timeout=timeout, log=log)
        real = os.path.realpath(library)
        t0 = time.perf_counter()
        projected = project_trace(trace, cpu, {real: symbols}, name_of=tvm_function_name, log=log)
        summary = summarize(projected, cpu, trace.guest.get("calls"))
        summary["wall_s"] = {"counted_run": trace.wall_s,
                             "costing": round(time.perf_counter() - t0, 2)}
        summary["guest"] = {k: trace.guest.get(k) for k in ("runs", "output", "seconds")}
        summary["library"] = library.name
        return summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def project_artifact(artifact, cpu: str = "oryon-1", *, ghz: float | None = None,
                     dram_gbps: float | None = None, cache_mib: float | None = None,
                     runs: int = 2, qemu_cpu: str | None = None, output_file=None,
                     log=None) -> dict:
    """:func:`project_library` on an artifact directory's library with its manifest inputs."""
    directory = Path(artifact)
    if not directory.is_dir():
        raise EdgeAVSError(f"artifact {artifact}: not a directory")
    model = cpu_model(cpu, ghz, dram_gbps, cache_mib)
    if model.arch == "aarch64":
        from edgeavs.device.emulator import require_emulator

        require_emulator()
    require_tools()
    library, manifest = _artifact_library(directory, model)
    inputs = [{"shape": list(s["shape"]), "dtype": s.get("dtype", "float32")}
              for s in manifest["inputs"]]
    t0 = time.perf_counter()
    report = project_library(library, inputs, model, runs=runs, qemu_cpu=qemu_cpu,
                             output_file=output_file, log=log)
    report["artifact"] = str(directory)
    report["wall_s"]["total"] = round(time.perf_counter() - t0, 2)
    report["method"] = (f"blocks counted under qemu ({report['guest']['runs']} inferences after "
                        f"a warm-up, single thread), cycles = executions x llvm-mca{LLVM_SUFFIX} "
                        f"-mcpu={model.mcpu} steady-state cycles per block iteration")
    return report


def format_report(report: dict, top: int = 10) -> str:
    t = report["total"]
    cpu = report["cpu"]
    ins = t["instructions"]
    lines = [
        f"{report.get('artifact', report.get('library'))}: projected on {cpu['name']} "
        f"@ {cpu['ghz']:g} GHz, one core",
        f"  {t['ms']:.3f} ms ({t['cycles']:.4g} cycles; {t['ms_with_memory_bound']:.3f} ms with "
        f"the memory bound), {t['peak_fraction'] * 100:.1f}% of fp32 peak "
        f"({cpu['fp32_flop_per_cycle']:g} FLOP/cycle)",
        f"  instructions {t['instructions_total']:.4g}: " + ", ".join(
            f"{k} {v / max(1, t['instructions_total']) * 100:.1f}%" for k, v in ins.items()),
        f"  unmodelled by llvm-mca: {t['unmodelled_fraction'] * 100:.1f}% of instructions "
        f"(charged by pipe occupancy)",
        f"  outside the library (runtime): {report['outside']['instructions_total']:.4g} "
        f"instructions, {report['outside']['ms']:.3f} ms",
        f"  top {min(top, len(report['functions']))} functions by projected cycles:",
    ]
    for f in report["functions"][:top]:
        lines.append(f"    {f['name']:<40} {f['ms']:9.4f} ms {f['share'] * 100:5.1f}%  "
                     f"{f['peak_fraction'] * 100:5.1f}% peak  {f['bound']}")
    w = report.get("wall_s", {})
    lines.append(f"  wall: counted run {w.get('counted_run')} s, costing {w.get('costing')} s "
                 f"(mca: {report['mca']['new']} new blocks, {report['mca']['cached']} cached)")
    return "\n".join(lines)
