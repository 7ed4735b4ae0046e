"""Where the time goes: per-op-class latency, GFLOP/s and fraction of the CPU's peak of a compiled artifact.

Two halves, because they happen at different times:

- **At compile time** (:func:`collect_function_table`, a pass instrument around ``run_pipeline``): just before
  ``ApplyEdgeAVSSchedules`` runs, every fused PrimFunc is classified with the schedule pass's own classifier
  (``schedule_ops.classify``: conv1x1, matmul, depthwise, conv, elementwise, reduction) or by its
  ``edgeavs.kernel`` attr (one class per fused hand kernel: hsig_gate, audio_gate, channel_bias), and its work is
  counted from its blocks *before* any schedule pads them (:func:`prim_func_flops`). Just after, each function's
  ``edgeavs.schedule`` says whether we scheduled it. The table (class, schedule, MACs, flops, calls per
  inference) goes into the manifest's ``schedules.functions``; the artifact then needs nothing else.
- **At run time** (:func:`profile_artifact`, in a torch-free worker process with the thread count set): the CPU's
  single-core SGEMM rate is measured (:func:`measure_sgemm`), then every called function is timed through the VM
  instrumentation (``edgeavs.compiler.profile.profile_functions``, the median over ``repeat`` passes) and
  :func:`summarize` attributes each to its class.

A kernel whose blocks do not show its work (the int8 conv: its inner product is one tensorized call) declares
it in its registry entry (``Entry.work``, :func:`declared_work`): MACs, float flops and integer ops
(``int_ops``, 2 per int8 MAC), reported beside the flops, never added to them nor held against the float peak.

Flops: a multiply-accumulate counts 2, every other float ``+ - * / max min`` or math call counts 1, each times its
block's iteration domain (zero-padding copies and stores of constants count 0); a function without blocks (a
hand-written loop nest) gets ``None`` and counts 0. GFLOP/s are flops per inference
over the class's time. Calls the VM makes that are no TIR function (tensor allocation, shape checks, reshape
views) form the class ``vm-builtin``: every timed call lands in exactly one class.

The peak is BLAS (numpy's OpenBLAS) SGEMM on one thread, n = 1024, best of several, times the threads used. A BLAS
rather than a TVM GEMM: the ceiling should say what the core can do, not what our own GEMM schedule does (that
would make a schedule look close to peak by construction); it is the figure TVM-NOTES' ceiling uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import write_json

VM_BUILTIN = "vm-builtin"
SCHEDULE_PASS = "ApplyEdgeAVSSchedules"
PEAK_METHOD = "numpy (OpenBLAS) float32 matmul, 1 thread, n=1024, best run of >= 1.5 s; x threads"


# ---------------------------------------------------------------- counting work in a PrimFunc

def _float(expr) -> bool:
    ty = getattr(expr, "ty", None)
    dtype = getattr(ty, "dtype", None)
    return dtype is not None and str(dtype).startswith(("float", "bfloat"))


def _expr_ops(expr) -> int:
    """Float arithmetic operations in one evaluation of ``expr`` (loads and index arithmetic count 0)."""
    from edgeavs.tvm_api import tirx, tvm

    if isinstance(expr, (tirx.Add, tirx.Sub, tirx.Mul, tirx.Div, tirx.Max, tirx.Min)):
        return int(_float(expr)) + _expr_ops(expr.a) + _expr_ops(expr.b)
    if isinstance(expr, tirx.Cast):
        return _expr_ops(expr.value)
    if isinstance(expr, tirx.Select):
        return _expr_ops(expr.true_value) + _expr_ops(expr.false_value)
    if isinstance(expr, tvm.ir.Call):
        name = str(getattr(expr.op, "name", ""))
        args = sum(_expr_ops(a) for a in expr.args)
        if name == "tirx.if_then_else":
            return sum(_expr_ops(a) for a in expr.args[1:])
        return args + int(_float(expr) and name.startswith("tirx.") and name != "tirx.reinterpret")
    if isinstance(expr, tirx.Let):
        return _expr_ops(expr.value) + _expr_ops(expr.body)
    return 0


def _is_mac(block) -> bool:
    """``out = out + a * b`` (either operand order, casts allowed) over a reduction domain."""
    from edgeavs.tvm_api import tirx, tvm

    store = block.body
    if not isinstance(store, tirx.BufferStore) or not any(int(iv.iter_type) == 2 for iv in block.iter_vars):
        return False
    val = store.value
    if not isinstance(val, tirx.Add):
        return False

    def load(e):
        if isinstance(e, tirx.Cast):
            e = e.value
        return e if isinstance(e, tvm.ir.TensorLoad) else None

    for acc, prod in ((val.a, val.b), (val.b, val.a)):
        a = load(acc)
        if a is not None and a.source.same_as(store.buffer) and isinstance(prod, tirx.Mul):
            return True
    return False


def prim_func_flops(func) -> dict:
    """``{"macs", "flops"}`` of one call of ``func``, counted per leaf block over its iteration domain."""
    from edgeavs.tvm_api import s_tir, tirx

    sch = s_tir.Schedule(func)
    macs = flops = 0
    todo = list(sch.get_child_blocks(sch.get_sblock("root")))
    while todo:
        b = todo.pop()
        blk = sch.get(b)
        children = list(sch.get_child_blocks(b))
        if children:
            todo.extend(children)
            continue
        if not isinstance(blk.body, tirx.BufferStore):
            continue
        domain = 1
        for iv in blk.iter_vars:
            try:
                domain *= int(iv.dom.extent)
            except (TypeError, ValueError):
                domain = 0  # symbolic extent: not counted
        if _is_mac(blk):
            macs += domain
        flops += domain * _expr_ops(blk.body.value)
    return {"macs": macs, "flops": flops}


def declared_work(func) -> dict | None:
    """``{"macs", "flops", "int_ops"}`` a kernel declares for its workload (its registry entry's ``work``), or
    None: the function is no kernel, or its kernel's blocks show its work."""
    from kernels.registry import WORKLOAD_ATTR, parse_kernel_key

    attrs = func.attrs
    if attrs is None or WORKLOAD_ATTR not in attrs:
        return None
    try:
        _, wl, entry = parse_kernel_key(str(attrs[WORKLOAD_ATTR]))
    except ValueError:
        return None
    return dict(entry.work(wl)) if entry.work is not None else None


# ---------------------------------------------------------------- the compile-time function table

def _call_counts(mod) -> dict[str, int]:
    """How often ``main`` calls each PrimFunc (``call_tir`` sites) per inference."""
    from edgeavs.tvm_api import relax

    counts: dict[str, int] = {}
    call_tir = {"relax.call_tir", "relax.call_tir_inplace"}
    for gv, func in mod.functions_items():
        if not isinstance(func, relax.Function):
            continue

        def visit(e):
            if isinstance(e, relax.Call) and str(getattr(e.op, "name", "")) in call_tir:
                callee = e.args[0]
                name = getattr(callee, "name_hint", None)
                if name is not None:
                    counts[name] = counts.get(name, 0) + 1

        relax.analysis.post_order_visit(func.body, visit)
    return counts


def classify_function(func) -> str:
    """Op class of one PrimFunc: its ``edgeavs.kernel`` chain (``edgeavs.`` prefix dropped) or the schedule
    pass's structural class."""
    from edgeavs.passes.schedule_ops import classify
    from edgeavs.tvm_api import s_tir

    attrs = func.attrs
    if attrs is not None and "edgeavs.kernel" in attrs:
        return str(attrs["edgeavs.kernel"]).removeprefix("edgeavs.")
    try:
        return classify(s_tir.Schedule(func))[0]
    except Exception:  # noqa: BLE001 - a function the classifier cannot read is generic work
        return "elementwise"


def function_table(before, after=None) -> dict[str, dict]:
    """Per PrimFunc of ``before`` (the fused, not yet scheduled module): class, the schedule it got in ``after``
    (the scheduled module; None: look at ``before``), whether it is a hand kernel, MACs and flops per call, and
    calls per inference."""
    from edgeavs.tvm_api import PrimFunc

    after = after if after is not None else before
    after_funcs = {gv.name_hint: f for gv, f in after.functions_items()}
    calls = _call_counts(after)
    table = {}
    for gv, func in before.functions_items():
        if not isinstance(func, PrimFunc):
            continue
        name = gv.name_hint
        final = after_funcs.get(name, func)
        attrs = final.attrs
        kernel = attrs is not None and "edgeavs.kernel" in attrs
        sched = str(attrs["edgeavs.schedule"]) if attrs is not None and "edgeavs.schedule" in attrs else None
        work = declared_work(func)
        if work is None:
            try:
                work = {**prim_func_flops(func), "int_ops": 0}
            except Exception:  # noqa: BLE001 - no block structure to count (a hand-written loop nest)
                work = {"macs": None, "flops": None, "int_ops": 0}
        table[name] = {"class": classify_function(func),
                       "schedule": "kernel" if kernel else sched,
                       **work,
                       "calls": calls.get(name, 0)}
    return table


class _TableCollector:
    """Pass instrument: the function table around the schedule pass (see :func:`collect_function_table`)."""

    def __init__(self):
        self.functions: dict[str, dict] | None = None
        self.error: str | None = None
        self._before = None

    def run_before_pass(self, mod, info):
        from edgeavs.tvm_api import IRModule

        if info.name == SCHEDULE_PASS:
            self._before = IRModule(dict(mod.functions_items()))  # the pass updates ``mod`` in place

    def run_after_pass(self, mod, info):
        if info.name == SCHEDULE_PASS and self._before is not None:
            try:
                self.functions = function_table(self._before, mod)
            except Exception as exc:  # noqa: BLE001 - a missing table must not fail the compile
                lines = str(exc).strip().splitlines()
                self.error = lines[-1] if lines else type(exc).__name__
            self._before = None


@contextlib.contextmanager
def collect_function_table():
    """``with collect_function_table() as c: run_pipeline(...)`` leaves ``c.functions`` (None when the schedule
    pass did not run). Passes run as before: only a pass instrument is added to the current ``PassContext``."""
    from edgeavs.tvm_api import PassContext, tvm

    collector = _TableCollector()
    inst = tvm.ir.instrument.pass_instrument(type("EdgeAVSFunctionTable", (), {
        "run_before_pass": lambda self, mod, info: collector.run_before_pass(mod, info),
        "run_after_pass": lambda self, mod, info: collector.run_after_pass(mod, info),
    }))()
    cur = PassContext.current()
    ctx = PassContext(opt_level=cur.opt_level, required_pass=list(cur.required_pass),
                      disabled_pass=list(cur.disabled_pass), config=dict(cur.config),
                      instruments=list(cur.instruments) + [inst])
    with ctx:
        yield collector


# ---------------------------------------------------------------- measuring

def measure_sgemm(n: int = 1024, repeat: int = 10, min_seconds: float = 1.5) -> float:
    """GFLOP/s of numpy's float32 ``n x n`` matmul, the best of at least ``repeat`` runs and ``min_seconds`` (on a
    shared machine the best run is the one least disturbed); single-core only when the BLAS was limited to one
    thread (the worker sets ``OPENBLAS_NUM_THREADS=1`` before numpy loads)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = a @ b  # warm-up
    best = float("inf")
    start, runs = time.perf_counter(), 0
    while runs < repeat or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return 2.0 * n ** 3 / best / 1e9


def profile_vm(vm, args, repeat: int = 10) -> dict:
    """``{"functions": {symbol: median µs per inference}, "latency_ms": median uninstrumented ms}``."""
    from edgeavs.compiler.profile import profile_functions

    runs = [profile_functions(vm, args, repeat=1) for _ in range(repeat)]
    names = sorted(set().union(*runs))
    per_fn = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in names}
    lat = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        vm["main"](*args)
        lat.append((time.perf_counter() - t0) * 1e3)
    return {"functions": per_fn, "latency_ms": statistics.median(lat)}


# ---------------------------------------------------------------- attributing

def summarize(times: dict[str, float], functions: dict[str, dict], peak_gflops: float | None = None,
              top: int = 10) -> dict:
    """Per class: functions, scheduled by us, µs, share, GFLOP/s, fraction of peak; the unscheduled functions
    with their shares; the ``top`` slowest functions; ``not_called``: functions of the table the VM never
    called (reshapes that lowering turned into views). ``times``: µs per inference by symbol (every timed call);
    ``functions``: the compile-time table."""
    total = sum(times.values())
    if total <= 0:
        raise EdgeAVSError("the profile timed no function calls")
    classes: dict[str, dict] = {}
    rows = []
    for name, us in times.items():
        meta = functions.get(name)
        cls = meta["class"] if meta else VM_BUILTIN
        sched = meta.get("schedule") if meta else None
        calls = max(1, int(meta.get("calls", 1))) if meta else 1
        flops = int(meta.get("flops") or 0) * calls if meta else 0
        int_ops = int(meta.get("int_ops") or 0) * calls if meta else 0
        c = classes.setdefault(cls, {"functions": 0, "scheduled": 0, "us": 0.0, "flops": 0, "int_ops": 0,
                                     "uncounted": 0})
        c["functions"] += 1
        c["uncounted"] += int(meta is not None and meta.get("flops") is None)
        c["scheduled"] += int(sched is not None)
        c["us"] += us
        c["flops"] += flops
        c["int_ops"] += int_ops
        rows.append({"name": name, "class": cls, "schedule": sched, "us": us, "share": us / total,
                     "gflop": flops / 1e9, "gflops": flops / us / 1e3 if us > 0 else 0.0,
                     "int_gops": int_ops / us / 1e3 if us > 0 else 0.0})
    for c in classes.values():
        c["share"] = c["us"] / total
        c["gflops"] = c["flops"] / c["us"] / 1e3 if c["us"] > 0 else 0.0
        c["int_gops"] = c["int_ops"] / c["us"] / 1e3 if c["us"] > 0 else 0.0
        c["fraction_of_peak"] = c["gflops"] / peak_gflops if peak_gflops else None
    for r in rows:
        r["fraction_of_peak"] = r["gflops"] / peak_gflops if peak_gflops else None
    rows.sort(key=lambda r: -r["us"])
    unscheduled = [r for r in rows if r["class"] != VM_BUILTIN and r["schedule"] is None]
    flops_total = sum(c["flops"] for c in classes.values())
    int_total = sum(c["int_ops"] for c in classes.values())
    return {
        "total_us": total,
        "gflop": flops_total / 1e9,
        "gflops": flops_total / total / 1e3,
        "fraction_of_peak": flops_total / total / 1e3 / peak_gflops if peak_gflops else None,
        "int_gop": int_total / 1e9,
        "classes": dict(sorted(classes.items(), key=lambda kv: -kv[1]["us"])),
        "unscheduled": unscheduled,
        "unscheduled_share": sum(r["share"] for r in unscheduled),
        "top": rows[:top],
        "functions": rows,
        "not_called": sorted(set(functions) - set(times)),
    }


# ---------------------------------------------------------------- an artifact, end to end

def artifact_functions(manifest: dict, directory="artifact") -> dict:
    functions = (manifest.get("schedules") or {}).get("functions")
    if not functions:
        raise EdgeAVSError(f"artifact {directory}: its manifest has no per-function schedule table "
                           "(compiled without edgeavs schedules or by an older edgeavs); recompile it")
    return functions


def worker(directory, repeat: int, peak: float | None) -> dict:
    """The measuring half, in this process (run it through :func:`profile_artifact`)."""
    sgemm = None
    if peak is None:
        sgemm = measure_sgemm()
    from edgeavs.compiler.artifact import load_artifact
    from edgeavs.data.inputs import random_inputs

    model = load_artifact(directory)
    h, w = model.manifest["resolution"]
    frames, waveform = random_inputs(0, h, w)
    tensor = model._tvm.runtime.tensor
    args = [tensor(frames, model.device), tensor(waveform, model.device)]
    prof = profile_vm(model.vm, args, repeat)
    return {"sgemm_single_core_gflops": sgemm, **prof, "torch_loaded": "torch" in sys.modules}


def profile_artifact(directory, threads: int | None = None, repeat: int = 10, peak: float | None = None,
                     top: int = 10) -> dict:
    """Profile the artifact in a worker process with ``threads`` threads (default: the target's cores) and return
    the breakdown report. ``peak``: the all-threads GFLOP/s ceiling to use instead of measuring SGEMM."""
    from edgeavs.compiler.artifact import validate_artifact

    if repeat < 1:
        raise EdgeAVSError(f"repeat must be at least 1, got {repeat}")
    manifest = validate_artifact(directory)
    if manifest.get("link", "host") != "host":
        raise EdgeAVSError(f"artifact {directory} is not for this machine (target {manifest.get('target_name')})")
    functions = artifact_functions(manifest, directory)
    threads = threads or int(manifest["target"].get("num-cores", 1))
    from edgeavs.workers import child_env, run_json_module

    env = child_env(set={"TVM_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                         "MKL_NUM_THREADS": "1"})
    args = [str(directory), "--repeat", str(repeat)] + (["--peak", str(peak)] if peak is not None else [])
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    measured = run_json_module("edgeavs.compiler.breakdown", args, what=f"profiling {directory}", env=env)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    single = measured["sgemm_single_core_gflops"]
    peak_info = ({"gflops": float(peak), "method": "given (--peak)", "threads": threads} if peak is not None else
                 {"gflops": single * threads, "single_core_gflops": single, "threads": threads,
                  "method": PEAK_METHOD})
    report = summarize(measured["functions"], functions, peak_info["gflops"], top=top)
    h, w = manifest["resolution"]
    return {"artifact": str(directory), "variant": manifest["variant"], "resolution": [h, w],
            "target": manifest["target"], "threads": threads, "repeat": repeat, "peak": peak_info,
            "latency_ms": measured["latency_ms"], "cpus": os.cpu_count(),
            "load_average_1min": [load_before, load_after],  # other work on the machine while profiling
            **report}


def profile_into_manifest(directory, threads: int | None = None, repeat: int = 10) -> dict:
    """Profile the artifact and record, in its manifest's schedule report, each unscheduled function's share of
    latency (``schedules.profile``: threads, peak, per-class shares, unscheduled shares). The manifest is not
    covered by the file hashes, so the artifact stays valid. Returns the full breakdown report."""
    from edgeavs.compiler.artifact import MANIFEST, read_manifest

    report = profile_artifact(directory, threads=threads, repeat=repeat)
    manifest = read_manifest(directory)
    manifest["schedules"]["profile"] = {
        "threads": report["threads"], "latency_ms": round(report["latency_ms"], 3), "peak": report["peak"],
        "classes": {k: {"share": round(c["share"], 4), "gflops": round(c["gflops"], 2)}
                    for k, c in report["classes"].items()},
        "unscheduled_share": round(report["unscheduled_share"], 4),
        "unscheduled": {r["name"]: round(r["share"], 5) for r in report["unscheduled"]},
    }
    write_json(Path(directory) / MANIFEST, manifest)
    return report


def format_breakdown(report: dict) -> str:
    h, w = report["resolution"]
    peak = report["peak"]
    load = report.get("load_average_1min") or [None]
    busy = (f" [machine load {load[0]:.1f} on {report.get('cpus')} CPUs: timings include contention]"
            if load[0] is not None and report.get("cpus") and load[0] > 0.5 * report["cpus"] else "")
    lines = [f"LightAVSeg-{report['variant']} {h}x{w}, {report['threads']} threads: {report['latency_ms']:.2f} ms "
             f"per inference (instrumented sum {report['total_us'] / 1e3:.2f} ms), {report['gflop']:.3f} GFLOP, "
             f"{report['gflops']:.1f} GFLOP/s = {report['fraction_of_peak']:.1%} of peak {peak['gflops']:.0f} GFLOP/s"
             + busy,
             f"{'class':<14} {'funcs':>5} {'ours':>5} {'ms':>8} {'share':>7} {'GFLOP':>7} {'GFLOP/s':>8} {'of peak':>8}"]
    if report.get("int_gop"):
        lines[0] += f"; and {report['int_gop']:.3f} integer GOP (int8 MACs x 2, not in the GFLOP or the peak)"
    for cls, c in report["classes"].items():
        rate = (f"{c['flops'] / 1e9:7.3f} {c['gflops']:8.1f} {c['fraction_of_peak']:8.1%}" if not c["uncounted"]
                else f"{'-':>7} {'-':>8} {'-':>8}  (flops not counted: no blocks)")
        if c.get("int_ops"):
            rate += f"  + {c['int_ops'] / 1e9:.3f} int GOP at {c['int_gops']:.1f} GOP/s"
        lines.append(f"{cls:<14} {c['functions']:5d} {c['scheduled']:5d} {c['us'] / 1e3:8.2f} {c['share']:7.1%} "
                     + rate)
    uns = report["unscheduled"]
    lines.append(f"{len(uns)} functions unscheduled (TVM's default lowering): {report['unscheduled_share']:.1%} "
                 "of latency")
    for r in uns:
        lines.append(f"  {r['share']:6.2%} {r['us']:9.1f} us  {r['class']:<11} {r['name']}")
    lines.append(f"top {len(report['top'])} functions:")
    for r in report["top"]:
        rate = (f"{r['int_gops']:6.1f} GOP/s int" if r.get("int_gops") else f"{r['gflops']:6.1f} GFLOP/s")
        lines.append(f"  {r['share']:6.2%} {r['us']:9.1f} us  {rate}  {r['class']:<11} "
                     f"{r['schedule'] or '-':<11} {r['name']}")
    return "\n".join(lines)


def _main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m edgeavs.compiler.breakdown",
                                 description="the measuring worker of edgeavs profile (prints one JSON line)")
    ap.add_argument("artifact")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--peak", type=float, default=None)
    args = ap.parse_args(argv)
    print(json.dumps(worker(args.artifact, args.repeat, args.peak)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
