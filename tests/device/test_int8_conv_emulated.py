"""kernels.int8_conv on the emulated AArch64 device: the sdot build for the Snapdragon 8 Elite (qemu -cpu
max,sve=off,sme=off) and the generic build for the aarch64-linux board (qemu -cpu cortex-a76), each inside a
one-call Relax module cross-linked for Linux, give numpy's exact integers (scale 1, bias 0) and the reference
with real scales/bias; the sdot build in both lane layouts."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.device.isa import check_no_sve, disassemble
from edgeavs.device.remote import DeviceSpec, open_session
from edgeavs.targets import load_target
from kernels.int8_conv import (Int8ConvConfig, Int8ConvWorkload, int8_conv_kernel, prepare_weights,
                               quantize_reference, reference, wpack_shape)

from .conftest import cross_build

SHAPES = [(1, 24, 15, 7, 7), (2, 40, 64, 1, 1), (1, 64, 96, 6, 6), (1, 16, 32, 4, 8)]
"""(n, m, k, h, w): odd k and m not a multiple of 16, h*w = 1, a full tile, whole vectors of pixels."""
PIXEL_LANES = Int8ConvConfig(co_blocks=4, pixel_tile=2, lanes="pixel")
"""The sdot build's pixel-lane layout, forced on every shape (padded tiles on all but the last)."""


def call_module(wl: Int8ConvWorkload, target, config=None):
    """``main(x, qparams, wpack, comp, scale, bias) -> y``: one ``R.call_tir`` of the kernel."""
    from edgeavs.tvm_api import relax

    func = int8_conv_kernel(wl, target, config)
    params = [("x", (wl.n, wl.k, wl.h, wl.w), "float32"), ("qparams", (2,), "float32"),
              ("wpack", wpack_shape(wl.m, wl.k, wl.isa), "int8"), ("comp", (wl.m,), "int32"),
              ("scale", (wl.m,), "float32"), ("bias", (wl.m,), "float32")]
    bb = relax.BlockBuilder()
    args = [relax.Var(name, relax.TensorType(shape, dtype)) for name, shape, dtype in params]
    gv = bb.add_func(func, "int8_conv")
    with bb.function("main", args):
        with bb.dataflow():
            y = bb.emit_output(relax.call_tir(gv, args, out_ty=relax.TensorType((wl.n, wl.m, wl.h, wl.w),
                                                                                 "float32")))
        bb.emit_func_output(y)
    return bb.get()


def cases(wl: Int8ConvWorkload, seed: int):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal((wl.n, wl.k, wl.h, wl.w))).astype(np.float32)
    wq = rng.integers(-127, 128, (wl.m, wl.k)).astype(np.int8)
    scale = (rng.uniform(0.5, 2.0, wl.m) * 1e-3).astype(np.float32)
    bias = rng.standard_normal(wl.m).astype(np.float32)
    return x, wq, scale, bias


@pytest.mark.parametrize("target_name,isa", [("snapdragon8elite", "sdot"), ("aarch64-linux", "generic")])
def test_emulated_matches_numpy(emulator, tmp_path, target_name, isa):
    target = load_target(target_name)
    libs = []
    configs = [None, PIXEL_LANES] if isa == "sdot" else [None]  # the default, and the other layout
    for i, (shape, config) in enumerate((s, c) for s in SHAPES for c in configs):
        wl = Int8ConvWorkload(*shape, isa=isa)
        path = cross_build(call_module(wl, target.to_tvm(), config), target.tvm_dict(),
                           tmp_path / f"int8_conv{i}.so")
        assert check_no_sve(path) > 0
        if isa == "sdot":
            assert any(ins.split()[0] == "sdot" for _, ins in disassemble(path) if ins.split())
        libs.append((wl, path))
    inv, zp = 40.0, -5
    with open_session(DeviceSpec("emulated"), mcpu=target.mcpu, mattr=target.mattr) as session:
        for wl, path in libs:
            x, wq, scale, bias = cases(wl, seed=wl.k)
            wpack, comp = prepare_weights(wq, zp, isa)
            qp = np.array([inv, zp], np.float32)
            vm = session.load_vm(path)
            (exact,) = vm(x, qp, wpack, comp, np.ones(wl.m, np.float32), np.zeros(wl.m, np.float32))
            (scaled,) = vm(x, qp, wpack, comp, scale, bias)
            q = quantize_reference(x, inv, zp).astype(np.int64) - zp
            acc = np.einsum("mk,nkhw->nmhw", wq.astype(np.int64), q)
            assert 1000 < np.abs(acc).max() < 2**24
            np.testing.assert_array_equal(exact, acc.astype(np.float32), err_msg=str(wl))
            want = reference(x, wq, inv, zp, scale, bias)
            np.testing.assert_allclose(scaled, want, rtol=1e-6, atol=1e-6 * np.abs(want).max(), err_msg=str(wl))
