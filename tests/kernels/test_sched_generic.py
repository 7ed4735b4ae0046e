"""Generic fallback (parallel outer loops, vectorised inner loop) on elementwise and reduction functions."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.passes.schedule_ops import schedule_prim_func
from edgeavs.tvm_api import relax
from kernels.workloads import ConvCase, fuse, prim_funcs

from .sched_util import BASELINE, NATIVE, rel_l2, run


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


def _module_n(shapes, body):
    bb = relax.BlockBuilder()
    xs = [relax.Var(f"x{i}", relax.TensorType(s, "float32")) for i, s in enumerate(shapes)]
    with bb.function("main", xs):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *xs))
        bb.emit_func_output(out)
    return fuse(bb.get())


def _scheduled(mod, target=NATIVE):
    (name, func), = prim_funcs(mod).items()
    return func, schedule_prim_func(func, target)


@pytest.mark.parametrize("target", [NATIVE, BASELINE], ids=["native", "baseline"])
@pytest.mark.parametrize("cin, cout", [(96, 40), (36, 24), (320, 17)])
def test_matrix_vector_conv_on_1x1_map_is_vectorised(target, cin, cout):
    # a 1x1 conv on a 1x1 map (global-context branch): a dot product over contiguous input channels per output
    # channel; rfactor-ed into vector partial sums (36 channels: 4 lanes divide, 16 and 8 do not)
    case = ConvCase(cin, cout, 1, 1, k=1, act="relu")
    func, (new, cls, sched, _, err) = _scheduled(fuse(case.relax_module()), target)
    assert cls == "reduction" and sched == "generic", (cls, sched, err)
    text = new.script()
    assert "_rf" in text and "T.vectorized" in text
    args = case.inputs(seed=3)
    want = case.reference(args)
    assert rel_l2(run(new, args, want.shape, target), want) <= 1e-6
    assert rel_l2(run(new, args, want.shape, target), run(func, args, want.shape, target)) <= 1e-6


@pytest.mark.parametrize("shape, rfactored", [((1, 19, 14, 14), True),    # 196 = 49 x 4 lanes
                                              ((1, 24, 7, 7), False),     # 49: no vector width divides
                                              ((1, 5, 4, 4), True)])      # 16 pixels, 5 channels
def test_mean_over_the_map(shape, rfactored):
    x = np.random.default_rng(4).standard_normal(shape, dtype=np.float32)
    func, (new, cls, sched, _, err) = _scheduled(_module(shape, lambda bb, v: bb.emit(
        relax.op.mean(v, axis=[2, 3], keepdims=True))))
    assert cls == "reduction"
    assert ("_rf" in new.script()) == rfactored
    want = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    assert rel_l2(run(new, [x], want.shape, NATIVE), want) <= 1e-6


def test_strided_reduction_is_not_rfactored():
    # a mean over H of NCHW: the reduced axis is not the contiguous one -> no rfactor (it would gather)
    shape = (1, 8, 16, 12)
    x = np.random.default_rng(5).standard_normal(shape, dtype=np.float32)
    _, (new, cls, _, _, _) = _scheduled(_module(shape, lambda bb, v: bb.emit(relax.op.sum(v, axis=[2]))))
    assert "_rf" not in new.script()
    want = x.astype(np.float64).sum(axis=2)
    assert rel_l2(run(new, [x], want.shape, NATIVE), want) <= 1e-6


@pytest.mark.parametrize("shape", [(1, 256, 7, 7), (1, 19, 4, 4), (1, 12, 7, 7)])
def test_add_on_small_maps_is_vectorised(shape):
    # 7 (or 4) columns: the inner loop alone is not a whole vector; the flattened map is
    rng = np.random.default_rng(6)
    a, b = (rng.standard_normal(shape, dtype=np.float32) for _ in range(2))
    func, (new, cls, sched, _, err) = _scheduled(_module_n([shape, shape], lambda bb, x, y: bb.emit(
        relax.op.nn.relu(relax.op.add(x, y)))))
    assert cls == "elementwise" and sched == "generic", err
    assert "T.vectorized" in new.script()
    want = np.maximum(a.astype(np.float64) + b, 0)
    assert rel_l2(run(new, [a, b], shape, NATIVE), want) <= 1e-6


def test_odd_sized_map_and_broadcast_left_alone():
    # 37 x 7 x 7 = 1813 elements (odd): no vector width divides; a 7x1 + 1x7 broadcast would read through div/mod
    # of the flat index. Both stay on TVM's default lowering and are named by the schedule report.
    rng = np.random.default_rng(7)
    shape = (1, 37, 7, 7)
    a, b = (rng.standard_normal(shape, dtype=np.float32) for _ in range(2))
    _, (new, _, sched, _, err) = _scheduled(_module_n([shape, shape], lambda bb, x, y: bb.emit(relax.op.add(x, y))))
    assert sched is None and "nothing to parallelise or vectorise" in err
    assert rel_l2(run(new, [a, b], shape, NATIVE), a.astype(np.float64) + b) <= 1e-6
    shapes = [(1, 320, 7, 1), (1, 320, 1, 7)]
    c, d = (rng.standard_normal(s, dtype=np.float32) for s in shapes)
    _, (new, _, sched, _, _) = _scheduled(_module_n(shapes, lambda bb, x, y: bb.emit(relax.op.add(x, y))))
    assert sched is None
    assert rel_l2(run(new, [c, d], (1, 320, 7, 7), NATIVE), c.astype(np.float64) + d) <= 1e-6


@pytest.mark.parametrize("c, h, w, vectorised", [(192, 28, 28, True), (21, 4, 4, True), (13, 9, 32, True),
                                                 (19, 7, 7, False)])   # 7 columns, 931 elements: left alone
def test_1x1_depthwise_scale(c, h, w, vectorised):
    # groups == channels with a 1x1 kernel: every reduction loop has extent 1 -> scheduled as elementwise work
    case = ConvCase(c, c, h, w, k=1, groups=c, act="relu")
    func, (new, cls, sched, _, err) = _scheduled(fuse(case.relax_module()))
    text = new.script()
    if vectorised:
        assert sched == "generic", err
        assert "T.vectorized" in text and "_rf" not in text
    else:
        assert sched is None
    args = case.inputs(seed=8)
    want = case.reference(args)
    assert rel_l2(run(new, args, want.shape, NATIVE), want) <= 1e-6
