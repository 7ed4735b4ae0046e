#!/usr/bin/env python
"""Tune, compile with the records, and time tuned vs untuned edgeavs against ONNX Runtime and PyTorch.

    python bench/bench_tune.py                                   # LightAVSeg-L 224, 30 min budget (issue #4)
    python bench/bench_tune.py --time-budget 5m --variant tiny   # a short check

1. ``edgeavs tune`` into ``WORKDIR/records-<variant>-<H>x<W>`` (a fresh directory unless ``--resume``);
2. ``edgeavs compile`` without and with ``--records`` (the tuned compile's wall time is a goal: <= 60 s);
3. ``edgeavs bench``'s ``run_bench`` (each runtime in its own process, same input and thread count, median of
   ``--repeat`` runs): untuned and tuned edgeavs in the order A B B A (the better median of each is reported,
   every median is kept: other load on a shared machine hits one run, rarely both), ONNX Runtime and PyTorch;
4. the tuned build's per-function profile (``edgeavs.compiler.breakdown``): top-10 functions with their share of
   latency and achieved GFLOP/s, against the measured SGEMM ceiling.

Writes ``--out`` (default ``bench/results/tune.json``) atomically. Goals (issue #4): tuned <= 0.5x ONNX Runtime
and <= 0.33x PyTorch; TVM-NOTES reads the ORT goal as <= 0.8x on a 2-core machine like ours, so both are reported.
Every figure depends on the machine's load: the load averages before and after are recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPILE_GOAL_S = 60.0
GOALS = {"tuned_vs_onnxruntime": 0.5, "tuned_vs_onnxruntime_2core_reading": 0.8, "tuned_vs_torch": 0.33}


def _cli(args: list[str], log) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cli.py ARGS`` in its own process (torch and TVM stay out of this one); stderr streams through."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    log(f"$ edgeavs {' '.join(args)}")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], env=env, stdout=subprocess.PIPE,
                          text=True)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"edgeavs {args[0]} failed (exit {proc.returncode})")
    return proc, secs


def _median(report: dict, kind: str) -> float | None:
    r = report["results"].get(kind) or {}
    return r.get("median_ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="large")
    ap.add_argument("--resolution", default="224")
    ap.add_argument("--time-budget", default="30m", help="edgeavs tune's budget, e.g. 5m, 30m")
    ap.add_argument("--trials", type=int, default=None, help="edgeavs tune --trials (default: the budget decides)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--workdir", default="artifacts/bench-tune", help="records and artifacts go here")
    ap.add_argument("--resume", action="store_true", help="continue the records directory instead of a fresh one")
    ap.add_argument("--skip-tune", action="store_true",
                    help="use the records directory as it is (time and compile only)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tune.json"))
    args = ap.parse_args(argv)

    from edgeavs.benchmark import run_bench
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.compiler.breakdown import profile_artifact
    from edgeavs.io.atomic import write_json
    from edgeavs.compiler.build import parse_resolution
    from edgeavs.tune import parse_duration

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    budget_s = parse_duration(args.time_budget)
    h, w = parse_resolution(args.resolution)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    records = work / f"records-{args.variant}-{h}x{w}"
    if args.skip_tune and not records.is_dir():
        raise SystemExit(f"--skip-tune: {records} does not exist")
    if records.exists() and not (args.resume or args.skip_tune):
        shutil.rmtree(records)
    load_before = os.getloadavg()
    common = ["--variant", args.variant, "--resolution", f"{h}x{w}"]

    tune_args = ["tune", *common, "--time-budget", args.time_budget, "--json", "-o", str(records)]
    if args.trials:
        tune_args += ["--trials", str(args.trials)]
    if args.skip_tune:  # the tune summary of the run that made these records, when --out has it
        prev = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
        summary = dict(prev.get("tune") or {})
        if summary.get("records") != str(records):
            summary = {"records": str(records)}
        summary["tuned_in_an_earlier_run"] = True
        tune_s = float(summary.get("wall_seconds", 0.0))
    else:
        proc, tune_s = _cli(tune_args, log)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])

    arts = {}
    compile_s = {}
    for name, extra in (("untuned", []), ("tuned", ["--records", str(records)])):
        out = work / f"{args.variant}-{h}x{w}-{name}"
        if out.exists():
            shutil.rmtree(out)
        _, compile_s[name] = _cli(["compile", *common, *extra, "-q", "-o", str(out)], log)
        arts[name] = out
    knobs_used = (read_manifest(arts["tuned"]).get("schedules") or {}).get("knobs")

    medians = {"untuned": [], "tuned": []}
    reports = []
    for name in ("untuned", "tuned", "tuned", "untuned"):
        rep = run_bench(arts[name], args.threads, repeat=args.repeat, runtimes=("tvm",), log=log)
        reports.append(rep)
        if _median(rep, "tvm") is not None:
            medians[name].append(round(_median(rep, "tvm"), 3))
    base = run_bench(arts["untuned"], args.threads, repeat=args.repeat, runtimes=("onnxruntime", "torch"), log=log)
    reports.append(base)
    latency = {"edgeavs_untuned": min(medians["untuned"], default=None),
               "edgeavs_tuned": min(medians["tuned"], default=None),
               "onnxruntime": _median(base, "onnxruntime"), "torch": _median(base, "torch")}
    errors = {k: r["error"] for rep in reports for k, r in rep["results"].items() if "error" in r}
    t = latency["edgeavs_tuned"]

    def ratio(other):
        return round(t / latency[other], 3) if t and latency.get(other) else None

    ratios = {"tuned_vs_untuned": ratio("edgeavs_untuned"), "tuned_vs_onnxruntime": ratio("onnxruntime"),
              "tuned_vs_torch": ratio("torch")}

    log("profiling the tuned build per function")
    prof = profile_artifact(arts["tuned"], threads=args.threads, top=10)
    top = [{"name": r["name"], "class": r["class"], "schedule": r["schedule"], "us": round(r["us"], 1),
            "share": round(r["share"], 4), "gflop": round(r["gflop"], 5), "gflops": round(r["gflops"], 2),
            "fraction_of_peak": round(r["fraction_of_peak"], 4) if r["fraction_of_peak"] is not None else None}
           for r in prof["top"]]
    result = {
        "variant": args.variant, "resolution": [h, w], "threads": args.threads, "repeat": args.repeat,
        "time_budget_s": budget_s, "trials_limit": args.trials,
        "tune": {**summary, "wall_seconds": round(tune_s, 1)},
        "compile_seconds": {k: round(v, 1) for k, v in compile_s.items()},
        "compile_goal_s": COMPILE_GOAL_S,
        "compile_goal_met": compile_s["tuned"] <= COMPILE_GOAL_S,
        "knobs_used": knobs_used,
        "latency_ms": {k: round(v, 3) if v is not None else None for k, v in latency.items()},
        "edgeavs_medians_ms_abba": medians,
        "ratios": ratios,
        "goals": GOALS,
        "goals_met": {k: (ratios[k.replace("_2core_reading", "")] is not None
                          and ratios[k.replace("_2core_reading", "")] <= v) for k, v in GOALS.items()},
        "errors": errors,
        "tuned_profile": {"latency_ms": round(prof["latency_ms"], 3), "gflop": round(prof["gflop"], 4),
                          "gflops": round(prof["gflops"], 2), "peak": prof["peak"],
                          "fraction_of_peak": round(prof["fraction_of_peak"], 4)
                          if prof["fraction_of_peak"] is not None else None,
                          "top_functions": top},
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
    }
    write_json(args.out, result)
    print(f"tune: {summary.get('trials', 0)} trials ({(summary.get('knobs') or {}).get('trials', 0)} knob candidates) "
          f"in {tune_s:.0f} s; compile --records {compile_s['tuned']:.1f} s (goal {COMPILE_GOAL_S:.0f} s); "
          f"tuned knobs on {(knobs_used or {}).get('tuned', 0)} functions")
    for k, v in latency.items():
        print(f"  {k:<16} {v if v is None else f'{v:8.2f} ms'}")
    print(f"  ratios: {ratios}")
    if errors:
        print(f"  errors: {errors}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
