"""The model builders: random-init LightAVSeg (or a baseline) and the eval-mode model an artifact
is compiled from. Below the compiler and the reference run, which both build through here; torch
is imported when a model is first built, not with this module."""

from __future__ import annotations

from edgeavs.errors import EdgeAVSError
from edgeavs.model.config import FUSIONS, get_variant


def build_model(variant: str = "large", fusion: str = "lightavseg", seed: int | None = None):
    """Build LightAVSeg-``variant`` (tiny/small/base/large) with random weights.

    ``fusion`` picks the audio-visual interaction: ``lightavseg`` (ours, SPEC §4), or a
    SPEC §9 baseline, ``tpavi`` (AVSBench) or ``avsegformer``, which keep the same backbone,
    audio encoder and head (:class:`edgeavs.model.baseline.BaselineAVSeg`).

    ``seed`` makes the initialisation reproducible (compile and verify rebuild the same
    random-init model from it). Load official weights with :func:`load_visual_weights` /
    :func:`load_audio_weights`, or an edgeavs checkpoint with :func:`load_checkpoint`.
    """
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



def build_reference_model(variant: str, checkpoint=None, seed: int = 0, fusion: str = "lightavseg"):
    """The eval-mode model an artifact is compiled from.

    With ``checkpoint``: that edgeavs checkpoint (its variant must be ``variant``).
    Without: **random init with a fixed seed**, ``build_model(variant, seed=seed)`` (the official
    initialisation). Measured: drawing BN statistics/affines at random as well (var, weight
    U(0.5, 1.5)) makes PyTorch's own fp32 result differ from fp64 by rel-L2 1e-5..5e-5 on
    the logits, above the fp32 tolerance, so the official init is kept (fp32 vs fp64 ~2e-6).
    """
    if checkpoint is not None:
        return load_checkpoint(checkpoint, variant=variant).eval()
    return build_model(variant, fusion=fusion, seed=seed).eval()


def load_checkpoint(path, variant: str | None = None):
    """Rebuild the model an edgeavs checkpoint was saved from. If ``variant`` is given and the
    checkpoint holds another one, fail with a one-line error."""
    from edgeavs.model.weights import strict_load, read_checkpoint

    obj = read_checkpoint(path)
    if variant is not None and get_variant(variant).name != obj["variant"]:
        raise EdgeAVSError(f"{path}: checkpoint is LightAVSeg-{obj['variant']}, "
                           f"not the requested variant {get_variant(variant).name}")
    model = build_model(obj["variant"], fusion=obj.get("fusion", "lightavseg"))
    strict_load(model, obj["state_dict"], path, f"{obj['variant']} model")
    return model
