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


@pytest.mark.parametrize("cfg", [GemmConfig(co_tile=5, pixel_vectors=2, lanes=8, parallel="channel", pack=True),
                                 GemmConfig(co_tile=4, pixel_vectors=1, lanes=4, parallel="pixel", pack=True)],
                         ids=["c5p2channel", "c4p1lanes4"])
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


def test_gemv_fc_layer():
    """fc on a pooled vector (PANNs fc1-like): matrix-vector, no register axis, weight streamed unpacked."""
    import numpy as np

    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import relax
    from kernels.workloads import fuse, prim_funcs

    from .sched_util import rel_l2, run

    k, n = 160, 72
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, k), "float32"))
    w = relax.Var("w", relax.TensorType((k, n), "float32"))
    b = relax.Var("b", relax.TensorType((n,), "float32"))
    with bb.function("main", [x, w, b]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.relu(relax.op.add(relax.op.matmul(x, w), b))))
        bb.emit_func_output(out)
    (func,) = prim_funcs(fuse(bb.get())).values()
    new, cls, name, cfg, err = schedule_prim_func(func, NATIVE)
    assert (cls, name) == ("matmul", "gemm"), err
    rng = np.random.default_rng(3)
    args = [rng.standard_normal((1, k)).astype("float32"), rng.standard_normal((k, n)).astype("float32"),
            rng.standard_normal((n,)).astype("float32")]
    want = np.maximum(args[0].astype(np.float64) @ args[1] + args[2], 0)
    assert rel_l2(run(new, args, want.shape, NATIVE), want) <= 1e-6


def test_gemm_row_map_needs_padding():
    """Sea attention's axial branch: 1x1 conv on a 1 x 14 map (extent-1 rows, pixels padded to a vector)."""
    _, cls, name, _ = check_case(ConvCase(40, 24, 1, 14, act=None), NATIVE, expect_schedule="gemm")
    assert cls == "conv1x1"
