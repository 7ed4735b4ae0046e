"""Verify a compiled artifact against the PyTorch model it was compiled from.

The reference runs in a separate process (``python -m edgeavs.reference``; PyTorch and TVM in
one process fight over OpenMP), on the same inputs: ``seeds`` random cases plus, optionally,
real frames/audio from an ``.npz`` (keys ``frames`` (N,3,H,W), ``waveform`` (N,32000)). The
reference runs twice: in float64, which the rule of :data:`TOLERANCES` compares against (rel-L2,
worst pixel, binarised-mask IoU; NaN/Inf on either side always fails), and in fp32, whose own
distance from float64 the report gives for context. ``per_layer`` also compiles the graph with every named intermediate
as an output and compares those by MSE/SNR, naming the first one where the error opens up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgeavs.data.inputs import SAMPLES, random_inputs
from edgeavs.errors import EdgeAVSError

# The one tolerance table (per output dtype). Every case is compared with a float64 PyTorch run of
# the same model on the same inputs (the exact answer, up to float64 rounding): an output passes
# when all of these hold against it:
#   finite    no NaN or Inf on either side;
#   rel_l2    ||a - e|| / ||e|| <= rel_l2;
#   max_abs   max |a - e| <= max_abs * rms(e): the worst pixel, in units of the output's own
#             scale (an error on a few pixels that rel-L2 averages away);
#   mask_iou  the binarised masks agree: IoU(a > 0, e > 0) >= mask_iou, wherever e > 0 somewhere
#             (what a segmentation user sees; an empty reference mask is not scored).
# Why float64 and not PyTorch fp32: two fp32 evaluations differ by reassociation (FMA
# contraction, vector reduction order, thread split), so comparing two of them measures both
# one's rounding; against float64 each build is measured alone. The bounds come from measurement
# (python bench/verify_spread.py, bench/results/verify_spread.json; see MEASURED below): every
# honest fp32 build stays >= 3x inside each bound and the planted wrong builds fall >= 3x outside.
# Keyed by the build's precision, named by the dtype of its MAC layers (the manifest's ``precision``
# and, for fp16, its accumulator: :func:`rule_for`): ``verify`` reads the artifact's row. The fp16
# rows are measured the same way, against the same float64 reference (FP16_MEASURED below), each
# bound ~3x the worst honest figure. They cannot tell the fp32 study's mildest planted error
# (rel-L2 1.03e-2) from fp16 rounding: an fp16 build is checked that coarsely, and its task-level
# cost is what `edgeavs evaluate --artifact` measures. ``mask_min_pixels``: the mask IoU is scored
# only where the two masks cover at least that many pixels together (on a 5-pixel mask one pixel
# flipped by fp16 rounding, at rel-L2 5e-4, is IoU 0.8); smaller masks are judged by the other bounds.
TOLERANCES = {
    "float32": {"rel_l2": 8e-5, "max_abs": 3e-4, "mask_iou": 0.999},
    "float16": {"rel_l2": 1.5e-2, "max_abs": 5e-2, "mask_iou": 0.95, "mask_min_pixels": 64,
                "layer_snr_db": 30.0},
    "float16/acc16": {"rel_l2": 6e-2, "max_abs": 1.2e-1, "mask_iou": 0.65, "mask_min_pixels": 64,
                      "layer_snr_db": 20.0},
    "int8": {"rel_l2": 0.3, "max_abs": 1.0, "mask_iou": 0.7, "mask_min_pixels": 64, "layer_snr_db": 10.0},
}
PRECISION_DTYPE = {"fp32": "float32", "fp16": "float16", "int8": "int8"}
"""A manifest's ``precision`` -> its row of :data:`TOLERANCES` (fp16 accumulating in fp16: ``/acc16``)."""
MEASURED = {
    # bench/results/verify_spread.json (2-core Intel Xeon, AVX-512; LightAVSeg-T and -L at 224, random
    # init seed 0; 6 random + 4 real cases): the worst honest figure over PyTorch fp32 (1 and 2
    # threads, without oneDNN), our host build and (T) our snapdragon8elite build on emulated AArch64,
    # and the mildest planted one (one BN channel's running variance x1.02 at
    # visual.smb1.layer1.conv.0.bn; head.cls_seg's bias + 1e-3).
    "rel_l2": {"worst_honest": 1.91e-5, "mildest_planted": 1.03e-2},  # bound 4.2x / 129x away
    "max_abs": {"worst_honest": 8.0e-5, "mildest_planted": 1.21e-2},  # x rms: 3.7x / 40x away
    "mask_iou": {"worst_honest": 0.99988, "mildest_planted": 0.981},  # 1 - IoU: 8x / 19x away
}
"""What the bounds were chosen from (python bench/verify_spread.py); the README repeats it."""
FP16_MEASURED = {
    # `edgeavs verify ART --seeds 6 --inputs real.npz` (4 of the 16 cases real frames of a synthetic S4
    # test split, `edgeavs evaluate --dump-inputs`), LightAVSeg-T at 64 with the embedded checkpoint,
    # host builds (x86 converts around every fp16 op, so fp16 rounding is what it computes), 2-vCPU AMD
    # EPYC (Zen 5-class); worst of 16 cases (mask IoU: of the cases whose masks cover >= 64 pixels; on
    # the smaller ones 0.984 / 0.833). The snapdragon8elite fp16 build under qemu (-cpu max: native
    # fp16 conversions) gave rel-L2 4.64e-3, max abs 1.26e-2 x rms on 13 of these cases.
    "float16": {"rel_l2": 4.75e-3, "max_abs": 1.38e-2, "mask_iou": 0.9905},
    "float16/acc16": {"rel_l2": 1.99e-2, "max_abs": 4.01e-2, "mask_iou": 0.886},
}
INT8_MEASURED = {
    # int8 builds are judged on real frames only (random inputs lie outside the calibrated ranges: on randn
    # frames tiny@64 gave rel-L2 0.17-0.77), the val split of the calibration tree by default. Worst honest
    # figures against float64, host builds (vnni), 2-vCPU Intel Xeon (family 6 model 167): LightAVSeg-T at 128
    # with the embedded checkpoint calibrated on 100 synthetic S4 train frames -- 10 val frames rel-L2 0.156, max
    # abs 0.63 x rms, mask IoU 0.855; 10 test frames 0.102, 0.33, 0.747 -- and T at 64 with random weights on 8
    # frames: 5 val frames 0.221, 0.39, 0.943. The bounds sit 1.4-2x outside: a coarse gate (the planted-error
    # study of the fp32 row was not repeated for it); exactness is the kernel's and the pass's tests (integers equal,
    # the graph within 1e-5 of the numpy model), the task-level cost is `edgeavs evaluate --artifact`.
    "int8": {"rel_l2": 0.221, "max_abs": 0.63, "mask_iou": 0.747, "layer_snr_db": 11.4},
}
# Per-layer: an intermediate whose SNR drops below this is where the gap opens (fp32 runs
# at ~120-140 dB; 60 dB = rel-L2 1e-3).
PER_LAYER_MIN_SNR_DB = 60.0


