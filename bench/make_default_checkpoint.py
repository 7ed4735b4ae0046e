"""Make the embedded default checkpoint (``edgeavs/model/default/tiny-s4.{npz,json}``) that ``edgeavs demo``
segments with: train LightAVSeg-T on the synthetic demo S4 task with the CLI, evaluate it, store what
training changed (:func:`edgeavs.model.default.pack`) and record the recipe and the scores of the
stored (float16) weights on the demo test and validation splits.

    python bench/make_default_checkpoint.py --work WORK            # the whole recipe (~25 min on a quiet 2-core machine)
    python bench/make_default_checkpoint.py --work WORK --no-train # pack WORK/run/best.pt, trained before

The commands are run from ``WORK`` exactly as recorded (``RECIPE``); training on 2 CPU threads is
reproducible up to the float differences of threaded reductions, not bit for bit.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeavs.io.atomic import write_json

NAME = "tiny-s4"
TASK, CLIPS, DATA_SEED, SIZE = "s4", 800, 0, 128
VARIANT, FUSION, SEED, STEPS = "tiny", "lightavseg", 0, 1380
RECIPE = [
    f"edgeavs data synth --task {TASK} --clips {CLIPS} --seed {DATA_SEED} --size {SIZE} {TASK}",
    f"edgeavs train --data {TASK} --task {TASK} --variant {VARIANT} -o run --epochs 100 --batch-size 8 "
    f"--lr 1e-3 --size {SIZE} --seed {SEED} --num-workers 0 --device cpu --max-steps {STEPS} --no-progress",
]


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _scores(data: Path, ckpt: Path) -> dict:
    from edgeavs.evaluate import evaluate

    out = {}
    for split in ("test", "val"):
        r = evaluate(data, TASK, ckpt, split=split, device="cpu", batch_size=4)
        out[split] = {"M_J": round(r["M_J"], 4), "M_F": round(r["M_F"], 4), "clips": r["clips"],
                      "frames": r["frames"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the dataset and the run")
    ap.add_argument("--no-train", action="store_true", help="pack WORK/run/best.pt, trained before")
    ap.add_argument("--note", default=None, help="a line for the recipe (e.g. how the run was interrupted)")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not args.no_train:
        for cmd in RECIPE:
            print(f"$ {cmd}", file=sys.stderr)
            subprocess.run(shlex.split(cmd), cwd=work, check=True)

    import torch

    from edgeavs.model import default
    from edgeavs.model.builder import load_checkpoint
    from edgeavs.model.weights import read_checkpoint

    best = work / "run" / "best.pt"
    info = read_checkpoint(best)
    trained = _scores(work / TASK, best)
    print(f"best.pt (float32): {trained}", file=sys.stderr)

    default.DEFAULT_DIR.mkdir(exist_ok=True)
    npz = default.DEFAULT_DIR / f"{NAME}.npz"
    fields = default.pack(load_checkpoint(best), npz, variant=VARIANT, fusion=FUSION, seed=SEED)
    rec = {"format": default.RECIPE_FORMAT, "name": NAME, **fields, "torch": torch.__version__,
           "training": {"task": TASK, "size": SIZE, "clips": CLIPS, "data_seed": DATA_SEED,
                        "commands": RECIPE, "steps": int(info.get("global_step") or 0),
                        "best_epoch": info.get("epoch"), "pretrained_weights": False,
                        "frozen": "audio encoder (random init from the seed, as in training)",
                        "cpu": _cpu(), "torch_threads": torch.get_num_threads()},
           "scores_float32": trained}
    if args.note:
        rec["training"]["note"] = args.note
    meta = default.DEFAULT_DIR / f"{NAME}.json"
    write_json(meta, rec)  # provisional: the stored weights are scored through the loader itself
    with tempfile.TemporaryDirectory() as tmp:
        copy = default.write_checkpoint(Path(tmp) / "copy.pt", NAME)
        rec["scores"] = _scores(work / TASK, copy)
    rec["scores_note"] = ("M_J / M_F of the stored weights (parameters float16) on the synthetic demo "
                          f"{TASK.upper()} splits written by the first command")
    write_json(meta, rec)
    print(f"wrote {npz} ({os.path.getsize(npz) / 1e6:.2f} MB, {fields['stored_parameters']:,} parameters) "
          f"and {meta}: stored weights {rec['scores']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
