"""int8 on this machine: edgeavs int8 vs fp32, ONNX Runtime int8 / fp32, ExecuTorch + XNNPACK int8 / fp32 --
latency side by side, and the accuracy each int8 build keeps on the demo test splits.

    python bench/bench_precision_host.py [--variants t l] [--resolution 224] [--threads 2] [--rounds 3]
        [--warmup 5] [--repeat 30] [--calibration-frames 64] [--clips 800] [--data-size 128]
        [--accuracy-size 128] [--checkpoint s4=PATH ...] [--train-budget-min 11] [--no-accuracy]
        [--work artifacts/bench-precision-host] [--out bench/results/precision.json]

Writes the top-level section ``host_int8`` of ``--out`` (the file's other sections, e.g. the projected Oryon
fp32/fp16 rows of ``bench/bench_precision.py``, are kept). A separate script from ``bench_precision.py``
because that one projects AArch64 builds under qemu (deterministic, no timing) while this one times host
builds and peers in processes of their own; the two share nothing but the output file.

The demo trees: ``edgeavs data synth`` (``make_synthetic``, seed 0, ``--clips`` clips at ``--data-size``)
of S4 and MS3 under ``WORK/data`` (made once). Calibration, for every int8 build: the first
``--calibration-frames`` frames of the train split of the task's tree, read with
``edgeavs.data.avsbench.make_dataset`` at the build's resolution (``bench/int8_peers.calibration_arrays``);
the same arrays go to ONNX Runtime's ``CalibrationDataReader``, to the pt2e prepared model and (as the tree
and the frame count) to ``edgeavs compile --precision int8 --calibration DIR --calibration-frames N``.

**Latency** (per variant, ``--resolution``, batch 1, ``--threads`` threads; random init seed 0, the weights of
``peers.json`` and of the projected rows; calibration from the S4 tree):

- ``edgeavs_fp32`` / ``edgeavs_int8`` (/ ``edgeavs_fp16`` when asked: on x86 an fp16 build converts around
  every op, a check, not a speed figure): ``compile_artifact(target="host")``, run by ``edgeavs bench``'s TVM
  worker. The int8 build is tried through ``compile_artifact(precision="int8", calibration=DIR,
  calibration_frames=N)``; where that is refused (not built yet) its rows say ``not available`` and the run
  goes on;
- ``ort_fp32`` / ``ort_int8``: ``edgeavs export-onnx``'s graph / its ``quantize_static`` (QDQ, per-channel
  int8 weights, uint8 activations -- U8S8, ONNX Runtime's x86 format; ``--ort-activations qint8`` for S8S8 --
  MinMax), ``edgeavs bench``'s ONNX Runtime worker (CPU EP);
- ``et_fp32`` / ``et_int8``: the ``.pte`` of ``edgeavs.device.peers.export_models`` / pt2e
  ``XNNPACKQuantizer`` (symmetric, per-channel) lowered the same way, ExecuTorch's Python runtime in the
  export environment (``executorch==1.5.1`` beside this torch) with XNNPACK's pool at ``--threads``.

Both peers' int8 builds keep the log-mel front end in fp32 (see ``bench/int8_peers.py``). Every runtime runs
in its own process, warm-up then the median of ``--repeat``; ``--rounds`` rounds with the order rotating;
the figure is the median of the rounds' medians. Each build's output on ``random_inputs(0, ...)`` is
compared with PyTorch fp32 (rel-L2).

**Accuracy** (``--accuracy-size``, LightAVSeg-T, one checkpoint per task): S4 and MS3 test splits, M_J / M_F
(``edgeavs.evaluate``: ``evaluate_model`` for PyTorch fp32, ``evaluate_predictor`` with the same batches for
ONNX Runtime and ExecuTorch, ``evaluate_compiled`` for the edgeavs artifacts). Checkpoints: ``--checkpoint
TASK=PATH``; else S4 takes the embedded checkpoint (LightAVSeg-T trained on this very S4 tree at 128:
``edgeavs info --embedded``), MS3 is trained as ``bench/train_demo.py`` does (lr 1e-3, batch 8, lambda_msa 0.5,
seed 0, from random weights) for ``--train-budget-min`` minutes (default 11: the budget of
``bench/results/train_demo.json``'s MS3 row, test M_J 0.597 there; the run folder is reused when there).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from edgeavs.io.atomic import write_json  # noqa: E402
from rounds import rotating_rounds  # noqa: E402

VARIANTS = {"t": "tiny", "s": "small", "b": "base", "l": "large"}
LATENCY = ("edgeavs_fp32", "edgeavs_int8", "ort_fp32", "ort_int8", "et_fp32", "et_int8")
OPTIONAL = ("edgeavs_fp16",)
ACCURACY = ("pytorch_fp32", "edgeavs_fp32", "edgeavs_int8", "ort_fp32", "ort_int8", "et_int8")
ACCURACY_OPTIONAL = ("et_fp32", "edgeavs_fp16", "edgeavs_fp16acc16")
"""fp16 on this x86 host is for checking (LLVM converts around every op), not for speed: the same fp16 weights and
storage as an AArch64 ``+fullfp16`` build, with conversions around each op instead of fused fp16 FMLA (the sums
can round differently)."""
TASKS = ("s4", "ms3")
NOT_AVAILABLE = "not available"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data and edgeavs builds

def demo_tree(work: Path, task: str, clips: int, size: int) -> Path:
    from edgeavs.data.synth import make_synthetic

    root = work / "data" / f"{task}-{clips}clips-{size}"
    if not (root / "synth.json").is_file():
        t0 = time.perf_counter()
        make_synthetic(root, task=task, clips=clips, seed=0, size=size)
        log(f"edgeavs data synth --task {task} --clips {clips} --size {size} -> {root} "
            f"in {time.perf_counter() - t0:.0f} s")
    return root


def int8_refusal() -> str | None:
    """Why ``compile_artifact`` cannot make an int8 build, or None when it says it can."""
    from edgeavs.compiler.build import compile_artifact

    params = inspect.signature(compile_artifact).parameters
    missing = [p for p in ("calibration", "calibration_frames") if p not in params]
    if missing:
        return f"{NOT_AVAILABLE}: compile_artifact has no {' / '.join(missing)} parameter (int8 not built yet)"
    return None


def edgeavs_build(out: Path, precision: str, log_, **kw) -> tuple[Path | None, str | None, float | None]:
    """(artifact, None, compile s) or (None, 'not available: why', None); an existing build is reused."""
    from edgeavs.compiler import compile_artifact
    from edgeavs.errors import EdgeAVSError

    if (out / "manifest.json").is_file():
        return out, None, None
    if precision == "int8":
        why = int8_refusal()
        if why:
            return None, why, None
    t0 = time.perf_counter()
    try:
        compile_artifact(out, target="host", precision=precision, log=lambda _m: None, **kw)
    except EdgeAVSError as exc:
        if precision != "int8":
            raise
        return None, f"{NOT_AVAILABLE}: {exc}", None
    seconds = time.perf_counter() - t0
    log_(f"compiled {out.name} in {seconds:.0f} s")
    return out, None, round(seconds, 1)


def _rel(path: Path) -> str:
    """``path`` relative to the repository when inside it, else its name (no machine paths in the results)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return Path(path).name


