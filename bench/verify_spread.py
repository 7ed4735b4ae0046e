"""How far honest fp32 evaluations of LightAVSeg are from float64, and how far planted wrong
builds are: the measurement behind the tolerance table in ``edgeavs/verify.py``.

    python bench/verify_spread.py [--variants tiny large] [--resolution 224] [--seeds 6]
                                  [--real 4] [--emulated tiny] [--bn-sites 16]
                                  [-o bench/results/verify_spread.json]

For each variant (random init, seed 0, as ``edgeavs compile`` without a checkpoint), on
``--seeds`` random cases (``edgeavs.data.inputs.random_inputs``, as verify draws them) and ``--real`` frames of a synthetic
AVSBench clip read through the project's loaders (PNG -> resize -> ImageNet normalisation, WAV ->
32 kHz one-second windows), everything is compared with a float64 PyTorch run of the same model:

- honest: PyTorch fp32 with 1 and 2 threads, with oneDNN off (each its own process), our host
  build, and (``--emulated``) our snapdragon8elite build run on emulated AArch64;
- planted (must fail): a host build of the model with ONE BatchNorm channel's running variance
  x1.02, and one with the last conv's bias (``head.cls_seg``) + 1e-3, both compiled for real;
- and the planted BN change at ``--bn-sites`` BatchNorm layers across the network (channel 0),
  evaluated in float64 PyTorch only: how many sites any rule can catch.

Per case: rel-L2, max abs, and the IoU of the binarised masks (``logits > 0``) against float64.
Written atomically to ``-o``.
"""

from __future__ import annotations

import argparse
import json
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

from edgeavs.io.atomic import atomic_write_text  # noqa: E402

PLANTED_BN = "visual.smb1.layer1.conv.0.bn"
"""The BatchNorm layer whose channel 0 the compiled planted build changes (an early layer: the
change has the whole network to travel through; other sites are in the float64 scan)."""
PLANTED_BIAS = "head.cls_seg"


def metrics(actual, exact) -> dict:
    a = np.asarray(actual, np.float64)
    e = np.asarray(exact, np.float64)
    d = a - e
    ma, me = a > 0, e > 0
    union = int((ma | me).sum())
    return {"rel_l2": float(np.linalg.norm(d) / np.linalg.norm(e)),
            "max_abs": float(np.abs(d).max()),
            "iou": float((ma & me).sum() / union) if union else 1.0,
            "ref_mask_pixels": int(me.sum()),
            "logit_rms": float(np.sqrt(np.mean(e ** 2)))}


