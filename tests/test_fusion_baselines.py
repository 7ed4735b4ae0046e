"""The SPEC §9 baselines: TPAVI and AVSegFormer-style fusions around LightAVSeg's backbone,
audio encoder and head (tiny variant, small inputs)."""

import json

import pytest
import torch
from click.testing import CliRunner

from cli import main
from edgeavs.errors import EdgeAVSError
from edgeavs.model import FUSIONS, build_model
from edgeavs.model.fusion_tpavi import TPAVIBlock

_MODELS = {}


def _model(fusion):
    if fusion not in _MODELS:
        _MODELS[fusion] = build_model("tiny", fusion=fusion, seed=0).eval()
    return _MODELS[fusion]


def _inputs(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, h, w, generator=g), torch.randn(n, 32000, generator=g)


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_output_shapes(fusion, size):
    model = _model(fusion)
    frames, wave = _inputs(1, *size)
    with torch.no_grad():
        aux = model(frames, wave, return_aux=True)
    assert set(aux) == {"logits", "pyramid", "v_enc", "a_enc", "v_dec", "a_hat"}
    assert aux["logits"].shape == (1, 1, *size)
    assert torch.isfinite(aux["logits"]).all()
    # The head reads the interaction's output pyramid: same strides as the backbone's.
    assert [v.shape[2:] for v in aux["v_dec"]] == [v.shape[2:] for v in aux["pyramid"]]
    if fusion != "lightavseg":
        assert [v.shape[1] for v in aux["v_dec"]] == [256] * len(aux["pyramid"])
        assert aux["a_hat"] is None


@pytest.mark.parametrize("fusion", ["tpavi", "avsegformer"])
def test_gradients_reach_the_interaction_and_head(fusion):
    # eval(): a train-mode BN after the head's 1×1 conv cancels any per-channel constant,
    # which would zero the gradient of the coarsest level's LayerNorm bias by construction.
    model = build_model("tiny", fusion=fusion, seed=1).eval()
    if fusion == "tpavi":
        # W_z's BN starts at 0 (TPAVI starts as the identity), which blocks the gradient to
        # θ, φ, g; open it to check that they are wired in.
        for block in model.interaction.tpavi:
            torch.nn.init.ones_(block.W_z[1].weight)
    frames, wave = _inputs(2, 64, 64)
    model(frames, wave).square().mean().backward()
    for name, p in list(model.interaction.named_parameters()) + list(model.head.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.visual.parameters())
    assert all(p.grad is None for p in model.audio.parameters())  # frozen


def test_tpavi_starts_as_layernorm_of_the_neck():
    model = _model("tpavi")
    frames, wave = _inputs(1, 128, 128)
    with torch.no_grad():
        aux = model(frames, wave, return_aux=True)
    for v_enc, v_dec in zip(aux["v_enc"], aux["v_dec"]):
        ref = torch.nn.functional.layer_norm(v_enc.permute(0, 2, 3, 1), (256,)).permute(0, 3, 1, 2)
        torch.testing.assert_close(v_dec, ref, rtol=1e-4, atol=1e-4)


def test_tpavi_affinity_equals_per_pair_loops():
    torch.manual_seed(0)
    t, clips, c, inter, h, w, a_dim = 2, 2, 6, 4, 2, 3, 5
    block = TPAVIBlock(a_dim, channels=c, inter=inter).eval()
    torch.nn.init.normal_(block.W_z[1].weight)
    x = torch.randn(clips * t, c, h, w)
    a0 = torch.randn(clips * t, a_dim, 1, 1)
    with torch.no_grad():
        theta, phi, g, _ = block.embed(x, a0, t)
        f = block.affinity.matrix(theta, phi)
        z, _ = block(x, a0, t)

        def conv1x1(conv, v):  # v: (C,) -> (C',)
            return conv.weight[:, :, 0, 0] @ v + conv.bias

        positions = [(k, i, j) for k in range(t) for i in range(h) for j in range(w)]
        n = len(positions)
        audio = [block.align_channel(a0[f_, :, 0, 0]) for f_ in range(clips * t)]
        for b in range(clips):
            th = [conv1x1(block.theta, x[b * t + k, :, i, j]) for k, i, j in positions]
            ph = [conv1x1(block.phi, audio[b * t + k]) for k, _, _ in positions]
            gg = [conv1x1(block.g, x[b * t + k, :, i, j]) for k, i, j in positions]
            ref = torch.empty(n, n)
            for p in range(n):
                for q in range(n):
                    ref[p, q] = torch.dot(th[p], ph[q]) / n
            torch.testing.assert_close(f[b], ref, rtol=1e-5, atol=1e-6)
            for p, (k, i, j) in enumerate(positions):
                y = sum(ref[p, q] * gg[q] for q in range(n))
                wz = block.W_z[1](block.W_z[0](y[None, :, None, None]))[0, :, 0, 0]
                expect = torch.nn.functional.layer_norm(wz + x[b * t + k, :, i, j], (c,),
                                                        block.norm.weight, block.norm.bias)
                torch.testing.assert_close(z[b * t + k, :, i, j], expect, rtol=1e-5, atol=1e-5)


