"""Host latency of the int8 1x1-conv kernel (``kernels.int8_conv``, this host's ISA and the generic path) vs the
fp32 GEMM schedule (``kernels.pointwise`` on the fused conv2d 1x1 + bias PrimFunc, as ``bench/bench_kernels.py``
times it) on LightAVSeg-L 1x1 shapes at 224.

Both sides do the same job: fp32 NCHW in, conv + per-channel bias, fp32 NCHW out; the int8 kernel also quantizes
its input (inside the kernel) and dequantizes its accumulators. Default (untuned) configs; where the default is
pixel lanes, the channel-lane default it replaced is timed too (``int8_<isa>_channel_lanes``). Every function is
built once, then ``--rounds`` rounds each time every function (``time_evaluator``, ``--number`` runs per
measurement) in turn -- alternating, so load on the shared machine hits all alike -- and the median per function
is reported. The int8 outputs are checked against ``kernels.int8_conv.reference`` (rtol 1e-6) before timing.
JSON to ``bench/results/int8_conv.json``.

    TVM_NUM_THREADS=2 python bench/bench_int8_conv.py [--rounds 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SHAPES = [  # (m, k, h, w): LightAVSeg-L 1x1 convs at 224 (kernels.workloads.model_cases("L"))
    (128, 32, 112, 112),
    (64, 256, 56, 56),
    (256, 256, 28, 28),
    (128, 512, 28, 28),
    (512, 128, 14, 14),
    (256, 1024, 7, 7),
    (320, 1920, 4, 4),
]


def _timer(func, args, target, number):
    from edgeavs.tvm_api import to_tvm, tvm

    lib = tvm.compile(func.with_attr("global_symbol", "main"), target=target).jit()
    bufs = [to_tvm(np.ascontiguousarray(a)) for a in args]
    lib["main"](*bufs)
    ev = lib.time_evaluator("main", tvm.cpu(), number=number, repeat=1)
    return (lambda: ev(*bufs).results[0]), bufs[-1].numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--number", type=int, default=20)
    ap.add_argument("--shapes", nargs="*", default=None, metavar="MxKxHxW", help="instead of SHAPES")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "int8_conv.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))

    from bench_peers import _cpu_model
    from edgeavs.io.atomic import write_json
    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import host_target, llvm_host_cpu
    from kernels import int8_conv as K
    from kernels.workloads import ConvCase, fuse, prim_funcs

    target = host_target(args.threads)
    isas = [K.isa_for(target)] + (["generic"] if K.isa_for(target) != "generic" else [])
    rng = np.random.default_rng(0)
    timers, rows = {}, []
    shapes = [tuple(int(v) for v in t.split("x")) for t in args.shapes] if args.shapes else SHAPES
    for m, k, h, w in shapes:
        case = ConvCase(k, m, h, w, act=None)
        func = next(iter(prim_funcs(fuse(case.relax_module())).values()))
        new, _, sched, cfg, err = schedule_prim_func(func, target)
        arrs = case.inputs()
        label = f"pw_{k}to{m}_{h}x{w}"
        ref = case.reference(arrs)
        t, y = _timer(new, arrs + [np.zeros(ref.shape, np.float32)], target, args.number)
        rel = float(np.linalg.norm(y.astype(np.float64) - ref) / np.linalg.norm(ref))
        timers[(label, "fp32_gemm")] = t
        row = {"case": label, "m": m, "k": k, "h": h, "w": w, "macs": m * k * h * w,
               "fp32_gemm": {"schedule": sched, "config": str(cfg), "rel_l2_vs_float64": rel, "error": err}}
        x = arrs[0]
        inv_scale, zp = float(127.0 / np.abs(x).max()), 0
        wq = np.clip(np.rint(arrs[1].reshape(m, k) / np.abs(arrs[1]).max() * 127), -127, 127).astype(np.int8)
        scale = rng.uniform(0.5, 2.0, m).astype(np.float32) * 1e-3
        bias = arrs[2].reshape(m)
        want = K.reference(x, wq, inv_scale, zp, scale, bias)
        for isa in isas:
            wl = K.Int8ConvWorkload(1, m, k, h, w, isa)
            wpack, comp = K.prepare_weights(wq, zp, isa)
            variants = {f"int8_{isa}": K.fallback_config(wl, target)}
            channel = K.fallback_config(wl, target, lanes="channel")
            if channel != variants[f"int8_{isa}"]:  # the channel-lane default it replaced, for comparison
                variants[f"int8_{isa}_channel_lanes"] = channel
            for kind, kcfg in variants.items():
                t, y = _timer(K.int8_conv_kernel(wl, target, kcfg),
                              [x, np.array([inv_scale, zp], np.float32), wpack, comp, scale, bias,
                               np.zeros((1, m, h, w), np.float32)], target, args.number)
                np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
                timers[(label, kind)] = t
                row[kind] = {"config": str(kcfg)}
        rows.append(row)
    samples = {key: [] for key in timers}
    for _ in range(args.rounds):
        for key, t in timers.items():
            samples[key].append(t())
    for row in rows:
        for kind in [k for k in row if k == "fp32_gemm" or k.startswith("int8_")]:
            v = samples[(row["case"], kind)]
            med = statistics.median(v)
            row[kind].update({"median_ms": round(med * 1e3, 4), "min_ms": round(min(v) * 1e3, 4),
                              "max_ms": round(max(v) * 1e3, 4), "gmac_per_s": round(row["macs"] / med / 1e9, 1)})
        for kind in [k for k in row if k.startswith("int8_")]:
            row[kind]["speedup_vs_fp32"] = round(row["fp32_gemm"]["median_ms"] / row[kind]["median_ms"], 2)
        print(f"{row['case']:>22}: fp32 gemm {row['fp32_gemm']['median_ms']:.3f} ms  " + "  ".join(
            f"{k} {row[k]['median_ms']:.3f} ms ({row[k]['speedup_vs_fp32']}x)"
            for k in row if k.startswith("int8_")), flush=True)
    result = {
        "machine": {"cpu": _cpu_model(), "llvm_cpu": llvm_host_cpu(), "threads": args.threads,
                    "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
        "command": f"TVM_NUM_THREADS={args.threads} python bench/bench_int8_conv.py --rounds {args.rounds} "
                   f"--threads {args.threads} --number {args.number}",
        "note": ("median over alternating rounds (each round times every function once, --number runs each); "
                 "default configs, no tuning; a shared 2-vCPU machine with other jobs running: rounds spread "
                 "widely (see min/max), compare within a row"),
        "rows": rows,
    }
    write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
