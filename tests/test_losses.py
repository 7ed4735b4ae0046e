"""Losses: L_msa against a direct per-pixel computation; the valid-frame mask."""

import math

import pytest
import torch
import torch.nn.functional as F

from edgeavs.losses import bce_loss, dice_loss, msa_loss, total_loss


def _direct_msa(v_dec, a_hat, masks, tau=0.1):
    """Per pixel, with explicit loops: cosine → σ(·/τ) → bilinear up → BCE, mean over levels."""
    n, _, H, W = masks.shape
    total = 0.0
    for v, a in zip(v_dec, a_hat):
        s = torch.zeros(n, 1, v.shape[2], v.shape[3], dtype=torch.float64)
        for b in range(n):
            av = a[b, :, 0, 0].double()
            for y in range(v.shape[2]):
                for x in range(v.shape[3]):
                    pv = v[b, :, y, x].double()
                    cos = (pv @ av) / (max(pv.norm(), 1e-12) * max(av.norm(), 1e-12))
                    s[b, 0, y, x] = 1.0 / (1.0 + math.exp(-cos / tau))
        up = F.interpolate(s, size=(H, W), mode="bilinear", align_corners=False)
        m = masks.double()
        bce = -(m * up.clamp_min(1e-300).log() + (1 - m) * (1 - up).clamp_min(1e-300).log()).mean()
        total += float(bce)
    return total / len(v_dec)


def test_msa_equals_direct_per_pixel_computation():
    g = torch.Generator().manual_seed(0)
    v_dec = [torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 6, 2, 2, generator=g)]
    a_hat = [torch.randn(2, 4, 1, 1, generator=g), torch.randn(2, 6, 1, 1, generator=g)]
    masks = (torch.rand(2, 1, 6, 6, generator=g) > 0.5).float()
    got = float(msa_loss(v_dec, a_hat, masks, tau=0.1))
    assert got == pytest.approx(_direct_msa(v_dec, a_hat, masks), rel=1e-5)


def test_valid_mask_selects_supervised_frames():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 1, 8, 8, generator=g)
    masks = (torch.rand(5, 1, 8, 8, generator=g) > 0.5).float()
    valid = torch.tensor([True, False, False, False, False])  # S4 train: frame 1 only
    assert float(bce_loss(logits, masks, valid)) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits[:1], masks[:1])), rel=1e-6)
    assert float(dice_loss(logits, masks, valid)) == pytest.approx(float(dice_loss(logits[:1], masks[:1])), rel=1e-6)
    # Changing an unsupervised frame's mask changes nothing.
    masks2 = masks.clone()
    masks2[3] = 1 - masks2[3]
    assert float(bce_loss(logits, masks2, valid)) == float(bce_loss(logits, masks, valid))


def test_dice_of_a_perfect_prediction_is_near_zero():
    masks = torch.zeros(1, 1, 8, 8)
    masks[..., 2:6, 2:6] = 1
    logits = (masks * 2 - 1) * 50
    assert float(dice_loss(logits, masks)) < 1e-6


def test_total_is_dice_plus_bce_plus_half_msa():
    from edgeavs import build_model

    model = build_model("tiny", seed=0).train()
    out = model(torch.randn(2, 3, 64, 64), torch.randn(2, 32000), return_aux=True)
    masks = (torch.rand(2, 1, 64, 64) > 0.5).float()
    terms = total_loss(out, masks)
    assert float(terms["loss"]) == pytest.approx(
        float(terms["dice"] + terms["bce"] + 0.5 * terms["msa"]), rel=1e-6)
    no_msa = total_loss(out, masks, msa_weight=0.0)
    assert float(no_msa["loss"]) == pytest.approx(float(no_msa["dice"] + no_msa["bce"]), rel=1e-6)
