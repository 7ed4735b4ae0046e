"""The PyTorch predictor for :class:`edgeavs.segment.Segmenter`: an edgeavs checkpoint in eager mode.

Kept out of :mod:`edgeavs.segment`, whose artifact path never imports torch. Same interface as
:class:`edgeavs.segment.ArtifactPredictor`: ``predictor(frames, waveform) -> logits`` (numpy in
and out), ``input_size``, ``variant``, ``fingerprint``, ``details``, ``kind``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeavs.compiler.artifact import file_sha256
from edgeavs.errors import EdgeAVSError


class TorchPredictor:
    """An edgeavs checkpoint run in PyTorch eager at ``resolution`` (any multiple of 16)."""

    kind = "checkpoint"

    def __init__(self, checkpoint, variant: str | None = None, resolution=224, threads: int | None = None):
        import torch

        from edgeavs.model import load_checkpoint
        from edgeavs.model.config import get_variant

        path = Path(checkpoint)
        if not path.is_file():
            raise EdgeAVSError(f"checkpoint {checkpoint} not found")
        h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        model = load_checkpoint(path, variant=variant).eval()
        k = get_variant(model.cfg.name).size_multiple
        if h <= 0 or w <= 0 or h % k or w % k:
            raise EdgeAVSError(f"--resolution {h}x{w}: LightAVSeg-{model.cfg.name} needs sides that "
                               f"are positive multiples of {k}")
        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self.model = model
        self.input_size = (int(h), int(w))
        self.variant = model.cfg.name
        self.fingerprint = file_sha256(path)
        self.details = {"checkpoint": str(checkpoint), "checkpoint_sha256": self.fingerprint,
                        "variant": self.variant, "resolution": list(self.input_size)}

    def __call__(self, frames: np.ndarray, waveform: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(frames, np.float32)),
                             torch.from_numpy(np.ascontiguousarray(waveform, np.float32)))
        return out.numpy()
