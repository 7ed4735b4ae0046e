"""edgeavs evaluate --artifact: M_J / M_F of the compiled build, against PyTorch's on the same split."""

import json

import pytest
from click.testing import CliRunner

from cli import main

SIZE = 64


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The embedded (trained) LightAVSeg-T checkpoint, a small synthetic S4 set at 64 and the
    checkpoint compiled for the host at 64."""
    from edgeavs.data.synth import make_synthetic
    from edgeavs.model.default import write_checkpoint

    tmp = tmp_path_factory.mktemp("precision-eval")
    ckpt = write_checkpoint(tmp / "tiny.pt")
    root = tmp / "s4"
    counts = make_synthetic(root, task="s4", clips=12, seed=1, size=SIZE)
    assert counts["test"] >= 2
    art = tmp / "art"
    r = CliRunner().invoke(main, ["compile", "--target", "host", "--variant", "tiny", "--resolution", str(SIZE),
                                  "--checkpoint", str(ckpt), "-q", "-o", str(art)])
    assert r.exit_code == 0, r.output
    return {"ckpt": str(ckpt), "root": str(root), "art": str(art)}


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("split", ["test", "train"])
def test_artifact_metrics_match_pytorch(setup, split):
    """The compiled fp32 build and PyTorch score the same split alike. Tolerance: |ΔM_J|, |ΔM_F|
    <= 2e-3 (the fp32 build is ~1e-5 rel-L2 from PyTorch, so at most a few of the 64x64 pixels'
    logits sit close enough to 0 to flip; one flipped pixel moves a frame's IoU by < 1e-3)."""
    runner = CliRunner()
    common = ["evaluate", "--data", setup["root"], "--task", "s4", "--split", split, "--json"]
    torch_res = _json(runner.invoke(main, common + ["--checkpoint", setup["ckpt"], "--size", str(SIZE)]))
    art_res = _json(runner.invoke(main, common + ["--artifact", setup["art"], "--threads", "1"]))
    assert art_res["precision"] == "fp32" and art_res["size"] == SIZE and art_res["variant"] == "tiny"
    assert art_res["frames"] == torch_res["frames"] > 0 and art_res["clips"] == torch_res["clips"]
    assert 0.05 < torch_res["M_J"] < 1.0  # a trained model: not a degenerate score
    assert abs(art_res["M_J"] - torch_res["M_J"]) <= 2e-3
    assert abs(art_res["M_F"] - torch_res["M_F"]) <= 2e-3


@pytest.mark.slow
def test_artifact_process_is_torch_free_and_agrees_with_in_process_run(setup):
    import numpy as np

    from edgeavs.artifact_worker import ArtifactProcess
    from edgeavs.compiler.artifact import load_artifact
    from edgeavs.data.inputs import random_inputs

    frames, waveform = random_inputs(3, SIZE, SIZE)
    with ArtifactProcess(setup["art"], threads=1) as predict:
        assert predict.details["torch_loaded"] is False
        assert predict.input_size == (SIZE, SIZE)
        got = predict(np.concatenate([frames, frames]), np.concatenate([waveform, waveform]))
    want = load_artifact(setup["art"]).run(frames, waveform)
    assert got.shape == (2, 1, SIZE, SIZE)
    np.testing.assert_array_equal(got[:1], want)  # the same library on the same inputs: the same bits
    np.testing.assert_array_equal(got[1:], want)


@pytest.mark.slow
def test_artifact_errors_are_one_line(setup, tmp_path):
    runner = CliRunner()
    base = ["evaluate", "--data", setup["root"], "--task", "s4"]
    r = runner.invoke(main, base + ["--artifact", setup["art"], "--size", "128"])
    assert r.exit_code == 1 and "--size 128: the artifact" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, base + ["--artifact", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "not found" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, base + ["--artifact", setup["art"], "--checkpoint", setup["ckpt"]])
    assert r.exit_code == 2 and "one of --checkpoint" in r.output
    r = runner.invoke(main, base)
    assert r.exit_code == 2 and "one of --checkpoint" in r.output
    r = runner.invoke(main, base + ["--checkpoint", setup["ckpt"], "--threads", "2"])
    assert r.exit_code == 2 and "--threads applies to --artifact" in r.output