def _last_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def int8_kwargs(calibration_root: Path, frames: int) -> dict:
    return {"calibration": str(calibration_root), "calibration_frames": frames}


# ---------------------------------------------------------------- latency

def _et_worker(python, pte, npz, threads, warmup, repeat, output):
    from bench_peers import _et_worker as run

    return run(python, pte, npz, threads, warmup, repeat, output)


def latency_variant(v: str, args, et_python, calib_root: Path) -> dict:
    import numpy as np

    from edgeavs.artifact_worker import ArtifactProcess
    from edgeavs.benchmark import spawn_worker
    from edgeavs.compiler import frontend
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.compiler.build import build_torch_model
    from edgeavs.data.inputs import random_inputs
    from edgeavs.device.peers import export_models, rel_l2

    import int8_peers as ip

    variant = VARIANTS.get(v, v)
    key = f"{v}-{args.resolution}"
    work = args.work / key
    work.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in (*LATENCY, *OPTIONAL) if k in args.runtimes]
    common = {"variant": variant, "resolution": args.resolution}
    frames, waveform = ip.calibration_arrays(calib_root, "s4", args.calibration_frames, args.resolution)
    builds, unavailable, compile_s = {}, {}, {}
    for kind in [k for k in kinds if k.startswith("edgeavs")]:
        precision = kind.split("_")[1]
        extra = int8_kwargs(calib_root, args.calibration_frames) if precision == "int8" else {}
        art, why, secs = edgeavs_build(work / f"host-{precision}-c{args.calibration_frames}"
                                       if precision == "int8" else work / f"host-{precision}",
                                       precision, log, **common, **extra)
        if art is None:
            unavailable[kind] = why
            log(f"{key} {kind}: {why}")
        else:
            builds[kind] = art
            compile_s[kind] = secs
    fp32_art = builds.get("edgeavs_fp32") or edgeavs_build(work / "host-fp32", "fp32", log, **common)[0]
    manifest = read_manifest(fp32_art)
    inputs = list(random_inputs(0, *manifest["resolution"]))
    model = build_torch_model(manifest["variant"], manifest["weights"])
    peers = tuple(p for p, k in (("onnxruntime", "ort_"), ("xnnpack", "et_")) if any(x.startswith(k) for x in kinds))
    exported = export_models(model, inputs, work / "exports", peers=peers, log=log)
    reference = np.load(exported["reference"])
    files, extra = {}, {}
    if "ort_fp32" in kinds:
        files["ort_fp32"] = exported["onnx"]
    if "ort_int8" in kinds:
        q = work / "exports" / f"model-int8-{args.ort_activations}-c{args.calibration_frames}.onnx"
        rep_path = q.with_name(q.name + ".json")
        try:
            if not (q.is_file() and rep_path.is_file()):
                write_json(rep_path, ip.quantize_onnx(exported["onnx"], q, frames, waveform,
                                                     activations=args.ort_activations))
            files["ort_int8"] = q
            extra["ort_int8"] = {"quantization": json.loads(rep_path.read_text())}
        except Exception as exc:  # noqa: BLE001  (a peer's failure is a row, the run goes on)
            unavailable["ort_int8"] = f"error: quantize_static: {_last_line(exc)}"
            log(f"{key} ort_int8: {unavailable['ort_int8']}")
    if "et_fp32" in kinds:
        files["et_fp32"] = exported["pte"]
        extra["et_fp32"] = {"non_delegated_ops": exported["pte_export"].get("non_delegated_ops")}
    if "et_int8" in kinds:
        q = work / "exports" / f"model-int8-c{args.calibration_frames}.pte"
        rep_path = q.with_name(q.name + ".json")
        try:
            if not (q.is_file() and rep_path.is_file()):
                graph = frontend.inference_graph(model)
                write_json(rep_path, ip.export_pte_int8(graph, inputs, frames, waveform, q, et_python, log=log))
            files["et_int8"] = q
            rep = json.loads(rep_path.read_text())
            extra["et_int8"] = {"quantization": {k: rep.get(k) for k in (
                "quantizer", "calibration_frames", "fp32_modules", "delegate_calls", "non_delegated_ops",
                "seconds")}}
        except Exception as exc:  # noqa: BLE001
            unavailable["et_int8"] = f"error: pt2e/XNNPACK export: {_last_line(exc)}"
            log(f"{key} et_int8: {unavailable['et_int8']}")
    # every output on the same input against PyTorch fp32
    for kind in kinds:
        if kind.startswith("ort_") and kind in files:
            out = ip.ort_predictor(files[kind], args.threads)(*inputs)
            extra.setdefault(kind, {})["rel_l2_vs_pytorch_fp32"] = rel_l2(out, reference)
        elif kind in builds:
            with ArtifactProcess(builds[kind], threads=args.threads) as predict:
                extra.setdefault(kind, {})["rel_l2_vs_pytorch_fp32"] = rel_l2(predict(*inputs), reference)
    npz = work / "exports" / "inputs.npz"
    np.savez(npz, *inputs)
    timed = [k for k in kinds if k in builds or k in files]
    with tempfile.TemporaryDirectory() as tmp:
        def run(kind):
            if kind.startswith("edgeavs"):
                return spawn_worker("tvm", builds[kind], args.threads, args.warmup, args.repeat)
            if kind.startswith("ort_"):
                return spawn_worker("onnxruntime", fp32_art, args.threads, args.warmup, args.repeat,
                                    str(files[kind]))
            out = Path(tmp) / f"{kind}.npy"
            got = _et_worker(et_python, files[kind], npz, args.threads, args.warmup, args.repeat, out)
            if "error" not in got:
                extra.setdefault(kind, {}).update(rel_l2_vs_pytorch_fp32=rel_l2(np.load(out), reference),
                                                  threadpool=got.get("threadpool"))
            return got

        rounds, medians, errors = rotating_rounds(timed, args.rounds, run, log, key)
    row: dict = {"median_ms": {**medians, **{k: why for k, why in unavailable.items()},
                               **{k: f"error: {e}" for k, e in errors.items()}},
                 "rounds_ms": rounds,
                 "outputs": extra, "compile_s": compile_s}
    ratios = {}
    for rt in ("edgeavs", "ort", "et"):
        if f"{rt}_int8" in medians and f"{rt}_fp32" in medians:
            ratios[f"{rt}_int8_over_{rt}_fp32"] = round(medians[f"{rt}_int8"] / medians[f"{rt}_fp32"], 3)
    for mine in ("edgeavs_int8", "edgeavs_fp32"):
        for peer in ("ort_int8", "et_int8", "ort_fp32", "et_fp32"):
            if mine in medians and peer in medians:
                ratios[f"{mine}_over_{peer}"] = round(medians[mine] / medians[peer], 3)
    row["ratios"] = ratios
    return row


