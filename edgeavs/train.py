"""Training LightAVSeg on AVSBench S4/MS3 (SPEC §5), on one device or many.

``edgeavs train`` calls :func:`train`; ``torchrun --nproc-per-node K -m cli train ...`` runs
the same command on K processes (``cli`` is the ``edgeavs`` command's module). What a run does:

- AdamW over the trainable parameters only (the PANNs audio encoder is frozen: no gradients,
  eval-mode BN, see ``LightAVSeg.train``); loss ``L_dice + L_bce + λ·L_msa`` (λ = ``msa_weight``,
  0.5); a batch of B clips is B·5 frames, and the dataset's ``valid`` flags restrict the loss to
  the frames that have a mask (S4 train: frame 1 only). Constant learning rate **(ours: the paper
  gives no schedule)**; AdamW's default weight decay 0.01 **(ours)**.
- After every epoch: M_J/M_F on the validation split (rank 0, fp32), one line appended to
  ``RUN_DIR/metrics.jsonl``, ``RUN_DIR/last.pt`` written atomically (model, optimizer, scaler,
  progress and every rank's RNG states) and ``RUN_DIR/best.pt`` when val M_J improved. Both load
  with :func:`edgeavs.load_checkpoint`. A metrics record: ``epoch`` (1-based), ``complete`` (False
  for an epoch cut short by ``max_steps``/``time_budget_s``), ``steps`` (optimizer steps so far),
  ``lr``, ``train_loss``/``train_dice``/``train_bce``/``train_msa`` (means over the epoch's
  batches and ranks), ``val_M_J``, ``val_M_F``, ``val_clips``, ``time_s`` (the epoch's wall time,
  validation included) and ``best``.
- ``resume=True`` continues from ``last.pt`` exactly: the sample order is a function of (seed,
  epoch) (``DistributedSampler``, also with one process), a run stopped inside an epoch
  (``max_steps``/``time_budget_s``) skips the batches it already did, and the RNG states are
  restored; so 2 epochs straight and 1 + 1 resumed give identical weights. The run's settings
  (variant, task, batch size, lr, ...) come from ``last.pt``; an option given again must agree.
  ``epochs`` may be raised to train longer.
- Under torchrun (``WORLD_SIZE`` > 1): ``init_process_group`` (NCCL on CUDA, Gloo on the CPU),
  ``DistributedDataParallel``, ``DistributedSampler``; only rank 0 validates and writes.
  The batch size is per process.
- On CUDA, mixed precision: ``torch.autocast`` in bf16 where supported, else fp16 with a
  ``GradScaler``; the losses are computed in fp32 outside autocast. The CPU trains in fp32.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from torch.utils.data.distributed import DistributedSampler

from edgeavs.data import N_FRAMES
from edgeavs.errors import EdgeAVSError
from edgeavs.evaluate import evaluate_model, resolve_device

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Settings that define a run: saved in last.pt, taken from it on --resume.
RUN_DEFAULTS = {"variant": None, "task": None, "epochs": 60, "batch_size": 8, "lr": 1e-4,
                "weight_decay": 0.01, "msa_weight": 0.5, "size": 224, "seed": 0,
                "fusion": "lightavseg"}
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


@dataclass
class TrainConfig:
    """Options of one training run; ``None`` means the default (or, on resume, the saved value)."""

    data: str
    out: str
    task: str | None = None
    variant: str | None = None
    fusion: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    msa_weight: float | None = None
    size: int | None = None
    seed: int | None = None
    visual_weights: str | None = None
    audio_weights: str | None = None
    resume: bool = False
    num_workers: int = 2
    device: str = "auto"
    precision: str = "auto"
    max_steps: int | None = None
    time_budget_s: float | None = None
    val_split: str = "val"
    val_batch_size: int | None = None
    progress: bool = True


# --- processes, devices, precision ---------------------------------------------------------

@dataclass
class _Dist:
    rank: int
    world: int
    device: torch.device
    distributed: bool

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on some rank."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def sum(self, values: list[float]) -> list[float]:
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj):
        if not self.distributed:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def _setup_processes(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return _Dist(0, 1, dev, False)
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise EdgeAVSError(f"LOCAL_RANK {local}: only {torch.cuda.device_count()} CUDA devices")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), dev, True)


def _resolve_precision(name: str, device: torch.device) -> str:
    if name not in PRECISIONS:
        raise EdgeAVSError(f"--precision: unknown {name!r}, expected one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        if name in ("bf16", "fp16"):
            raise EdgeAVSError(f"--precision {name}: mixed precision is for CUDA only; the CPU trains in fp32")
        return "fp32"
    if name == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return name


# --- run directory and resume --------------------------------------------------------------

def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                       int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def _check_run_dir(out: Path, resume: bool) -> dict | None:
    """Refuse to overwrite a run, or to resume nothing; return last.pt's contents on resume.

    Also that ``-o`` can be written: not an existing file, its parent an existing writable
    directory (and the run directory itself writable if it exists), before any work."""
    from edgeavs.io.atomic import check_writable
    from edgeavs.model.weights import read_checkpoint

    if out.exists() and not out.is_dir():
        raise EdgeAVSError(f"{out}: exists and is not a directory")
    check_writable(out, "-o", kind="dir")
    if out.is_dir():
        check_writable(out / RUN_FILES[0], "-o")
    if resume:
        last = out / "last.pt"
        if not last.is_file():
            raise EdgeAVSError(f"{out}: nothing to resume (no last.pt)")
        state = read_checkpoint(last)
        if "optimizer" not in state or "config" not in state:
            raise EdgeAVSError(f"{last}: not a resumable training checkpoint (no optimizer state)")
        return state
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise EdgeAVSError(f"{out}: already holds a training run ({found[0]}); "
                           "pass --resume to continue it or choose another -o")
    return None


def _run_settings(cfg: TrainConfig, saved: dict | None) -> dict:
    settings = {}
    for key, default in RUN_DEFAULTS.items():
        given = getattr(cfg, key)
        if saved is None:
            settings[key] = default if given is None else given
            continue
        old = saved.get(key, default)
        if given is None or key == "epochs":
            settings[key] = old if given is None else given
        elif given != old:
            raise EdgeAVSError(f"--{key.replace('_', '-')}: this run was started with {old}, not "
                               f"{given}; leave the option out to resume it")
        else:
            settings[key] = given
    if settings["variant"] is None:
        raise EdgeAVSError("--variant: required for a new run (tiny, small, base or large)")
    if settings["fusion"] != "lightavseg":
        # L_msa aligns LightAVSeg's recursive audio path with the mask; the baselines have none.
        if saved is None and cfg.msa_weight:
            raise EdgeAVSError(f"--msa-weight: the {settings['fusion']} fusion has no audio path "
                               "for L_msa to align; leave it out (it is LightAVSeg's loss)")
        settings["msa_weight"] = 0.0
    if settings["task"] is None:
        raise EdgeAVSError("--task: required (s4 or ms3)")
    if saved is not None and (cfg.visual_weights or cfg.audio_weights):
        raise EdgeAVSError("--visual-weights/--audio-weights: not used with --resume "
                           "(the weights come from last.pt)")
    return settings


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class _SkipSampler(Sampler):
    """The first ``skip`` indices of ``sampler`` left out (resuming inside an epoch)."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def _first_items(datasets) -> None:
    """Load the first clip of each split here, before anything is written: a dataset whose
    files are missing or unreadable fails now, naming the file, not in a loader worker."""
    for ds in datasets:
        ds[0]


