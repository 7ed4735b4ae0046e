"""Train LightAVSeg-T on the synthetic S4 demo task for a fixed CPU wall budget, then evaluate.

Three questions, one JSON (``bench/results/train_demo.json``):

1. What test M_J / M_F does LightAVSeg-T reach on the demo task in the budget (λ_msa = 0.5)?
2. The same budget with ``--msa-weight 0`` (L_seg only): what does L_msa add?
3. Each model with ``--shuffle-audio`` (every clip gets another clip's sound): how much of the
   score depends on the audio? On this dataset the frames alone cannot tell which object sounds,
   so a model that uses sound loses M_J when its audio is shuffled.

Each of the two trainings gets the whole budget (so the run takes about twice ``--budget-min``
plus evaluation). The model starts from random weights (no ImageNet SeaFormer or AudioSet PANNs
weights here) and, as in the paper, the audio encoder stays frozen: the audio features are
those of a random, fixed PANNs network, and only the interaction learns to read them.

    python bench/train_demo.py                          # 30 min per training, 160 clips at 128 px
    python bench/train_demo.py --budget-min 1 --clips 20 --size 64   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--budget-min", type=float, default=30.0, help="training wall budget per model, minutes")
    p.add_argument("--clips", type=int, default=160, help="synthetic S4 clips (60/20/20 train/val/test)")
    p.add_argument("--size", type=int, default=128, help="frame size (224 is the paper's; 128 fits a CPU budget)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per step")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    p.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the dataset and the runs (default: a temporary one, removed after)")
    p.add_argument("--out", type=Path, default=RESULTS / "train_demo.json", help="result JSON")
    return p.parse_args(argv)


def _evaluate(data, ckpt, shuffle):
    from edgeavs.evaluate import evaluate

    r = evaluate(data, "s4", ckpt, split="test", shuffle_audio=shuffle, device="cpu", batch_size=4)
    return {k: r[k] for k in ("M_J", "M_F", "clips", "frames", "shuffle_audio", "epoch", "seconds")}


def _train(data, run_dir, args, msa_weight):
    from edgeavs.train import TrainConfig, train

    cfg = TrainConfig(data=str(data), out=str(run_dir), task="s4", variant="tiny", epochs=100000,
                      batch_size=args.batch_size, lr=args.lr, msa_weight=msa_weight, size=args.size,
                      seed=args.seed, num_workers=0, device="cpu", progress=sys.stderr.isatty(),
                      time_budget_s=args.budget_min * 60)
    t0 = time.perf_counter()
    summary = train(cfg)
    lines = [json.loads(x) for x in open(Path(run_dir) / "metrics.jsonl", encoding="utf-8")]
    return {"msa_weight": msa_weight, "wall_s": round(time.perf_counter() - t0, 1),
            "epochs_done": summary["epochs_done"], "steps": summary["steps"],
            "best_val_M_J": summary["best_M_J"], "best_epoch": summary["best_epoch"],
            "first_train_loss": lines[0]["train_loss"], "last_train_loss": lines[-1]["train_loss"],
            "curve": [{k: r[k] for k in ("epoch", "steps", "train_loss", "val_M_J", "val_M_F")} for r in lines]}


def main(argv=None) -> int:
    args = _parse(argv)
    torch.set_num_threads(max(1, args.threads))
    from edgeavs.data.synth import make_synthetic

    work = args.work or Path(tempfile.mkdtemp(prefix="edgeavs-train-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "s4"
    try:
        t0 = time.perf_counter()
        if not (data / "synth.json").is_file():
            counts = make_synthetic(data, task="s4", clips=args.clips, seed=args.seed, size=args.size)
        else:
            from edgeavs.data.avsbench import read_meta

            counts = {s: 0 for s in ("train", "val", "test")}
            for c in read_meta(data, "s4"):
                counts[c.split] += 1
        data_s = time.perf_counter() - t0
        runs = {}
        for name, lam in (("lightavseg", 0.5), ("no_msa", 0.0)):
            run_dir = work / f"run_{name}"
            if run_dir.exists():
                shutil.rmtree(run_dir)
            print(f"training {name} (msa weight {lam}) for {args.budget_min} min ...", file=sys.stderr)
            runs[name] = _train(data, run_dir, args, lam)
            best = run_dir / "best.pt"
            runs[name]["test"] = _evaluate(data, best, False)
            runs[name]["test_shuffled_audio"] = _evaluate(data, best, True)
            runs[name]["audio_dependence_M_J"] = runs[name]["test"]["M_J"] - runs[name]["test_shuffled_audio"]["M_J"]
        result = {
            "bench": "train_demo", "task": "s4 (synthetic, edgeavs data synth)", "variant": "tiny",
            "budget_min_per_model": args.budget_min, "clips": counts, "size": args.size,
            "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
            "pretrained_weights": False, "machine": {
                "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                "python": platform.python_version()},
            "dataset_seconds": round(data_s, 1), "runs": runs,
        }
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    for name, r in runs.items():
        print(f"{name:11s} epochs {r['epochs_done']:3d} steps {r['steps']:5d}  "
              f"test M_J {r['test']['M_J']:.4f} M_F {r['test']['M_F']:.4f}  "
              f"shuffled-audio M_J {r['test_shuffled_audio']['M_J']:.4f} M_F {r['test_shuffled_audio']['M_F']:.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
