"""Random model inputs: the cases ``verify``, ``bench`` and the compiler's breakdown all feed.

Needs only numpy (no torch, no TVM), so every layer may import it.
"""

from __future__ import annotations

import numpy as np

SAMPLES = 32000  # waveform samples per clip: one second at 32 kHz (SPEC §1)


def random_inputs(seed: int, height: int, width: int):
    """One case: frames ~ N(0, 1) (ImageNet-normalised scale), waveform ~ U(-0.5, 0.5)."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((1, 3, height, width), dtype=np.float32)
    waveform = rng.uniform(-0.5, 0.5, (1, SAMPLES)).astype(np.float32)
    return frames, waveform
