"""Train tiny models on the synthetic demo tasks for a fixed CPU wall budget each, then evaluate.

One JSON (``bench/results/train_demo.json``) answers:

1. What test M_J / M_F does LightAVSeg-T reach on the demo S4 and MS3 tasks in the budget
   (λ_msa = 0.5)?
2. The same budget with ``--msa-weight 0`` (L_seg only): what does L_msa add?
3. Each model with ``--shuffle-audio`` (every clip gets another clip's sound): how much of the
   score depends on the audio? On these datasets the frames alone cannot tell which object
   sounds, so a model that uses sound loses M_J when its audio is shuffled.
4. (``--suite fusions``) the TPAVI and AVSegFormer-style fusions on the same backbones, the same
   data and the same budget: the same-budget accuracy table of the baselines issue.

Every run trains for the whole budget (time, not epochs), keeps the checkpoint with the best
validation M_J and is evaluated on the test split. The models start from random weights (no
ImageNet SeaFormer or AudioSet PANNs weights here) and, as in the paper, the audio encoder stays
frozen: the audio features are those of a random, fixed PANNs network, and only the
interaction learns to read them.

    python bench/train_demo.py                                  # suite "demo": 3 runs x 30 min, one after another
    python bench/train_demo.py --runs s4_lightavseg             # the 30-minute S4 figure (800 clips, lr 1e-3)
    python bench/train_demo.py --suite fusions --jobs 8 --threads 2   # 8 runs side by side (a 16-core machine)
    python bench/train_demo.py --budget-min 1 --clips 20 --size 64    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeavs.io.atomic import write_json

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (task, fusion, msa weight)
RUNS = {
    "s4_lightavseg": ("s4", "lightavseg", 0.5),
    "s4_lightavseg_no_msa": ("s4", "lightavseg", 0.0),
    "s4_tpavi": ("s4", "tpavi", 0.0),
    "s4_avsegformer": ("s4", "avsegformer", 0.0),
    "ms3_lightavseg": ("ms3", "lightavseg", 0.5),
    "ms3_lightavseg_no_msa": ("ms3", "lightavseg", 0.0),
    "ms3_tpavi": ("ms3", "tpavi", 0.0),
    "ms3_avsegformer": ("ms3", "avsegformer", 0.0),
}
SUITES = {
    "demo": ["s4_lightavseg", "s4_lightavseg_no_msa", "ms3_lightavseg"],
    "fusions": list(RUNS),
}


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--suite", choices=sorted(SUITES), default="demo", help="which runs")
    p.add_argument("--runs", default=None, help=f"comma-separated run names instead of a suite ({', '.join(RUNS)})")
    p.add_argument("--budget-min", type=float, default=30.0, help="training wall budget per run, minutes")
    p.add_argument("--clips", type=int, default=800, help="synthetic clips per task (60/20/20 train/val/test)")
    p.add_argument("--size", type=int, default=128, help="frame size (224 is the paper's; 128 fits a CPU budget)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per step")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="AdamW learning rate (1e-3: these runs start from random weights; "
                        "edgeavs train's 1e-4 is the paper's, for pretrained backbones)")
    p.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (separate processes)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per run (default: the CPUs divided by --jobs)")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the datasets and the runs (default: a temporary one, removed after)")
    p.add_argument("--out", type=Path, default=RESULTS / "train_demo.json", help="result JSON")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one run, in its own process
    return p.parse_args(argv)


def _evaluate(data, task, ckpt, shuffle):
    from edgeavs.evaluate import evaluate

    r = evaluate(data, task, ckpt, split="test", shuffle_audio=shuffle, device="cpu", batch_size=4)
    return {k: r[k] for k in ("M_J", "M_F", "clips", "frames", "shuffle_audio", "epoch", "seconds")}


def _run_one(name: str, work: Path, args) -> dict:
    """Train and evaluate one run in this process; returns its record (also written to disk)."""
    import torch

    from edgeavs.train import TrainConfig, train

    torch.set_num_threads(args.threads)
    task, fusion, msa = RUNS[name]
    data = work / task
    run_dir = work / f"run_{name}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cfg = TrainConfig(data=str(data), out=str(run_dir), task=task, variant="tiny", fusion=fusion,
                      epochs=100000, batch_size=args.batch_size, lr=args.lr, msa_weight=msa,
                      size=args.size, seed=args.seed, num_workers=0, device="cpu",
                      progress=sys.stderr.isatty() and args.jobs == 1,
                      time_budget_s=args.budget_min * 60)
    t0 = time.perf_counter()
    summary = train(cfg)
    wall = time.perf_counter() - t0
    lines = [json.loads(x) for x in open(run_dir / "metrics.jsonl", encoding="utf-8")]
    best = run_dir / "best.pt"
    rec = {"task": task, "fusion": fusion, "msa_weight": msa, "wall_s": round(wall, 1),
           "torch_threads": torch.get_num_threads(),
           "epochs_done": summary["epochs_done"], "steps": summary["steps"],
           "best_val_M_J": summary["best_M_J"], "best_epoch": summary["best_epoch"],
           "first_train_loss": lines[0]["train_loss"], "last_train_loss": lines[-1]["train_loss"],
           "curve": [{k: r[k] for k in ("epoch", "steps", "train_loss", "val_M_J", "val_M_F")} for r in lines]}
    rec["test"] = _evaluate(data, task, best, False)
    rec["test_shuffled_audio"] = _evaluate(data, task, best, True)
    mj, mj_s = rec["test"]["M_J"], rec["test_shuffled_audio"]["M_J"]
    rec["shuffled_audio_drop_M_J"] = round((mj - mj_s) / mj, 4) if mj > 0 else None
    write_json(run_dir / "result.json", rec)
    return rec


def _datasets(work: Path, tasks, args) -> dict:
    from edgeavs.data.avsbench import read_meta
    from edgeavs.data.synth import make_synthetic

    counts = {}
    for task in tasks:
        data = work / task
        if (data / "synth.json").is_file():
            c = {s: 0 for s in ("train", "val", "test")}
            for clip in read_meta(data, task):
                c[clip.split] += 1
        else:
            c = make_synthetic(data, task=task, clips=args.clips, seed=args.seed, size=args.size)
        counts[task] = c
    return counts


def _spawn(name: str, work: Path, args) -> subprocess.Popen:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--work", str(work),
           "--budget-min", str(args.budget_min), "--clips", str(args.clips), "--size", str(args.size),
           "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--seed", str(args.seed),
           "--jobs", str(args.jobs), "--threads", str(args.threads)]
    log = open(work / f"log_{name}.txt", "w", encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def main(argv=None) -> int:
    args = _parse(argv)
    cpus = os.cpu_count() or 1
    args.jobs = max(1, args.jobs)
    if args.threads is None:
        args.threads = max(1, cpus // args.jobs)
    if args.worker is not None:
        _run_one(args.worker, args.work, args)
        return 0

    names = args.runs.split(",") if args.runs else SUITES[args.suite]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        print(f"--runs: unknown run(s) {', '.join(unknown)}; known: {', '.join(RUNS)}", file=sys.stderr)
        return 2
    own_work = args.work is None
    work = args.work or Path(tempfile.mkdtemp(prefix="edgeavs-train-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    args.work = work
    runs, failed = {}, []
    try:
        t0 = time.perf_counter()
        counts = _datasets(work, sorted({RUNS[n][0] for n in names}), args)
        data_s = time.perf_counter() - t0
        pending = list(names)
        active: dict[str, subprocess.Popen] = {}
        print(f"{len(names)} runs, {args.jobs} at a time, {args.threads} threads each, "
              f"{args.budget_min} min each", file=sys.stderr)
        while pending or active:
            while pending and len(active) < args.jobs:
                n = pending.pop(0)
                print(f"start {n}", file=sys.stderr)
                active[n] = _spawn(n, work, args)
            time.sleep(2)
            for n, proc in list(active.items()):
                if proc.poll() is None:
                    continue
                del active[n]
                res = work / f"run_{n}" / "result.json"
                if proc.returncode == 0 and res.is_file():
                    runs[n] = json.loads(res.read_text())
                    print(f"done {n}: test M_J {runs[n]['test']['M_J']:.4f}", file=sys.stderr)
                else:
                    failed.append(n)
                    print(f"FAILED {n} (exit {proc.returncode}); see {work / f'log_{n}.txt'}", file=sys.stderr)
                    print((work / f"log_{n}.txt").read_text()[-3000:], file=sys.stderr)
        import torch

        result = {
            "bench": "train_demo", "suite": args.suite if not args.runs else "custom",
            "variant": "tiny", "budget_min_per_run": args.budget_min, "clips": counts,
            "size": args.size, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
            "pretrained_weights": False, "jobs_side_by_side": args.jobs,
            "machine": {"cpu": platform.processor() or platform.machine(), "cpu_count": cpus,
                        "torch_threads_per_run": args.threads, "torch": torch.__version__,
                        "python": platform.python_version()},
            "dataset_seconds": round(data_s, 1), "failed": failed, "runs": runs,
        }
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, result)
    print(f"{'run':24s} {'epochs':>6s} {'steps':>6s} {'M_J':>7s} {'M_F':>7s} {'shufM_J':>7s} {'drop':>6s}")
    for name, r in runs.items():
        drop = r["shuffled_audio_drop_M_J"]
        print(f"{name:24s} {r['epochs_done']:6d} {r['steps']:6d} {r['test']['M_J']:7.4f} {r['test']['M_F']:7.4f} "
              f"{r['test_shuffled_audio']['M_J']:7.4f} {'-' if drop is None else f'{drop:6.1%}'}")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
