"""LightAVSeg tuned for the Snapdragon 8 Elite without a phone: ``edgeavs tune --target snapdragon8elite`` (knob
candidates ranked by projected Oryon cycles), then the artifact ``compile --records`` makes, projected.

    python bench/bench_tune_projected.py [--variants t l] [--resolution 224] [--budget 20m]
        [--out bench/results/tune_projected.json]

Rows of variants not named keep what an earlier run wrote to ``--out`` (one variant per run fits a session).

Per variant: the untuned artifact and the tuned one (same weights: random init seed 0, as
``bench/bench_arm_projection.py``), both compiled for ``snapdragon8elite`` and projected by
``edgeavs.device.projection.project_artifact(cpu="oryon-1")`` (one core at 4.32 GHz, single thread, 2 counted
inferences after a warm-up). Recorded: projected ms of both (the library's functions, and the whole inference
with the runtime, as the peers are compared), the tune's trials, rounds, kept knobs and wall time, and the
peers' projected inference from ``bench/results/arm_projection.json`` when it holds the same variant (same
method and cost model), so the table reads edgeavs untuned / tuned by projection / XNNPACK / ONNX Runtime.
These are projections, not phone measurements: ``bench/bench_arm_projection.py``'s host validation says how
far the method follows a clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeavs.io.atomic import write_json  # noqa: E402

VARIANTS = {"t": "tiny", "s": "small", "b": "base", "l": "large"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["t"])
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--budget", default="20m", help="tune's --time-budget per variant")
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench-tune-projected")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tune_projected.json")
    ap.add_argument("--peers", type=Path, default=ROOT / "bench" / "results" / "arm_projection.json")
    args = ap.parse_args(argv)

    from edgeavs.compiler import compile_artifact
    from edgeavs.device.peers import inference_summary  # the figure the peers are compared by
    from edgeavs.device.projection import cpu_model, project_artifact
    from edgeavs.tune import parse_duration, tune

    def log(m):
        print(m, file=sys.stderr, flush=True)

    for var in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"):  # the Linux twin is what is projected
        os.environ.pop(var, None)
    peers = json.loads(args.peers.read_text()).get("peers", {}) if args.peers.is_file() else {}
    args.work.mkdir(parents=True, exist_ok=True)
    result = {"what": "LightAVSeg, one frame + 1 s of audio, fp32, single thread, projected on one Snapdragon 8 "
                      "Elite prime core (Oryon, 4.32 GHz): untuned, and tuned by projection (no phone)",
              "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
              "budget_s": parse_duration(args.budget), "variants": {}}
    if args.out.is_file():  # rows of other variants from an earlier run stay (each row is self-describing)
        earlier = json.loads(args.out.read_text()).get("variants", {})
        result["variants"].update({k: v for k, v in earlier.items() if k not in
                                   {f"{v}-{args.resolution}" for v in args.variants}})
    for v in args.variants:
        key = f"{v}-{args.resolution}"
        variant = VARIANTS.get(v, v)
        rec = args.work / f"{key}-records"
        t0 = time.perf_counter()
        summary = tune(rec, target="snapdragon8elite", variant=variant, resolution=str(args.resolution),
                       time_budget=parse_duration(args.budget), log=log, progress=False)
        tune_s = time.perf_counter() - t0
        row = {"budget_s": parse_duration(args.budget), "load_average_1min": round(os.getloadavg()[0], 2),
               "tune": {"seconds": round(tune_s, 1), "trials": summary["trials"],
                        "knob_rounds": summary["knobs"]["rounds"], "functions_searched": summary["knobs"]["functions"],
                        "kept": summary["knobs"]["tuned"], "projected_in_tune": summary.get("projected")}}
        for name, records in (("untuned", None), ("tuned", rec)):
            art = args.work / f"{key}-{name}"
            compile_artifact(art, target="snapdragon8elite", variant=variant, resolution=args.resolution,
                             records=records, log=lambda _m: None)
            report = project_artifact(art, cpu="oryon-1")
            inference = inference_summary(report, cpu_model("oryon-1"))
            row[name] = {"library_ms": round(report["total"]["ms"], 4),
                         "inference_ms": round(inference["ms"], 4),
                         "peak_fraction": round(inference["peak_fraction"], 4)}
        row["tuned_over_untuned"] = round(row["tuned"]["inference_ms"] / row["untuned"]["inference_ms"], 4)
        peer = peers.get(key) or {}
        for name in ("xnnpack", "onnxruntime"):
            ms = (peer.get(name) or {}).get("inference_ms")
            if ms:
                row[f"{name}_inference_ms"] = ms
                row[f"tuned_over_{name}"] = round(row["tuned"]["inference_ms"] / ms, 4)
        result["variants"][key] = row
        log(f"{key}: projected {row['untuned']['inference_ms']:.3f} ms untuned -> {row['tuned']['inference_ms']:.3f}"
            f" ms tuned by projection ({row['tune']['kept']} knobs kept, {row['tune']['trials']} trials, "
            f"{tune_s:.0f} s)")
        write_json(args.out, result)
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    write_json(args.out, result)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
