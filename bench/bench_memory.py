#!/usr/bin/env python
"""Peak memory and latency of a compiled artifact against ONNX Runtime, each in a process of its own.

    python bench/bench_memory.py [--variant large] [--resolution 224] [--threads 2] [--rounds 3]
                                 [--artifact DIR] [--baseline-artifact DIR | --no-baseline] [--onnx FILE]
                                 [--out bench/results/memory.json]

Compiles the artifact (or reuses ``--artifact``), and for comparison the same model with its weights as
VM constants (the build before the weights were linked into ``model.so``; ``--baseline-artifact`` reuses
one, ``--no-baseline`` skips it), exports the ONNX model, then runs every configuration below in a fresh
process, ``--rounds`` times, in an order that rotates each round (so each one takes each position):

    edgeavs              the artifact, TVM's runtime library alone (TVM_USE_RUNTIME_LIB=1): what
                         ``edgeavs bench`` / ``segment --artifact`` run
    edgeavs-full-tvm     the artifact, TVM with its compiler library loaded (TVM_USE_RUNTIME_LIB=0)
    before               weights as VM constants, whole TVM: the load before this change
    before-runtime-only  weights as VM constants, TVM's runtime library alone
    onnxruntime          the same model exported to ONNX, ONNX Runtime's CPU provider

Each process is ``python -m edgeavs.benchmark worker ...`` (the workers ``edgeavs bench`` runs): load,
a warm-up, then ``--repeat`` timed runs on the same random input, ``--threads`` threads
(OMP_NUM_THREADS, TVM_NUM_THREADS, ONNX Runtime's intra-op threads). Peak RSS is the worker's own
``VmHWM`` at its end (/proc/self/status: the high-water mark of its resident set, import, load and
runs included). Not the parent's ``ru_maxrss`` for the child: Linux carries the pre-``exec`` memory's
high-water mark into it, and with ``vfork`` that is this script's own (a compiled LightAVSeg-L: ~1.3
GiB for every child). Latency is the median of the timed runs. Reported per configuration: the median over the rounds of both, every round's
figures, and the TVM libraries the process had mapped.

Latency across processes on a shared machine is noisy (other jobs come and go between processes), so
the two builds are also timed in ONE process, alternately run by run (``--ab-runs``, TVM's runtime
library alone, first one then the other, the order flipped every run): ``latency_ab`` says whether linking
the weights costs time (the linked build fetches each weight through a call, ~320 on LightAVSeg-L).
Writes ``--out`` atomically; prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "edgeavs": ("artifact", "1", "weights linked in model.so, TVM's runtime library alone (what edgeavs runs)"),
    "edgeavs-full-tvm": ("artifact", "0", "weights linked in model.so, TVM with its compiler library"),
    "before": ("baseline", "0", "weights as VM constants, TVM with its compiler library (the load before)"),
    "before-runtime-only": ("baseline", "1", "weights as VM constants, TVM's runtime library alone"),
    "onnxruntime": ("onnx", None, "ONNX Runtime, CPU provider, the same model exported to ONNX"),
}
GOAL_RATIO = 1.3
"""Issue #17: edgeavs's peak RSS at most 1.3x ONNX Runtime's."""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def run_worker(kind: str, artifact, threads: int, warmup: int, repeat: int, onnx=None,
               runtime_only: str | None = None) -> dict:
    """One ``edgeavs.benchmark`` worker process: its JSON result (``peak_rss_mib``: its ``VmHWM``)."""
    from edgeavs.errors import EdgeAVSError
    from edgeavs.workers import child_env

    env = child_env(set={"OMP_NUM_THREADS": threads, "TVM_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    if runtime_only is not None:
        env["TVM_USE_RUNTIME_LIB"] = runtime_only
    else:
        env.pop("TVM_USE_RUNTIME_LIB", None)
    cmd = [sys.executable, "-m", "edgeavs.benchmark", "worker", kind, str(artifact),
           "--warmup", str(warmup), "--repeat", str(repeat)] + (["--onnx", str(onnx)] if onnx else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise EdgeAVSError(f"the {kind} worker failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("peak_rss_mib") is None:
        raise EdgeAVSError(f"the {kind} worker reported no peak RSS (no /proc/self/status here?)")
    return result


def ab_worker(first: str, second: str, runs: int, warmup: int) -> dict:
    """In this process (TVM's runtime library alone): both artifacts loaded, run alternately."""
    from edgeavs.compiler.artifact import load_artifact, use_runtime_only
    from edgeavs.data.inputs import random_inputs

    use_runtime_only()
    models = [load_artifact(first), load_artifact(second)]
    frames, waveform = random_inputs(0, *models[0].resolution)
    for m in models:
        for _ in range(warmup):
            m.run(frames, waveform)
    times: list[list[float]] = [[], []]
    for i in range(runs):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            models[k].run(frames, waveform)
            times[k].append((time.perf_counter() - t0) * 1e3)

    def stats(t):
        t = sorted(t)
        return {"median_ms": round(statistics.median(t), 3), "min_ms": round(t[0], 3),
                "p25_ms": round(t[len(t) // 4], 3), "runs": len(t)}

    return {"first": stats(times[0]), "second": stats(times[1])}


def run_ab(first, second, threads: int, runs: int, warmup: int) -> dict:
    from edgeavs.workers import child_env, run_json_module

    env = child_env(set={"OMP_NUM_THREADS": threads, "TVM_NUM_THREADS": threads, "TVM_USE_RUNTIME_LIB": "1"})
    out = run_json_module("bench.bench_memory", ["--ab-worker", str(first), str(second), "--ab-runs", str(runs),
                                                 "--warmup", str(warmup)], what="the A/B latency worker", env=env)
    return out


def compile_artifacts(args, workdir: Path, say) -> tuple[Path, Path | None]:
    from edgeavs.compiler.build import compile_artifact

    artifact = Path(args.artifact) if args.artifact else None
    baseline = Path(args.baseline_artifact) if args.baseline_artifact else None
    common = dict(target="host", variant=args.variant, resolution=args.resolution)
    if artifact is None:
        artifact = workdir / "artifact"
        say(f"compiling LightAVSeg-{args.variant} at {args.resolution} (weights linked in model.so)")
        t0 = time.perf_counter()
        compile_artifact(artifact, **common)
        say(f"  {time.perf_counter() - t0:.1f} s")
    if baseline is None and not args.no_baseline:
        baseline = workdir / "baseline"
        say("compiling the same model with its weights as VM constants (the build before, for comparison)")
        t0 = time.perf_counter()
        compile_artifact(baseline, link_weights=False, **common)
        say(f"  {time.perf_counter() - t0:.1f} s")
    return artifact, baseline


def export_onnx(artifact: Path, onnx: Path, threads: int) -> None:
    from edgeavs.workers import child_env, run_json_module

    run_json_module("edgeavs.benchmark", ["worker", "export-onnx", str(artifact), "--warmup", "0",
                                          "--repeat", "0", "--onnx", str(onnx)],
                    what="the ONNX export", env=child_env(set={"OMP_NUM_THREADS": threads}))


def summarize(rounds: dict[str, list[dict]], onnx_bytes: int | None, artifact, baseline) -> dict:
    out = {}
    for name, runs in rounds.items():
        peaks = [r["peak_rss_mib"] for r in runs]
        lats = [r["median_ms"] for r in runs]
        out[name] = {
            "description": CONFIGS[name][2],
            "peak_rss_mib": round(statistics.median(peaks), 1),
            "median_ms": round(statistics.median(lats), 3),
            "peak_rss_mib_rounds": [round(p, 1) for p in peaks],
            "median_ms_rounds": [round(v, 3) for v in lats],
            "min_ms": round(min(r["min_ms"] for r in runs), 3),
            "tvm_libraries": runs[0].get("tvm_libraries"),
            "torch_loaded": runs[0].get("torch_loaded"),
        }
        source = {"artifact": artifact, "baseline": baseline}.get(CONFIGS[name][0])
        if source is not None:
            out[name]["model_so_bytes"] = (Path(source) / "model.so").stat().st_size
        elif onnx_bytes is not None:
            out[name]["model_bytes"] = onnx_bytes
    return out


def format_table(report: dict) -> str:
    h, w = report["resolution"]
    res = report["runtimes"]
    ort = res.get("onnxruntime", {})
    lines = [f"LightAVSeg-{report['variant']} {h}x{w}, {report['threads']} threads, {report['rounds']} rounds, "
             f"{report['cpu']}",
             f"{'runtime':<20} {'peak RSS MiB':>12} {'vs ORT':>7} {'median ms':>10} {'vs ORT':>7} {'min ms':>7}"
             "  TVM libraries"]
    for name, r in res.items():
        rss = f"{r['peak_rss_mib'] / ort['peak_rss_mib']:6.2f}x" if ort else ""
        lat = f"{r['median_ms'] / ort['median_ms']:6.2f}x" if ort else ""
        libs = ", ".join(lib for lib in (r.get("tvm_libraries") or []) if "ffi" not in lib) or "-"
        lines.append(f"{name:<20} {r['peak_rss_mib']:12.1f} {rss:>7} {r['median_ms']:10.2f} {lat:>7} "
                     f"{r['min_ms']:7.2f}  {libs}")
    ab = report.get("latency_ab")
    if ab:
        lines.append(f"one process, alternately ({ab['edgeavs']['runs']} runs each): edgeavs median "
                     f"{ab['edgeavs']['median_ms']:.2f} ms (min {ab['edgeavs']['min_ms']:.2f}), before "
                     f"{ab['before']['median_ms']:.2f} ms (min {ab['before']['min_ms']:.2f}): "
                     f"{ab['edgeavs_vs_before_median']:.3f}x")
    goal = report.get("goal")
    if goal:
        lines.append(f"edgeavs / ONNX Runtime peak RSS: {goal['edgeavs_vs_onnxruntime']:.2f}x "
                     f"(goal <= {goal['max_ratio']}x: {'met' if goal['met'] else 'NOT met'})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_memory.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="large")
    ap.add_argument("--resolution", default="224")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="processes per configuration (alternating)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per process")
    ap.add_argument("--artifact", help="reuse this artifact (compiled by this edgeavs) instead of compiling")
    ap.add_argument("--baseline-artifact", help="reuse this artifact with weights as VM constants")
    ap.add_argument("--no-baseline", action="store_true", help="skip the 'before' configurations")
    ap.add_argument("--onnx", help="reuse this ONNX export of the same model")
    ap.add_argument("--keep", help="compile and export into this directory (kept) instead of a temporary one")
    ap.add_argument("--ab-runs", type=int, default=200,
                    help="runs of each build in the one-process alternating latency check (0: skip it)")
    ap.add_argument("--ab-worker", nargs=2, metavar=("FIRST", "SECOND"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory.json"))
    args = ap.parse_args(argv)
    if args.ab_worker:
        print(json.dumps(ab_worker(*args.ab_worker, runs=args.ab_runs, warmup=args.warmup)))
        return 0
    if args.rounds < 1 or args.repeat < 1 or args.threads < 1 or args.ab_runs < 0:
        ap.error("--rounds, --repeat and --threads must be >= 1, --ab-runs >= 0")

    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.io.atomic import write_json

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="edgeavs-bench-memory-") as tmp:
        tmp = Path(args.keep) if args.keep else Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        artifact, baseline = compile_artifacts(args, tmp, say)
        manifest = read_manifest(artifact)
        onnx = Path(args.onnx) if args.onnx else tmp / "model.onnx"
        if not args.onnx:
            say("exporting ONNX for ONNX Runtime")
            export_onnx(artifact, onnx, args.threads)
        names = [n for n in CONFIGS if CONFIGS[n][0] != "baseline" or baseline is not None]
        rounds: dict[str, list[dict]] = {n: [] for n in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                source, runtime_only, _ = CONFIGS[name]
                if source == "onnx":
                    res = run_worker("onnxruntime", artifact, args.threads, args.warmup, args.repeat, onnx=onnx)
                else:
                    res = run_worker("tvm", artifact if source == "artifact" else baseline, args.threads,
                                     args.warmup, args.repeat, runtime_only=runtime_only)
                rounds[name].append(res)
                say(f"round {r + 1}/{args.rounds} {name:<20} peak {res['peak_rss_mib']:7.1f} MiB  "
                    f"median {res['median_ms']:7.2f} ms")
        latency_ab = None
        if baseline is not None and args.ab_runs:
            say(f"one process, both builds alternately: {args.ab_runs} runs each")
            ab = run_ab(artifact, baseline, args.threads, args.ab_runs, args.warmup)
            latency_ab = {"edgeavs": ab["first"], "before": ab["second"],
                          "edgeavs_vs_before_median": round(ab["first"]["median_ms"] / ab["second"]["median_ms"], 3),
                          "edgeavs_vs_before_min": round(ab["first"]["min_ms"] / ab["second"]["min_ms"], 3),
                          "how": "both artifacts in one process (TVM's runtime library alone), run alternately, "
                                 "the order flipped every run"}
        report = {
            "variant": manifest["variant"], "resolution": manifest["resolution"], "threads": args.threads,
            "cpu": cpu_name(), "cpus": os.cpu_count(), "rounds": args.rounds, "warmup": args.warmup,
            "repeat": args.repeat, "target": manifest["target"],
            "linked_weights": manifest.get("linked_weights"),
            "loadavg": {"start": [round(v, 2) for v in load_start],
                        "end": [round(v, 2) for v in os.getloadavg()]},
            "command": "python bench/bench_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "peak_rss": "VmHWM of the worker process at its end, median over the rounds",
            "latency": "median of --repeat runs in each process, median over the rounds",
            "runtimes": summarize(rounds, onnx.stat().st_size, artifact, baseline),
            "latency_ab": latency_ab,
        }
    res = report["runtimes"]
    if "onnxruntime" in res:
        ratio = res["edgeavs"]["peak_rss_mib"] / res["onnxruntime"]["peak_rss_mib"]
        report["goal"] = {"max_ratio": GOAL_RATIO, "edgeavs_vs_onnxruntime": round(ratio, 3),
                          "met": ratio <= GOAL_RATIO}
    write_json(args.out, report)
    print(format_table(report))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
