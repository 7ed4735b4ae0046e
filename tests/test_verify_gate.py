"""``edgeavs verify`` as a CI gate: planted wrong builds fail (exit 1), honest builds pass on random
and real inputs (LightAVSeg-T at 64x64, host).

A planted build is compiled from a copy of the model with one thing changed, and its manifest
then claims the honest weights (random init, seed 0), so that verify sees what a build whose
library silently computes something else looks like: the right files, the right hashes, the
wrong numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import main
from edgeavs.compiler.artifact import MANIFEST, write_manifest
from edgeavs.verify import TOLERANCES
from tests.compiler.artifacts import RESOLUTION, _workdir, tiny_artifact

SIDE = int(RESOLUTION)


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _plant(model, kind: str) -> None:
    mods = dict(model.named_modules())
    with torch.no_grad():
        if kind == "bn":  # ONE BatchNorm channel's running variance, 2 % off
            mods["visual.smb1.layer1.conv.0.bn"].running_var[0] *= 1.02
        else:  # the last conv's bias, 1e-3 off
            mods["head.cls_seg"].bias += 1e-3


def _planted_artifact(kind: str):
    from edgeavs.model import save_checkpoint
    from edgeavs.reference import build_reference_model

    base = _workdir() / f"planted-{kind}"
    out = base / "artifact"
    if not out.exists():
        base.mkdir(parents=True, exist_ok=True)
        model = build_reference_model("tiny", seed=0)
        _plant(model, kind)
        save_checkpoint(model, base / "planted.pt")
        r = _run("compile", "--target", "host", "--variant", "tiny", "--resolution", RESOLUTION,
                 "--checkpoint", base / "planted.pt", "-q", "-o", out)
        assert r.exit_code == 0, r.output
        manifest = json.loads((out / MANIFEST).read_text())
        honest = json.loads((tiny_artifact() / MANIFEST).read_text())
        manifest["weights"] = honest["weights"]  # claims: random init, seed 0
        write_manifest(out, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    return out


def _real_inputs(path):
    """Frames and one-second audio windows of a synthetic AVSBench clip, read with the project's
    PNG/WAV loaders (structured images and tones, not noise)."""
    from edgeavs.data.synth import make_synthetic
    from edgeavs.io.audio import load_audio, split_windows
    from edgeavs.io.frames import load_frame, normalize

    root = path.parent / "synth"
    make_synthetic(root, task="s4", clips=3, seed=5, size=SIDE)
    pngs = [p for p in sorted(root.rglob("*.png")) if "mask" not in str(p.parent).lower()
            and "gt" not in str(p.parent).lower()][:3]
    wav = sorted(root.rglob("*.wav"))[0]
    frames = np.stack([normalize(load_frame(p, size=(SIDE, SIDE))) for p in pngs]).astype("float32")
    waves = split_windows(load_audio(wav), 5)[:3].astype("float32")
    np.savez(path, frames=frames, waveform=waves)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bn", "bias"])
def test_planted_wrong_build_fails(kind, tmp_path):
    art = _planted_artifact(kind)
    report = tmp_path / "r.json"
    r = _run("verify", art, "--seeds", 3, "--report", report)
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1] == "FAIL (3 input(s))"
    rep = json.loads(report.read_text())
    tol = TOLERANCES["float32"]
    assert not rep["passed"]
    for case in rep["cases"]:
        logits = case["outputs"]["logits"]
        assert "rel_l2" in logits["failed"]
        # the design margin: a planted change lands >= 3x outside the bound
        assert logits["rel_l2"] >= 3 * tol["rel_l2"], logits


@pytest.mark.slow
def test_honest_build_passes_on_random_and_real_inputs(tmp_path):
    inputs = _real_inputs(tmp_path / "real.npz")
    report = tmp_path / "r.json"
    r = _run("verify", tiny_artifact(), "--seeds", 3, "--inputs", inputs, "--report", report)
    assert r.exit_code == 0, r.output
    rep = json.loads(report.read_text())
    assert [c["input"] for c in rep["cases"]] == ["seed 0", "seed 1", "seed 2",
                                                 "real.npz[0]", "real.npz[1]", "real.npz[2]"]
    assert all(c["pass"] for c in rep["cases"])
    # real frames have a non-empty reference mask somewhere: the IoU bound was exercised
    assert any(c["outputs"]["logits"]["mask_iou"] is not None for c in rep["cases"])