def rule_for(manifest: dict) -> str:
    """The :data:`TOLERANCES` row an artifact is judged by: its manifest's ``precision`` (fp32 when the
    manifest predates the field)."""
    precision = manifest.get("precision", "fp32")
    if precision not in PRECISION_DTYPE:
        raise EdgeAVSError(f"manifest.json: precision {precision!r} has no verify rule (known: "
                           f"{', '.join(PRECISION_DTYPE)})")
    acc = (manifest.get("precision_report") or {}).get("accumulate")
    return PRECISION_DTYPE[precision] + ("/acc16" if precision == "fp16" and acc == "float16" else "")


class VerifyUsageError(EdgeAVSError):
    """Bad arguments (wrong checkpoint, inputs of the wrong shape): the CLI exits 2."""


# ---------------------------------------------------------------- comparison

def measure(actual: np.ndarray, expected: np.ndarray) -> dict:
    """The numbers the rule reads: rel-L2, max abs (absolute and / rms(expected)), max rel and
    the binarised masks' IoU of ``actual`` against ``expected``."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return {"shape": list(a.shape), "expected_shape": list(e.shape), "finite": False,
                "reason": "shape mismatch"}
    if not (np.isfinite(a).all() and np.isfinite(e).all()):
        return {"shape": list(a.shape), "finite": False, "reason": "NaN or Inf"}
    diff = np.abs(a - e)
    max_abs = float(diff.max()) if diff.size else 0.0
    norm = float(np.linalg.norm(e))
    rms = norm / np.sqrt(e.size) if e.size else 0.0
    ma, me = a > 0, e > 0
    union = int(np.count_nonzero(ma | me))
    return {"shape": list(a.shape), "finite": True, "max_abs": max_abs,
            "max_abs_rms": max_abs / rms if rms > 0 else (0.0 if max_abs == 0 else float("inf")),
            "max_rel": float((diff / np.maximum(np.abs(e), 1e-6)).max()) if diff.size else 0.0,
            "rel_l2": float(np.linalg.norm(a - e) / norm) if norm > 0 else float(np.linalg.norm(a - e)),
            "mask_iou": float(np.count_nonzero(ma & me) / union) if np.count_nonzero(me) else None,
            "mask_union": union}


def compare(actual: np.ndarray, expected: np.ndarray, dtype: str = "float32") -> dict:
    """:func:`measure` plus the verdict of :data:`TOLERANCES`: ``pass`` and, when it fails,
    ``failed``: the bounds it missed. ``dtype``: the row of the table (the build's precision,
    :func:`rule_for`)."""
    out = measure(actual, expected)
    tol = TOLERANCES[dtype]
    if not out["finite"]:
        out.update({"max_abs": None, "max_rel": None, "rel_l2": None, "pass": False,
                    "failed": [out["reason"]]})
        return out
    failed = []
    if out["rel_l2"] > tol["rel_l2"]:
        failed.append("rel_l2")
    if out["max_abs_rms"] > tol["max_abs"]:
        failed.append("max_abs")
    small = out["mask_union"] < tol.get("mask_min_pixels", 0)  # a few pixels: one flip is a big IoU step
    if out["mask_iou"] is not None and not small and out["mask_iou"] < tol["mask_iou"]:
        failed.append("mask_iou")
    out["pass"] = not failed
    if failed:
        out["failed"] = failed
    return out


def snr(actual, expected) -> dict:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape or not (np.isfinite(a).all() and np.isfinite(e).all()):
        return {"mse": None, "snr_db": None, "max_abs": None, "finite": False}
    err = float(np.mean((a - e) ** 2))
    sig = float(np.mean(e ** 2))
    db = float("inf") if err == 0 else (10 * np.log10(sig / err) if sig > 0 else -float("inf"))
    return {"mse": err, "snr_db": float(db), "max_abs": float(np.abs(a - e).max()), "finite": True}


# ---------------------------------------------------------------- inputs and the reference

def load_inputs(path, height: int, width: int):
    """Real inputs from an ``.npz`` with arrays ``frames`` (N,3,H,W) and ``waveform`` (N,32000), real
    numbers only (float or integer; complex, string, object arrays and NaN/Inf are refused)."""
    import zipfile

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise VerifyUsageError(f"--inputs {path}: cannot read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise VerifyUsageError(f"--inputs {path}: a single array (.npy); expected an .npz with "
                               "arrays 'frames' and 'waveform'")
    arrays = {}
    with data:
        for key in ("frames", "waveform"):
            if key not in data.files:
                raise VerifyUsageError(f"--inputs {path}: missing array {key!r} (needs 'frames' and 'waveform')")
            try:
                arrays[key] = data[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise VerifyUsageError(f"--inputs {path}: array {key!r} cannot be read ({exc})".splitlines()[0]) from None
    frames, waveform = arrays["frames"], arrays["waveform"]
    for key, arr in arrays.items():
        if arr.dtype.kind not in "fiu":
            raise VerifyUsageError(f"--inputs {path}: array {key!r} has dtype {arr.dtype}; "
                                   "expected real numbers (float or integer)")
    if frames.ndim == 3:
        frames, waveform = frames[None], np.asarray(waveform).reshape(1, -1)
    if frames.ndim != 4 or tuple(frames.shape[1:]) != (3, height, width) or not frames.shape[0]:
        raise VerifyUsageError(f"--inputs {path}: frames have shape {tuple(frames.shape)}; "
                               f"this artifact takes (N, 3, {height}, {width})")
    if waveform.ndim != 2 or waveform.shape != (frames.shape[0], SAMPLES):
        raise VerifyUsageError(f"--inputs {path}: waveform has shape {tuple(waveform.shape)}; "
                               f"expected ({frames.shape[0]}, {SAMPLES})")
    frames, waveform = frames.astype(np.float32), waveform.astype(np.float32)
    for key, arr in (("frames", frames), ("waveform", waveform)):
        if not np.isfinite(arr).all():
            raise VerifyUsageError(f"--inputs {path}: array {key!r} holds NaN or Inf (or values beyond float32)")
    return frames, waveform


def _child_env(threads: int | None = None) -> dict:
    from edgeavs.workers import child_env

    threads = threads or len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return child_env(default={"OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"})


def run_reference_process(variant: str, weights_args: list[str], frames, waveform, aux=False,
                          workdir=None, float64: bool = False, also_float64: bool = False):
    """Run ``python -m edgeavs.reference`` on the inputs; named outputs as numpy. ``also_float64``:
    ``(fp32 outputs, float64 outputs)`` from one process (one model build, fp32 first)."""
    from edgeavs.workers import run_module

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        inp, out, out64 = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz", Path(tmp) / "outputs64.npz"
        np.savez(inp, frames=frames, waveform=waveform)
        args = ["--variant", variant, *weights_args, "--inputs", str(inp), "--out", str(out)] \
            + (["--aux"] if aux else []) + (["--float64"] if float64 else []) \
            + (["--float64-out", str(out64)] if also_float64 else [])
        run_module("edgeavs.reference", args, what="the PyTorch reference", env=_child_env())
        results = []
        for path in (out, out64) if also_float64 else (out,):
            with np.load(path) as data:
                results.append({k: data[k] for k in data.files})
        return tuple(results) if also_float64 else results[0]


def _weights_args(manifest: dict, checkpoint) -> list[str]:
    w = manifest.get("weights") or {}
    if w.get("source") == "random-init":
        if checkpoint is not None:
            raise VerifyUsageError(f"this artifact was compiled from random-init weights (seed "
                                   f"{w.get('seed')}); --checkpoint does not apply")
        return ["--seed", str(int(w.get("seed", 0))), "--fusion", str(w.get("fusion", "lightavseg"))]
    if w.get("source") == "checkpoint":
        from edgeavs.compiler.artifact import file_sha256

        path = Path(checkpoint) if checkpoint is not None else Path(w.get("checkpoint_path", ""))
        if not path.is_file():
            raise VerifyUsageError(f"this artifact was compiled from checkpoint "
                                   f"{w.get('checkpoint_path')} (not found): pass --checkpoint")
        if file_sha256(path) != w.get("checkpoint_sha256"):
            raise VerifyUsageError(f"--checkpoint {path} is not the checkpoint this artifact was "
                                   "compiled from (sha256 differs)")
        return ["--checkpoint", str(path)]
    raise EdgeAVSError("manifest.json does not record the weights source")


# ---------------------------------------------------------------- the whole check

def verify_artifact(directory, *, checkpoint=None, seeds: int = 20, inputs=None,
                    per_layer: bool = False, device=None, log=None) -> dict:
    """Compare an artifact with its PyTorch reference; returns the report (``report['passed']``).

    ``device``: an ``edgeavs.device.remote.DeviceSpec`` (emulated AArch64, RPC) to run the
    artifact on instead of this machine."""
    if seeds < 0:
        raise VerifyUsageError("--seeds must be >= 0")
    from edgeavs.device.bundle import is_bundle

    if is_bundle(directory):
        return _verify_bundle(directory, checkpoint, seeds, inputs, per_layer, device, log)
    if device is None:
        from edgeavs.compiler.artifact import load_artifact, read_manifest

        manifest = read_manifest(directory)
        if manifest.get("link", "host") != "host":
            raise EdgeAVSError(f"artifact {directory} is for target {manifest.get('target_name')} "
                               f"(link: {manifest.get('link')}); run it with --device emulated or --rpc")
        compiled = load_artifact(directory)  # refuses files that do not match the manifest
        return _verify(directory, compiled, checkpoint, seeds, inputs, per_layer, log)
    if per_layer:
        raise VerifyUsageError("--per-layer compares on this machine only (drop --device/--rpc)")
    from edgeavs.device.remote import open_artifact

    with open_artifact(directory, device, log=log) as compiled:
        report = _verify(directory, compiled, checkpoint, seeds, inputs, False, log)
    report["device"] = device.describe()
    return report


def _verify_bundle(directory, checkpoint, seeds, inputs, per_layer, device, log) -> dict:
    """A bundle of ``edgeavs package``: its own ``bin/edgeavs-run`` on the cases, here for a host
    bundle, under qemu-aarch64 with the guest's libc/libstdc++ only for an AArch64 Linux one."""
    from edgeavs.device.bundle import BundleModel

    if per_layer:
        raise VerifyUsageError("--per-layer needs an artifact, not a bundle")
    if device is not None and device.kind != "emulated":
        raise VerifyUsageError("a bundle is checked with --device emulated (or here, a host "
                               "bundle); on a board, run its bin/edgeavs-run")
    model = BundleModel(directory, qemu_cpu=getattr(device, "qemu_cpu", None))
    if (model.record["os"] == "host") != (device is None):
        raise VerifyUsageError(f"bundle {directory} is for {model.record['os']}: "
                               + ("run it with --device emulated" if device is None
                                  else "a host bundle runs here, without --device"))
    report = _verify(directory, model, checkpoint, seeds, inputs, False, log)
    report["device"] = model.describe()
    return report


