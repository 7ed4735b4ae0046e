"""LightAVSeg in PyTorch: one config table (``config.VARIANTS``) and one builder."""

from __future__ import annotations

import torch

from edgeavs.model.config import FUSIONS, VARIANTS, VariantConfig, get_variant
from edgeavs.model.weights import (
    load_audio_weights,
    load_checkpoint,
    load_visual_weights,
    read_checkpoint,
    save_checkpoint,
)


def build_model(variant: str = "large", fusion: str = "lightavseg", seed: int | None = None):
    """Build LightAVSeg-``variant`` (tiny/small/base/large) with random weights.

    ``fusion`` picks the audio-visual interaction: ``lightavseg`` (ours, SPEC §4), or a
    SPEC §9 baseline, ``tpavi`` (AVSBench) or ``avsegformer``, which keep the same backbone,
    audio encoder and head (:class:`edgeavs.model.baseline.BaselineAVSeg`).

    ``seed`` makes the initialisation reproducible (compile and verify rebuild the same
    random-init model from it). Load official weights with :func:`load_visual_weights` /
    :func:`load_audio_weights`, or an edgeavs checkpoint with :func:`load_checkpoint`.
    """
    from edgeavs.errors import EdgeAVSError

    cfg = get_variant(variant)
    if fusion not in FUSIONS:
        raise EdgeAVSError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
    if seed is not None:
        torch.manual_seed(seed)
    if fusion == "lightavseg":
        from edgeavs.model.lightavseg import LightAVSeg

        model = LightAVSeg(cfg)
    else:
        from edgeavs.model.baseline import BaselineAVSeg

        model = BaselineAVSeg(cfg, fusion)
    model.fusion = fusion
    return model


__all__ = ["VARIANTS", "VariantConfig", "FUSIONS", "build_model", "get_variant",
           "load_visual_weights", "load_audio_weights", "save_checkpoint",
           "load_checkpoint", "read_checkpoint"]
