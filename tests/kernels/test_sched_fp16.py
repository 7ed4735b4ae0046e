"""fp16 MAC layers: the GEMM, depthwise and direct-conv schedules take their vector lanes from the accumulator's
dtype (vector bits / element bits: 8 for float16 on 128-bit NEON, 4 for float32), and compute what numpy does."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.passes.schedule_ops import schedule_prim_func
from edgeavs.tvm_api import make_target, relax, tvm
from kernels import conv2d, depthwise, pointwise, registry
from kernels.defaults import cpu_facts
from kernels.workloads import ConvCase, fuse, prim_funcs
from tests.kernels.sched_util import NATIVE, rel_l2, run

ORYON = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "oryon-1",
         "mattr": ["+neon", "+dotprod", "+i8mm", "+fullfp16"], "num-cores": 1}
AVX512 = {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 2}


def test_lanes_follow_the_element_type():
    o, x = cpu_facts(ORYON), cpu_facts(AVX512)
    assert (o.lanes_for("float32"), o.lanes_for("float16")) == (4, 8)
    assert (x.lanes_for("float32"), x.lanes_for("float16")) == (16, 32)
    assert o.lanes_for() == o.lanes


@pytest.mark.parametrize("module, workload", [
    (pointwise, lambda dt: pointwise.GemmWorkload(m=256, n=3136, k=64, dtype=dt)),
    (depthwise, lambda dt: depthwise.DepthwiseWorkload(channels=128, out_h=56, out_w=56, k=3, stride=1, dtype=dt)),
    (conv2d, lambda dt: conv2d.DirectConvWorkload(cout=64, out_w=14, taps=9, stride=1, dtype=dt)),
])
def test_fp16_workloads_get_8_lanes_on_neon_fp32_keep_4(module, workload):
    f32 = module.fallback_config(workload("float32"), ORYON)
    f16 = module.fallback_config(workload("float16"), ORYON)
    lanes = lambda c: getattr(c, "lanes", None) or c.vector  # noqa: E731 - GemmConfig.lanes, the others' vector
    assert lanes(f32) == 4 and lanes(f16) == 8
    # the default dtype is float32: configs of workloads made before the field existed do not change
    assert module.fallback_config(workload("float32"), ORYON) == module.fallback_config(
        dataclass_without_dtype(workload("float32")), ORYON)
    space = module.knob_space(workload("float16"), ORYON)
    assert 8 in space.get("lanes", space.get("vector"))


def dataclass_without_dtype(wl):
    import dataclasses

    return type(wl)(**{f.name: getattr(wl, f.name) for f in dataclasses.fields(wl) if f.name != "dtype"})


def test_registry_entries_declare_fp16():
    for name in ("gemm", "depthwise", "direct_conv"):
        assert registry.get(name).dtypes == ("float32", "float16")


def _fp16_module(case: ConvCase, accumulate: str):
    """``case``'s conv on fp16 operands accumulating in ``accumulate``; the bias/activation epilogue in fp32 (what
    ``edgeavs.passes.to_fp16`` makes of a conv layer)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, case.cin, case.h, case.w), "float32"))
    w = relax.Var("w", relax.TensorType((case.cout, case.cin // case.groups, case.k, case.k), "float32"))
    b = relax.Var("b", relax.TensorType((1, case.cout, 1, 1), "float32"))
    with bb.function("main", [x, w, b]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(relax.op.astype(x, "float16"), relax.op.astype(w, "float16"),
                                           strides=case.stride, padding=case.pad, groups=case.groups,
                                           out_dtype=accumulate))
            if accumulate != "float32":
                y = bb.emit(relax.op.astype(y, "float32"))
            y = bb.emit(relax.op.nn.relu(relax.op.add(y, b)))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    funcs = prim_funcs(fuse(bb.get()))
    return funcs


def _mac_func(funcs):
    """The fused PrimFunc holding the conv (the casts of the inputs may be separate functions)."""
    return next(f for n, f in sorted(funcs.items()) if "conv2d" in n)


def func_name(funcs, func) -> str:
    return next(n for n, f in funcs.items() if f.same_as(func))


CASES = [
    (ConvCase(64, 96, 14, 14), "gemm"),                       # 1x1: GEMM
    (ConvCase(48, 48, 16, 16, k=3, groups=48), "depthwise"),  # depthwise 3x3
    (ConvCase(16, 32, 16, 16, k=3, stride=2), "direct_conv"),  # direct 3x3 s2
]


@pytest.mark.parametrize("case, schedule", CASES, ids=[c.label for c, _ in CASES])
@pytest.mark.parametrize("accumulate, lanes", [("float16", 8), ("float32", 4)])
def test_fp16_layer_on_oryon_vectorises_in_its_accumulator_lanes(case, schedule, accumulate, lanes):
    func = _mac_func(_fp16_module(case, accumulate))
    _, _, name, cfg, err = schedule_prim_func(func, make_target(ORYON), check_lowering=True)
    assert name == schedule, err
    assert (cfg.lanes if schedule == "gemm" else cfg.vector) == lanes, cfg


@pytest.mark.parametrize("case, schedule", CASES, ids=[c.label for c, _ in CASES])
@pytest.mark.parametrize("accumulate, tol", [("float16", 4e-3), ("float32", 2e-6)])
def test_fp16_layer_scheduled_matches_numpy(case, schedule, accumulate, tol):
    """Scheduled for this machine (LLVM widens fp16 around each op on x86: fp16 rounding is what it computes),
    against float64 on the same fp16-rounded operands. fp32 accumulation: the products of two fp16 numbers are
    exact in fp32, so only fp32's summation error remains (2e-6); fp16 accumulation rounds every partial sum
    to 11 bits (unit roundoff 4.9e-4: 4e-3 bounds sqrt(k) growth for these k <= 144)."""
    funcs = _fp16_module(case, accumulate)
    func = _mac_func(funcs)
    new, _, name, cfg, err = schedule_prim_func(func, NATIVE)
    assert name == schedule, err
    args = case.inputs(seed=1)
    r16 = [args[0].astype(np.float16).astype(np.float32), args[1].astype(np.float16).astype(np.float32), args[2]]
    ref = case.reference(r16)
    # FuseOps keeps the casts of x and w apart (cast, cast1): the conv function takes them in fp16
    assert sorted(funcs) == ["cast", "cast1", func_name(funcs, func)]
    got = run(new, [r16[0].astype(np.float16), r16[1].astype(np.float16), r16[2]], ref.shape, NATIVE)
    assert rel_l2(got, ref) <= tol, (cfg, rel_l2(got, ref))


def test_fp16_gemm_emits_8h_fmla_for_oryon():
    """The acc-fp16 1x1 conv built for the Snapdragon target: its inner loop is half-precision FMLA on full
    128-bit vectors (``.8h``), not a half-register ``.4h``."""
    func = _mac_func(_fp16_module(ConvCase(64, 96, 14, 14), "float16"))
    new, _, name, _, err = schedule_prim_func(func, make_target(ORYON))
    assert name == "gemm", err
    lib = tvm.compile(new.with_attr("global_symbol", "main"), target=make_target(ORYON))
    asm = "\n".join(m.inspect_source("s") for m in [lib.mod, *lib.mod.imports] if m.kind == "llvm")
    assert "fmla\tv" in asm and ".8h" in asm
    fmla = [ln for ln in asm.splitlines() if "fmla" in ln]
    assert sum(".8h" in ln for ln in fmla) > sum(".4h" in ln for ln in fmla), fmla[:8]