def _verify(directory, compiled, checkpoint, seeds, inputs, per_layer, log) -> dict:
    say = log or (lambda _m: None)
    manifest = compiled.manifest
    h, w = manifest["resolution"]
    weights_args = _weights_args(manifest, checkpoint)
    rule = rule_for(manifest)

    cases = [(f"seed {s}",) + random_inputs(s, h, w) for s in range(seeds)]
    if rule == "int8":
        # an int8 build is calibrated for real frames: random inputs lie outside its activation ranges
        # (tiny@64, random weights: rel-L2 0.17-0.77 on randn frames), so it is judged on real ones
        cases = []
        if inputs is None:
            with tempfile.TemporaryDirectory(prefix="edgeavs-int8-verify-") as tmp:
                holdout = _calibration_holdout(manifest, Path(tmp), say)
                fr, wv = load_inputs(holdout, h, w)
            cases += [(f"{holdout.name}[{i}]", fr[i:i + 1], wv[i:i + 1]) for i in range(len(fr))]
        else:
            say("int8 build: judged on the --inputs frames only (random inputs lie outside its calibration)")
    if inputs is not None:
        fr, wv = load_inputs(inputs, h, w)
        cases += [(f"{Path(inputs).name}[{i}]", fr[i:i + 1], wv[i:i + 1]) for i in range(len(fr))]
    if not cases:
        raise VerifyUsageError("nothing to compare: --seeds 0 and no --inputs")

    frames = np.concatenate([c[1] for c in cases])
    waveform = np.concatenate([c[2] for c in cases])
    say(f"PyTorch reference on {len(cases)} input(s), fp32 then float64 (a separate process)")
    fp32, exact = run_reference_process(manifest["variant"], weights_args, frames, waveform,
                                        also_float64=True)
    say("compiled artifact on the same inputs")
    got = compiled.run_all(frames, waveform)

    results = []
    for i, (label, _, _) in enumerate(cases):
        outs = {}
        for spec in manifest["outputs"]:
            name = spec["name"]
            o = compare(got[name][i:i + 1], exact[name][i:i + 1], rule)
            # context, not rule: PyTorch fp32's own distance from float64, and ours from it
            o["pytorch_fp32_rel_l2"] = measure(fp32[name][i:i + 1], exact[name][i:i + 1]).get("rel_l2")
            o["vs_pytorch_fp32_rel_l2"] = measure(got[name][i:i + 1], fp32[name][i:i + 1]).get("rel_l2")
            outs[name] = o
        results.append({"input": label, "outputs": outs, "pass": all(o["pass"] for o in outs.values())})

    def worst(key, pick=max):
        vals = [o[key] for r in results for o in r["outputs"].values() if o.get(key) is not None]
        return pick(vals) if vals else None

    report = {
        "artifact": str(Path(directory)),
        "variant": manifest["variant"],
        "resolution": [h, w],
        "via": manifest.get("via"),
        "target": manifest.get("target"),
        "weights": manifest.get("weights"),
        "reference": "PyTorch float64 (the rule); PyTorch fp32 for context",
        "precision": manifest.get("precision", "fp32"),
        "rule": rule,
        "tolerances": TOLERANCES,
        "cases": results,
        "worst": {"max_abs": worst("max_abs"), "max_abs_rms": worst("max_abs_rms"),
                  "max_rel": worst("max_rel"), "rel_l2": worst("rel_l2"),
                  "mask_iou": worst("mask_iou", min),
                  "pytorch_fp32_rel_l2": worst("pytorch_fp32_rel_l2")},
        "failed_cases": [r["input"] for r in results if not r["pass"]],
    }
    report["passed"] = not report["failed_cases"]
    if per_layer:
        report["per_layer"] = _per_layer(directory, manifest, weights_args, checkpoint,
                                         cases[0][1], cases[0][2], say)
    return report


