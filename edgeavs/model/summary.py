"""Parameter counts and MACs per part: what ``edgeavs info`` reports."""

from __future__ import annotations


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def param_counts(model) -> dict:
    """Parameters per part. The audio encoder is split into its learned weights and the
    fixed conv-STFT/mel tensors, which PANNs stores as parameters (SPEC §3, §6)."""
    named = dict(model.audio.named_parameters())
    stft_mel = sum(named[n].numel() for n in model.audio.frozen_tensor_names())
    audio = _count(model.audio)
    parts = getattr(model, "interaction_parts", ("encoder", "decoder"))
    interaction = sum(_count(getattr(model, n)) for n in parts)
    return {
        "total": _count(model),
        "visual": _count(model.visual),
        "audio": audio,
        "audio_learned": audio - stft_mel,
        "audio_stft_mel": stft_mel,
        "interaction": interaction,
        "head": _count(model.head),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def summary(model, size=(224, 224)) -> dict:
    from edgeavs.model.flops import model_macs

    macs = model_macs(model, size)
    return {
        "variant": model.cfg.name,
        "fusion": getattr(model, "fusion", "lightavseg"),
        "params": param_counts(model),
        "macs_224": macs["total"] if tuple(size) == (224, 224) else None,
        "macs": {"size": list(size), **macs},
    }
