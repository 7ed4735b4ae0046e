"""FuseAudioGate: structural Before/Expected, no-match cases, every h-sigmoid form, numerics."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.passes.fuse_audio_gate import FuseAudioGate, count_matches
from edgeavs.tvm_api import assert_structural_equal, relax
from kernels.audio_gate import AudioGateWorkload, audio_gate_kernel, fallback_config
from tests.passes.conftest import emit_hsig, import_export, import_onnx, make_module, randomize, rel_l2, run_relax

TARGET = {"kind": "llvm", "num-cores": 2}
N, C, H, W, CA = 1, 8, 6, 6, 4


def _weights(rng):
    w = (rng.standard_normal((C, C, 1, 1)) / np.sqrt(C)).astype("float32")
    b = rng.standard_normal((1, C, 1, 1)).astype("float32")
    return w, b


def _before(w, b, form="add3_clip_div6", pool_op=relax.op.max, keep_conv=False):
    def body(bb, v, a):
        p = bb.emit(pool_op(v, axis=[2, 3], keepdims=True))
        c = bb.emit(relax.op.nn.conv2d(p, relax.const(w)))
        cb = bb.emit(relax.op.add(c, relax.const(b)))
        out = bb.emit(relax.op.multiply(a, emit_hsig(bb, cb, form)))
        return bb.emit(relax.Tuple([out, c])) if keep_conv else out

    return make_module({"v": (N, C, H, W), "a": (N, C, 1, 1)}, body)


def _expected(w, b):
    wl = AudioGateWorkload(N, C, H, W, C)
    cfg = fallback_config(wl, TARGET)
    assert cfg.weight_transposed  # the GEMV runs on output-channel vectors: the pass transposes the weights
    wk = np.ascontiguousarray(w[:, :, 0, 0].T)

    def body(bb, v, a):
        gv = bb.add_func(audio_gate_kernel(wl, config=cfg), "edgeavs_audio_gate")
        return relax.call_tir(gv, [v, relax.const(wk), relax.const(b.reshape(C)), a],
                              out_ty=relax.TensorType((N, C, 1, 1), "float32"))

    return make_module({"v": (N, C, H, W), "a": (N, C, 1, 1)}, body)


@pytest.mark.parametrize("form", ["add3_clip_div6", "add3_clip_clip_div6", "mul_add_clip"])
def test_rewrites_to_one_kernel(rng, form):
    w, b = _weights(rng)
    p = FuseAudioGate(target=TARGET)
    after = p(_before(w, b, form))
    assert_structural_equal(after, _expected(w, b))
    assert (p.stats.found, p.stats.fused) == (1, 1)


@pytest.mark.parametrize("case", ["mean_pool", "not_hsigmoid"])
def test_no_match_leaves_module_unchanged(rng, case):
    w, b = _weights(rng)
    before = (_before(w, b, pool_op=relax.op.mean) if case == "mean_pool"
              else _before(w, b, form="add2_clip_div6"))
    assert count_matches(before) == 0
    assert_structural_equal(FuseAudioGate(target=TARGET)(before), before)


def test_reused_intermediate_is_counted_not_fused(rng):
    w, b = _weights(rng)
    before = _before(w, b, keep_conv=True)
    p = FuseAudioGate(target=TARGET)
    assert_structural_equal(p(before), before)
    assert (p.stats.found, p.stats.fused) == (1, 0)


def test_fused_module_matches_unfused(rng):
    w, b = _weights(rng)
    before = _before(w, b)
    after = FuseAudioGate(target=TARGET)(before)
    v = rng.standard_normal((N, C, H, W)).astype("float32")
    a = rng.standard_normal((N, C, 1, 1)).astype("float32")
    assert rel_l2(run_relax(after, v, a), run_relax(before, v, a)) <= 1e-6


def _torch_gate(hardsigmoid: bool):
    import torch
    import torch.nn.functional as F

    class Gate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.audio = torch.nn.Conv2d(CA, C, 1)
            self.gate = torch.nn.Conv2d(C, C, 1)

        def forward(self, v, a):
            g = self.gate(F.adaptive_max_pool2d(v, 1))
            g = F.hardsigmoid(g) if hardsigmoid else F.relu6(g + 3.0) / 6.0
            return v + self.audio(a) * g

    return randomize(Gate())


@pytest.mark.parametrize("route,hardsigmoid,form", [
    ("export", False, "add3_clip_div6"),
    ("export", True, "add3_clip_clip_div6"),
    ("onnx", False, "add3_max_min_div6"),
    ("onnx", True, "mul_add_clip"),
])
def test_imported_forms(tmp_path, rng, route, hardsigmoid, form):
    import torch

    model = _torch_gate(hardsigmoid)
    args = (torch.randn(N, C, H, W), torch.randn(N, CA, 1, 1))
    mod = import_export(model, args) if route == "export" else import_onnx(model, args, tmp_path)
    p = FuseAudioGate(target=TARGET)
    after = p(mod)
    assert (p.stats.found, p.stats.fused, count_matches(after)) == (1, 1, 0)
    assert [k.split("+")[-1] for k in p.stats.variants] == [form]
    inputs = [x.numpy() for x in args]
    assert rel_l2(run_relax(after, *inputs), run_relax(mod, *inputs)) <= 1e-6
