"""kernels.stft_fft: the real-FFT power spectrum against numpy's rfft and against the conv form (float64).

Tolerance rel-L2 <= 1e-6 on the power spectrum: the fp32 FFT is ~1.6e-7 from the float64 reference at n_fft 1024
(the fp32 conv form itself is ~9e-7 from it, 1024-term sums).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.model.panns import stft_kernels
from edgeavs.passes.fuse_stft_fft import _is_basis
from edgeavs.tvm_api import build_prim_func, to_tvm
from kernels.stft_fft import (StftFftConfig, StftFftWorkload, dft_basis, fallback_config, flops, knob_space,
                              reference, stft_fft_kernel, tables)

from .conftest import HOST, assert_close

TOL = 1e-6


def _run(wl, x, config=None, target=HOST):
    table, bitrev = tables(wl)
    mod = build_prim_func(stft_fft_kernel(wl, target, config), target)
    out = to_tvm(np.zeros((wl.n, wl.bins, wl.frames), "float32"))
    mod(to_tvm(x), to_tvm(table), to_tvm(bitrev), out)
    return out.numpy()


def _conv_form(x, n_fft, hop):
    """The two DFT-basis convs in float64, squared and added: ``(N, bins, frames)``."""
    re, im = dft_basis(n_fft)
    x = x.astype(np.float64)[:, 0]
    frames = (x.shape[1] - n_fft) // hop + 1
    idx = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None]
    seg = x[:, idx]                                           # (N, frames, n_fft)
    return np.transpose((seg @ re.T) ** 2 + (seg @ im.T) ** 2, (0, 2, 1))


@pytest.mark.parametrize("frames", [1, 3, 8, 13, 101])
def test_matches_rfft_and_conv_form(rng, frames):
    """PANNs' shape (n_fft 1024, hop 320): frame counts 1, odd, one chunk, a partial chunk, 1 s of audio."""
    wl = StftFftWorkload(n=1, length=1024 + (frames - 1) * 320 + 17)  # trailing samples no frame reads
    assert wl.frames == frames
    x = rng.standard_normal((1, 1, wl.length)).astype("float32")
    got = _run(wl, x)
    assert_close(got, reference(x), TOL)
    assert_close(got, _conv_form(x, 1024, 320), TOL)


@pytest.mark.parametrize("cfg", [StftFftConfig(2, 2), StftFftConfig(4, 4), StftFftConfig(8, 2), StftFftConfig(16, 4)],
                         ids=str)
def test_every_config_and_batch(rng, cfg):
    """Radix 2 and 4 with an odd stage count (n_fft 256: M = 128 = 2^7), batch 3, 7 frames (tail chunk)."""
    wl = StftFftWorkload(n=3, length=256 + 6 * 64, n_fft=256, hop=64)
    x = rng.standard_normal((3, 1, wl.length)).astype("float32")
    got = _run(wl, x, cfg)
    assert_close(got, reference(x, 256, 64), TOL)
    assert_close(got, _conv_form(x, 256, 64), TOL)


def test_baseline_and_aarch64_defaults():
    wl = StftFftWorkload(n=1, length=33024)
    assert wl.frames == 101 and wl.bins == 513
    assert fallback_config(wl, HOST) == StftFftConfig(frames=4, radix=4)          # SSE baseline: 4 lanes
    arm = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "oryon-1", "mattr": ["+neon"]}
    assert fallback_config(wl, arm).frames == 4
    assert knob_space(wl, HOST) == {"frames": [2, 4, 8], "radix": [2, 4]}
    f = flops(wl)
    assert f["conv"] == 101 * (4 * 513 * 1024 + 3 * 513)
    assert f["conv"] / f["fft"] > 60


def test_kernel_attributes():
    func = stft_fft_kernel(StftFftWorkload(n=1, length=33024), HOST)
    assert func.attrs["edgeavs.kernel"] == "edgeavs.stft_fft"
    assert int(func.attrs["op_pattern"]) == 8


def test_panns_weights_are_the_basis():
    """The model's fp32 conv weights pass the pass's compile-time check; a 1e-4 perturbation does not."""
    real, imag = stft_kernels(1024)
    assert _is_basis(real, 0) and _is_basis(imag, 1)
    assert not _is_basis(imag, 0) and not _is_basis(-imag, 1)
    bumped = real.copy()
    bumped[100, 0, 500] += 1e-4
    assert not _is_basis(bumped, 0)


def test_rejects_bad_workloads():
    with pytest.raises(ValueError, match="bad config"):
        stft_fft_kernel(StftFftWorkload(n=1, length=33024), config=StftFftConfig(frames=1))
    with pytest.raises(ValueError, match="power of two"):
        stft_fft_kernel(StftFftWorkload(n=1, length=2000, n_fft=1000, hop=320))
    with pytest.raises(ValueError, match="no frame"):
        stft_fft_kernel(StftFftWorkload(n=1, length=500))