def test_frames_per_clip_spans_the_clip():
    model = build_model("tiny", fusion="tpavi", seed=0).eval()
    for block in model.interaction.tpavi:
        torch.nn.init.normal_(block.W_z[1].weight)
    frames, wave = _inputs(4, 64, 96)
    with torch.no_grad():
        single = model(frames, wave)
        model.frames_per_clip = 2
        clip = model(frames, wave)
        # A clip's frames now attend to each other: frame 0's output depends on frame 1.
        assert not torch.allclose(single, clip, atol=1e-5)
        model.frames_per_clip = 3
        with pytest.raises(EdgeAVSError, match="frames_per_clip=3"):
            model(frames, wave)


def test_lightavseg_layout_is_unchanged():
    model = _model("lightavseg")
    tops = {k.split(".")[0] for k in model.state_dict()}
    assert tops == {"visual", "audio", "encoder", "decoder", "head"}
    assert type(model).__name__ == "LightAVSeg" and model.fusion == "lightavseg"


def test_unknown_fusion():
    with pytest.raises(EdgeAVSError, match="unknown fusion 'nope'"):
        build_model("tiny", fusion="nope")


@pytest.mark.parametrize("fusion", ["tpavi", "avsegformer"])
def test_info_reports_baseline_params(fusion):
    r = CliRunner().invoke(main, ["info", "--variant", "tiny", "--fusion", fusion, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    p = d["params"]
    assert d["fusion"] == fusion
    assert p["visual"] == 1_620_096 and p["audio"] == 5_158_799 - 540_175
    assert p["total"] == p["visual"] + p["audio"] + p["interaction"] + p["head"]
    assert p["interaction"] > 0 and d["macs"]["interaction"] > 0


def test_info_unknown_fusion_is_a_usage_error():
    r = CliRunner().invoke(main, ["info", "--variant", "tiny", "--fusion", "nope"])
    assert r.exit_code == 2 and "nope" in r.output


@pytest.mark.parametrize("fusion", ["tpavi", "avsegformer"])
def test_baseline_compiles_and_verifies_through_the_same_pipeline(tmp_path, fusion):
    """``edgeavs compile --fusion F``: the same pipeline; our fusion passes find only the
    backbone's h-sigmoid gates (the baselines have no recursive audio path to fuse), and the
    artifact verifies against the PyTorch model of that fusion within the fp32 tolerance table."""
    art = tmp_path / fusion
    runner = CliRunner()
    r = runner.invoke(main, ["compile", "--variant", "tiny", "--fusion", fusion, "--resolution", "64",
                             "-o", str(art), "-q"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["weights"]["fusion"] == fusion
    chains = manifest["fusion"]["chains"]
    assert chains["edgeavs.audio_gate"]["fused"] == chains["edgeavs.channel_bias"]["fused"] == 0
    assert chains["edgeavs.hsig_gate"]["fused"] > 0  # the SeaFormer backbone's own gates
    r = runner.invoke(main, ["verify", str(art), "--seeds", "2", "--report", str(tmp_path / "rep.json")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "rep.json").read_text())
    assert report["passed"] is True and len(report["cases"]) == 2


def test_compile_fusion_must_match_the_checkpoint(tmp_path):
    from edgeavs.model import save_checkpoint

    ck = tmp_path / "tpavi.pt"
    save_checkpoint(_model("tpavi"), ck)
    r = CliRunner().invoke(main, ["compile", "--checkpoint", str(ck), "--fusion", "avsegformer",
                                  "--resolution", "64", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        f"Error: {ck}: checkpoint has the tpavi fusion, not the requested --fusion avsegformer")
    assert not (tmp_path / "x").exists()
