"""PyTorch eager latency of LightAVSeg per variant: one frame + one second of audio at 224.

Each (variant, threads) runs in its own process (OMP_NUM_THREADS set before torch loads;
OMP_WAIT_POLICY left at its default: PASSIVE made 2 threads 3x slower here), warm-up then the median
of ``--repeat`` (≥ 20) timed runs. Writes JSON (default bench/results/eager.json) and prints
a table.

    python bench/bench_eager.py [--variants tiny small base large] [--threads 1 2] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import json, sys, time, statistics, torch
variant, size, warmup, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from edgeavs import build_model
model = build_model(variant, seed=0).eval()
frames, wave = torch.randn(1, 3, size, size), torch.randn(1, 32000)
times = []
with torch.inference_mode():
    for _ in range(warmup):
        model(frames, wave)
    for _ in range(repeat):
        t = time.perf_counter(); model(frames, wave); times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(json.dumps({"median_ms": statistics.median(times), "p10_ms": times[len(times) // 10],
                  "p90_ms": times[(9 * len(times)) // 10], "runs": repeat,
                  "torch_threads": torch.get_num_threads()}))
"""


def run_one(variant: str, threads: int, size: int, warmup: int, repeat: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", WORKER, variant, str(size), str(warmup), str(repeat)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["tiny", "small", "base", "large"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("-o", "--output", type=Path, default=Path("bench/results/eager.json"))
    args = ap.parse_args()
    if args.repeat < 20:
        ap.error("--repeat must be at least 20")
    rows = []
    for variant in args.variants:
        for threads in args.threads:
            r = run_one(variant, threads, args.size, args.warmup, args.repeat)
            rows.append({"variant": variant, "threads": threads, "size": args.size, **r})
            print(f"{variant:6s} threads={threads}  median {r['median_ms']:8.2f} ms  "
                  f"(p10 {r['p10_ms']:.2f}, p90 {r['p90_ms']:.2f})", flush=True)
    result = {"benchmark": "pytorch-eager", "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "python": platform.python_version(), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.output.parent, prefix=".eager.")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
