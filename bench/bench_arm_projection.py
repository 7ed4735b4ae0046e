"""LightAVSeg on one Snapdragon 8 Elite prime core, projected: ``edgeavs device project``'s figures,
and the same method checked against measured times on this machine.

    python bench/bench_arm_projection.py [--variants t l] [--resolution 224] [--no-host]
        [--host-variant t] [--host-resolution 64] [--out bench/results/arm_projection.json]
        [--peers [--chart bench/results/arm_projection.png]]

1. **Projection** (per variant): compile for ``snapdragon8elite`` (the AArch64 Linux twin of
   the phone library), run ``edgeavs.device.projection.project_artifact(cpu="oryon-1")``: one
   frame + one second of audio, fp32, single thread, 2 counted inferences after a warm-up.
   Recorded: projected ms at 4.32 GHz, instructions and cycles by class, % of fp32 peak, the
   10 heaviest functions, the wall time of the projection run.
2. **Host validation**: the same model compiled for ``x86-avx2`` (Haswell ISA: qemu 7.2's TCG
   runs AVX2/FMA, not AVX-512), projected under ``qemu-x86_64`` with llvm-mca's model of *this*
   machine's core (LLVM's host CPU name) at this machine's measured clock (a dependent-add
   chain), against ``edgeavs profile``'s per-function times of the same library (1 thread,
   median of ``--repeat`` instrumented passes). Recorded: whole model (the sum over TIR
   functions) projected vs measured, and the Spearman rank correlation over the 20 functions
   with the largest measured time.

3. **Peers** (``--peers``): the same weights (the artifact's manifest record) exported for ONNX
   Runtime (``.onnx``, aarch64 wheel, MLAS) and ExecuTorch + XNNPACK (``.pte``), projected by
   :mod:`edgeavs.device.peers` in the same guest, on the same seeded inputs, with the same
   plugin and llvm-mca model; the edgeavs artifact's output is saved too, and all three are
   compared with PyTorch (rel-L2). The figure compared is everything executed between the
   markers per inference (library + runtime: edgeavs' Relax VM, a peer's libc and Python call),
   ``inference_ms``; ratios are edgeavs / peer. Per-op-class cycles: edgeavs by the compiler's class of
   each TIR function (the manifest's schedule table), XNNPACK by its exported ukernel symbols (the rest ``[unnamed]``), ONNX Runtime not at
   all (its wheel is stripped). A bar chart goes to ``--chart``
   (``bench/results/arm_projection.png``).

Projection-tuned builds come later (issue 18).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeavs.io.atomic import write_json  # noqa: E402

CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    const long n = 50000000;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        struct timespec a, b;
        long x = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
        double ghz = 8.0 * n / s / 1e9;
        if (ghz > best) best = ghz;
    }
    printf("%.4f\n", best);
    return 0;
}
"""


def measure_clock_ghz() -> float:
    """This core's clock while busy: 8 dependent 1-cycle adds per loop iteration, best of 5."""
    with tempfile.TemporaryDirectory() as d:
        src, exe = Path(d) / "clock.c", Path(d) / "clock"
        src.write_text(CLOCK_C)
        subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True)
        return float(subprocess.run([str(exe)], capture_output=True, text=True,
                                    check=True).stdout)


def measure_stream_gbps() -> float:
    """One core's streaming bandwidth: numpy copy of 256 MiB (read + write), best of 3."""
    import numpy as np

    a = np.ones(64 << 20, dtype=np.float32)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = max(best, 2 * a.nbytes / (time.perf_counter() - t0) / 1e9)
    return best


def core_cache_mib() -> float:
    """The per-core L2 (sysfs cache index2), else 1 MiB."""
    path = Path("/sys/devices/system/cpu/cpu0/cache/index2/size")
    try:
        text = path.read_text().strip()
        return int(text.rstrip("K")) / 1024 if text.endswith("K") else float(text.rstrip("M"))
    except (OSError, ValueError):
        return 1.0


