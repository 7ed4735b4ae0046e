"""kernels.audio_gate against the unfused chain (numpy, float64) on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.audio_gate import (AudioGateConfig, AudioGateWorkload, audio_gate_kernel, fallback_config, knob_space,
                                reference)
from tests.kernels.conftest import assert_close, run_kernel


def _inputs(rng, wl: AudioGateWorkload):
    v = rng.standard_normal((wl.n, wl.c, wl.h, wl.w)).astype("float32")
    w = (rng.standard_normal((wl.o, wl.c, 1, 1)) / np.sqrt(wl.c)).astype("float32")
    b = rng.standard_normal(wl.o).astype("float32")
    a = rng.standard_normal((wl.n, wl.o, 1, 1)).astype("float32")
    return v, w, b, a


def _w(w, cfg):
    return np.ascontiguousarray(w[:, :, 0, 0].T) if cfg.weight_transposed else w


@pytest.mark.parametrize("wl", [
    AudioGateWorkload(n=1, c=32, h=16, w=16, o=32),
    AudioGateWorkload(n=2, c=24, h=7, w=7, o=40),        # W = 7: scalar pool, no guard
    AudioGateWorkload(n=1, c=16, h=3, w=2, o=1024 // 64),
], ids=str)
def test_matches_unfused(rng, wl):
    v, w, b, a = _inputs(rng, wl)
    cfg = fallback_config(wl)
    got = run_kernel(audio_gate_kernel(wl, config=cfg), v, _w(w, cfg), b, a, out_shape=(wl.n, wl.o, 1, 1))
    assert_close(got, reference(*(x.astype("float64") for x in (v, w, b, a))))


@pytest.mark.parametrize("shift_batch", [1, 2])
def test_shift(rng, shift_batch):
    wl = AudioGateWorkload(n=2, c=16, h=8, w=8, o=24, shift_batch=shift_batch)
    v, w, b, a = _inputs(rng, wl)
    s = rng.standard_normal((shift_batch, wl.c, 1, 1)).astype("float32")
    cfg = fallback_config(wl)
    got = run_kernel(audio_gate_kernel(wl, config=cfg), v, _w(w, cfg), b, a, s, out_shape=(wl.n, wl.o, 1, 1))
    want = reference(*(x.astype("float64") for x in (v, w, b, a)), shift=np.broadcast_to(s, (2, wl.c, 1, 1)))
    assert_close(got, want)


def test_every_knob_value_is_correct(rng):
    wl = AudioGateWorkload(n=1, c=16, h=4, w=8, o=8)
    v, w, b, a = _inputs(rng, wl)
    want = reference(*(x.astype("float64") for x in (v, w, b, a)))
    space = knob_space(wl, {"kind": "llvm", "mcpu": "skylake-avx512"})
    for lanes in space["lanes"]:
        for par in space["parallel_pool"]:
            for gemv_lanes in space["gemv_lanes"]:
                cfg = AudioGateConfig(lanes=lanes, parallel_pool=par, unroll_gemv=space["unroll_gemv"][-1],
                                      gemv_lanes=gemv_lanes)
                got = run_kernel(audio_gate_kernel(wl, config=cfg), v, _w(w, cfg), b, a, out_shape=(1, 8, 1, 1))
                assert_close(got, want)


def test_fallback_follows_the_target():
    wl = AudioGateWorkload(n=1, c=192, h=28, w=32, o=64)
    neon = fallback_config(wl, {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "oryon-1",
                                "mattr": ["+neon"], "num-cores": 8})
    avx2 = fallback_config(wl, {"kind": "llvm", "mcpu": "znver3", "num-cores": 2})
    assert (neon.lanes, avx2.lanes) == (4, 8)
    assert (neon.gemv_lanes, avx2.gemv_lanes) == (4, 8) and neon.weight_transposed
    assert neon.parallel_pool and avx2.parallel_pool
