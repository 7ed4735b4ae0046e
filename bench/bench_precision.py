"""fp32 vs fp16 (accumulating in fp32) vs fp16 (accumulating in fp16) on one Snapdragon 8 Elite prime core,
projected, with each build's numerical cost.

    python bench/bench_precision.py [--variants t l] [--resolution 224] [--seeds 2] [--no-verify]
        [--builds fp32 int8] [--calibration DIR] [--work artifacts/bench-precision]
        [--out bench/results/precision.json]

Per variant (random init, seed 0: ``compile_artifact`` without a checkpoint) and precision:

1. compile for ``snapdragon8elite`` (``--precision fp32`` / ``fp16 --accumulate fp32`` / ``fp16 --accumulate
   fp16``) and project with ``edgeavs.device.projection.project_artifact(cpu="oryon-1")``: one frame + one second
   of audio, single thread, blocks counted under qemu and costed by ``llvm-mca-19 -mcpu=oryon-1``. The
   projection is deterministic (the same build projects to the same cycles), so the load of this machine does
   not enter the figures.
2. ``% of peak``: the model's FLOPs (those the projection counts in the fp32 build: fp32 vector and scalar
   arithmetic; its counter does not count half-precision lanes, so the fp16 builds' own counts are too low) over
   the build's projected cycles x the peak. Two peaks: Oryon's fp32 peak (4 x 128-bit FMLA pipes, 32
   FLOP/cycle) for every build, and the peak of the build's own arithmetic (fp16 FMLA: 8 lanes, 64 FLOP/cycle,
   for the fp16-accumulating build; fp32's 32 for the others, whose FMAs are fp32).
3. verify's figures (unless ``--no-verify``): ``edgeavs.verify.verify_artifact`` of the same AArch64 build under
   ``qemu-aarch64`` (``-cpu max``: fp16 arithmetic) on ``--seeds`` random cases against PyTorch float64, with the
   row of the tolerance table the build's precision selects: worst rel-L2, worst pixel (x rms), mask IoU, pass.

The ratios are fp16 build / fp32 build (projected ms).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeavs.io.atomic import write_json  # noqa: E402

BUILDS = (("fp32", "fp32", "fp32"), ("fp16-acc32", "fp16", "fp32"), ("fp16-acc16", "fp16", "fp16"),
          ("int8", "int8", "fp32"))
"""(name, --precision, --accumulate); int8 only with ``--calibration``."""
INT8_OPS_PER_CYCLE = 128.0
"""Oryon's int8 SDOT peak: 4 x 128-bit pipes x 16 MACs x 2 ops (516 GOPS per core at 4.0 GHz measured)."""
VARIANTS = {"t": "tiny", "s": "small", "b": "base", "l": "large"}
FP16_FLOP_PER_CYCLE = 64.0
"""Oryon's fp16 FMLA peak: 4 x 128-bit pipes x 8 lanes x 2 FLOP (twice fp32's 32)."""


def compile_build(work: Path, variant: str, resolution: int, name: str, precision: str, accumulate: str,
                  log, calibration=None) -> tuple[Path, float | None]:
    from edgeavs.compiler import compile_artifact

    out = work / f"{variant}-{resolution}-{name}"
    if (out / "manifest.json").is_file():
        return out, None
    saved = {v: os.environ.pop(v) for v in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
             if v in os.environ}  # the Linux library is what the projection runs
    try:
        t0 = time.perf_counter()
        extra = {"calibration": calibration, "calibration_frames": 64} if precision == "int8" else {}
        compile_artifact(out, target="snapdragon8elite", variant=variant, resolution=resolution,
                         precision=precision, accumulate=accumulate, log=lambda _m: None, **extra)
        seconds = time.perf_counter() - t0
        log(f"compiled {out.name} in {seconds:.0f} s")
    finally:
        os.environ.update(saved)
    return out, seconds


def top_functions(report: dict, n: int = 8) -> list:
    return [{"name": f["name"], "ms": round(f["ms"], 5), "share": round(f["share"], 4),
             "vector_fma": round(f["instructions"]["vector_fma"])} for f in report["functions"][:n]]


def verify_figures(art: Path, seeds: int, log) -> dict:
    from edgeavs.device.remote import DeviceSpec
    from edgeavs.verify import verify_artifact

    t0 = time.perf_counter()
    rep = verify_artifact(art, seeds=seeds, device=DeviceSpec("emulated"), log=None)
    w = rep["worst"]
    out = {"rule": rep["rule"], "tolerance": rep["tolerances"][rep["rule"]], "cases": len(rep["cases"]),
           "rel_l2_vs_float64": w["rel_l2"], "max_abs_rms_vs_float64": w["max_abs_rms"],
           "mask_iou": w["mask_iou"], "pytorch_fp32_rel_l2_vs_float64": w["pytorch_fp32_rel_l2"],
           "passed": rep["passed"], "device": rep.get("device"), "wall_s": round(time.perf_counter() - t0, 1)}
    log(f"  verify {art.name}: rule {out['rule']}, rel-L2 {w['rel_l2']:.3g}, max abs {w['max_abs_rms']:.3g} x rms, "
        f"mask IoU {w['mask_iou']}, {'pass' if rep['passed'] else 'FAIL'}")
    return out


