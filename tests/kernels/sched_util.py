"""Shared by the test_sched_* tests: schedule a fused single-op PrimFunc and run it against numpy (float64)."""

from __future__ import annotations

import numpy as np

from edgeavs.passes.schedule_ops import schedule_prim_func
from edgeavs.tvm_api import host_target, make_target, to_tvm, tvm
from kernels.workloads import fuse, prim_funcs

NATIVE = host_target(2)
"""The build host with its real ISA (AVX2 / AVX-512 as detected)."""
BASELINE = make_target({"kind": "llvm", "num-cores": 2})
"""No mcpu: SSE2 baseline, 4 lanes and 16 registers — other tile sizes, same code paths."""


def fused_func(case):
    funcs = prim_funcs(fuse(case.relax_module()))
    assert len(funcs) == 1, sorted(funcs)
    return next(iter(funcs.values()))


def run(func, args, out_shape, target):
    lib = tvm.compile(func.with_attr("global_symbol", "main"), target=target)
    outs = [to_tvm(a) for a in args] + [to_tvm(np.zeros(out_shape, "float32"))]
    lib["main"](*outs)
    return outs[-1].numpy()


def rel_l2(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def check_case(case, target=NATIVE, configs=None, expect_schedule=None, tol=1e-6):
    func = fused_func(case)
    new, cls, name, cfg, err = schedule_prim_func(func, target, configs)
    if expect_schedule is not None:
        assert name == expect_schedule, (cls, name, err)
    args = case.inputs(seed=1)
    ref = case.reference(args)
    got = run(new, args, ref.shape, target)
    err_l2 = rel_l2(got, ref)
    diff = np.abs(got.astype(np.float64) - ref)
    assert err_l2 <= tol, (f"{case.label} ({name} {cfg}): rel-L2 {err_l2:.3g} > {tol:g}, shape {ref.shape}, "
                           f"max |diff| {diff.max():.3g}, mean |diff| {diff.mean():.3g}")
    return new, cls, name, cfg
