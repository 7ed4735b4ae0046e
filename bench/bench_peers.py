"""edgeavs against the runtimes a user would ship instead, on this machine, fp32: ONNX Runtime and ExecuTorch +
XNNPACK, with PyTorch eager for scale.

    python bench/bench_peers.py [--variants t l] [--resolution 224] [--threads 2] [--rounds 3]
        [--repeat 30] [--records l=DIR ...] [--out bench/results/peers.json]

Per variant, the same weights (random init, seed 0) and the same input (``random_inputs(0, ...)``, as ``edgeavs
bench``) for everyone:

- **edgeavs**: the artifact ``edgeavs compile`` makes for the host (untuned), and with ``--records V=DIR`` the
  tuned one too; run by ``edgeavs bench``'s TVM worker (TVM's runtime library only);
- **ONNX Runtime**: ``edgeavs export-onnx``'s graph (dynamo, opset 18), CPU execution provider, all graph
  optimisations, ``--threads`` intra-op threads, sequential (``edgeavs bench``'s worker);
- **ExecuTorch + XNNPACK**: the ``.pte`` of ``edgeavs.device.peers.export_models`` (``XnnpackPartitioner``, the
  rewrites that keep every op in the delegate), run by ExecuTorch's Python runtime in the export environment
  (``executorch==1.5.1`` beside this torch) with its thread pool set to ``--threads``
  (``edgeavs/device/peer_runners/et_host.py``); its output is compared with PyTorch's (rel-L2);
- **PyTorch eager**: ``torch.inference_mode``, ``--threads`` threads.

Every runtime runs in its own process, warm-up then the median of ``--repeat``; ``--rounds`` rounds, the order
rotating each round, so load that comes and goes hits every runtime alike; the figure is the median of the
rounds' medians. Ratios are edgeavs / peer; the goals of issue 20 (host, L at 224: untuned <= 0.9x and tuned
<= 0.8x the faster of ONNX Runtime and XNNPACK; T <= 0.75x) are evaluated in the JSON.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeavs.io.atomic import write_json  # noqa: E402
from rounds import rotating_rounds  # noqa: E402

VARIANTS = {"t": "tiny", "s": "small", "b": "base", "l": "large"}
GOALS = {"large": {"untuned": 0.9, "tuned": 0.8}, "tiny": {"untuned": 0.75, "tuned": 0.75}}


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return " ".join(fields.get(k, "").strip() for k in ("Model name", "CPU family", "Model")).strip()


def _et_worker(python: str, pte: Path, inputs: Path, threads: int, warmup: int, repeat: int, output: Path) -> dict:
    from edgeavs.device.peers import RUNNERS

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    proc = subprocess.run([python, str(RUNNERS / "et_host.py"), str(pte), str(inputs), "--threads", str(threads),
                           "--warmup", str(warmup), "--repeat", str(repeat), "--output", str(output)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return {"runtime": "xnnpack", "error": lines[-1] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["t", "l"])
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--records", action="append", default=[], metavar="V=DIR",
                    help="tuning records for variant V (t, l): also time the tuned build")
    ap.add_argument("--runtimes", nargs="+", default=["edgeavs", "onnxruntime", "xnnpack", "torch"])
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench-peers")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    args = ap.parse_args(argv)

    import numpy as np

    from edgeavs.benchmark import spawn_worker
    from edgeavs.compiler import compile_artifact
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.compiler.build import build_torch_model
    from edgeavs.data.inputs import random_inputs
    from edgeavs.device.peers import export_models, export_python, rel_l2

    def log(m):
        print(m, file=sys.stderr, flush=True)

    records = dict(r.split("=", 1) for r in args.records)
    args.work.mkdir(parents=True, exist_ok=True)
    result = {"what": f"LightAVSeg fp32, batch 1, {args.resolution}x{args.resolution}, {args.threads} threads, each "
                      f"runtime in its own process; median of {args.repeat} after {args.warmup} warm-up, median over "
                      f"{args.rounds} rotating rounds",
              "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count(),
                          "load_average_1min": round(os.getloadavg()[0], 2)},
              "variants": {}}
    et_python = export_python(log) if "xnnpack" in args.runtimes else None
    for v in args.variants:
        variant = VARIANTS.get(v, v)
        key = f"{v}-{args.resolution}"
        builds = {"edgeavs": args.work / f"{key}-host"}
        if v in records:
            builds["edgeavs_tuned"] = args.work / f"{key}-host-tuned"
        for name, art in builds.items():
            if not (art / "manifest.json").is_file():
                t0 = time.perf_counter()
                compile_artifact(art, target="host", variant=variant, resolution=args.resolution,
                                 records=records.get(v) if name == "edgeavs_tuned" else None, log=lambda _m: None)
                log(f"compiled {art.name} in {time.perf_counter() - t0:.0f} s")
        art = builds["edgeavs"]
        manifest = read_manifest(art)
        inputs = list(random_inputs(0, *manifest["resolution"]))
        peers = tuple(p for p in ("onnxruntime", "xnnpack") if p in args.runtimes)
        exported = export_models(build_torch_model(manifest["variant"], manifest["weights"]), inputs,
                                 args.work / f"{key}-exports", peers=peers, log=log)
        npz = args.work / f"{key}-exports" / "inputs.npz"
        np.savez(npz, *inputs)
        reference = np.load(exported["reference"])
        kinds = [k for k in builds if "edgeavs" in args.runtimes] + [k for k in ("onnxruntime", "xnnpack", "torch")
                                                                    if k in args.runtimes]
        extra: dict = {}
        with tempfile.TemporaryDirectory() as tmp:
            def run(kind):
                if kind.startswith("edgeavs"):
                    return spawn_worker("tvm", builds[kind], args.threads, args.warmup, args.repeat)
                if kind == "onnxruntime":
                    return spawn_worker("onnxruntime", art, args.threads, args.warmup, args.repeat,
                                        str(exported["onnx"]))
                if kind == "xnnpack":
                    out = Path(tmp) / "et-out.npy"
                    got = _et_worker(et_python, exported["pte"], npz, args.threads, args.warmup, args.repeat, out)
                    if "error" not in got:
                        extra["xnnpack"] = {"rel_l2_vs_pytorch": rel_l2(np.load(out), reference),
                                            "threadpool": got.get("threadpool"),
                                            "executorch": got.get("executorch"),
                                            "non_delegated_ops": exported["pte_export"].get("non_delegated_ops")}
                    return got
                return spawn_worker("torch", art, args.threads, args.warmup, args.repeat)

            rounds, medians, _ = rotating_rounds(kinds, args.rounds, run, log, key, stop_on_error=True)
        row = {"median_ms": medians, "rounds_ms": rounds, **extra}
        peer_ms = [medians[p] for p in ("onnxruntime", "xnnpack") if p in medians]
        if peer_ms:
            best = min(peer_ms)
            row["ratios"] = {f"{k}_over_{p}": round(medians[k] / medians[p], 3)
                             for k in medians if k.startswith("edgeavs") for p in ("onnxruntime", "xnnpack", "torch")
                             if p in medians}
            goals = GOALS.get(variant)
            if goals:
                row["goals"] = {name: {"bound": bound, "ratio_to_best_peer": round(medians[k] / best, 3),
                                       "met": medians[k] / best <= bound}
                                for name, bound in goals.items()
                                for k in [("edgeavs" if name == "untuned" else "edgeavs_tuned")] if k in medians}
        result["variants"][key] = row
        write_json(args.out, result)
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    write_json(args.out, result)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