# ---------------------------------------------------------------- accuracy

def task_checkpoint(task: str, tree: Path, args) -> tuple[Path, dict]:
    given = dict(c.split("=", 1) for c in args.checkpoint)
    if task in given:
        return Path(given[task]), {"source": "given", "path": _rel(Path(given[task]))}
    if task == "s4":
        from edgeavs.model import default

        path = args.work / "embedded-tiny-s4.pt"
        if not path.is_file():
            default.write_checkpoint(path)
        rec = default.recipe()
        return path, {"source": "embedded (edgeavs info --embedded)", "name": rec["name"],
                      "trained": {k: rec["training"].get(k) for k in ("task", "size", "steps", "best_epoch")},
                      "recorded_test": rec["scores"]["test"]}
    import torch

    from edgeavs.train import TrainConfig, train

    run = args.work / f"train-{task}-{args.accuracy_size}-{args.train_budget_min:g}min"
    best = run / "best.pt"
    info = {"source": "trained here as bench/train_demo.py does", "budget_min": args.train_budget_min,
            "size": args.accuracy_size, "lr": 1e-3, "batch_size": 8, "msa_weight": 0.5, "seed": 0,
            "torch_threads": args.threads, "run": _rel(run)}
    if not best.is_file():
        torch.set_num_threads(args.threads)
        cfg = TrainConfig(data=str(tree), out=str(run), task=task, variant="tiny", fusion="lightavseg",
                          epochs=100000, batch_size=8, lr=1e-3, msa_weight=0.5, size=args.accuracy_size, seed=0,
                          num_workers=0, device="cpu", progress=False, time_budget_s=args.train_budget_min * 60)
        log(f"training LightAVSeg-T on {task} for {args.train_budget_min:g} min")
        summary = train(cfg)
        write_json(run / "summary.json", summary)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    info.update({k: summary.get(k) for k in ("epochs_done", "steps", "best_M_J", "best_epoch", "seconds")})
    return best, info


