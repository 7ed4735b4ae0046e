"""LightAVSeg in PyTorch: one config table (``config.VARIANTS``) and one builder.

Importing this package does not import torch (the config table is plain data, and the CLI
reads it in processes that only run a compiled artifact); the builder and the checkpoint
functions load torch when first used.
"""

from __future__ import annotations

from edgeavs.model.builder import build_model, build_reference_model, load_checkpoint
from edgeavs.model.config import FUSIONS, VARIANTS, VariantConfig, get_variant

_WEIGHTS = ("load_audio_weights", "load_visual_weights", "read_checkpoint",
            "save_checkpoint")


def __getattr__(name: str):
    if name in _WEIGHTS:
        from edgeavs.model import weights

        return getattr(weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["VARIANTS", "VariantConfig", "FUSIONS", "build_model", "build_reference_model", "get_variant",
           "load_visual_weights", "load_audio_weights", "save_checkpoint",
           "load_checkpoint", "read_checkpoint"]
