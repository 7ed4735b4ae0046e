"""FuseHsigGate: structural Before/Expected (Sea attention and LightHead forms), no-match cases, every imported
h-sigmoid form, numerics."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.passes.fuse_hsig_gate import FuseHsigGate, count_matches
from edgeavs.tvm_api import assert_structural_equal, relax
from kernels.hsig_gate import HsigGateWorkload, hsig_gate_kernel
from tests.passes.conftest import emit_hsig, import_export, import_onnx, make_module, randomize, rel_l2, run_relax

TARGET = {"kind": "llvm", "num-cores": 2}
N, CI, CO = 1, 8, 6


def _weights(rng):
    w = (rng.standard_normal((CO, CI, 1, 1)) / np.sqrt(CI)).astype("float32")
    b = rng.standard_normal((1, CO, 1, 1)).astype("float32")
    return w, b


def _chain(bb, x, w, b, relu6: bool, form="add3_clip_div6", size=None, y=None):
    if relu6:
        x = bb.emit(relax.op.clip(x, 0, 6))
    c = bb.emit(relax.op.add(bb.emit(relax.op.nn.conv2d(x, relax.const(w))), relax.const(b)))
    g = emit_hsig(bb, c, form)
    if size is not None:
        g = bb.emit(relax.op.image.resize2d(g, size, layout="NCHW", method="linear",
                                            coordinate_transformation_mode="half_pixel"))
    return bb.emit(relax.op.multiply(g, y))


def _sea_before(w, b, form="add3_clip_div6", hw=6):
    return make_module({"x": (N, CI, hw, hw), "y": (N, CO, hw, hw)},
                       lambda bb, x, y: _chain(bb, x, w, b, True, form, y=y))


def _head_before(w, b, form="add3_clip_div6"):
    return make_module({"x": (N, CI, 3, 4), "y": (N, CO, 6, 8)},
                       lambda bb, x, y: _chain(bb, x, w, b, False, form, size=(6, 8), y=y))


def _expected(w, b, wl: HsigGateWorkload):
    def body(bb, x, y):
        gv = bb.add_func(hsig_gate_kernel(wl, TARGET), "edgeavs_hsig_gate")
        return relax.call_tir(gv, [x, relax.const(w), relax.const(b), y],
                              out_ty=relax.TensorType((N, CO, wl.h, wl.w), "float32"))

    return make_module({"x": (N, CI, wl.hg, wl.wg), "y": (N, CO, wl.h, wl.w)}, body)


@pytest.mark.parametrize("form", ["add3_clip_div6", "add3_clip_clip_div6", "mul_add_clip"])
def test_sea_attention_gate_with_relu6_prologue(rng, form):
    w, b = _weights(rng)
    p = FuseHsigGate(target=TARGET)
    after = p(_sea_before(w, b, form))
    assert_structural_equal(after, _expected(w, b, HsigGateWorkload(N, CI, 6, 6, CO, 6, 6, in_relu6=True)))
    assert (p.stats.found, p.stats.fused) == (1, 1)


def test_lighthead_gate_with_bilinear_upsample(rng):
    w, b = _weights(rng)
    after = FuseHsigGate(target=TARGET)(_head_before(w, b))
    assert_structural_equal(after, _expected(w, b, HsigGateWorkload(N, CI, 3, 4, CO, 6, 8)))


def test_audio_gate_pool_is_left_to_fuse_audio_gate(rng):
    w = (rng.standard_normal((CI, CI, 1, 1))).astype("float32")
    b = rng.standard_normal((1, CI, 1, 1)).astype("float32")

    def body(bb, v, a):
        p = bb.emit(relax.op.max(v, axis=[2, 3], keepdims=True))
        return _chain(bb, p, w, b, False, y=a)

    before = make_module({"v": (N, CI, 4, 4), "a": (N, CI, 1, 1)}, body)
    assert count_matches(before) == 0
    assert_structural_equal(FuseHsigGate(target=TARGET)(before), before)


@pytest.mark.parametrize("case", ["not_hsigmoid", "nearest_upsample"])
def test_no_match_leaves_module_unchanged(rng, case):
    w, b = _weights(rng)
    if case == "not_hsigmoid":
        before = _sea_before(w, b, form="add2_clip_div6")
    else:
        def body(bb, x, y):
            c = bb.emit(relax.op.add(bb.emit(relax.op.nn.conv2d(x, relax.const(w))), relax.const(b)))
            g = bb.emit(relax.op.image.resize2d(emit_hsig(bb, c), (6, 8), layout="NCHW",
                                                method="nearest_neighbor"))
            return bb.emit(relax.op.multiply(g, y))

        before = make_module({"x": (N, CI, 3, 4), "y": (N, CO, 6, 8)}, body)
    assert count_matches(before) == 0
    assert_structural_equal(FuseHsigGate(target=TARGET)(before), before)


def test_shared_relu6_is_not_absorbed(rng):
    w, b = _weights(rng)

    def body(bb, x, y):
        r = bb.emit(relax.op.clip(x, 0, 6))
        out = _chain(bb, r, w, b, False, y=y)
        return bb.emit(relax.Tuple([out, r]))

    before = make_module({"x": (N, CI, 6, 6), "y": (N, CO, 6, 6)}, body)
    p = FuseHsigGate(target=TARGET)
    after = p(before)
    assert p.stats.fused == 1
    assert after["edgeavs_hsig_gate"].attrs["edgeavs.kernel"] == "edgeavs.hsig_gate"
    x = rng.standard_normal((N, CI, 6, 6)).astype("float32") * 4
    y = rng.standard_normal((N, CO, 6, 6)).astype("float32")
    assert rel_l2(run_relax(after, x, y), run_relax(before, x, y)) <= 1e-6


@pytest.mark.parametrize("make", [_sea_before, _head_before])
def test_fused_module_matches_unfused(rng, make):
    w, b = _weights(rng)
    before = make(w, b)
    after = FuseHsigGate(target=TARGET)(before)
    inputs = [(3 * rng.standard_normal([int(d) for d in p.ty.shape])).astype("float32")
              for p in before["main"].params]
    assert rel_l2(run_relax(after, *inputs), run_relax(before, *inputs)) <= 1e-6


def _torch_blocks(hardsigmoid: bool):
    import torch
    import torch.nn.functional as F

    from edgeavs.model.layers import Conv2dBN

    def hsig(t):
        return F.hardsigmoid(t) if hardsigmoid else F.relu6(t + 3.0) / 6.0

    class Blocks(torch.nn.Module):
        """A Sea-attention output gate and a LightHead fusion block."""

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Sequential(torch.nn.ReLU6(), Conv2dBN(CI, CO))
            self.detail = Conv2dBN(CI, CO)
            self.local = Conv2dBN(CO, CO)
            self.glob = Conv2dBN(CI, CO)

        def forward(self, x, xg):
            sea = hsig(self.proj(x)) * self.detail(x)
            up = F.interpolate(hsig(self.glob(xg)), size=x.shape[2:], mode="bilinear", align_corners=False)
            return self.local(sea) * up

    return randomize(Blocks())


@pytest.mark.parametrize("route,hardsigmoid,form", [
    ("export", False, "add3_clip_div6"),
    ("export", True, "add3_clip_clip_div6"),
    ("onnx", False, "add3_max_min_div6"),
    ("onnx", True, "mul_add_clip"),
])
def test_imported_forms(tmp_path, route, hardsigmoid, form):
    import torch

    model = _torch_blocks(hardsigmoid)
    args = (3 * torch.randn(N, CI, 8, 10), torch.randn(N, CI, 4, 5))
    mod = import_export(model, args) if route == "export" else import_onnx(model, args, tmp_path)
    p = FuseHsigGate(target=TARGET)
    after = p(mod)
    assert (p.stats.found, p.stats.fused, count_matches(after)) == (2, 2, 0)
    assert {k.split("+")[-1] for k in p.stats.variants} == {form}
    assert any(k.startswith("relu6+") for k in p.stats.variants)  # proj's ReLU6 absorbed on both routes
    if route == "onnx":
        assert not any(gv.name_hint.startswith(("maximum", "minimum")) for gv in after.get_global_vars())
    inputs = [x.numpy() for x in args]
    assert rel_l2(run_relax(after, *inputs), run_relax(mod, *inputs)) <= 1e-6


def test_seven_by_seven_map_uses_transposed_weights(rng):
    """7x7 = 49 pixels has no vector-wide tile: the kernel vectorises over output channels and the pass hands
    it the weights transposed."""
    w = (rng.standard_normal((16, CI, 1, 1)) / np.sqrt(CI)).astype("float32")
    b = rng.standard_normal((1, 16, 1, 1)).astype("float32")
    before = make_module({"x": (2, CI, 7, 7), "y": (2, 16, 7, 7)},
                         lambda bb, x, y: _chain(bb, x, w, b, True, y=y))
    target = {"kind": "llvm", "mcpu": "znver3", "num-cores": 2}
    after = FuseHsigGate(target=target)(before)
    kernel = after["edgeavs_hsig_gate"]
    assert "vector_axis='co'" in str(kernel.attrs["edgeavs.config"])
    x = (3 * rng.standard_normal((2, CI, 7, 7))).astype("float32")
    y = rng.standard_normal((2, 16, 7, 7)).astype("float32")
    assert rel_l2(run_relax(after, x, y), run_relax(before, x, y)) <= 1e-6
