"""``edgeavs demo``: the README's main job on an embedded clip, no downloads.

Synthesise a short clip with sound (the synthetic categories of :mod:`edgeavs.data.synth`
moving about, one of them sounding at a time), compile LightAVSeg-tiny for the host (or reuse a
valid artifact for the same variant, resolution, target and weights), segment the clip and
print where the overlay video is. :func:`demo_clip` also makes the benchmark's clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from edgeavs.errors import EdgeAVSError

DEMO_VARIANT = "tiny"
DEMO_RESOLUTION = 96
CLIP_NAME = "clip.mp4"
CHECKPOINT_NAME = "tiny.pt"
AUDIO_RATE = 16000  # the synthetic sounds' rate


def demo_clip(path, seconds: float = 6.0, width: int = 192, height: int = 144, fps: int = 10,
              categories=(0, 1, 2), switch_s: float | None = None, seed: int = 0) -> list[dict]:
    """Write an mp4 of ``categories`` (indices into ``synth.CATEGORIES``) bouncing over a
    textured background, with the sound of one of them at a time: the sounding one changes
    every ``switch_s`` seconds (default: each category once), in turn. Frames are drawn and
    encoded one at a time (a long 1280x720 clip needs no more memory than a short one), the
    audio is made whole (small); returns the sounding schedule
    ``[{"start": s, "end": s, "category": name}, ...]``."""
    from edgeavs.data.synth import CATEGORIES, CATEGORY_NAMES, _background, _shape_mask, _sound
    from edgeavs.video import write_clip

    rng = np.random.default_rng(seed)
    n_frames = int(round(seconds * fps))
    side = max(width, height)
    bg = _background(rng, side)[:height, :width]
    k = len(categories)
    switch_s = switch_s or seconds / k
    radius = rng.uniform(0.12, 0.16, k) * min(width, height)
    pos = np.stack([rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)], 1)
    vel = rng.uniform(-0.25, 0.25, (k, 2)) * min(width, height)  # pixels per second
    colours = [np.asarray(CATEGORIES[c][1], np.float32) for c in categories]

    def frames():
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        noise = np.random.default_rng(seed + 1)
        for i in range(n_frames):
            t = i / fps
            img = bg + noise.normal(0.0, 5.0, bg.shape).astype(np.float32)
            for j, c in enumerate(categories):
                lo, hi = radius[j], np.array([width, height]) - radius[j]
                p = pos[j] + vel[j] * t  # bounce off the borders
                span = hi - lo
                p = lo + span - np.abs(np.mod(p - lo, 2 * span) - span)
                inside = _shape_mask(CATEGORY_NAMES[c], (yy - p[1]) / radius[j], (xx - p[0]) / radius[j])
                shade = np.clip(1.0 - 0.25 * (yy - p[1]) / radius[j], 0.7, 1.3)
                img[inside] = colours[j] * shade[inside][:, None]
            yield np.clip(np.rint(img), 0, 255).astype(np.uint8)

    schedule, chunks = [], []
    n_audio = int(round(seconds * AUDIO_RATE))
    start = 0.0
    turn = 0
    while start < seconds:
        end = min(start + switch_s, seconds)
        cat = categories[turn % k]
        need = int(round(end * AUDIO_RATE)) - int(round(start * AUDIO_RATE))
        x = np.concatenate([_sound(cat, rng) for _ in range(need // (5 * AUDIO_RATE) + 1)])[:need]
        ramp = np.minimum(1.0, np.minimum(np.arange(need), np.arange(need)[::-1]) / 160.0)
        chunks.append(x * ramp)
        schedule.append({"start": round(start, 3), "end": round(end, 3), "category": CATEGORY_NAMES[cat]})
        start, turn = end, turn + 1
    audio = np.concatenate(chunks)[:n_audio]
    audio = audio + rng.standard_normal(audio.shape) * 0.05
    audio = (0.5 * audio / np.max(np.abs(audio))).astype(np.float32)
    write_clip(path, frames(), audio, fps, AUDIO_RATE)
    return schedule


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


@click.command("demo", short_help="Synthesise a clip, compile the tiny model, segment the clip.")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("edgeavs-demo"),
              show_default=True, metavar="OUT_DIR", help="Directory for the clip, the artifact and the overlay video.")
@click.option("--resolution", type=click.IntRange(min=32), default=DEMO_RESOLUTION, show_default=True,
              help="Model input side (a multiple of 32).")
@click.option("--seconds", type=click.FloatRange(min=1.0, max=60.0), default=6.0, show_default=True,
              help="Length of the synthesised clip.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the model.")
@click.option("--train-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="First train the tiny model for N steps on synthetic data (CPU) and write "
                   "OUT_DIR/tiny.pt; 0 uses OUT_DIR/tiny.pt if present, else random weights.")
def demo(out_dir, resolution, seconds, threads, train_steps):
    """Run the whole job on an embedded example, no downloads: synthesise a clip with sound
    (shapes of the synthetic categories, one sounding at a time), compile LightAVSeg-tiny for
    this machine (or reuse the artifact already in OUT_DIR), segment the clip and print where
    the overlay video is. Uses OUT_DIR/tiny.pt if it holds a trained checkpoint; otherwise the
    model is untrained and says so."""
    if resolution % 32:
        raise EdgeAVSError(f"--resolution {resolution}: must be a multiple of 32")
    from edgeavs.compiler.build import check_resolution
    from edgeavs.io.atomic import check_writable

    check_resolution(resolution, "tiny")  # the size bound, before any clip or training

    check_writable(out_dir, "-o", kind="dir")
    run_demo(out_dir, resolution=resolution, seconds=seconds, threads=threads,
             train_steps=train_steps, say=lambda m: click.echo(m))