def spearman(xs, ys) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (ties get their mean rank)."""
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx) ** 0.5
    vy = sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (vx * vy) if vx and vy else float("nan")


def host_mca_cpu() -> str:
    """llvm-mca's model of this machine's core: LLVM's host CPU name (e.g. znver5 for an AMD
    family 26 EPYC)."""
    from edgeavs.tvm_api import llvm_host_cpu

    return llvm_host_cpu()


def compile_once(work: Path, target: str, variant: str, resolution: int, log) -> Path:
    from edgeavs.compiler import compile_artifact

    out = work / f"{variant}-{resolution}-{target}"
    if (out / "manifest.json").is_file():
        return out
    saved = {v: os.environ.pop(v) for v in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
             if v in os.environ}
    try:
        t0 = time.perf_counter()
        compile_artifact(out, target=target, variant=variant, resolution=resolution,
                         log=lambda _m: None)
        log(f"compiled {out.name} in {time.perf_counter() - t0:.0f} s")
    finally:
        os.environ.update(saved)
    return out


def brief(report: dict, top: int = 10) -> dict:
    t = report["total"]
    return {
        "projected_ms": round(t["ms"], 4),
        "projected_ms_with_memory_bound": round(t["ms_with_memory_bound"], 4),
        "cycles": round(t["cycles"]),
        "instructions": {k: round(v) for k, v in t["instructions"].items()},
        "instructions_total": round(t["instructions_total"]),
        "peak_fraction": round(t["peak_fraction"], 4),
        "unmodelled_fraction": round(t["unmodelled_fraction"], 4),
        "outside_library": {"instructions": round(report["outside"]["instructions_total"]),
                            "ms": round(report["outside"]["ms"], 4)},
        "functions": len(report["functions"]),
        "top": [{"name": f["name"], "ms": round(f["ms"], 5), "share": round(f["share"], 4),
                 "peak_fraction": round(f["peak_fraction"], 4), "bound": f["bound"],
                 "calls": f["calls"]} for f in report["functions"][:top]],
        "wall_s": report["wall_s"],
        "mca": report["mca"],
    }


def host_validation(work: Path, variant: str, resolution: int, repeat: int, log) -> dict:
    from edgeavs.compiler.breakdown import VM_BUILTIN, profile_artifact
    from edgeavs.device.projection import project_artifact

    art = compile_once(work, "x86-avx2", variant, resolution, log)
    mcpu = host_mca_cpu()
    ghz = measure_clock_ghz()
    gbps = measure_stream_gbps()
    cache = core_cache_mib()
    log(f"host core: LLVM {mcpu}, measured clock {ghz:.2f} GHz, stream {gbps:.1f} GB/s, "
        f"L2 {cache:g} MiB")
    load0 = os.getloadavg()[0]
    measured = profile_artifact(art, threads=1, repeat=repeat, peak=1.0)
    t0 = time.perf_counter()
    projected = project_artifact(art, cpu=mcpu, ghz=ghz, dram_gbps=gbps, cache_mib=cache, log=log)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    meas = {r["name"]: r["us"] / 1e3 for r in measured["functions"] if r["class"] != VM_BUILTIN}
    proj = {f["name"]: f["ms"] for f in projected["functions"]}
    bound = {f["name"]: max(f["ms"], f["memory_ms"]) for f in projected["functions"]}
    both = sorted(set(meas) & set(proj), key=lambda n: -meas[n])
    top = both[:20]
    rho = spearman([meas[n] for n in top], [proj[n] for n in top])
    rho_bound = spearman([meas[n] for n in top], [bound[n] for n in top])
    total_meas = sum(meas.values())
    total_proj = sum(proj.values())
    total_bound = sum(bound.values())
    return {
        "artifact": f"{variant}-{resolution}-x86-avx2",
        "llvm_mca_cpu": mcpu, "clock_ghz": round(ghz, 3),
        "measured_ms_tir_functions": round(total_meas, 4),
        "measured_latency_ms": round(measured["latency_ms"], 4),
        "projected_ms_tir_functions": round(total_proj, 4),
        "projected_over_measured": round(total_proj / total_meas, 4),
        "spearman_top20": round(rho, 4),
        "projected_ms_with_memory_bound": round(total_bound, 4),
        "with_memory_bound_over_measured": round(total_bound / total_meas, 4),
        "spearman_top20_with_memory_bound": round(rho_bound, 4),
        "stream_gbps": round(gbps, 2), "cache_mib": cache,
        "functions_compared": len(both),
        "top20": [{"name": n, "measured_ms": round(meas[n], 5), "projected_ms": round(proj[n], 5),
                   "projected_bound_ms": round(bound[n], 5),
                   "ratio": round(proj[n] / meas[n], 3) if meas[n] else None} for n in top],
        "projected_unmodelled_fraction": round(projected["total"]["unmodelled_fraction"], 4),
        "projection_wall_s": round(wall, 1),
        "profile_repeat": repeat,
        "load_average_1min": [round(load0, 2), round(load1, 2)],
    }


def peer_brief(report: dict) -> dict:
    inf = report["inference"]
    return {
        "inference_ms": round(inf["ms"], 4),
        "library_ms": round(report["total"]["ms"], 4),
        "outside_ms": round(report["outside"]["ms"], 4),
        "cycles": round(inf["cycles"]),
        "instructions": {k: round(v) for k, v in inf["instructions"].items()},
        "instructions_total": round(inf["instructions_total"]),
        "flops": round(inf["flops"]),
        "peak_fraction": round(inf["peak_fraction"], 4),
        "unmodelled_fraction": round(report["total"]["unmodelled_fraction"], 4),
        "rel_l2_vs_pytorch": report["rel_l2_vs_pytorch"],
        "op_classes": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items()
                        if k != "cycles"} for g in report["op_classes"]],
        "top_functions": [{"name": f["name"], "ms": round(f["ms"], 5),
                           "share": round(f["share"], 4),
                           "peak_fraction": round(f["peak_fraction"], 4)}
                          for f in report["functions"][:10]],
        "outside_by_library": {k: round(v) for k, v in
                               list(report["outside"]["by_library"].items())[:6]},
        "guest": report["guest"],
        "method": report["method"],
        "wall_s": report["wall_s"],
        "mca": {k: report["mca"][k] for k in ("blocks", "new", "cached", "seconds")},
    }


def peers_for(work: Path, variant: str, resolution: int, log) -> dict:
    """edgeavs (untuned), ONNX Runtime and ExecuTorch + XNNPACK on the same weights and inputs,
    projected on one Oryon prime core; outputs against PyTorch
    (:func:`edgeavs.device.peers.compare_artifact`)."""
    from edgeavs.device import peers

    art = compile_once(work, "snapdragon8elite", variant, resolution, log)
    t0 = time.perf_counter()
    side = peers.compare_artifact(art, work / f"{variant}-{resolution}-peers", log=log)
    report = side["edgeavs"]
    inf = report["inference"]
    entry = brief(report)
    entry.update({"inference_ms": round(inf["ms"], 4), "library_ms": round(report["total"]["ms"], 4),
                  "outside_ms": round(report["outside"]["ms"], 4),
                  "inference_instructions": {k: round(v) for k, v in inf["instructions"].items()},
                  "flops": round(inf["flops"]),
                  "inference_peak_fraction": round(inf["peak_fraction"], 4),
                  "rel_l2_vs_pytorch": report["rel_l2_vs_pytorch"],
                  "op_classes": [{k: (round(v, 4) if isinstance(v, float) else v)
                                  for k, v in g.items() if k != "cycles"}
                                 for g in report["op_classes"]],
                  "projection_wall_s": report["wall_s"]["side_by_side"]})
    out = {"weights": side["weights"], "inputs": side["inputs"], "pte_export": side["pte_export"],
           "edgeavs": entry}
    for name in peers.PEERS:
        out[name] = peer_brief(side[name])
        out[name]["projection_wall_s"] = side[name]["wall_s"]["total"]
    out["ratios_edgeavs_over_peer"] = {k: round(v, 4)
                                       for k, v in side["ratios_edgeavs_over_peer"].items()}
    out["side_by_side_wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def chart(result: dict, path: Path) -> None:
    """Projected ms per inference (left) and % of fp32 peak (right), per variant and engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["peers"]
    variants = list(rows)
    engines = (("edgeavs", "edgeavs (untuned)", "#1f77b4"), ("onnxruntime", "ONNX Runtime (MLAS)",
                                                             "#ff7f0e"),
               ("xnnpack", "ExecuTorch + XNNPACK", "#2ca02c"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    width = 0.26
    for k, (key, label, color) in enumerate(engines):
        xs = [i + (k - 1) * width for i in range(len(variants))]
        ms = [rows[v][key]["inference_ms"] for v in variants]
        peak = [100 * rows[v][key].get("inference_peak_fraction", rows[v][key].get("peak_fraction"))
                for v in variants]
        bars = axes[0].bar(xs, ms, width, label=label, color=color)
        axes[0].bar_label(bars, fmt="%.1f", fontsize=8)
        bars = axes[1].bar(xs, peak, width, label=label, color=color)
        axes[1].bar_label(bars, fmt="%.0f%%", fontsize=8)
    for ax, title in ((axes[0], "projected ms per inference"), (axes[1], "% of fp32 peak")):
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([f"LightAVSeg-{v.split('-')[0].upper()} @ {v.split('-')[1]}"
                            for v in variants])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("One Snapdragon 8 Elite prime core (Oryon @ 4.32 GHz), fp32, 1 thread: "
                 "qemu block counts x llvm-mca-19 -mcpu=oryon-1", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["t"])
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--host-variant", default="t")
    ap.add_argument("--host-resolution", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-host", action="store_true")
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench-arm-projection")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "arm_projection.json")
    ap.add_argument("--peers", action="store_true",
                    help="also project ONNX Runtime and ExecuTorch + XNNPACK (same weights, "
                         "inputs and cost model) and draw --chart")
    ap.add_argument("--chart", type=Path,
                    default=ROOT / "bench" / "results" / "arm_projection.png")
    args = ap.parse_args(argv)

    from edgeavs.device.projection import project_artifact

    def log(m):
        print(m, file=sys.stderr, flush=True)

    args.work.mkdir(parents=True, exist_ok=True)
    result = {
        "what": "LightAVSeg, one frame + 1 s of audio, fp32, single thread, projected on one "
                "Snapdragon 8 Elite prime core (Oryon, 4.32 GHz) by edgeavs device project",
        "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
        "edgeavs_untuned": {},
    }
    if args.peers:
        result["peers"] = {}
    for variant in args.variants:
        if args.peers:  # edgeavs' projection is part of the side-by-side run
            t0 = time.perf_counter()
            row = peers_for(args.work, variant, args.resolution, log)
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            result["peers"][f"{variant}-{args.resolution}"] = row
            result["edgeavs_untuned"][f"{variant}-{args.resolution}"] = row["edgeavs"]
            write_json(args.out, result)
            continue
        art = compile_once(args.work, "snapdragon8elite", variant, args.resolution, log)
        t0 = time.perf_counter()
        report = project_artifact(art, cpu="oryon-1", log=log)
        entry = brief(report)
        entry["projection_wall_s"] = round(time.perf_counter() - t0, 1)
        result["edgeavs_untuned"][f"{variant}-{args.resolution}"] = entry
        log(f"{variant}-{args.resolution}: projected {entry['projected_ms']:.3f} ms on Oryon "
            f"({entry['peak_fraction'] * 100:.1f}% of peak), wall {entry['projection_wall_s']} s")
        write_json(args.out, result)
    if not args.no_host:
        result["host_validation"] = host_validation(args.work, args.host_variant,
                                                    args.host_resolution, args.repeat, log)
        hv = result["host_validation"]
        log(f"host validation: projected/measured {hv['projected_over_measured']:.3f} "
            f"({hv['with_memory_bound_over_measured']:.3f} with the memory bound), Spearman "
            f"top 20 {hv['spearman_top20']:.3f} ({hv['spearman_top20_with_memory_bound']:.3f})")
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    write_json(args.out, result)
    if args.peers:
        chart(result, args.chart)
        print(args.chart)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