def _audio_in_fp32(model) -> None:
    """Run the frozen audio encoder outside autocast: its STFT power spectrum overflows fp16
    (and the log-mel front end loses precision in bf16). The interaction still runs in AMP.
    An instance attribute, so the module's weights and state-dict keys are untouched."""
    audio = model.audio
    forward = audio.forward

    def fp32_forward(waveform):
        with torch.autocast(waveform.device.type, enabled=False):
            return forward(waveform.float())

    audio.forward = fp32_forward


def _to_float(out: dict) -> dict:
    conv = (lambda t: None if t is None else t.float())  # the baselines have no a_hat
    return {k: ([conv(t) for t in v] if isinstance(v, list) else conv(v)) for k, v in out.items()}


# --- the loop ------------------------------------------------------------------------------

def train(cfg: TrainConfig) -> dict:
    """Train (or resume) one run; returns a summary (epochs and steps done, best val M_J)."""
    ctx = _setup_processes(cfg.device)
    try:
        return _train(cfg, ctx)
    finally:
        if ctx.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, ctx: _Dist) -> dict:
    """Check RUN_DIR, the settings and the data (its first clips) before RUN_DIR is created;
    a run that fails before writing anything leaves no empty RUN_DIR behind."""
    from edgeavs.data.avsbench import make_dataset

    out = Path(cfg.out)
    saved = _check_run_dir(out, cfg.resume)
    ctx.barrier()  # every rank has looked at RUN_DIR before rank 0 writes to it
    run = _run_settings(cfg, saved.get("config") if saved else None)
    precision = _resolve_precision(cfg.precision, ctx.device)

    train_ds = make_dataset(cfg.data, run["task"], "train", size=run["size"])
    val_ds = make_dataset(cfg.data, run["task"], cfg.val_split, size=run["size"])
    if len(train_ds) == 0 or len(val_ds) == 0:
        empty = "train" if len(train_ds) == 0 else cfg.val_split
        raise EdgeAVSError(f"{cfg.data}: the {run['task']} {empty} split has no clips")
    _first_items((train_ds, val_ds))
    created = ctx.main and not out.exists()  # RUN_DIR is removed again if it stays empty
    try:
        return _train_loop(cfg, ctx, out, saved, run, precision, train_ds, val_ds)
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            with contextlib.suppress(OSError):
                out.rmdir()