def run_variant(work: Path, variant: str, resolution: int, seeds: int, do_verify: bool, log, builds=None,
                calibration=None) -> dict:
    from edgeavs.device.projection import CPUS, project_artifact

    cpu = CPUS["oryon-1"]
    rows, fp32_flops = {}, None
    for name, precision, accumulate in BUILDS:
        if (builds and name not in builds and name != "fp32") or (precision == "int8" and calibration is None):
            continue  # fp32 always: the ratios' base
        art, compile_s = compile_build(work, variant, resolution, name, precision, accumulate, log, calibration)
        t0 = time.perf_counter()
        rep = project_artifact(art, cpu="oryon-1", log=None)
        t = rep["total"]
        if fp32_flops is None:
            fp32_flops = t["flops"]
        own_peak = (INT8_OPS_PER_CYCLE if precision == "int8" else FP16_FLOP_PER_CYCLE if accumulate == "fp16"
                    else cpu.flop_per_cycle)
        row = {
            "precision": precision, "accumulate": accumulate,
            "projected_ms": round(t["ms"], 4),
            "projected_ms_with_memory_bound": round(t["ms_with_memory_bound"], 4),
            "cycles": round(t["cycles"]),
            "model_flops": round(fp32_flops),
            "peak_fraction_of_fp32_peak": round(fp32_flops / (t["cycles"] * cpu.flop_per_cycle), 4),
            "own_peak_flop_per_cycle": own_peak,
            "peak_fraction_of_own_peak": round(fp32_flops / (t["cycles"] * own_peak), 4),
            "instructions": {k: round(v) for k, v in t["instructions"].items()},
            "instructions_total": round(t["instructions_total"]),
            "unmodelled_fraction": round(t["unmodelled_fraction"], 4),
            "top": top_functions(rep),
            "projection_wall_s": round(time.perf_counter() - t0, 1),
            "compile_s": round(compile_s, 1) if compile_s is not None else None,
        }
        log(f"{variant}-{resolution} {name}: {row['projected_ms']:.3f} ms projected on oryon-1 "
            f"({row['peak_fraction_of_fp32_peak'] * 100:.1f}% of fp32 peak, "
            f"{row['peak_fraction_of_own_peak'] * 100:.1f}% of its own)")
        if do_verify:
            row["verify"] = verify_figures(art, seeds, log)
        rows[name] = row
    base = rows["fp32"]["projected_ms"]
    for name, row in rows.items():
        row["ratio_vs_fp32"] = round(row["projected_ms"] / base, 4)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["t", "l"], choices=sorted(VARIANTS))
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--seeds", type=int, default=2, help="random cases for verify (under qemu)")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--builds", nargs="+", default=None, choices=[b[0] for b in BUILDS],
                    help="only these builds (and fp32, the ratios' base); the other rows of an earlier run are kept")
    ap.add_argument("--calibration", default=None, metavar="DIR",
                    help="an AVSBench-layout tree: adds the int8 build (64 calibration frames of its train split)")
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench-precision")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "precision.json")
    args = ap.parse_args(argv)

    def log(m):
        print(m, file=sys.stderr, flush=True)

    from edgeavs.device.emulator import require_emulator

    require_emulator()
    args.work.mkdir(parents=True, exist_ok=True)
    result = {}
    if args.out.is_file():  # keep the other variants' rows of an earlier run
        import json

        result = json.loads(args.out.read_text())
    result.update({
        "what": "LightAVSeg (random init, seed 0), one frame + 1 s of audio, single thread, projected on one "
                "Snapdragon 8 Elite prime core (oryon-1, 4.32 GHz) by edgeavs.device.projection: fp32 vs fp16 "
                "accumulating in fp32 vs fp16 accumulating in fp16 vs int8 (sdot; with --calibration); verify's "
                "figures for each build under "
                "qemu-aarch64 -cpu max against PyTorch float64",
        "peaks_flop_per_cycle": {"fp32": 32.0, "fp16": FP16_FLOP_PER_CYCLE, "int8": INT8_OPS_PER_CYCLE},
        "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
    })
    result.setdefault("variants", {})
    for v in args.variants:
        key = f"{v}-{args.resolution}"
        rows = result["variants"].get(key, {})
        rows.update(run_variant(args.work, VARIANTS[v], args.resolution, args.seeds, not args.no_verify, log,
                                builds=args.builds, calibration=args.calibration))
        base = rows["fp32"]["projected_ms"]
        for row in rows.values():
            row["ratio_vs_fp32"] = round(row["projected_ms"] / base, 4)
        result["variants"][key] = rows
        write_json(args.out, result)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
