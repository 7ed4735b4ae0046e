"""Generic fallback (parallel outer loops, vectorised inner loop) on elementwise and reduction functions."""

from __future__ import annotations

import numpy as np

from edgeavs.passes.schedule_ops import schedule_prim_func
from edgeavs.tvm_api import relax
from kernels.workloads import fuse, prim_funcs

from .sched_util import NATIVE, rel_l2, run


def _module(shape, body):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(body(bb, x))
        bb.emit_func_output(out)
    return fuse(bb.get())


def _check(mod, x, want, cls):
    (name, func), = prim_funcs(mod).items()
    new, got_cls, sched, _, err = schedule_prim_func(func, NATIVE)
    assert got_cls == cls and sched == "generic", (got_cls, sched, err)
    got = run(new, [x], want.shape, NATIVE)
    assert rel_l2(got, want) <= 1e-6


def test_elementwise_chain():
    # h-sigmoid gate: clip(x + 3, 0, 6) / 6 * x on an odd shape
    shape = (1, 37, 29, 31)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    mod = _module(shape, lambda bb, v: bb.emit(relax.op.multiply(
        relax.op.divide(relax.op.clip(relax.op.add(v, relax.const(3.0)), 0.0, 6.0), relax.const(6.0)), v)))
    want = np.clip(x + 3, 0, 6) / 6 * x
    _check(mod, x, want, "elementwise")


def test_reduction_mean_rows():
    shape = (1, 96, 28, 28)
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    mod = _module(shape, lambda bb, v: bb.emit(relax.op.mean(v, axis=[3], keepdims=True)))
    _check(mod, x, x.astype(np.float64).mean(axis=3, keepdims=True), "reduction")


def test_softmax_last_axis():
    shape = (4, 49, 49)
    x = np.random.default_rng(2).standard_normal(shape, dtype=np.float32)
    mod = _module(shape, lambda bb, v: bb.emit(relax.op.nn.softmax(v, axis=-1)))
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    (name, func), = prim_funcs(mod).items()
    new, cls, sched, _, _ = schedule_prim_func(func, NATIVE)
    got = run(new, [x], shape, NATIVE)
    assert rel_l2(got, e / e.sum(-1, keepdims=True)) <= 1e-6
