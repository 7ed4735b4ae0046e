"""The ``edgeavs demo`` job: the README's main path on an embedded clip, no downloads.

:func:`run_demo` synthesises a short clip with sound (:func:`edgeavs.data.synth.demo_clip`: the
synthetic categories moving about, one of them sounding at a time), optionally trains the tiny
model briefly on synthetic S4 data (:func:`train_checkpoint`), compiles LightAVSeg-tiny for the
host (or reuses a valid artifact for the same variant, resolution, target and weights), segments
the clip and reports where the overlay video is, one line at a time through ``say``.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeavs.errors import EdgeAVSError

DEMO_VARIANT = "tiny"
DEMO_RESOLUTION = 96
CLIP_NAME = "clip.mp4"
CHECKPOINT_NAME = "tiny.pt"


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


def run_demo(out_dir, resolution: int = DEMO_RESOLUTION, seconds: float = 6.0,
             threads: int | None = None, train_steps: int = 0, say=print) -> dict:
    """Clip -> artifact (compiled or reused) -> overlay video, all under ``out_dir``."""
    from edgeavs.compiler.artifact import file_sha256

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgeAVSError(f"-o {out_dir}: exists and is not a directory")
    if not out_dir.absolute().parent.is_dir():
        raise EdgeAVSError(f"-o {out_dir}: directory {out_dir.parent} does not exist")
    out_dir.mkdir(exist_ok=True)

    from edgeavs.data.synth import demo_clip

    clip = out_dir / CLIP_NAME
    schedule = demo_clip(clip, seconds=seconds)
    say(f"clip      {clip} ({seconds:g} s; sounding: "
        + ", ".join(f"{s['category']} {s['start']:g}-{s['end']:g} s" for s in schedule) + ")")

    ckpt = out_dir / CHECKPOINT_NAME
    if train_steps:
        say(f"training  LightAVSeg-{DEMO_VARIANT} for {train_steps} steps on synthetic S4 data ...")
        train_checkpoint(out_dir, ckpt, train_steps, resolution)
    trained = ckpt.is_file()
    weights = ({"source": "checkpoint", "checkpoint_sha256": file_sha256(ckpt)} if trained
               else {"source": "random-init", "seed": 0})
    say(f"weights   {ckpt}" if trained else "weights   random init (seed 0)")
    art = out_dir / f"artifact-{DEMO_VARIANT}-{resolution}-host"
    if reusable_artifact(art, DEMO_VARIANT, resolution, "host", weights):
        say(f"artifact  {art} (reused)")
    else:
        say(f"compiling LightAVSeg-{DEMO_VARIANT} {resolution}x{resolution} for the host "
            "(a minute or two) ...")
        compile_model(art, resolution, ckpt if trained else None)
        say(f"artifact  {art}")

    from edgeavs.segment import ArtifactPredictor, segment_video

    video = out_dir / "clip_seg.mp4"
    summary = segment_video(clip, ArtifactPredictor(art, threads=threads), out=video,
                            json_path=out_dir / "summary.json")
    (out_dir / "schedule.json").write_text(json.dumps(schedule, indent=1) + "\n")
    lat = summary["model_latency_ms"]
    say(f"segmented {summary['frames']} frames: model {lat['median']:.1f} ms median, "
        f"{summary['end_to_end_fps']:.1f} frames/s end to end")
    if not trained:
        say(f"note      the model is UNTRAINED (random weights), so the masks are meaningless; "
            f"put a trained LightAVSeg-{DEMO_VARIANT} checkpoint at {ckpt} and run the demo again")
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