def _split_arrays(ds):
    import numpy as np

    items = [ds[i] for i in range(len(ds))]
    return (np.concatenate([it["frames"].numpy() for it in items]).astype(np.float32),
            np.concatenate([it["audio"].numpy() for it in items]).astype(np.float32))


def accuracy_task(task: str, tree: Path, args, et_python) -> dict:
    import numpy as np

    from edgeavs.artifact_worker import ArtifactProcess
    from edgeavs.compiler import frontend
    from edgeavs.data.avsbench import make_dataset
    from edgeavs.evaluate import evaluate_compiled, evaluate_model, evaluate_predictor
    from edgeavs.model.builder import load_checkpoint

    import int8_peers as ip

    size = args.accuracy_size
    ckpt, ck_info = task_checkpoint(task, tree, args)
    work = args.work / f"accuracy-{task}-{size}"
    work.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in (*ACCURACY, *ACCURACY_OPTIONAL) if k in args.accuracy_runtimes]
    ds = make_dataset(tree, task, "test", size=size)
    model = load_checkpoint(ckpt).eval()
    frames, waveform = ip.calibration_arrays(tree, task, args.calibration_frames, size)
    example = [frames[:1], waveform[:1]]
    rows: dict = {}

    def score(kind, fn):
        t0 = time.perf_counter()
        try:
            r = fn()
        except Exception as exc:  # noqa: BLE001  (one runtime's failure is its row, the others go on)
            r = f"error: {_last_line(exc)}"
        if isinstance(r, str):
            rows[kind] = r
            log(f"{task} {kind}: {r}")
            return
        rows[kind] = {"M_J": round(r["M_J"], 4), "M_F": round(r["M_F"], 4), "frames": r.get("frames"),
                      "seconds": round(time.perf_counter() - t0, 1)}
        log(f"{task} {kind:<13} M_J {r['M_J']:.4f}  M_F {r['M_F']:.4f}")

    score("pytorch_fp32", lambda: evaluate_model(model, ds, batch_size=4))
    onnx = None
    if any(k.startswith("ort_") for k in kinds):
        onnx = work / "model.onnx"
        if not onnx.is_file():
            import torch

            frontend.export_onnx(frontend.inference_graph(model), tuple(torch.from_numpy(a) for a in example),
                                 onnx)
    if "ort_fp32" in kinds:
        score("ort_fp32", lambda: evaluate_predictor(ip.ort_predictor(onnx, args.threads), ds, batch_size=4))
    if "ort_int8" in kinds:
        def ort_int8():
            q = work / f"model-int8-{args.ort_activations}-c{args.calibration_frames}.onnx"
            if not q.is_file():
                write_json(q.with_name(q.name + ".json"), ip.quantize_onnx(onnx, q, frames, waveform,
                                                                           activations=args.ort_activations))
            return evaluate_predictor(ip.ort_predictor(q, args.threads), ds, batch_size=4)

        score("ort_int8", ort_int8)
    et_kinds = [k for k in kinds if k.startswith("et_")]
    if et_kinds:
        test_frames, test_wave = _split_arrays(ds)
    for kind in et_kinds:
        def et(kind=kind):
            if kind == "et_int8":
                pte = work / f"model-int8-c{args.calibration_frames}.pte"
                if not pte.is_file():
                    write_json(pte.with_name(pte.name + ".json"), ip.export_pte_int8(
                        frontend.inference_graph(model), example, frames, waveform, pte, et_python, log=log))
            else:
                from edgeavs.device.peers import export_models

                pte = export_models(model, example, work / "et-fp32", peers=("xnnpack",), log=log)["pte"]
            logits, _ = ip.et_logits(et_python, pte, test_frames, test_wave, args.threads)
            return evaluate_predictor(ip.Replay(logits), ds, batch_size=4)

        score(kind, et)
    for kind in [k for k in kinds if k.startswith("edgeavs")]:
        precision = kind.split("_")[1]
        extra = int8_kwargs(tree, args.calibration_frames) if precision == "int8" else {}
        name = f"host-{precision}-c{args.calibration_frames}" if precision == "int8" else f"host-{precision}"
        if precision == "fp16acc16":
            precision, extra = "fp16", {"accumulate": "fp16"}
        art, why, _ = edgeavs_build(work / name, precision, log, variant="tiny", resolution=size,
                                    checkpoint=str(ckpt), **extra)
        if art is None:
            score(kind, lambda: why)
            continue

        def run(art=art):
            with ArtifactProcess(art, threads=args.threads) as predict:
                return evaluate_compiled(tree, task, predict, batch_size=4)

        score(kind, run)
    base = rows.get("pytorch_fp32")
    for kind, r in rows.items():
        if isinstance(r, dict) and isinstance(base, dict) and kind != "pytorch_fp32":
            r["delta_M_J_vs_pytorch_fp32"] = round(r["M_J"] - base["M_J"], 4)
            r["delta_M_F_vs_pytorch_fp32"] = round(r["M_F"] - base["M_F"], 4)
    return {"checkpoint": ck_info, "size": size, "test_clips": len(ds), "rows": rows}


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["t", "l"], choices=sorted(VARIANTS))
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--calibration-frames", type=int, default=64)
    ap.add_argument("--clips", type=int, default=800, help="clips per demo tree (60/20/20 train/val/test)")
    ap.add_argument("--data-size", type=int, default=128, help="frame size the demo trees are made at")
    ap.add_argument("--ort-activations", choices=["quint8", "qint8"], default="quint8",
                    help="ONNX Runtime int8 activations: quint8 (U8S8, its x86 format) or qint8 (S8S8)")
    ap.add_argument("--runtimes", nargs="+", default=list(LATENCY), choices=[*LATENCY, *OPTIONAL])
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--accuracy-size", type=int, default=128)
    ap.add_argument("--accuracy-runtimes", nargs="+", default=list(ACCURACY),
                    choices=[*ACCURACY, *ACCURACY_OPTIONAL])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="TASK=PATH")
    ap.add_argument("--train-budget-min", type=float, default=11.0,
                    help="training budget for a task without --checkpoint (MS3; S4 takes the embedded one)")
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench-precision-host")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "precision.json")
    args = ap.parse_args(argv)
    bad = [c for c in args.checkpoint if "=" not in c or c.split("=", 1)[0] not in TASKS]
    if bad:
        ap.error(f"--checkpoint {bad[0]}: expected TASK=PATH with TASK one of {', '.join(TASKS)}")
    if args.repeat < 1 or args.rounds < 1 or args.calibration_frames < 1:
        ap.error("--repeat, --rounds and --calibration-frames must be >= 1")

    from bench_peers import _cpu_model

    from edgeavs.device.peers import export_python

    args.work.mkdir(parents=True, exist_ok=True)
    needs_et = any(k.startswith("et_") for k in (*args.runtimes, *args.accuracy_runtimes))
    et_python = export_python(log) if needs_et else None
    trees = {t: demo_tree(args.work, t, args.clips, args.data_size)
             for t in sorted({"s4", *([] if args.no_accuracy else args.tasks)})}
    section = {
        "what": f"int8 on this machine: LightAVSeg, batch 1, {args.threads} threads, each runtime in its own "
                f"process (median of {args.repeat} after {args.warmup} warm-up, median over {args.rounds} "
                f"rotating rounds); accuracy (M_J / M_F) of each int8 build on the demo test splits. Calibration: "
                f"the first {args.calibration_frames} frames of the demo tree's train split for every int8 build; "
                "the peers' int8 builds keep the log-mel front end in fp32",
        "command": "python bench/bench_precision_host.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
        "demo_trees": {t: {"clips": args.clips, "size": args.data_size, "seed": 0} for t in trees},
        "calibration_frames": args.calibration_frames,
        "latency": {}, "accuracy": {},
    }

    def save():
        result = json.loads(args.out.read_text()) if args.out.is_file() else {}
        result["host_int8"] = section
        write_json(args.out, result)

    if not args.no_latency:
        for v in args.variants:
            key = f"{v}-{args.resolution}"
            section["latency"][key] = latency_variant(v, args, et_python, trees["s4"])
            save()
    if not args.no_accuracy:
        for task in args.tasks:
            section["accuracy"][task] = accuracy_task(task, trees[task], args, et_python)
            save()
    section["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    save()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