def real_inputs(n: int, h: int, w: int, workdir: Path):
    """``n`` frames and their one-second audio windows from synthetic AVSBench clips, read the
    way training and ``segment`` read files (PNG/WAV loaders)."""
    from edgeavs.data.synth import make_synthetic
    from edgeavs.io.audio import load_audio, split_windows
    from edgeavs.io.frames import load_frame, normalize

    root = workdir / "synth"
    make_synthetic(root, task="s4", clips=max(3, (n + 4) // 5), seed=3, size=max(h, w))
    pngs = sorted(root.rglob("*.png"))
    frames_png = [p for p in pngs if "mask" not in str(p.parent).lower() and "gt" not in str(p.parent).lower()]
    wavs = sorted(root.rglob("*.wav"))
    frames, waves = [], []
    for i in range(n):
        png = frames_png[i % len(frames_png)]
        frames.append(normalize(load_frame(png, size=(h, w))))
        audio = load_audio(wavs[(i // 5) % len(wavs)])
        win = split_windows(audio, 5)
        waves.append(win[i % 5])
    return np.stack(frames).astype(np.float32), np.stack(waves).astype(np.float32)


def reference(variant, inputs: Path, out: Path, *, threads=2, float64=False, no_mkldnn=False,
              checkpoint=None) -> np.ndarray:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "edgeavs.reference", "--variant", variant,
           "--inputs", str(inputs), "--out", str(out)]
    cmd += ["--checkpoint", str(checkpoint)] if checkpoint else ["--seed", "0"]
    cmd += (["--float64"] if float64 else []) + (["--no-mkldnn"] if no_mkldnn else [])
    subprocess.run(cmd, env=env, check=True)
    with np.load(out) as d:
        return d["logits"]


def planted_checkpoint(variant: str, kind: str, path: Path, site: str | None = None):
    import torch

    from edgeavs.model import save_checkpoint
    from edgeavs.reference import build_reference_model

    model = build_reference_model(variant, seed=0)
    mods = dict(model.named_modules())
    with torch.no_grad():
        if kind == "bn":
            mods[site or PLANTED_BN].running_var[0] *= 1.02
        else:
            mods[PLANTED_BIAS].bias += 1e-3
    save_checkpoint(model, path)
    return path


def bn_scan(variant, frames, waveform, exact, sites: int) -> list[dict]:
    import torch

    from edgeavs.reference import build_reference_model, run_reference

    torch.set_num_threads(2)
    names = [n for n, m in build_reference_model(variant, seed=0).named_modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    picks = sorted({round(i * (len(names) - 1) / max(1, sites - 1)) for i in range(sites)})
    out = []
    for k in picks:
        model = build_reference_model(variant, seed=0)
        with torch.no_grad():
            dict(model.named_modules())[names[k]].running_var[0] *= 1.02
        got = run_reference(model, frames, waveform, float64=True)["logits"]
        rel = [metrics(got[i:i + 1], exact[i:i + 1])["rel_l2"] for i in range(len(frames))]
        out.append({"site": names[k], "index": k, "of": len(names),
                    "rel_l2_min": min(rel), "rel_l2_median": float(np.median(rel)), "rel_l2_max": max(rel)})
        print(f"  bn scan {names[k]:<55} rel-L2 {min(rel):.2e} .. {max(rel):.2e}", flush=True)
    return out


def run_artifact(directory, frames, waveform, emulated=False):
    if not emulated:
        from edgeavs.compiler.artifact import load_artifact

        return load_artifact(directory).run_all(frames, waveform)["logits"]
    from edgeavs.device.remote import DeviceSpec, open_artifact

    with open_artifact(directory, DeviceSpec(kind="emulated")) as model:
        return model.run_all(frames, waveform)["logits"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["tiny", "large"])
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--real", type=int, default=4)
    ap.add_argument("--emulated", nargs="*", default=["tiny"], help="variants also run on emulated AArch64")
    ap.add_argument("--bn-sites", type=int, default=16)
    ap.add_argument("-o", "--out", default=str(ROOT / "bench/results/verify_spread.json"))
    ap.add_argument("--summarize", action="store_true",
                    help="only recompute the summary of an existing --out against today's TOLERANCES")
    args = ap.parse_args(argv)
    if args.summarize:
        result = json.loads(Path(args.out).read_text())
        result["summary"] = summarize(result)
        atomic_write_text(Path(args.out), json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["summary"], indent=1))
        return 0

    from edgeavs.compiler.build import compile_artifact
    from edgeavs.data.inputs import random_inputs

    h = w = args.resolution
    result = {"machine": {"cpu": _cpu_model(), "python": platform.python_version()},
              "resolution": [h, w], "command": " ".join(["python", "bench/verify_spread.py", *(argv or sys.argv[1:])]),
              "planted": {"bn": f"{PLANTED_BN} channel 0 running_var x1.02",
                          "bias": f"{PLANTED_BIAS}.bias + 1e-3"},
              "variants": {}}
    with tempfile.TemporaryDirectory(prefix="edgeavs-spread-") as tmp:
        tmp = Path(tmp)
        for variant in args.variants:
            t0 = time.perf_counter()
            cases = [(f"seed {s}",) + random_inputs(s, h, w) for s in range(args.seeds)]
            rf, rw = real_inputs(args.real, h, w, tmp / variant) if args.real else (None, None)
            labels = [c[0] for c in cases] + [f"real[{i}]" for i in range(args.real)]
            frames = np.concatenate([c[1] for c in cases] + ([rf] if args.real else []))
            waveform = np.concatenate([c[2] for c in cases] + ([rw] if args.real else []))
            inputs = tmp / f"{variant}-inputs.npz"
            np.savez(inputs, frames=frames, waveform=waveform)
            exact = reference(variant, inputs, tmp / "f64.npz", float64=True)
            runs = {
                "pytorch fp32, 1 thread": reference(variant, inputs, tmp / "a.npz", threads=1),
                "pytorch fp32, 2 threads": reference(variant, inputs, tmp / "b.npz", threads=2),
                "pytorch fp32, 2 threads, no oneDNN": reference(variant, inputs, tmp / "c.npz", no_mkldnn=True),
            }
            art = tmp / f"{variant}-host"
            compile_artifact(art, target="host", variant=variant, resolution=str(h))
            runs["edgeavs host build"] = run_artifact(art, frames, waveform)
            if variant in (args.emulated or []):
                arm = tmp / f"{variant}-arm"
                compile_artifact(arm, target="snapdragon8elite", variant=variant, resolution=str(h))
                runs["edgeavs snapdragon8elite build, emulated AArch64"] = run_artifact(arm, frames, waveform, True)
            planted = {}
            for kind in ("bn", "bias"):
                ck = planted_checkpoint(variant, kind, tmp / f"{variant}-{kind}.pt")
                d = tmp / f"{variant}-planted-{kind}"
                compile_artifact(d, target="host", variant=variant, checkpoint=ck, resolution=str(h))
                planted[result["planted"][kind]] = run_artifact(d, frames, waveform)
            entry = {"cases": labels, "honest": {}, "planted": {}}
            for group, table in (("honest", runs), ("planted", planted)):
                for name, got in table.items():
                    per = [metrics(got[i:i + 1], exact[i:i + 1]) for i in range(len(labels))]
                    entry[group][name] = per
                    rel = [p["rel_l2"] for p in per]
                    print(f"{variant:<6} {group:<8} {name:<52} rel-L2 {min(rel):.2e} .. {max(rel):.2e}  "
                          f"IoU min {min(p['iou'] for p in per):.5f}", flush=True)
            entry["bn_scan"] = bn_scan(variant, frames, waveform, exact, args.bn_sites) if args.bn_sites else []
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            result["variants"][variant] = entry
    result["summary"] = summarize(result)
    out = Path(args.out)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(out)
    return 0


def summarize(result: dict) -> dict:
    """Worst honest and mildest planted figure of each bound of ``edgeavs.verify.TOLERANCES``, and
    the margins on both sides (bound / worst honest, mildest planted / bound; IoU as 1 - IoU)."""
    from edgeavs.verify import TOLERANCES

    tol = TOLERANCES["float32"]
    out = {"tolerances": tol, "variants": {}}
    for variant, entry in result["variants"].items():
        row = {}
        for key, bound in (("rel_l2", tol["rel_l2"]), ("max_abs_rms", tol["max_abs"]),
                           ("mask_gap", 1 - tol["mask_iou"])):
            def vals(group, name):
                per = entry[group][name]
                if key == "max_abs_rms":
                    return [p["max_abs"] / p["logit_rms"] for p in per]
                if key == "mask_gap":
                    return [1 - p["iou"] for p in per if p["ref_mask_pixels"]]
                return [p[key] for p in per]

            honest = max(max(vals("honest", n), default=0.0) for n in entry["honest"])
            planted = {n: max(vals("planted", n), default=0.0) for n in entry["planted"]}
            planted_min_case = {n: min(vals("planted", n), default=0.0) for n in entry["planted"]}
            row[key] = {"bound": bound, "worst_honest": honest,
                        "honest_margin": bound / honest if honest else None,
                        "planted_worst_case": planted,
                        "planted_margin": {n: v / bound for n, v in planted.items()},
                        "planted_mildest_case": planted_min_case}
        scan = entry.get("bn_scan", [])
        row["bn_scan_caught"] = {
            "sites": len(scan),
            "no_effect_at_all": sum(1 for s in scan if s["rel_l2_max"] == 0.0),
            "gate_fails_by_3x": sum(1 for s in scan if s["rel_l2_max"] >= 3 * tol["rel_l2"]),
            "every_case_fails": sum(1 for s in scan if s["rel_l2_min"] > tol["rel_l2"])}
        out["variants"][variant] = row
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
