"""``edgeavs demo`` with the embedded default checkpoint segments the sounding shape.

The demo runs once (module fixture: compile LightAVSeg-T at the checkpoint's 128x128, the default 6-s
clip, each of three shapes sounding in turn). The test then segments the demo's clip again with the
demo's artifact (``--masks`` path, independent of the demo's own scoring) and scores each frame's
mask against the sounding shape drawn by :func:`edgeavs.data.synth.demo_clip` with the same seed
(the shape heard longest in the 1-s audio window the model gets): IoU > 0.5 on most frames. The same clip through a random-init LightAVSeg-T (PyTorch eager)
reaches that on no more than a few frames, so the bar measures training, not luck.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgeavs.data.synth import demo_clip

SECONDS = 6.0  # the demo's default: each of three shapes sounds for 2 s


def _truth(tmp_path):
    truth = []
    demo_clip(tmp_path / "again.mp4", seconds=SECONDS, truth=truth, truth_window_s=1.0)
    return truth


def _iou(mask, gt):
    union = np.logical_or(mask, gt).sum()
    return float(np.logical_and(mask, gt).sum() / union) if union else 1.0


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    import edgeavs.demo as demo

    out = tmp_path_factory.mktemp("demo") / "out"
    lines = []
    summary = demo.run_demo(out, seconds=SECONDS, threads=2, say=lines.append)
    return out, summary, lines


def test_demo_masks_overlap_the_sounding_shape(demo_run, tmp_path):
    from edgeavs.model import default
    from edgeavs.segment import ArtifactPredictor, segment_video

    out, summary, lines = demo_run
    rec = default.recipe()
    size = rec["training"]["size"]
    art = out / f"artifact-tiny-{size}-host"
    assert any(line.startswith("weights   embedded LightAVSeg-tiny") for line in lines)
    assert summary["demo"]["resolution"] == size

    masks_dir = tmp_path / "masks"
    segment_video(out / "clip.mp4", ArtifactPredictor(art, threads=2), masks_dir=masks_dir)
    truth = _truth(tmp_path)
    pngs = sorted(masks_dir.glob("mask_*.png"))
    assert len(pngs) == len(truth) == summary["frames"]
    ious = [_iou(np.asarray(Image.open(p)) > 127, gt) for p, gt in zip(pngs, truth)]
    over = sum(i > 0.5 for i in ious)
    assert over > 0.5 * len(ious), f"IoU > 0.5 on only {over}/{len(ious)} frames: {ious}"
    # the demo's own report is the same measurement (its masks are the same artifact's)
    assert summary["demo"]["M_J"] == pytest.approx(float(np.mean(ious)), abs=1e-3)
    assert any(line.startswith(f"accuracy  M_J {summary['demo']['M_J']:.3f}") for line in lines)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["demo"]["frames_iou_over_0.5"] == over


def test_a_random_model_does_not_pass_the_same_bar(demo_run, tmp_path):
    from edgeavs.model import build_model, save_checkpoint
    from edgeavs.model.default import recipe
    from edgeavs.segment import Segmenter
    from edgeavs.segment_torch import TorchPredictor

    out, _, _ = demo_run
    ckpt = tmp_path / "random.pt"
    save_checkpoint(build_model("tiny", seed=0), ckpt)
    size = recipe()["training"]["size"]
    masks = []

    class Recording(Segmenter):
        def predict(self, rgb, waveform):
            mask, lat = super().predict(rgb, waveform)
            masks.append(mask)
            return mask, lat

    Recording(TorchPredictor(ckpt, resolution=size, threads=2)).run(out / "clip.mp4")
    ious = [_iou(m, gt) for m, gt in zip(masks, _truth(tmp_path))]
    assert sum(i > 0.5 for i in ious) <= 0.1 * len(ious), ious


def test_demo_reuses_its_default_copy_and_artifact(demo_run):
    """A second run finds this installation's copy of the default and the artifact built from it."""
    import edgeavs.demo as demo
    from edgeavs.model import default

    out, _, _ = demo_run
    copy = out / demo.DEFAULT_COPY_NAME
    assert default.is_copy(copy)
    before = copy.stat().st_mtime_ns
    lines = []
    demo.run_demo(out, seconds=SECONDS, threads=2, say=lines.append)
    assert copy.stat().st_mtime_ns == before
    assert any(line.endswith("(reused)") for line in lines)
