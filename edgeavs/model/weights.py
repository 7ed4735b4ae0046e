"""Official checkpoints in, edgeavs checkpoints in and out.

The official SeaFormer and PANNs checkpoints load into ``model.visual`` and ``model.audio``
unchanged: the key mapping is a pure function (``visual_state_dict_from_official`` /
``audio_state_dict_from_official``) followed by a strict load that fails with the lists of
missing and unexpected keys.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from edgeavs.errors import EdgeAVSError

FORMAT = "edgeavs-checkpoint/1"


def _load_file(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgeAVSError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeAVSError(f"{path}: not a loadable PyTorch checkpoint ({msg})") from None
    if not isinstance(obj, dict):
        raise EdgeAVSError(f"{path}: checkpoint holds a {type(obj).__name__}, expected a dict")
    return obj


def _pick(obj: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        if key in obj and isinstance(obj[key], dict):
            return obj[key]
    return obj


def visual_state_dict_from_official(obj: dict) -> dict:
    """SeaFormer ImageNet checkpoint → ``model.visual`` keys: prefer ``state_dict_ema``, then
    ``state_dict``; drop the classifier ``linear.*`` (and a DataParallel ``module.`` prefix)."""
    sd = _pick(obj, ("state_dict_ema", "state_dict", "model"))
    out = {}
    for k, v in sd.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.startswith("backbone."):  # an mmseg segmentation checkpoint
            k = k[len("backbone."):]
        if k.startswith("linear.") or k.startswith("decode_head.") or k.startswith("auxiliary_head."):
            continue
        out[k] = v
    return out


def audio_state_dict_from_official(obj: dict) -> dict:
    """PANNs checkpoint → ``model.audio`` keys: weights under ``model``; drop ``fc_audioset.*``."""
    sd = _pick(obj, ("model", "state_dict"))
    return {k: v for k, v in sd.items() if not k.startswith("fc_audioset.")}


def _strict_load(module: nn.Module, sd: dict, path, what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise EdgeAVSError(
            f"{path}: does not fit the {what}: missing keys {missing[:20]}"
            f"{' …' if len(missing) > 20 else ''} ({len(missing)}), unexpected keys "
            f"{unexpected[:20]}{' …' if len(unexpected) > 20 else ''} ({len(unexpected)})")
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if tuple(sd[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise EdgeAVSError(f"{path}: shape mismatch for the {what}: {wrong[:10]} ({len(wrong)})")
    module.load_state_dict(sd, strict=True)


def load_visual_weights(model: nn.Module, path) -> nn.Module:
    """Load an official SeaFormer ImageNet checkpoint into ``model.visual`` (strict)."""
    target = getattr(model, "visual", model)
    _strict_load(target, visual_state_dict_from_official(_load_file(path)), path,
                 "SeaFormer backbone")
    return model


def load_audio_weights(model: nn.Module, path) -> nn.Module:
    """Load PANNs ``MobileNetV2_mAP=0.383.pth`` into ``model.audio`` (strict)."""
    target = getattr(model, "audio", model)
    _strict_load(target, audio_state_dict_from_official(_load_file(path)), path,
                 "PANNs MobileNetV2 audio encoder")
    return model


def atomic_torch_save(obj, path) -> None:
    path = Path(path)
    if not path.parent.is_dir():
        raise EdgeAVSError(f"{path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(model: nn.Module, path, **extra) -> None:
    """An edgeavs checkpoint: variant, fusion and weights; plain types only, so it loads
    with ``weights_only=True``. ``extra`` (epoch, metrics, ...) must be plain types too."""
    obj = {"format": FORMAT, "variant": model.cfg.name,
           "fusion": getattr(model, "fusion", "lightavseg"),
           "state_dict": model.state_dict(), **extra}
    atomic_torch_save(obj, path)


def read_checkpoint(path) -> dict:
    obj = _load_file(path)
    if obj.get("format") != FORMAT:
        raise EdgeAVSError(f"{path}: not an edgeavs checkpoint (no '{FORMAT}' format tag); "
                           "official SeaFormer/PANNs files go to --visual-weights/--audio-weights")
    return obj


def load_checkpoint(path, variant: str | None = None):
    """Rebuild the model an edgeavs checkpoint was saved from. If ``variant`` is given and the
    checkpoint holds another one, fail with a one-line error."""
    from edgeavs.model import build_model
    from edgeavs.model.config import get_variant

    obj = read_checkpoint(path)
    if variant is not None and get_variant(variant).name != obj["variant"]:
        raise EdgeAVSError(f"{path}: checkpoint is LightAVSeg-{obj['variant']}, "
                           f"not the requested variant {get_variant(variant).name}")
    model = build_model(obj["variant"], fusion=obj.get("fusion", "lightavseg"))
    _strict_load(model, obj["state_dict"], path, f"{obj['variant']} model")
    return model
