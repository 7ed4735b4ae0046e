"""kernels.hsig_gate against the unfused chain (numpy, float64) on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.hsig_gate import (HsigGateConfig, HsigGateWorkload, fallback_config, hsig_gate_kernel, knob_space,
                               pixel_tiles, reference)
from tests.kernels.conftest import assert_close, run_kernel


def _inputs(rng, wl: HsigGateWorkload):
    x = (3 * rng.standard_normal((wl.n, wl.ci, wl.hg, wl.wg))).astype("float32")
    w = (2 * rng.standard_normal((wl.co, wl.ci, 1, 1)) / np.sqrt(wl.ci)).astype("float32")
    b = rng.standard_normal((wl.bias_batch, wl.co, 1, 1)).astype("float32")
    y = rng.standard_normal((wl.n, wl.co, wl.h, wl.w)).astype("float32")
    return x, w, b, y


def _check(rng, wl, config=None, target=None):
    x, w, b, y = _inputs(rng, wl)
    cfg = config or fallback_config(wl, target)
    wk = np.ascontiguousarray(w[:, :, 0, 0].T) if cfg.weight_transposed else w
    got = run_kernel(hsig_gate_kernel(wl, config=cfg), x, wk, b, y, out_shape=y.shape)
    want = reference(*(a.astype("float64") for a in (x, w, b, y)), in_relu6=wl.in_relu6)
    assert_close(got, want)


@pytest.mark.parametrize("wl", [
    HsigGateWorkload(n=1, ci=64, hg=14, wg=14, co=48, h=14, w=14),                  # Sea attention, 14²
    HsigGateWorkload(n=1, ci=32, hg=8, wg=8, co=24, h=8, w=8, in_relu6=True),       # with proj's ReLU6
    HsigGateWorkload(n=2, ci=24, hg=7, wg=7, co=20, h=7, w=7),                      # 49 pixels: no dividing tile
    HsigGateWorkload(n=1, ci=16, hg=4, wg=4, co=12, h=8, w=8),                      # LightHead: bilinear ×2
    HsigGateWorkload(n=2, ci=16, hg=3, wg=5, co=12, h=7, w=9, bias_batch=2),        # odd ratios, per-batch bias
], ids=str)
def test_matches_unfused(rng, wl):
    _check(rng, wl)


def test_every_knob_value_is_correct(rng):
    wl = HsigGateWorkload(n=1, ci=8, hg=4, wg=8, co=12, h=4, w=8, in_relu6=True)
    space = knob_space(wl, {"kind": "llvm", "mcpu": "znver3"})
    assert space["tile_px"] == [1, 2, 4, 8, 16, 32]
    for tile_co in (1, 4, 12):
        for tile_px in space["tile_px"]:
            for lanes in (1, 4, 8):
                _check(rng, wl, HsigGateConfig(tile_co=tile_co, tile_px=tile_px, lanes=lanes, parallel=True))


def test_fallback_fits_the_register_file():
    wl = HsigGateWorkload(n=1, ci=128, hg=28, wg=28, co=96, h=28, w=28)
    for target, regs in ((HOST_AVX2, 16), (HOST_NEON, 32)):
        cfg = fallback_config(wl, target)
        assert wl.co % cfg.tile_co == 0 and (wl.hg * wl.wg) % cfg.tile_px == 0
        assert cfg.tile_co * (cfg.tile_px // cfg.lanes) <= regs - 4
        assert cfg.lanes == (8 if regs == 16 else 4) and cfg.tile_px in pixel_tiles(wl)


HOST_AVX2 = {"kind": "llvm", "mcpu": "znver3", "num-cores": 2}
HOST_NEON = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "oryon-1", "mattr": ["+neon"], "num-cores": 8}


@pytest.mark.parametrize("cfg", [
    None,                                                                   # the fallback picks "co" at 7x7
    HsigGateConfig(tile_co=16, tile_px=7, lanes=4, parallel=True, vector_axis="co"),
    HsigGateConfig(tile_co=8, tile_px=1, lanes=8, parallel=False, vector_axis="co"),
    HsigGateConfig(tile_co=4, tile_px=49, lanes=4, parallel=False, vector_axis="co"),
], ids=str)
def test_output_channel_vectors(rng, cfg):
    wl = HsigGateWorkload(n=2, ci=24, hg=7, wg=7, co=16, h=7, w=7, in_relu6=True)
    cfg = cfg or fallback_config(wl, HOST_AVX2)
    assert cfg.vector_axis == "co" and cfg.weight_transposed
    x, w, b, y = _inputs(rng, wl)
    got = run_kernel(hsig_gate_kernel(wl, config=cfg), x, np.ascontiguousarray(w[:, :, 0, 0].T), b, y,
                     out_shape=y.shape)
    assert_close(got, reference(*(a.astype("float64") for a in (x, w, b, y)), in_relu6=True))
