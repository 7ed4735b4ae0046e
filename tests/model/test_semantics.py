"""h-sigmoid, broadcast and gating semantics of the interaction (SPEC §4)."""

import torch
import torch.nn.functional as F

from edgeavs import build_model
from edgeavs.model.layers import h_sigmoid


def test_h_sigmoid_is_relu6_x_plus_3_over_6():
    x = torch.linspace(-5, 5, 101)
    expected = torch.clamp(x + 3, 0, 6) / 6
    torch.testing.assert_close(h_sigmoid(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(h_sigmoid(x), F.hardsigmoid(x), rtol=0, atol=1e-7)
    assert h_sigmoid(torch.tensor(-3.0)) == 0 and h_sigmoid(torch.tensor(3.0)) == 1


def test_encoder_level_is_gate_then_broadcast_bias():
    torch.manual_seed(0)
    model = build_model("tiny", seed=0).eval()
    level = model.encoder.levels[0]
    v = torch.randn(2, 32, 5, 7)
    a_prev = torch.randn(2, 1024, 1, 1)
    with torch.no_grad():
        v_enc, a = level(v, a_prev)
        w1, b1 = level.audio_proj.weight[:, :, 0, 0], level.audio_proj.bias
        w2, b2 = level.gate.gate.weight[:, :, 0, 0], level.gate.gate.bias
        pooled = v.amax(dim=(2, 3))                       # P(V): global max pool
        gate = torch.clamp(pooled @ w2.T + b2 + 3, 0, 6) / 6
        expected_a = (a_prev[:, :, 0, 0] @ w1.T + b1) * gate
    torch.testing.assert_close(a[:, :, 0, 0], expected_a, rtol=1e-5, atol=1e-6)
    # The same channel bias is added at every pixel.
    torch.testing.assert_close(v_enc - v, a.expand_as(v), rtol=1e-5, atol=1e-6)


def test_decoder_recursive_audio_path():
    torch.manual_seed(0)
    model = build_model("tiny", seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), torch.randn(1, 32000), return_aux=True)
        n = len(out["v_enc"])
        a_next = out["a_enc"][-1]
        for i in reversed(range(n)):
            lvl = model.decoder.levels[i]
            a_star = F.relu(lvl.audio_fuse(torch.cat([a_next, out["a_enc"][i]], 1)))
            gate = h_sigmoid(lvl.gate.gate(out["v_enc"][i].amax(dim=(2, 3), keepdim=True)))
            a_hat = a_star * gate
            torch.testing.assert_close(out["a_hat"][i], a_hat, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(out["v_dec"][i], out["v_enc"][i] + lvl.inject(a_hat),
                                       rtol=1e-5, atol=1e-6)
            a_next = a_hat


def test_audio_steers_the_backbone():
    """Ṽ^enc replaces V as the next stage's input: changing the audio changes deeper levels."""
    model = build_model("tiny", seed=0).eval()
    frames = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = model(frames, torch.randn(1, 32000), return_aux=True)
        b = model(frames, torch.randn(1, 32000), return_aux=True)
    torch.testing.assert_close(a["pyramid"][0], b["pyramid"][0], rtol=0, atol=0)
    assert not torch.allclose(a["pyramid"][1], b["pyramid"][1])


def test_gradients_reach_trainable_parts_and_never_the_audio_encoder():
    from edgeavs.losses import total_loss

    model = build_model("tiny", seed=0).train()
    out = model(torch.randn(2, 3, 64, 64), torch.randn(2, 32000), return_aux=True)
    masks = (torch.rand(2, 1, 64, 64) > 0.5).float()
    total_loss(out, masks)["loss"].backward()
    for part in ("visual", "encoder", "decoder", "head"):
        params = list(getattr(model, part).parameters())
        assert params and all(p.grad is not None for p in params), part
        assert any(p.grad.abs().sum() > 0 for p in params), part
    assert all(not p.requires_grad and p.grad is None for p in model.audio.parameters())


def test_train_mode_keeps_audio_encoder_in_eval():
    model = build_model("tiny", seed=0).train()
    assert model.visual.training and model.head.training
    assert not model.audio.training
    assert not any(m.training for m in model.audio.modules())


def test_frozen_audio_bn_statistics_do_not_move():
    model = build_model("tiny", seed=0).train()
    before = model.audio.bn0.running_mean.clone()
    model(torch.randn(2, 3, 64, 64), torch.randn(2, 32000) * 10)
    torch.testing.assert_close(model.audio.bn0.running_mean, before, rtol=0, atol=0)