INT8_HOLDOUT_CLIPS = 2
"""Clips (five frames each) of the calibration tree's held-out split an int8 build is verified on by default."""


def _calibration_record(manifest: dict) -> dict:
    """What an int8 manifest records of its calibration data (``root``, ``task``, ``frames``; empty if nothing)."""
    return ((manifest.get("precision_report") or {}).get("calibration") or {}).get("calibration") or {}


def _calibration_holdout(manifest: dict, directory: Path, say) -> Path:
    """An ``.npz`` in ``directory`` of :data:`INT8_HOLDOUT_CLIPS` clips of the val (else test) split of the tree an
    int8 artifact was calibrated on (frames the calibration never saw), for :func:`load_inputs`; a one-line usage
    error when the tree is not recorded or not there (pass ``--inputs`` then)."""
    from edgeavs.data.avsbench import make_dataset
    from edgeavs.evaluate import write_inputs

    cal = _calibration_record(manifest)
    root, task = cal.get("root"), cal.get("task")
    if not root or not task or not Path(root).is_dir():
        raise VerifyUsageError(f"int8 build: judged on real frames, and its calibration tree ({root or 'not recorded'}) "
                               "is not there: pass --inputs (e.g. from `edgeavs evaluate --dump-inputs`)")
    h = manifest["resolution"][0]
    for split in ("val", "test"):
        ds = make_dataset(root, task, split, size=h)
        if len(ds):
            path = directory / f"{task}-{split}.npz"
            write_inputs(ds, path, clips=min(INT8_HOLDOUT_CLIPS, len(ds)))
            say(f"int8 build: judged on real frames, {min(INT8_HOLDOUT_CLIPS, len(ds))} {split} clips of its "
                f"calibration tree {root} (random inputs lie outside its calibration)")
            return path
    raise VerifyUsageError(f"int8 build: its calibration tree {root} has no val or test clips: pass --inputs")


