"""FuseChannelBias: sinking into each consumer kind (structural), the fallback kernel, no-match, numerics."""

from __future__ import annotations

import pytest

from edgeavs.passes.fuse_channel_bias import FuseChannelBias, count_matches
from edgeavs.tvm_api import assert_structural_equal, relax
from kernels.channel_bias import ChannelBiasWorkload, channel_bias_kernel
from tests.passes.conftest import import_export, import_onnx, make_module, randomize, rel_l2, run_relax

TARGET = {"kind": "llvm", "num-cores": 2}
N, C, H, W, O = 1, 4, 6, 6, 8
INPUTS = {"x": (N, C, H, W), "a": (N, C, 1, 1)}


@pytest.fixture
def weight(rng):
    return (rng.standard_normal((O, C, 1, 1)) / 2).astype("float32")


def test_sinks_into_a_1x1_conv(weight):
    def before(bb, x, a):
        return bb.emit(relax.op.nn.conv2d(bb.emit(relax.op.add(x, a)), relax.const(weight)))

    def expected(bb, x, a):
        cx = bb.emit(relax.op.nn.conv2d(x, relax.const(weight)))
        ca = bb.emit(relax.op.nn.conv2d(a, relax.const(weight)))
        return relax.op.add(cx, ca)

    p = FuseChannelBias(target=TARGET)
    after = p(make_module(INPUTS, before))
    assert_structural_equal(after, make_module(INPUTS, expected))
    assert (p.stats.found, p.stats.fused, count_matches(after)) == (1, 1, 0)


def test_sinks_into_the_global_max_pool():
    def before(bb, x, a):
        return bb.emit(relax.op.max(bb.emit(relax.op.add(x, a)), axis=[2, 3], keepdims=True))

    def expected(bb, x, a):
        return relax.op.add(bb.emit(relax.op.max(x, axis=[2, 3], keepdims=True)), a)

    assert_structural_equal(FuseChannelBias(target=TARGET)(make_module(INPUTS, before)),
                            make_module(INPUTS, expected))


def _padded_consumer(rng):
    w3 = rng.standard_normal((C, 1, 3, 3)).astype("float32")

    def before(bb, x, a):
        return bb.emit(relax.op.nn.conv2d(bb.emit(relax.op.add(x, a)), relax.const(w3), padding=1, groups=C))

    return w3, before


def test_unsinkable_left_alone_without_fallback(rng):
    _, body = _padded_consumer(rng)
    before = make_module(INPUTS, body)
    p = FuseChannelBias(target=TARGET, fallback_kernel=False)
    assert_structural_equal(p(before), before)
    assert (p.stats.found, p.stats.fused) == (1, 0)


def test_unsinkable_goes_to_the_fallback_kernel(rng):
    w3, body = _padded_consumer(rng)

    def expected(bb, x, a):
        gv = bb.add_func(channel_bias_kernel(ChannelBiasWorkload(N, C, H, W, a_batch=N), TARGET),
                         "edgeavs_channel_bias")
        t = bb.emit(relax.call_tir(gv, [x, a], out_ty=relax.TensorType((N, C, H, W), "float32")))
        return relax.op.nn.conv2d(t, relax.const(w3), padding=1, groups=C)

    p = FuseChannelBias(target=TARGET)
    assert_structural_equal(p(make_module(INPUTS, body)), make_module(INPUTS, expected))
    assert p.stats.variants["kernel"] == 1


@pytest.mark.parametrize("case", ["constant_bias", "constant_bound_to_var", "full_size_add", "one_pixel_map"])
def test_no_match_leaves_module_unchanged(rng, weight, case):
    inputs = dict(INPUTS)
    if case == "constant_bias":
        bias = relax.const(rng.standard_normal((1, C, 1, 1)).astype("float32"))
        body = lambda bb, x, a: bb.emit(relax.op.nn.conv2d(bb.emit(relax.op.add(x, bias)),  # noqa: E731
                                                           relax.const(weight)))
    elif case == "constant_bound_to_var":  # the ONNX route binds some folded BN shifts to variables
        bias = relax.const(rng.standard_normal((1, C, 1, 1)).astype("float32"))
        body = lambda bb, x, a: bb.emit(relax.op.nn.conv2d(  # noqa: E731
            bb.emit(relax.op.add(x, bb.emit(bias))), relax.const(weight)))
    elif case == "full_size_add":
        inputs["a"] = (N, C, H, W)
        body = lambda bb, x, a: bb.emit(relax.op.nn.conv2d(bb.emit(relax.op.add(x, a)),  # noqa: E731
                                                           relax.const(weight)))
    else:
        inputs["x"] = (N, C, 1, 1)
        body = lambda bb, x, a: bb.emit(relax.op.nn.conv2d(bb.emit(relax.op.add(x, a)),  # noqa: E731
                                                           relax.const(weight)))
    before = make_module(inputs, body)
    assert count_matches(before) == 0
    assert_structural_equal(FuseChannelBias(target=TARGET)(before), before)


def _torch_encoder_decoder():
    """One LightAVSeg level: residual producer, audio gate, Ṽ_enc = V + A feeding the next stage's 1x1 conv,
    the decoder's max pool and Ṽ_dec = Ṽ_enc + conv(Â) feeding a head 1x1 Conv_BN."""
    import torch
    import torch.nn.functional as F

    from edgeavs.model.layers import Conv2dBN, global_max_pool, h_sigmoid

    class Level(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Conv2dBN(8, 8)
            self.audio = torch.nn.Conv2d(4, 8, 1)
            self.gate = torch.nn.Conv2d(8, 8, 1)
            self.next = Conv2dBN(8, 16)
            self.dec_gate = torch.nn.Conv2d(8, 8, 1)
            self.inject = torch.nn.Conv2d(8, 8, 1)
            self.head = Conv2dBN(8, 6)

        def forward(self, x, a):
            v = x + self.block(x)
            a1 = self.audio(a) * h_sigmoid(self.gate(global_max_pool(v)))
            v_enc = v + a1
            nxt = F.relu(self.next(v_enc))
            a_hat = a1 * h_sigmoid(self.dec_gate(global_max_pool(v_enc)))
            v_dec = v_enc + self.inject(a_hat)
            return self.head(v_dec), nxt

    return randomize(Level())


@pytest.mark.parametrize("route", ["export", "onnx"])
def test_lightavseg_level_sinks_everything(tmp_path, route):
    import torch

    model = _torch_encoder_decoder()
    args = (torch.randn(2, 8, 6, 6), torch.randn(2, 4, 1, 1))
    mod = import_export(model, args) if route == "export" else import_onnx(model, args, tmp_path)
    p = FuseChannelBias(target=TARGET)
    after = p(mod)
    assert (p.stats.found, p.stats.fused, count_matches(after)) == (2, 2, 0)
    assert "kernel" not in p.stats.variants
    inputs = [t.numpy() for t in args]
    assert rel_l2(run_relax(after, *inputs), run_relax(mod, *inputs)) <= 1e-6
