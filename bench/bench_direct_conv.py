"""Direct-conv benchmark: the blocked-weight schedule vs the column-vectorised one on LightAVSeg's direct convs.

For LightAVSeg at ``--variant``/``--resolution`` (torch.export route, random init seed 0) the pipeline is run up to
``fuse-ops`` in a child process (torch and TVM's thread pools in one process disturb each other, TVM-NOTES); every
fused PrimFunc that ``ApplyEdgeAVSSchedules`` gives the ``direct_conv`` schedule comes back (``tvm.ir.save_json``)
with its shapes and calls per inference. Per function, built for the host (2 threads by default):

- ``old``: ``kernels.conv2d.fallback_config(..., blocked=False)``: the column-vectorised tile, the default for
  every direct conv before the blocked one;
- ``blocked``: ``fallback_config(..., blocked=True)``, timed as the compiled model runs it: the weight re-layout
  block removed (``RemoveWeightLayoutRewriteBlock``, as MetaSchedule times layout-rewritten functions; the
  pipeline's ``weight-prepack`` phase folds it into the constant weight); ``blocked_with_relayout``: the same
  function with the re-layout inside (what a weight computed at run time costs);
- ``new``: whichever of the two the default config picks now (``default_now``); ``speedup = old / new``.

Both scheduled functions are checked against the unscheduled one (same random inputs, rel-L2 <= ``TOL``).
Timing: ``time_evaluator`` with ``number`` chosen so one measurement takes >= 1 ms, the sides interleaved over
``--rounds`` rounds of ``REPEAT`` measurements, the minimum per side (the machine is shared: the minimum is the
least disturbed run). ``--compile`` also times ``edgeavs compile`` of the variant (its own process). JSON
(atomic) to ``bench/results/direct_conv.json``.

    python bench/bench_direct_conv.py --variant large --resolution 224 --compile
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOL = 1e-5
MIN_MEASURE_S = 1e-3
REPEAT = 5
DEFAULT_OUT = ROOT / "bench" / "results" / "direct_conv.json"

_CHILD = r"""
import json, sys
from edgeavs.compiler.build import build_torch_model, import_model, resolve_weights
from edgeavs.compiler.pipeline import PIPELINE, run_pipeline
from edgeavs.passes.schedule_ops import schedule_prim_func
from edgeavs.tvm_api import IRModule, PrimFunc, host_target, tvm

variant, resolution, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
v, weights = resolve_weights(variant, None, seed=0)
mod, params, _ = import_model(build_torch_model(v, weights, None), (resolution, resolution), "export")
names = [p.name for p in PIPELINE]
fused = run_pipeline(mod, host_target(2), params, phases=names[:names.index("fuse-ops") + 1])[0]
calls = {}
for line in fused["main"].script(show_meta=False).splitlines():
    if "R.call_tir(" in line:
        callee = line.split("R.call_tir(", 1)[1].split(",", 1)[0].strip()
        calls[callee] = calls.get(callee, 0) + 1
keep = {}
for gv, f in fused.functions_items():
    if not isinstance(f, PrimFunc) or (f.attrs is not None and "edgeavs.kernel" in f.attrs):
        continue  # the fusion kernels are scheduled already
    if schedule_prim_func(f, host_target(2), check_lowering=False)[2] == "direct_conv":
        keep[gv.name_hint] = f
