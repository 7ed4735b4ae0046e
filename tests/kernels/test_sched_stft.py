"""The conv-STFT schedule (rfactor-ed dot products) against numpy.

Tolerance rel-L2 <= 1e-5: the reduction is reassociated (``lanes`` partial sums added at the end)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.passes.schedule_ops import schedule_prim_func
from edgeavs.tvm_api import relax
from kernels.stft import DotConfig
from kernels.workloads import fuse, prim_funcs

from .sched_util import BASELINE, NATIVE, rel_l2, run


def _conv1d(length, cout, k, stride):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 1, length), "float32"))
    w = relax.Var("w", relax.TensorType((cout, 1, k), "float32"))
    with bb.function("main", [x, w]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv1d(x, w, strides=stride))
            out = bb.emit_output(bb.emit(relax.op.multiply(y, y)))   # power spectrum: real^2
        bb.emit_func_output(out)
    (func,) = prim_funcs(fuse(bb.get())).values()
    return func


@pytest.mark.parametrize("target,cfg", [(NATIVE, None), (BASELINE, None), (NATIVE, DotConfig(3, 8, 3))],
                         ids=["native-default", "baseline-default", "native-c3f3"])
def test_window_dot(target, cfg):
    length, cout, k, stride = 1000, 27, 128, 40            # 23 frames: prime, the frame tile needs its guard
    func = _conv1d(length, cout, k, stride)
    new, cls, name, used, err = schedule_prim_func(func, target, {"window_dot": cfg} if cfg else None)
    assert (cls, name) == ("conv", "window_dot"), err
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 1, length)).astype("float32")
    w = rng.standard_normal((cout, 1, k)).astype("float32")
    frames = (length - k) // stride + 1
    idx = np.arange(frames)[:, None] * stride + np.arange(k)[None]
    want = ((x[0, 0][idx].astype(np.float64) @ w[:, 0].T.astype(np.float64)).T[None]) ** 2
    got = run(new, [x, w], want.shape, target)
    assert rel_l2(got, want) <= 1e-5
