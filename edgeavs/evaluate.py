"""Evaluation: M_J and M_F of a model on an AVSBench split, the shuffled-audio control, and the
capture of real model inputs for ``edgeavs verify --inputs``.

- :func:`evaluate_model` runs a model over a dataset (fp32, eval mode, no gradients) and
  returns AVSBench's metrics (:mod:`edgeavs.metrics`).
- :class:`AudioShuffled` wraps a dataset so that clip ``i`` gets the audio of clip ``perm[i]``,
  ``perm`` a fixed-seed derangement (no clip keeps its own sound). The drop in M_J from the
  normal to the shuffled run is how much the model actually uses the audio.
- :func:`write_inputs` / :func:`dump_inputs` write the first clips' frames and waveforms to an
  ``.npz`` with the keys ``frames (N,3,H,W)`` and ``waveform (N,32000)`` (float32, N = 5·clips),
  exactly the tensors the model sees, for ``edgeavs verify --inputs``.
- :func:`evaluate` is what ``edgeavs evaluate`` calls.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edgeavs.data import N_FRAMES
from edgeavs.errors import EdgeAVSError
from edgeavs.metrics import SegMetrics

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else the CPU; ``cuda`` without a GPU is a one-line error."""
    if name not in DEVICES:
        raise EdgeAVSError(f"--device: unknown device {name!r}, expected one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise EdgeAVSError("--device cuda: no CUDA device is available (use --device cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def derangement(n: int, seed: int = 0) -> list[int]:
    """A fixed-seed permutation of ``range(n)`` with no fixed point (Sattolo's algorithm: one
    random ``n``-cycle), so every clip gets another clip's audio."""
    if n < 2:
        raise EdgeAVSError(f"--shuffle-audio: needs at least 2 clips, the split has {n}")
    rng = np.random.default_rng(seed)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


class AudioShuffled(Dataset):
    """``dataset`` with clip ``i``'s audio replaced by clip ``perm[i]``'s (a derangement).

    Frames, masks and names stay those of clip ``i``; ``audio_from`` names the donor clip.
    """

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset = dataset
        self.perm = derangement(len(dataset), seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        donor = self.dataset[self.perm[index]]
        item["audio"] = donor["audio"]
        item["audio_from"] = donor.get("name", str(self.perm[index]))
        return item


class _Indexed(Dataset):
    """Adds the clip's position (``index``), used as its id by the metrics."""

    def __init__(self, dataset: Dataset, limit: int | None = None):
        self.dataset = dataset
        self.n = len(dataset) if limit is None else min(limit, len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"frames": item["frames"], "audio": item["audio"], "masks": item["masks"],
                "valid": item["valid"], "index": index}


@torch.no_grad()
def evaluate_model(model, dataset: Dataset, batch_size: int = 4, device="cpu", num_workers: int = 0,
                   limit: int | None = None, progress: bool = False, desc: str = "eval") -> dict:
    """M_J and M_F of ``model`` on ``dataset`` (clips of 5 frames), in eval mode and fp32.

    Returns ``{"M_J", "M_F", "frames", "clips"}``; the model's train/eval mode is restored.
    """
    device = torch.device(device)
    was_training = model.training
    was_t = getattr(model, "frames_per_clip", 1)
    model.frames_per_clip = N_FRAMES  # batches are whole clips (TPAVI attends over a clip)
    model.eval()
    loader = _loader(dataset, batch_size, num_workers, limit, pin=device.type == "cuda")
    try:
        return _run(lambda frames, audio: model(frames.to(device, non_blocking=True),
                                                audio.to(device, non_blocking=True)),
                    loader, progress, desc)
    finally:
        model.train(was_training)
        model.frames_per_clip = was_t


def _run(predict, loader, progress: bool, desc: str) -> dict:
    """The metrics over ``loader``'s batches of whole clips; ``predict(frames, audio) -> logits``
    on the flattened frames ``(B*5,3,H,W)`` and audio ``(B*5,32000)``."""
    from tqdm import tqdm

    metrics = SegMetrics()
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        logits = predict(batch["frames"].flatten(0, 1), batch["audio"].flatten(0, 1))
        metrics.update(logits, batch["masks"].flatten(0, 1), batch["valid"].flatten(),
                       clip_ids=batch["index"].tolist())
    return metrics.compute()


def _loader(dataset: Dataset, batch_size: int, num_workers: int, limit: int | None, pin: bool = False):
    return DataLoader(_Indexed(dataset, limit), batch_size=batch_size, shuffle=False,
                      num_workers=num_workers, pin_memory=pin,
                      generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone


def evaluate_predictor(predict, dataset: Dataset, batch_size: int = 4, num_workers: int = 0,
                       limit: int | None = None, progress: bool = False, desc: str = "eval") -> dict:
    """:func:`evaluate_model` for a numpy predictor, ``predict(frames (N,3,H,W), waveform (N,32000))
    -> logits (N,1,H,W)`` float32 (a compiled artifact: ``edgeavs.artifact_worker.ArtifactProcess``):
    the same batches, the same metrics."""
    loader = _loader(dataset, batch_size, num_workers, limit)
    return _run(lambda frames, audio: torch.from_numpy(np.asarray(predict(frames.numpy(), audio.numpy()))),
                loader, progress, desc)


def write_inputs(dataset: Dataset, path, clips: int = 1) -> dict:
    """Write the first ``clips`` clips of ``dataset`` as ``frames (5·clips,3,H,W)`` and
    ``waveform (5·clips,32000)`` float32 to the ``.npz`` file ``path`` (atomically).

    Returns ``{"path", "clips", "frames"}``.
    """
    n = min(int(clips), len(dataset))
    if n < 1:
        raise EdgeAVSError(f"{path}: no clips to write (the split is empty)")
    items = [dataset[i] for i in range(n)]
    frames = torch.cat([it["frames"] for it in items]).numpy().astype(np.float32)
    waveform = torch.cat([it["audio"] for it in items]).numpy().astype(np.float32)
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise EdgeAVSError(f"{path}: directory {parent} does not exist")
    from edgeavs.io.atomic import atomic_write

    atomic_write(path, lambda fh: np.savez(fh, frames=frames, waveform=waveform))  # mode from the umask
    return {"path": path, "clips": n, "frames": int(frames.shape[0])}


def _dataset(root, task: str, split: str, size: int, shuffle_audio: bool, seed: int):
    from edgeavs.data.avsbench import make_dataset

    ds = make_dataset(root, task, split, size=size)
    if len(ds) == 0:
        raise EdgeAVSError(f"{root}: the {task} {split} split has no clips")
    return AudioShuffled(ds, seed) if shuffle_audio else ds


def dump_inputs(root, task: str, split: str, clips: int, path, size: int = 224,
                shuffle_audio: bool = False, seed: int = 0) -> dict:
    """:func:`write_inputs` for the first ``clips`` clips of an AVSBench split."""
    return write_inputs(_dataset(root, task, split, size, shuffle_audio, seed), path, clips)


def evaluate(root, task: str, checkpoint, split: str = "test", shuffle_audio: bool = False,
             seed: int = 0, batch_size: int = 4, size: int | None = None, device: str = "auto",
             num_workers: int = 0, limit: int | None = None, dump_path=None, dump_clips: int = 1,
             progress: bool = False) -> dict:
    """Evaluate an edgeavs checkpoint on ``task``/``split``: M_J, M_F and what was measured.

    ``size`` defaults to the frame size the checkpoint was trained at (224 if it does not say).
    With ``dump_path``, the first ``dump_clips`` clips' inputs (shuffled audio included) are
    also written for ``edgeavs verify --inputs``.
    """
    from edgeavs.model.builder import load_checkpoint
    from edgeavs.model.weights import read_checkpoint

    dev = resolve_device(device)
    info = read_checkpoint(checkpoint)
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    size = int(size or config.get("size") or 224)
    ds = _dataset(root, task, split, size, shuffle_audio, seed)
    model = load_checkpoint(checkpoint).to(dev)
    result = {"task": task, "split": split, "checkpoint": os.fspath(checkpoint),
              "variant": info["variant"], "epoch": info.get("epoch"), "size": size,
              "shuffle_audio": bool(shuffle_audio)}
    if shuffle_audio:
        result["shuffle_seed"] = seed
    if dump_path is not None:
        result["inputs"] = write_inputs(ds, dump_path, dump_clips)
    t0 = time.perf_counter()
    metrics = evaluate_model(model, ds, batch_size=batch_size, device=dev, num_workers=num_workers,
                             limit=limit, progress=progress, desc=f"{task} {split}")
    result.update(metrics)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def evaluate_compiled(root, task: str, predictor, split: str = "test", shuffle_audio: bool = False,
                      seed: int = 0, batch_size: int = 4, size: int | None = None,
                      num_workers: int = 0, limit: int | None = None, dump_path=None,
                      dump_clips: int = 1, progress: bool = False) -> dict:
    """:func:`evaluate` with a compiled artifact instead of a checkpoint: ``predictor`` runs it
    (``edgeavs.artifact_worker.ArtifactProcess``: numpy in and out, its own torch-free process)
    and has ``input_size`` (H, W) and ``details`` (the artifact's variant, precision, target,
    weights). Frames are read at the artifact's resolution, which must be square; ``size``, if
    given, must equal it."""
    h, w = predictor.input_size
    where = predictor.details.get("artifact", "the artifact")
    if h != w:
        raise EdgeAVSError(f"--artifact {where}: compiled at {h}x{w}; evaluate reads square frames "
                           "(compile it at one size, e.g. --resolution 224)")
    if size is not None and int(size) != h:
        raise EdgeAVSError(f"--size {size}: the artifact {where} takes {h}x{w} frames (drop --size)")
    ds = _dataset(root, task, split, h, shuffle_audio, seed)
    d = predictor.details
    result = {"task": task, "split": split, "artifact": os.fspath(where), "variant": d.get("variant"),
              "precision": d.get("precision", "fp32"), "target": d.get("target"),
              "weights": d.get("weights"), "size": h, "shuffle_audio": bool(shuffle_audio)}
    if shuffle_audio:
        result["shuffle_seed"] = seed
    if dump_path is not None:
        result["inputs"] = write_inputs(ds, dump_path, dump_clips)
    t0 = time.perf_counter()
    result.update(evaluate_predictor(predictor, ds, batch_size=batch_size, num_workers=num_workers,
                                     limit=limit, progress=progress, desc=f"{task} {split}"))
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result
