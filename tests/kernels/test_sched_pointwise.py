"""The GEMM schedule (1x1 conv + fused epilogue) against numpy, incl. awkward shapes.

Tolerance: rel-L2 <= 1e-6 against a float64 reference (the fp32 sums run in the same order over input
channels as the unscheduled kernel; measured 1e-7 .. 5e-7 up to K = 1920).
"""

from __future__ import annotations

import pytest

from kernels.pointwise import GemmConfig, GemmWorkload, fallback_config, knob_space
from kernels.workloads import ConvCase

from .sched_util import BASELINE, NATIVE, check_case

CASES = [
    ConvCase(64, 96, 14, 14, act="relu"),                    # 196 pixels: padded to whole vectors
    ConvCase(48, 40, 7, 7, act=None, residual=True),          # 7x7, residual add
    ConvCase(40, 72, 4, 4, act="relu6"),                      # 4x4, clip
    ConvCase(19, 33, 5, 9, act="relu"),                       # odd everything, non-square
    ConvCase(16, 24, 56, 56, act=None, bias=False),           # no epilogue: cache_write copy-back
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_gemm_native(case):
    _, cls, name, _ = check_case(case, NATIVE, expect_schedule="gemm")
    assert cls == "conv1x1"


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.label)
def test_gemm_baseline_isa(case):
    check_case(case, BASELINE, expect_schedule="gemm")


@pytest.mark.parametrize("cfg", [GemmConfig(co_tile=5, pixel_vectors=3, lanes=8, parallel="channel", pack=True),
                                 GemmConfig(co_tile=4, pixel_vectors=1, lanes=4, parallel="pixel", pack=True)],
                         ids=["c5p3channel", "c4p1lanes4"])
def test_gemm_knobs(cfg):
    check_case(ConvCase(30, 46, 7, 7, act="relu", residual=True), NATIVE, {"gemm": cfg}, expect_schedule="gemm")


def test_fallback_config_respects_registers():
    w = GemmWorkload(m=768, n=196, k=192)
    for facts_target, regs in [({"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 2}, 32),
                               ({"kind": "llvm", "mcpu": "haswell", "num-cores": 2}, 16),
                               ({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "oryon-1",
                                 "mattr": ["+neon", "+dotprod", "+i8mm", "+fullfp16"], "num-cores": 8}, 32)]:
        c = fallback_config(w, facts_target)
        assert c.co_tile * c.pixel_vectors + c.pixel_vectors + 1 <= regs
    ks = knob_space(w, {"kind": "llvm", "mcpu": "haswell"})
    assert ks["lanes"] == [8] and "parallel" in ks
