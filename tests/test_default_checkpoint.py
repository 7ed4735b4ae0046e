"""The embedded default checkpoint (``edgeavs.model.default``): what is stored, how the rest is
rebuilt from the seed, and the one-line errors when either does not hold."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from edgeavs.errors import EdgeAVSError
from edgeavs.model import build_model, default


@pytest.fixture(scope="module")
def model():
    return default.load_default()


def test_stored_part_is_what_training_changed_and_the_rest_is_the_seed(model):
    rec = default.recipe()
    state = model.state_dict()
    trained = {k: v for k, v in state.items() if not k.startswith(default.FROZEN_PREFIX)}
    params = dict(model.named_parameters())
    assert rec["stored_parameters"] == sum(v.numel() for k, v in trained.items() if k in params)
    assert rec["stored_parameters"] < 0.35 * sum(p.numel() for p in model.parameters())  # ~1.9M of 6.6M
    fresh = build_model(rec["variant"], seed=rec["seed"]).state_dict()
    for k, v in state.items():
        if k.startswith(default.FROZEN_PREFIX):
            assert torch.equal(v, fresh[k]), k
    with np.load(default.DEFAULT_DIR / f"{default.DEFAULT_NAME}.npz", allow_pickle=False) as z:
        for k in z.files:  # float16 parameters widen exactly to the model's float32
            assert torch.equal(torch.from_numpy(np.array(z[k])).to(state[k].dtype), state[k]), k
            assert (z[k].dtype == np.float16) == (k in params and state[k].is_floating_point())


def test_recipe_says_how_it_was_trained_and_what_it_scores():
    rec = default.recipe()
    t = rec["training"]
    assert t["commands"][0].startswith("edgeavs data synth") and "edgeavs train" in t["commands"][1]
    assert "--max-steps" in t["commands"][1] and t["steps"] > 0 and t["best_epoch"] >= 1
    assert f"--size {t['size']}" in t["commands"][1] and f"--seed {t['data_seed']}" in t["commands"][0]
    for split in ("test", "val"):
        s = rec["scores"][split]
        assert 0.0 <= s["M_J"] <= 1.0 and 0.0 <= s["M_F"] <= 1.0 and s["frames"] > 0
        # float16 storage costs at most a few thousandths of M_J against the float32 best.pt
        assert abs(s["M_J"] - rec["scores_float32"][split]["M_J"]) < 0.01


def _copy_dir(tmp_path, monkeypatch):
    d = tmp_path / "default"
    shutil.copytree(default.DEFAULT_DIR, d)
    monkeypatch.setattr(default, "DEFAULT_DIR", d)
    return d


def test_a_damaged_embedded_file_is_one_line(tmp_path, monkeypatch):
    d = _copy_dir(tmp_path, monkeypatch)
    npz = d / f"{default.DEFAULT_NAME}.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(EdgeAVSError, match="sha256 differs .*reinstall") as e:
        default.load_default()
    assert "\n" not in str(e.value)


def test_another_initialisation_of_the_audio_encoder_is_named(tmp_path, monkeypatch):
    import json

    d = _copy_dir(tmp_path, monkeypatch)
    meta = d / f"{default.DEFAULT_NAME}.json"
    rec = json.loads(meta.read_text())
    rec["seed"] += 1  # the same as a torch release whose init draws other numbers
    meta.write_text(json.dumps(rec))
    with pytest.raises(EdgeAVSError, match="audio encoder rebuilt from seed .* does not match"):
        default.load_default()


def test_missing_embedded_checkpoint_lists_what_is_there():
    with pytest.raises(EdgeAVSError, match=f"not in this installation .*{default.DEFAULT_NAME}"):
        default.recipe("no-such")


def test_pack_refuses_a_model_whose_audio_encoder_trained(tmp_path):
    m = build_model("tiny", seed=0)
    with torch.no_grad():
        next(m.audio.parameters()).add_(1e-3)
    with pytest.raises(EdgeAVSError, match="not the seed-0 random init"):
        default.pack(m, tmp_path / "x.npz", variant="tiny", fusion="lightavseg", seed=0)
    assert not (tmp_path / "x.npz").exists()


def test_pack_then_load_round_trip(tmp_path, monkeypatch):
    """pack() writes what load_default() rebuilds (float16 rounding of the stored parameters only)."""
    from edgeavs.io.atomic import write_json

    monkeypatch.setattr(default, "DEFAULT_DIR", tmp_path)
    m = build_model("tiny", seed=3)
    fields = default.pack(m, tmp_path / "t.npz", variant="tiny", fusion="lightavseg", seed=3)
    write_json(tmp_path / "t.json", {"format": default.RECIPE_FORMAT, **fields})
    back = default.load_default("t").state_dict()
    for k, v in m.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(back[k], v, rtol=2 ** -10, atol=2 ** -24), k  # one float16 ulp
        else:
            assert torch.equal(back[k], v), k


def test_written_copy_is_an_ordinary_checkpoint_that_knows_its_size(tmp_path):
    from edgeavs.demo import checkpoint_size
    from edgeavs.model import load_checkpoint

    copy = default.write_checkpoint(tmp_path / "d.pt")
    assert default.is_copy(copy)
    assert checkpoint_size(copy) == default.recipe()["training"]["size"]
    assert load_checkpoint(copy, variant="tiny").cfg.name == "tiny"
    other = tmp_path / "other.pt"
    from edgeavs.model import save_checkpoint

    save_checkpoint(build_model("tiny", seed=0), other)
    assert not default.is_copy(other)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert not default.is_copy(tmp_path / "junk.pt")


def test_info_embedded_prints_the_recipe():
    import json

    from click.testing import CliRunner

    from cli import main

    rec = default.recipe()
    r = CliRunner().invoke(main, ["info", "--embedded"])
    assert r.exit_code == 0, r.output
    assert rec["training"]["commands"][1] in r.output
    assert f"test M_J {rec['scores']['test']['M_J']:.4f}" in r.output
    r = CliRunner().invoke(main, ["info", "--embedded", "--json"])
    assert json.loads(r.stdout)["npz_sha256"] == rec["npz_sha256"]