def _per_layer(directory, manifest, weights_args, checkpoint, frames, waveform, say) -> dict:
    """Compile the graph with every named intermediate as an output, compare by MSE/SNR."""
    from edgeavs.compiler.artifact import load_artifact
    from edgeavs.compiler.build import compile_artifact
    from edgeavs.targets import target_from_dict

    tgt = target_from_dict({"name": manifest.get("target_name", "artifact"), **manifest["target"]},
                           source="manifest.json")
    w = manifest["weights"]
    ck = weights_args[1] if weights_args[0] == "--checkpoint" else None
    calib = {}
    if manifest.get("precision") == "int8":  # recalibrate as compile did: the same tree, the same frames
        cal = _calibration_record(manifest)
        root = cal.get("root")
        if not root or not Path(root).is_dir():
            raise VerifyUsageError(f"--per-layer of an int8 build recalibrates on the tree it was calibrated on "
                                   f"({root or 'not recorded'}), which is not there")
        calib = {"calibration": root, "calibration_frames": int(cal.get("frames") or 0) or None}
    with tempfile.TemporaryDirectory() as tmp:
        say("compiling the per-layer graph (every intermediate as an output)")
        compile_artifact(Path(tmp) / "aux", target=tgt, variant=manifest["variant"],
                         checkpoint=ck, resolution=manifest["resolution"],
                         via=manifest.get("via", "export"), seed=int(w.get("seed", 0) or 0),
                         aux=True, interaction=None if ck else w.get("fusion", "lightavseg"),
                         precision=manifest.get("precision", "fp32"),
                         accumulate=_accumulate(manifest), **calib)
        aux = load_artifact(Path(tmp) / "aux")
        got = aux.run_all(frames, waveform)
    ref = run_reference_process(manifest["variant"], weights_args, frames, waveform, aux=True)
    return compare_layers(got, ref, TOLERANCES[rule_for(manifest)].get("layer_snr_db", PER_LAYER_MIN_SNR_DB))


