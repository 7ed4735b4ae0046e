"""Training losses as plain functions (SPEC §5).

All take a ``valid`` mask of frames ``(N,)`` (bool) so that S4's frame-1-only supervision
is expressed by the data (``valid`` False for frames without a ground-truth mask) rather
than by special cases here. Frames with ``valid`` False contribute nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MSA_TAU = 0.1
MSA_WEIGHT = 0.5


def _select(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    return x if valid is None else x[valid]


def dice_loss(logits: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor | None = None,
              eps: float = 1.0) -> torch.Tensor:
    """Soft Dice ``1 - (2Σpm + eps) / (Σp² + Σm² + eps)`` per frame, mean over valid frames."""
    p = torch.sigmoid(_select(logits, valid)).flatten(1)
    m = _select(masks, valid).flatten(1)
    if p.shape[0] == 0:
        return logits.sum() * 0.0
    inter = (p * m).sum(1)
    denom = (p * p).sum(1) + (m * m).sum(1)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def bce_loss(logits: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-mean binary cross-entropy with logits over the valid frames."""
    x, m = _select(logits, valid), _select(masks, valid)
    if x.shape[0] == 0:
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(x, m)


def alignment_maps(v_dec: list[torch.Tensor], a_hat: list[torch.Tensor],
                   tau: float = MSA_TAU) -> list[torch.Tensor]:
    """``σ(⟨v̄_i, ā_i⟩ / τ)`` per level: per-pixel cosine between Ṽ_i^dec and Â_i, ``(N,1,h,w)``."""
    maps = []
    for v, a in zip(v_dec, a_hat):
        v = F.normalize(v, dim=1)
        a = F.normalize(a, dim=1)
        maps.append(torch.sigmoid((v * a).sum(dim=1, keepdim=True) / tau))
    return maps


def msa_loss(v_dec: list[torch.Tensor], a_hat: list[torch.Tensor], masks: torch.Tensor,
             valid: torch.Tensor | None = None, tau: float = MSA_TAU) -> torch.Tensor:
    """Multi-scale alignment loss ``(1/S) Σ_i BCE(up(σ(⟨v̄_i, ā_i⟩/τ)), M)`` (training only)."""
    m = _select(masks, valid)
    if m.shape[0] == 0:
        return sum(v.sum() for v in v_dec) * 0.0
    total = 0.0
    maps = alignment_maps(v_dec, a_hat, tau)
    for s in maps:
        s = F.interpolate(_select(s, valid), size=m.shape[-2:], mode="bilinear", align_corners=False)
        total = total + F.binary_cross_entropy(s.clamp(0.0, 1.0), m)
    return total / len(maps)


def total_loss(out: dict, masks: torch.Tensor, valid: torch.Tensor | None = None,
               msa_weight: float = MSA_WEIGHT) -> dict:
    """``L_dice + L_bce + λ·L_msa`` from the model's ``return_aux=True`` output.

    Returns the total under ``"loss"`` and each term (detached) for logging.
    """
    dice = dice_loss(out["logits"], masks, valid)
    bce = bce_loss(out["logits"], masks, valid)
    loss = dice + bce
    msa = torch.zeros((), device=masks.device)
    if msa_weight:
        msa = msa_loss(out["v_dec"], out["a_hat"], masks, valid)
        loss = loss + msa_weight * msa
    return {"loss": loss, "dice": dice.detach(), "bce": bce.detach(), "msa": msa.detach()}
