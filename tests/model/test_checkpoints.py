"""Official checkpoints load unchanged: key/shape identity with the official layouts kept in
tests/data/checkpoints, and checkpoints synthesised from those layouts (official nesting) load strictly."""

import pytest
import torch

from edgeavs import build_model, load_audio_weights, load_checkpoint, load_visual_weights, save_checkpoint
from edgeavs.errors import EdgeAVSError
from edgeavs.model.weights import audio_state_dict_from_official, visual_state_dict_from_official

from .conftest import OFFICIAL, reference_layout


def _fake_tensors(layout: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in layout.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(1000, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


@pytest.mark.parametrize("variant", list(OFFICIAL))
def test_visual_keys_and_shapes_equal_official_layout(variant):
    ref = reference_layout(OFFICIAL[variant])
    expected = {k: tuple(s) for k, s in ref["state_dict"].items() if not k.startswith("linear.")}
    model = build_model(variant, seed=0)
    ours = {k: tuple(v.shape) for k, v in model.visual.state_dict().items()}
    assert ours == expected
    assert sum(p.numel() for p in model.visual.parameters()) == ref["info"]["backbone_params"]


def test_audio_keys_and_shapes_equal_official_layout():
    ref = reference_layout("panns_mobilenetv2.json")
    expected = {k: tuple(s) for k, s in ref["state_dict"].items() if not k.startswith("fc_audioset.")}
    model = build_model("tiny", seed=0)
    ours = {k: tuple(v.shape) for k, v in model.audio.state_dict().items()}
    assert ours == expected
    info = ref["info"]
    n = sum(p.numel() for p in model.audio.parameters())
    assert n == info["total_params_incl_frozen_stft_mel"] - info["fc_audioset_params"]


@pytest.mark.parametrize("variant", ["tiny", "large"])
def test_synthesised_official_seaformer_checkpoint_loads_strictly(tmp_path, variant):
    ref = reference_layout(OFFICIAL[variant])
    ema = _fake_tensors(ref["state_dict"], seed=1)
    plain = _fake_tensors(ref["state_dict"], seed=2)
    path = tmp_path / "seaformer.pth"
    torch.save({"state_dict": plain, "state_dict_ema": ema, "epoch": 600}, path)
    model = build_model(variant, seed=0)
    load_visual_weights(model, path)
    # The EMA weights are preferred, the classifier is dropped.
    for k, v in model.visual.state_dict().items():
        torch.testing.assert_close(v, ema[k], rtol=0, atol=0)


def test_seaformer_without_ema_uses_state_dict(tmp_path):
    ref = reference_layout(OFFICIAL["tiny"])
    plain = _fake_tensors(ref["state_dict"], seed=3)
    torch.save({"state_dict": plain}, tmp_path / "s.pth")
    model = build_model("tiny", seed=0)
    load_visual_weights(model, tmp_path / "s.pth")
    k = "smb1.stem_block.0.c.weight"
    torch.testing.assert_close(model.visual.state_dict()[k], plain[k], rtol=0, atol=0)


def test_synthesised_official_panns_checkpoint_loads_strictly(tmp_path):
    ref = reference_layout("panns_mobilenetv2.json")
    sd = _fake_tensors(ref["state_dict"], seed=4)
    torch.save({"model": sd, "iteration": 1}, tmp_path / "MobileNetV2_mAP=0.383.pth")
    model = build_model("tiny", seed=0)
    load_audio_weights(model, tmp_path / "MobileNetV2_mAP=0.383.pth")
    for k, v in model.audio.state_dict().items():
        torch.testing.assert_close(v, sd[k], rtol=0, atol=0)
    assert not any(p.requires_grad for p in model.audio.parameters())


def test_mismatched_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    ref = reference_layout(OFFICIAL["small"])
    torch.save({"state_dict": _fake_tensors(ref["state_dict"], 0)}, tmp_path / "small.pth")
    model = build_model("tiny", seed=0)
    with pytest.raises(EdgeAVSError) as exc:
        load_visual_weights(model, tmp_path / "small.pth")
    msg = str(exc.value)
    assert "\n" not in msg and "small.pth" in msg and "does not fit the SeaFormer backbone" in msg

    sd = _fake_tensors(reference_layout(OFFICIAL["tiny"])["state_dict"], 0)
    sd.pop("smb1.stem_block.0.c.weight")
    sd["extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, tmp_path / "broken.pth")
    with pytest.raises(EdgeAVSError) as exc:
        load_visual_weights(model, tmp_path / "broken.pth")
    msg = str(exc.value)
    assert "missing keys ['smb1.stem_block.0.c.weight']" in msg
    assert "unexpected keys ['extra.weight']" in msg


def test_mapping_functions_are_pure():
    obj = {"state_dict_ema": {"module.a": 1, "linear.weight": 2}, "state_dict": {"b": 3}}
    assert visual_state_dict_from_official(obj) == {"a": 1}
    assert audio_state_dict_from_official({"model": {"x": 1, "fc_audioset.bias": 2}}) == {"x": 1}


def test_not_a_checkpoint_is_a_one_line_error(tmp_path):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"definitely not a pickle")
    model = build_model("tiny", seed=0)
    with pytest.raises(EdgeAVSError) as exc:
        load_audio_weights(model, bad)
    assert str(exc.value).startswith(f"{bad}: not a loadable PyTorch checkpoint") and "\n" not in str(exc.value)
    with pytest.raises(EdgeAVSError, match="no such checkpoint file"):
        load_audio_weights(model, tmp_path / "missing.pth")


def test_edgeavs_checkpoint_roundtrip_and_variant_check(tmp_path):
    model = build_model("tiny", seed=5)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(model, path, epoch=3)
    obj = torch.load(path, weights_only=True)
    assert obj["variant"] == "tiny" and obj["epoch"] == 3
    again = load_checkpoint(path, variant="tiny")
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    with pytest.raises(EdgeAVSError, match="checkpoint is LightAVSeg-tiny, not the requested variant large"):
        load_checkpoint(path, variant="large")


def test_official_checkpoint_is_not_an_edgeavs_checkpoint(tmp_path):
    torch.save({"model": {}}, tmp_path / "panns.pth")
    with pytest.raises(EdgeAVSError, match="not an edgeavs checkpoint"):
        load_checkpoint(tmp_path / "panns.pth")