open(out + ".json", "w").write(tvm.ir.save_json(IRModule(keep)))
json.dump({n: calls.get(n, 0) for n in keep}, open(out + ".calls", "w"))
"""


def _extract(variant: str, resolution: int, scratch: Path) -> tuple[dict, dict]:
    import json

    from edgeavs.tvm_api import tvm

    base = scratch / "direct"
    subprocess.run([sys.executable, "-c", _CHILD, variant, str(resolution), str(base)], check=True, cwd=ROOT)
    mod = tvm.ir.load_json((scratch / "direct.json").read_text())
    return {gv.name_hint: f for gv, f in mod.functions_items()}, json.loads((scratch / "direct.calls").read_text())


def _shapes(func) -> dict:
    bufs = list(func.params)  # 0.27: the params are the buffers
    return {b.name: [int(d) for d in b.shape] for b in bufs}


def _args(func, seed: int = 0):
    from edgeavs.tvm_api import runtime

    rng = np.random.default_rng(seed)
    return [runtime.tensor(rng.standard_normal([int(d) for d in b.shape]).astype("float32")) for b in func.params]


def _build(func, target):
    from edgeavs.tvm_api import tvm

    return tvm.compile(func.with_attr("global_symbol", "main"), target=target).jit()


def _timer(lib, args):
    from edgeavs.tvm_api import tvm

    dev = tvm.cpu()
    once = lib.time_evaluator("main", dev, number=1, repeat=1)(*args).mean
    number = max(1, min(10000, math.ceil(MIN_MEASURE_S / max(once, 1e-9))))
    ev = lib.time_evaluator("main", dev, number=number, repeat=REPEAT)
    return lambda: min(ev(*args).results)


def _out(lib, args):
    from edgeavs.tvm_api import runtime

    tensors = [runtime.tensor(a.numpy()) for a in args]
    lib["main"](*tensors)
    return tensors[-1].numpy()


def _rel_l2(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def bench_function(name: str, func, calls: int, target, rounds: int) -> dict:
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import IRModule
    from kernels.conv2d import DirectConvConfig

    default = schedule_prim_func(func, target)[3]
    scheduled = {}
    for side, blocked in (("old", False), ("blocked", True)):
        cfg = _config(func, target, blocked)
        new, _, sname, cfg, err = schedule_prim_func(func, target, {"direct_conv": cfg})
        if sname != "direct_conv" or not isinstance(cfg, DirectConvConfig) or cfg.blocked != blocked:
            raise SystemExit(f"{name}: the {side} schedule does not apply ({err})")
        scheduled[side] = (new, cfg)
    blocked_fn = scheduled["blocked"][0]
    prepacked = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(
        IRModule({"main": blocked_fn.with_attr("global_symbol", "main")}))["main"]
    args = _args(func)
    ref = _out(_build(func, target), args)
    libs = {"old": _build(scheduled["old"][0], target), "blocked_with_relayout": _build(blocked_fn, target)}
    err = {k: _rel_l2(_out(lib, args), ref) for k, lib in libs.items()}
    timers = {k: _timer(lib, args) for k, lib in libs.items()}
    timers["blocked"] = _timer(_build(prepacked, target), _args(prepacked))
    best = {k: float("inf") for k in timers}
    for _ in range(rounds):
        for k, t in timers.items():
            best[k] = min(best[k], t())
    best["new"] = best["blocked" if default.blocked else "old"]
    flops = 2 * _macs(func)
    row = {"function": name, "calls_per_inference": calls, "buffers": _shapes(func), "mflop": round(flops / 1e6, 3),
           "old_config": str(scheduled["old"][1]), "blocked_config": str(scheduled["blocked"][1]),
           "default_now": "blocked" if default.blocked else "old",
           "rel_l2_vs_unscheduled": {k: float(f"{v:.3g}") for k, v in err.items()}}
    for k in ("old", "blocked", "blocked_with_relayout", "new"):
        row[f"{k}_us"] = round(best[k] * 1e6, 2)
        row[f"{k}_gflops"] = round(flops / best[k] / 1e9, 1)
    row["speedup"] = round(best["old"] / best["new"], 2)
    return row


def _config(func, target, blocked: bool):
    """The target-derived default of ``kernels.conv2d`` for ``func`` with the blocked tile forced on or off."""
    from edgeavs.passes.schedule_ops import classify
    from edgeavs.tvm_api import s_tir
    from kernels.blocks import analyze_mac
    from kernels.conv2d import fallback_config, workload_of

    sch = s_tir.Schedule(func)
    block = classify(sch)[1]
    return fallback_config(workload_of(sch, block, analyze_mac(sch, block)), target, blocked=blocked)


def _macs(func) -> int:
    from edgeavs.passes.schedule_ops import classify
    from edgeavs.tvm_api import s_tir
    from kernels.blocks import analyze_mac

    sch = s_tir.Schedule(func)
    return analyze_mac(sch, classify(sch)[1]).macs


def _compile_seconds(variant: str, resolution: int, scratch: Path) -> dict:
    t0 = time.perf_counter()
    subprocess.run(["edgeavs", "compile", "--target", "host", "--variant", variant, "--resolution", str(resolution),
                    "-o", str(scratch / "artifact")], check=True, cwd=ROOT, capture_output=True)
    import json

    manifest = json.loads((scratch / "artifact" / "manifest.json").read_text())
    return {"wall_s": round(time.perf_counter() - t0, 1), "manifest_compile_seconds": manifest.get("compile_seconds")}


def main(argv=None) -> int:
    from edgeavs.io.atomic import write_json
    from edgeavs.tvm_api import host_target

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="large")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time edgeavs compile of the variant")
    ap.add_argument("-o", "--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    os.environ["TVM_NUM_THREADS"] = str(args.threads)
    target = host_target(args.threads)
    with tempfile.TemporaryDirectory(prefix="edgeavs-direct-") as scratch:
        scratch = Path(scratch)
        funcs, calls = _extract(args.variant, args.resolution, scratch)
        rows = []
        for name in sorted(funcs):
            row = bench_function(name, funcs[name], calls[name], target, args.rounds)
            bad = {k: v for k, v in row["rel_l2_vs_unscheduled"].items() if v > TOL}
            if bad:
                raise SystemExit(f"{name}: outputs differ from the unscheduled function: {bad}")
            print(f"{name:<28} old {row['old_us']:8.1f} us {row['old_gflops']:6.1f} GFLOP/s | blocked "
                  f"{row['blocked_us']:8.1f} us {row['blocked_gflops']:6.1f} GFLOP/s (with per-call re-layout "
                  f"{row['blocked_with_relayout_us']:.1f} us) | default now: {row['default_now']} "
                  f"({row['speedup']:.2f}x)")
            rows.append(row)
        compile_info = _compile_seconds(args.variant, args.resolution, scratch) if args.compile else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    old_total = sum(r["old_us"] * r["calls_per_inference"] for r in rows)
    new_total = sum(r["new_us"] * r["calls_per_inference"] for r in rows)
    result = {
        "bench": "direct_conv", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "variant": args.variant, "resolution": args.resolution, "threads": args.threads, "target": str(target),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "load_average_1min": load,
        "timing": f"time_evaluator, >= {MIN_MEASURE_S * 1e3:g} ms per measurement, min over {args.rounds} "
                  f"interleaved rounds x {REPEAT} repeats (shared machine)",
        "tolerance_rel_l2": TOL, "functions": rows,
        "per_inference_us": {"old": round(old_total, 1), "new": round(new_total, 1)},
        "compile": compile_info,
    }
    write_json(args.out, result)
    print(f"per inference: {old_total:.1f} us -> {new_total:.1f} us; written {args.out}")
    if compile_info:
        print(f"edgeavs compile --variant {args.variant}: {compile_info['wall_s']} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
