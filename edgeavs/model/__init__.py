"""LightAVSeg in PyTorch: one config table (``config.VARIANTS``) and one builder.

Importing this package does not import torch (the config table is plain data, and the CLI
reads it in processes that only run a compiled artifact); the builder and the checkpoint
functions load torch when first used.
"""

from __future__ import annotations

from edgeavs.model.config import FUSIONS, VARIANTS, VariantConfig, get_variant

_WEIGHTS = ("load_audio_weights", "load_checkpoint", "load_visual_weights", "read_checkpoint",
            "save_checkpoint")


def __getattr__(name: str):
    if name in _WEIGHTS:
        from edgeavs.model import weights

        return getattr(weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        import torch

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
