"""Official checkpoints in, edgeavs checkpoints in and out.

The official SeaFormer and PANNs checkpoints load into ``model.visual`` and ``model.audio``
unchanged: the key mapping is a pure function (``visual_state_dict_from_official`` /
``audio_state_dict_from_official``) followed by a strict load that fails with the lists of
missing and unexpected keys.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import atomic_write

FORMAT = "edgeavs-checkpoint/1"
VISUAL_KEYS = ("state_dict_ema", "state_dict", "model")
"""Where an official SeaFormer checkpoint keeps its weights (the first that is a dict)."""
AUDIO_KEYS = ("model", "state_dict")
"""Where an official PANNs checkpoint keeps its weights."""


def _load_file(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgeAVSError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, zipfile errors, RecursionError, ...
        msg = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
        raise EdgeAVSError(f"{path}: not a loadable PyTorch checkpoint ({msg[:200]})") from None
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
    sd = _pick(obj, VISUAL_KEYS)
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
    sd = _pick(obj, AUDIO_KEYS)
    return {k: v for k, v in sd.items() if not k.startswith("fc_audioset.")}


def _check_state_dict(sd, path, what: str) -> dict:
    """``sd`` must be a dict of name -> tensor (one line naming the first entry that is not)."""
    if not isinstance(sd, dict):
        raise EdgeAVSError(f"{path}: the {what} weights are a {type(sd).__name__}, expected a dict of tensors")
    for k, v in sd.items():
        if not isinstance(k, str):
            raise EdgeAVSError(f"{path}: the {what} weights have a key {_short(k)} that is not a string")
        if not isinstance(v, torch.Tensor):
            raise EdgeAVSError(f"{path}: the {what} weight {_short(k)} is a {type(v).__name__}, not a tensor")
    return sd


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _official(mapping, keys: tuple[str, ...], obj: dict, path, what: str) -> dict:
    """An official checkpoint's weights (the dict ``mapping`` picks by ``keys``) mapped to our keys; one line
    for a dict that is not name -> tensor."""
    _check_state_dict(_pick(obj, keys), path, what)
    return mapping(obj)


def strict_load(module: nn.Module, sd: dict, path, what: str) -> None:
    _check_state_dict(sd, path, what)
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
    kinds = [f"{k} {sd[k].dtype} vs {own[k].dtype}" for k in own
             if sd[k].is_floating_point() != own[k].is_floating_point() or sd[k].is_complex()
             or sd[k].layout != torch.strided]
    if kinds:
        raise EdgeAVSError(f"{path}: wrong tensor type for the {what}: {kinds[:10]} ({len(kinds)})")
    try:
        module.load_state_dict(sd, strict=True)
    except (RuntimeError, TypeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
        raise EdgeAVSError(f"{path}: does not load into the {what} ({msg[:200]})") from None


def load_visual_weights(model: nn.Module, path) -> nn.Module:
    """Load an official SeaFormer ImageNet checkpoint into ``model.visual`` (strict)."""
    target = getattr(model, "visual", model)
    what = "SeaFormer backbone"
    strict_load(target, _official(visual_state_dict_from_official, VISUAL_KEYS, _load_file(path), path,
                                   what), path, what)
    return model


def load_audio_weights(model: nn.Module, path) -> nn.Module:
    """Load PANNs ``MobileNetV2_mAP=0.383.pth`` into ``model.audio`` (strict)."""
    target = getattr(model, "audio", model)
    what = "PANNs MobileNetV2 audio encoder"
    strict_load(target, _official(audio_state_dict_from_official, AUDIO_KEYS, _load_file(path), path,
                                   what), path, what)
    return model


def atomic_torch_save(obj, path) -> None:
    path = Path(path)
    if not path.parent.is_dir():
        raise EdgeAVSError(f"{path}: directory {path.parent} does not exist")
    atomic_write(path, lambda f: torch.save(obj, f))


def save_checkpoint(model: nn.Module, path, **extra) -> None:
    """An edgeavs checkpoint: variant, fusion and weights; plain types only, so it loads
    with ``weights_only=True``. ``extra`` (epoch, metrics, ...) must be plain types too."""
    obj = {"format": FORMAT, "variant": model.cfg.name,
           "fusion": getattr(model, "fusion", "lightavseg"),
           "state_dict": model.state_dict(), **extra}
    atomic_torch_save(obj, path)


def read_checkpoint(path) -> dict:
    """An edgeavs checkpoint's dict, its outline checked: the format tag, ``variant`` a known variant,
    ``fusion`` (when present) a known fusion, ``state_dict`` a dict of tensors; each problem one line naming
    the file."""
    from edgeavs.model.config import FUSIONS, VARIANTS

    obj = _load_file(path)
    if obj.get("format") != FORMAT:
        raise EdgeAVSError(f"{path}: not an edgeavs checkpoint (no '{FORMAT}' format tag); "
                           "official SeaFormer/PANNs files go to --visual-weights/--audio-weights")
    variant = obj.get("variant")
    if "variant" not in obj:
        raise EdgeAVSError(f"{path}: edgeavs checkpoint without a \"variant\" (one of {', '.join(VARIANTS)})")
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise EdgeAVSError(f"{path}: checkpoint variant {_short(variant)} is not one of {', '.join(VARIANTS)}")
    fusion = obj.get("fusion", "lightavseg")
    if not isinstance(fusion, str) or fusion not in FUSIONS:
        raise EdgeAVSError(f"{path}: checkpoint fusion {_short(fusion)} is not one of {', '.join(FUSIONS)}")
    if "state_dict" not in obj:
        raise EdgeAVSError(f"{path}: edgeavs checkpoint without a \"state_dict\"")
    _check_state_dict(obj["state_dict"], path, f"{variant} model")
    return obj
