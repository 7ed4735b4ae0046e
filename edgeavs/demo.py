"""The ``edgeavs demo`` job: the README's main path on an embedded clip, no downloads.

:func:`run_demo` synthesises a short clip with sound (:func:`edgeavs.data.synth.demo_clip`: the
synthetic categories moving about, one of them sounding at a time, with the ground-truth mask of
the shape the model hears), picks the weights (:func:`choose_weights`: ``OUT_DIR/tiny.pt``, else
the checkpoint embedded in the package, :mod:`edgeavs.model.default`), compiles LightAVSeg-tiny
for the host at the checkpoint's training size (or reuses a valid artifact for the same variant,
resolution, target and weights), segments the clip, scores the masks against the sounding shape
(M_J on the clip) and reports where the overlay video is, one line at a time through ``say``.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeavs.errors import EdgeAVSError

DEMO_VARIANT = "tiny"
DEMO_RESOLUTION = 96
CLIP_NAME = "clip.mp4"
CHECKPOINT_NAME = "tiny.pt"
DEFAULT_COPY_NAME = "default-tiny-s4.pt"


def reusable_artifact(directory, variant: str, resolution: int, target: str, weights: dict) -> bool:
    """True when ``directory`` holds a valid artifact (hashes match) for exactly this job."""
    from edgeavs.compiler.artifact import validate_artifact
    from edgeavs.targets import load_target

    directory = Path(directory)
    if not directory.is_dir():
        return False
    try:
        m = validate_artifact(directory)
    except EdgeAVSError:
        return False
    return (m.get("variant") == variant and m.get("resolution") == [resolution, resolution]
            and m.get("target_fingerprint") == load_target(target).fingerprint()
            and _same_weights(m.get("weights") or {}, weights))


def _same_weights(have: dict, want: dict) -> bool:
    if want["source"] == "checkpoint":
        return have.get("checkpoint_sha256") == want["checkpoint_sha256"]
    return (have.get("source") == "random-init" and have.get("seed") == want.get("seed")
            and have.get("fusion", "lightavseg") == want.get("fusion", "lightavseg"))


def choose_weights(out_dir: Path, random_weights: bool = False) -> tuple[Path | None, str]:
    """The checkpoint the demo compiles (None: random init) and the line that says which.

    ``OUT_DIR/tiny.pt`` (the user's, or ``--train-steps``'s) wins; else the embedded default,
    written once as an ordinary checkpoint to ``OUT_DIR/default-tiny-s4.pt`` (rewritten only when
    it is not this installation's copy) so that compile, verify and the manifest see a file."""
    if random_weights:
        return None, "weights   random init (seed 0): --random-weights"
    own = out_dir / CHECKPOINT_NAME
    if own.is_file():
        return own, f"weights   {own}"
    from edgeavs.model import default

    copy = out_dir / DEFAULT_COPY_NAME
    if not default.is_copy(copy):
        default.write_checkpoint(copy)
    rec = default.recipe()
    t = rec["training"]
    test = rec["scores"]["test"]
    return copy, (f"weights   embedded LightAVSeg-{rec['variant']} trained on synthetic {t['task'].upper()} "
                  f"clips at {t['size']}x{t['size']} ({t['steps']} steps; test M_J {test['M_J']:.3f}, "
                  f"M_F {test['M_F']:.3f}) -> {copy}")


def checkpoint_size(ckpt) -> int | None:
    """The frame size ``ckpt`` was trained at, if it says."""
    from edgeavs.model.weights import read_checkpoint

    config = read_checkpoint(ckpt).get("config")
    size = config.get("size") if isinstance(config, dict) else None
    return int(size) if isinstance(size, int) and size > 0 else None


def mask_scores(masks: list, truth: list) -> dict:
    """Per-frame IoU of the demo's masks with the sounding shape, and their mean (M_J on the clip)."""
    import numpy as np

    n = min(len(masks), len(truth))
    ious = []
    for m, g in zip(masks[:n], truth[:n]):
        union = np.logical_or(m, g).sum()
        ious.append(float(np.logical_and(m, g).sum() / union) if union else 1.0)
    return {"M_J": round(float(np.mean(ious)), 4) if ious else None, "frames": n,
            "frames_iou_over_0.5": int(sum(i > 0.5 for i in ious)),
            "iou_per_frame": [round(i, 4) for i in ious]}


def run_demo(out_dir, resolution: int | None = None, seconds: float = 6.0,
             threads: int | None = None, train_steps: int = 0, random_weights: bool = False,
             say=print) -> dict:
    """Clip -> artifact (compiled or reused) -> overlay video and the masks' M_J, all under ``out_dir``.

    ``resolution``: the model's input side; default the checkpoint's training size
    (:data:`DEMO_RESOLUTION` for random weights)."""
    from edgeavs.compiler.artifact import file_sha256
    from edgeavs.io.atomic import write_json

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgeAVSError(f"-o {out_dir}: exists and is not a directory")
    if not out_dir.absolute().parent.is_dir():
        raise EdgeAVSError(f"-o {out_dir}: directory {out_dir.parent} does not exist")
    out_dir.mkdir(exist_ok=True)

    from edgeavs.data.synth import demo_clip

    clip = out_dir / CLIP_NAME
    truth: list = []
    # the truth is the shape that sounds longest in the second of audio the model hears (Segmenter's window)
    schedule = demo_clip(clip, seconds=seconds, truth=truth, truth_window_s=1.0)
    say(f"clip      {clip} ({seconds:g} s; sounding: "
        + ", ".join(f"{s['category']} {s['start']:g}-{s['end']:g} s" for s in schedule) + ")")

    if train_steps:
        say(f"training  LightAVSeg-{DEMO_VARIANT} for {train_steps} steps on synthetic S4 data ...")
        train_checkpoint(out_dir, out_dir / CHECKPOINT_NAME, train_steps, resolution or DEMO_RESOLUTION)
    ckpt, line = choose_weights(out_dir, random_weights)
    say(line)
    if resolution is None:
        resolution = (checkpoint_size(ckpt) if ckpt is not None else None) or DEMO_RESOLUTION
    weights = ({"source": "checkpoint", "checkpoint_sha256": file_sha256(ckpt)} if ckpt is not None
               else {"source": "random-init", "seed": 0})
    art = out_dir / f"artifact-{DEMO_VARIANT}-{resolution}-host"
    if reusable_artifact(art, DEMO_VARIANT, resolution, "host", weights):
        say(f"artifact  {art} (reused)")
    else:
        say(f"compiling LightAVSeg-{DEMO_VARIANT} {resolution}x{resolution} for the host "
            "(a minute or two) ...")
        compile_model(art, resolution, ckpt)
        say(f"artifact  {art}")

    from edgeavs.segment import ArtifactPredictor, Segmenter

    masks: list = []

    class Recording(Segmenter):
        def predict(self, rgb, waveform):
            mask, latency = super().predict(rgb, waveform)
            masks.append(mask)
            return mask, latency

    video = out_dir / "clip_seg.mp4"
    summary = Recording(ArtifactPredictor(art, threads=threads)).run(clip, out=video)
    lat = summary["model_latency_ms"]
    say(f"segmented {summary['frames']} frames: model {lat['median']:.1f} ms median, "
        f"{summary['end_to_end_fps']:.1f} frames/s end to end")
    scores = mask_scores(masks, truth)
    summary["demo"] = {"schedule": schedule, "resolution": resolution,
                       "weights": str(ckpt) if ckpt is not None else "random-init", **scores}
    write_json(out_dir / "summary.json", summary)
    write_json(out_dir / "schedule.json", schedule)
    say(f"accuracy  M_J {scores['M_J']:.3f} on this clip (mean IoU of the masks with the shape heard "
        f"longest in the model's 1-s audio window); IoU > 0.5 on {scores['frames_iou_over_0.5']}/"
        f"{scores['frames']} frames")
    if ckpt is None:
        say("note      the model is UNTRAINED (random weights), so the masks are meaningless; "
            "drop --random-weights to use the embedded trained checkpoint")
    say(f"overlay   {video}")
    return summary


def train_checkpoint(out_dir: Path, ckpt: Path, steps: int, resolution: int) -> None:
    """A short training of the tiny model on synthetic S4 clips (``edgeavs.train``), written to
    ``ckpt``. Random initial weights and a few hundred steps give rough masks at best; the
    point is the path from training to a compiled artifact."""
    import shutil
    import sys

    from edgeavs.data.synth import make_synthetic
    from edgeavs.train import TrainConfig, train

    data = out_dir / "synth-s4"
    if not data.is_dir():
        make_synthetic(data, task="s4", clips=48, seed=0, size=resolution)
    run = out_dir / "train-run"
    shutil.rmtree(run, ignore_errors=True)
    cfg = TrainConfig(data=str(data), out=str(run), task="s4", variant=DEMO_VARIANT, epochs=100000,
                      batch_size=4, size=resolution, seed=0, num_workers=0, device="cpu",
                      max_steps=int(steps), progress=sys.stderr.isatty())
    train(cfg)
    best = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    from edgeavs.model import load_checkpoint, save_checkpoint

    save_checkpoint(load_checkpoint(best, variant=DEMO_VARIANT), ckpt)  # weights only


def compile_model(out, resolution: int, checkpoint=None) -> dict:
    """The one call into the compiler."""
    from edgeavs.compiler import compile_artifact

    return compile_artifact(out, target="host", variant=DEMO_VARIANT, checkpoint=checkpoint,
                            resolution=str(resolution))
