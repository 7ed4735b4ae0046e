#!/usr/bin/env python
"""Per-op-class breakdown of LightAVSeg at 224 (issue #10): share of latency, GFLOP/s, fraction of peak.

    python bench/bench_breakdown.py [--variant large] [--resolution 224] [--threads 2] [--repeat 15]
                                    [--artifact DIR] [--bench] [--json bench/results/breakdown.json]

Compiles the variant for the host (or takes ``--artifact``), then runs ``edgeavs profile`` on it: every TIR
function timed through the VM instrumentation (median of ``--repeat`` passes, in a worker process with
``--threads`` threads), attributed to its op class; the peak is this CPU's single-core SGEMM (numpy/OpenBLAS, one
thread) x threads. ``--bench`` adds ``edgeavs bench`` latencies (TVM and ONNX Runtime, each in its own process)
to the report. Timings on a shared machine are noisy: repeat, and compare within one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeavs.compiler.breakdown import format_breakdown, profile_artifact  # noqa: E402
from edgeavs.io.atomic import write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_breakdown.py", description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="large")
    ap.add_argument("--resolution", default="224")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--artifact", default=None, help="an artifact to profile instead of compiling one")
    ap.add_argument("--bench", action="store_true", help="also time TVM vs ONNX Runtime (edgeavs bench)")
    ap.add_argument("--json", default="bench/results/breakdown.json")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact
        if artifact is None:
            from edgeavs.compiler.build import compile_artifact

            artifact = str(Path(tmp) / f"{args.variant}-{args.resolution}")
            print(f"compiling LightAVSeg-{args.variant} at {args.resolution} ...", file=sys.stderr)
            compile_artifact(artifact, target="host", variant=args.variant, resolution=args.resolution)
        report = profile_artifact(artifact, threads=args.threads, repeat=args.repeat)
        if args.bench:
            from edgeavs.benchmark import run_bench

            b = run_bench(artifact, threads=args.threads, runtimes=("tvm", "onnxruntime"))
            report["bench"] = {k: {m: v.get(m) for m in ("median_ms", "min_ms", "p90_ms", "error") if m in v}
                               for k, v in b["results"].items()}
    report["artifact"] = Path(report["artifact"]).name if args.artifact is None else report["artifact"]
    report["reproduce"] = "python bench/bench_breakdown.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    print(format_breakdown(report))
    if "bench" in report:
        for k, v in report["bench"].items():
            print(f"{k:<12} median {v.get('median_ms', float('nan')):.2f} ms" if "error" not in v
                  else f"{k:<12} error: {v['error']}")
    write_json(args.json, report)
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