def _accumulate(manifest: dict) -> str:
    acc = (manifest.get("precision_report") or {}).get("accumulate", "float32")
    return {"float32": "fp32", "float16": "fp16"}.get(acc, "fp32")


def compare_layers(got: dict, ref: dict, min_snr_db: float = PER_LAYER_MIN_SNR_DB) -> dict:
    """MSE/SNR of each named intermediate (in execution order, the order of ``got``) and the
    first one whose SNR falls below ``min_snr_db``: where the gap opens."""
    layers, first = [], None
    for name in got:
        s = snr(got[name], ref[name])
        s["name"] = name
        layers.append(s)
        if first is None and (not s["finite"] or s["snr_db"] < min_snr_db):
            first = name
    return {"min_snr_db": min_snr_db, "layers": layers, "first_divergence": first}


def format_report(report: dict) -> str:
    """A short human summary (the JSON report has everything)."""
    lines = [f"{'input':<22} {'output':<10} {'rel-L2':>10} {'max abs':>10} {'/rms':>9} {'mask IoU':>9}"
             f" {'PyTorch fp32':>12}  result"]
    for case in report["cases"]:
        for name, o in case["outputs"].items():
            if o["finite"] and o.get("rel_l2") is not None:
                iou = "-" if o["mask_iou"] is None else f"{o['mask_iou']:.5f}"
                pt = o.get("pytorch_fp32_rel_l2")
                verdict = "ok" if o["pass"] else "FAIL (" + ", ".join(o.get("failed", [])) + ")"
                lines.append(f"{case['input']:<22} {name:<10} {o['rel_l2']:10.3g} {o['max_abs']:10.3g} "
                             f"{o['max_abs_rms']:9.3g} {iou:>9} {'-' if pt is None else format(pt, '.3g'):>12}"
                             f"  {verdict}")
            else:
                lines.append(f"{case['input']:<22} {name:<10} {o.get('reason', 'FAIL'):>52}  FAIL")
    rule = report.get("rule", "float32")
    tol = TOLERANCES[rule]
    wst = report["worst"]
    lines.append(f"worst vs float64: rel-L2 {wst['rel_l2']:.3g}, max abs {wst['max_abs_rms']:.3g} x rms"
                 + (f", mask IoU {wst['mask_iou']:.5f}" if wst.get("mask_iou") is not None else "")
                 + f" (tolerance {report.get('precision', 'fp32')}: rel-L2 <= {tol['rel_l2']:g}, max abs <= {tol['max_abs']:g} x rms, "
                 f"mask IoU >= {tol['mask_iou']:g}; PyTorch fp32 itself: rel-L2 "
                 f"{wst['pytorch_fp32_rel_l2']:.3g})"
                 if wst["rel_l2"] is not None else "worst: not finite")
    pl = report.get("per_layer")
    if pl:
        lines.append(f"{'layer':<14} {'MSE':>10} {'SNR dB':>8}")
        for s in pl["layers"]:
            lines.append(f"{s['name']:<14} {s['mse'] if s['mse'] is not None else float('nan'):10.3g} "
                         f"{s['snr_db'] if s['snr_db'] is not None else float('nan'):8.1f}")
        lines.append("per-layer: the error opens up at " + pl["first_divergence"]
                     if pl["first_divergence"] else
                     f"per-layer: every intermediate above {pl['min_snr_db']:g} dB SNR")
    lines.append("PASS" if report["passed"] else f"FAIL ({len(report['failed_cases'])} input(s))")
    return "\n".join(lines)
