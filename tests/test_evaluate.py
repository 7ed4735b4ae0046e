"""edgeavs evaluate: JSON output, the shuffled-audio control, input dumps, one-line errors."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import main
from edgeavs.errors import EdgeAVSError
from edgeavs.evaluate import AudioShuffled, derangement, evaluate_model
from edgeavs.metrics import SegMetrics
from edgeavs.model import build_model, save_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def s4_root(tmp_path_factory):
    from edgeavs.data.synth import make_synthetic

    root = tmp_path_factory.mktemp("synth") / "s4"
    counts = make_synthetic(root, task="s4", clips=10, seed=1, size=SIZE)
    assert counts["test"] >= 2 and counts["val"] >= 1
    return str(root)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(build_model("tiny", seed=3), path, epoch=0, config={"size": SIZE})
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _test_set(root):
    from edgeavs.data.avsbench import make_dataset

    return make_dataset(root, "s4", "test", size=SIZE)


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_derangement_has_no_fixed_point_and_is_reproducible():
    for n in (2, 3, 7, 50):
        p = derangement(n, seed=5)
        assert sorted(p) == list(range(n))
        assert all(p[i] != i for i in range(n))
        assert p == derangement(n, seed=5)
    assert derangement(50, seed=0) != derangement(50, seed=1)


def test_shuffle_audio_gives_each_clip_another_clips_audio(s4_root):
    ds = _test_set(s4_root)
    sh = AudioShuffled(ds, seed=0)
    for i in range(len(ds)):
        j = sh.perm[i]
        assert j != i
        item = sh[i]
        assert torch.equal(item["audio"], ds[j]["audio"])
        assert not torch.equal(item["audio"], ds[i]["audio"])
        assert torch.equal(item["frames"], ds[i]["frames"]) and item["name"] == ds[i]["name"]
        assert item["audio_from"] == ds[j]["name"]


def test_evaluate_json_matches_the_metrics_of_the_model(s4_root, ckpt):
    r = CliRunner().invoke(main, ["evaluate", "--data", s4_root, "--task", "s4", "--checkpoint", ckpt,
                                  "--device", "cpu", "--json"])
    out = _json(r)
    ds = _test_set(s4_root)
    assert out["clips"] == len(ds) and out["frames"] == 5 * len(ds)
    assert out["shuffle_audio"] is False and out["split"] == "test" and out["size"] == SIZE
    # the same numbers by hand, one clip at a time
    model = build_model("tiny", seed=3).eval()
    m = SegMetrics()
    with torch.no_grad():
        for i in range(len(ds)):
            it = ds[i]
            m.update(model(it["frames"], it["audio"]), it["masks"], it["valid"], clip_ids=[i])
    ref = m.compute()
    assert out["M_J"] == pytest.approx(ref["M_J"], abs=1e-6)
    assert out["M_F"] == pytest.approx(ref["M_F"], abs=1e-6)

    r = CliRunner().invoke(main, ["evaluate", "--data", s4_root, "--task", "s4", "--checkpoint", ckpt,
                                  "--device", "cpu", "--json", "--shuffle-audio"])
    sh = _json(r)
    assert sh["shuffle_audio"] is True and sh["clips"] == out["clips"]
    model_sh = evaluate_model(model, AudioShuffled(ds, seed=0))
    assert sh["M_J"] == pytest.approx(model_sh["M_J"], abs=1e-6)

    r = CliRunner().invoke(main, ["evaluate", "--data", s4_root, "--task", "s4", "--checkpoint", ckpt,
                                  "--device", "cpu"])
    assert r.exit_code == 0
    assert r.output.strip().splitlines()[-1].strip().startswith(f"s4 test: M_J {out['M_J']:.4f}  M_F ")


def test_dump_inputs_writes_what_the_model_sees(s4_root, ckpt, tmp_path):
    path = tmp_path / "inputs.npz"
    r = CliRunner().invoke(main, ["evaluate", "--data", s4_root, "--task", "s4", "--checkpoint", ckpt,
                                  "--device", "cpu", "--json", "--shuffle-audio", "--dump-inputs", str(path),
                                  "--dump-clips", "2"])
    out = _json(r)
    assert out["inputs"] == {"path": str(path), "clips": 2, "frames": 10}
    z = np.load(path)
    assert set(z.files) == {"frames", "waveform"}
    assert z["frames"].shape == (10, 3, SIZE, SIZE) and z["frames"].dtype == np.float32
    assert z["waveform"].shape == (10, 32000) and z["waveform"].dtype == np.float32
    ds = _test_set(s4_root)
    sh = AudioShuffled(ds, seed=0)
    np.testing.assert_array_equal(z["frames"][:5], ds[0]["frames"].numpy())
    np.testing.assert_array_equal(z["waveform"][5:], ds[sh.perm[1]]["audio"].numpy())


def test_one_line_errors(s4_root, ckpt, tmp_path):
    runner = CliRunner()
    missing = tmp_path / "none.pt"
    r = runner.invoke(main, ["evaluate", "--data", s4_root, "--task", "s4", "--checkpoint", str(missing)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == f"Error: {missing}: no such checkpoint file"
    r = runner.invoke(main, ["evaluate", "--data", str(tmp_path / "nodata"), "--task", "s4", "--checkpoint", ckpt])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == f"Error: {tmp_path / 'nodata'}: dataset root not found"
    r = runner.invoke(main, ["evaluate", "--data", s4_root, "--task", "s4", "--checkpoint", ckpt,
                             "--shuffle-audio", "--limit", "1", "--json"])
    assert _json(r)["clips"] == 1  # --limit cuts the evaluation, not the derangement
    with pytest.raises(EdgeAVSError, match="^--shuffle-audio: needs at least 2 clips, the split has 1$"):
        derangement(1)