def _train_loop(cfg: TrainConfig, ctx: _Dist, out: Path, saved: dict | None, run: dict,
                precision: str, train_ds, val_ds) -> dict:
    from tqdm import tqdm

    from edgeavs.losses import total_loss
    from edgeavs.model import build_model, load_audio_weights, load_visual_weights, save_checkpoint

    device = ctx.device

    model = build_model(run["variant"], fusion=run["fusion"], seed=run["seed"])
    model.frames_per_clip = N_FRAMES  # a batch is whole clips (TPAVI attends over a clip)
    if saved is None:
        if cfg.visual_weights:
            load_visual_weights(model, cfg.visual_weights)
        if cfg.audio_weights:
            load_audio_weights(model, cfg.audio_weights)
    else:
        model.load_state_dict(saved["state_dict"], strict=True)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=run["lr"], weight_decay=run["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if amp_dtype is not None:
        _audio_in_fp32(model)

    epoch, step_in_epoch, global_step = 0, 0, 0
    best_mj, best_epoch = -1.0, None
    sums = [0.0, 0.0, 0.0, 0.0, 0.0]  # loss, dice, bce, msa, batches (this epoch, this rank)
    torch.manual_seed(run["seed"] + ctx.rank)  # drop-path masks differ between ranks
    if saved is not None:
        opt.load_state_dict(saved["optimizer"])
        if saved.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(saved["scaler"])
        epoch, step_in_epoch = int(saved["epoch"]), int(saved["step_in_epoch"])
        global_step = int(saved["global_step"])
        best_mj = float(saved["best_M_J"])
        best_epoch = saved.get("best_epoch")
        all_sums = saved.get("epoch_sums") or []
        if len(all_sums) == ctx.world:
            sums = list(all_sums[ctx.rank])
        rngs = saved.get("rng") or []
        if len(rngs) == ctx.world:
            _set_rng_state(rngs[ctx.rank])
        elif ctx.main:
            tqdm.write(f"note: last.pt was written by {len(rngs)} processes, this run has "
                       f"{ctx.world}; random streams restart from the seed")

    net = model
    if ctx.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if ctx.main:
        out.mkdir(exist_ok=True)  # its parent was checked up front
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    def save_last(epoch_sums):
        rngs = ctx.gather(_rng_state())
        epoch_sums = ctx.gather(epoch_sums)
        if ctx.main:
            save_checkpoint(model, out / "last.pt", optimizer=opt.state_dict(),
                            scaler=scaler.state_dict() if scaler.is_enabled() else None,
                            epoch=epoch, step_in_epoch=step_in_epoch, global_step=global_step,
                            best_M_J=best_mj, best_epoch=best_epoch, epoch_sums=epoch_sums,
                            rng=rngs, world_size=ctx.world, config=run)

    t_start = time.monotonic()
    stop = epoch >= run["epochs"] or (cfg.max_steps is not None and global_step >= cfg.max_steps)
    last_record = None
    model.train()
    while not stop:
        sampler = DistributedSampler(train_ds, num_replicas=ctx.world, rank=ctx.rank, shuffle=True,
                                     seed=run["seed"], drop_last=False)
        sampler.set_epoch(epoch)
        n_batches = math.ceil(len(sampler) / run["batch_size"])
        loader = DataLoader(train_ds, batch_size=run["batch_size"],
                            sampler=_SkipSampler(sampler, step_in_epoch * run["batch_size"]),
                            num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                            generator=torch.Generator().manual_seed(run["seed"] * 1000 + epoch))
        t_epoch = time.monotonic()
        bar = tqdm(total=n_batches, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{run['epochs']}",
                   disable=not (ctx.main and cfg.progress), dynamic_ncols=True, mininterval=1.0)
        for batch in loader:
            frames = batch["frames"].flatten(0, 1).to(device, non_blocking=True)
            audio = batch["audio"].flatten(0, 1).to(device, non_blocking=True)
            masks = batch["masks"].flatten(0, 1).to(device, non_blocking=True)
            valid = batch["valid"].flatten().to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = net(frames, audio, return_aux=True)
            terms = total_loss(_to_float(outputs), masks, valid, msa_weight=run["msa_weight"])
            opt.zero_grad(set_to_none=True)
            scaler.scale(terms["loss"]).backward()
            scaler.step(opt)
            scaler.update()
            global_step += 1
            step_in_epoch += 1
            vals = [float(terms["loss"].detach()), float(terms["dice"]), float(terms["bce"]),
                    float(terms["msa"])]
            sums = [s + v for s, v in zip(sums, vals + [1.0])]
            bar.update(1)
            bar.set_postfix(loss=f"{vals[0]:.4f}", refresh=False)
            over_time = (cfg.time_budget_s is not None
                         and ctx.any(time.monotonic() - t_start >= cfg.time_budget_s))  # ranks agree
            if (cfg.max_steps is not None and global_step >= cfg.max_steps) or over_time:
                stop = True
                break
        bar.close()
        complete = step_in_epoch >= n_batches
        if complete:
            epoch, step_in_epoch = epoch + 1, 0
        stop = stop or epoch >= run["epochs"]

        totals = ctx.sum(sums)
        record = {"epoch": epoch if complete else epoch + 1, "complete": complete, "steps": global_step,
                  "lr": opt.param_groups[0]["lr"]}
        nb = max(totals[4], 1.0)
        record.update({f"train_{k}": totals[i] / nb for i, k in enumerate(("loss", "dice", "bce", "msa"))})
        epoch_sums = [0.0] * 5 if complete else sums
        if ctx.main:
            val = evaluate_model(model, val_ds, batch_size=cfg.val_batch_size or run["batch_size"],
                                 device=device, num_workers=cfg.num_workers, progress=cfg.progress,
                                 desc=cfg.val_split)
            model.train()
            record.update({"val_M_J": val["M_J"], "val_M_F": val["M_F"], "val_clips": val["clips"],
                           "time_s": round(time.monotonic() - t_epoch, 3)})
            record["best"] = val["M_J"] > best_mj
            if record["best"]:
                best_mj, best_epoch = val["M_J"], record["epoch"]
                save_checkpoint(model, out / "best.pt", epoch=record["epoch"], global_step=global_step,
                                val_M_J=val["M_J"], val_M_F=val["M_F"], config=run)
            _append_jsonl(out / "metrics.jsonl", record)
            tqdm.write(f"epoch {record['epoch']}{'' if complete else ' (partial)'}: "
                       f"loss {record['train_loss']:.4f} (dice {record['train_dice']:.4f}, "
                       f"bce {record['train_bce']:.4f}, msa {record['train_msa']:.4f}); "
                       f"val M_J {val['M_J']:.4f} M_F {val['M_F']:.4f}")
        save_last(epoch_sums)
        sums = epoch_sums
        last_record = record
        ctx.barrier()

    return {"run_dir": str(out), "epochs_done": epoch, "step_in_epoch": step_in_epoch,
            "steps": global_step, "best_M_J": best_mj if best_epoch is not None else None,
            "best_epoch": best_epoch, "last": last_record, "precision": precision,
            "world_size": ctx.world, "rank": ctx.rank, "seconds": round(time.monotonic() - t_start, 3)}


if __name__ == "__main__":
    # The options are parsed once, by the command line (``edgeavs train``); the library has no
    # parser of its own. Under torchrun, name the command-line module: ``-m cli train ...``.
    sys.exit("Error: edgeavs.train is a library module; run `edgeavs train ...`, or under torchrun "
             "`torchrun --nproc-per-node K -m cli train ...`")
