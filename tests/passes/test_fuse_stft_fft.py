"""FuseStftFft: structural Before/Expected, the tiny model's front end (both import routes), no-match cases
(weights that are not the DFT basis), a reused intermediate, numerics before vs after (rel-L2 <= 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.passes.fuse_stft_fft import FuseStftFft, count_candidates, count_matches
from edgeavs.tvm_api import assert_structural_equal, relax
from kernels.stft_fft import StftFftWorkload, dft_basis, fallback_config, reference, stft_fft_kernel, tables
from tests.passes.conftest import make_module, rel_l2, run_relax

TARGET = {"kind": "llvm", "num-cores": 2}
N_FFT, HOP, LENGTH = 64, 16, 64 + 10 * 16 + 5   # 11 frames: a partial chunk at every vector width


def _weights():
    re, im = dft_basis(N_FFT)
    return re[:, None, :].astype("float32"), im[:, None, :].astype("float32")


def _before(wa, wb, keep_conv=False, stride=HOP):
    def body(bb, x):
        a = bb.emit(relax.op.nn.conv1d(x, relax.const(wa), strides=stride))
        b = bb.emit(relax.op.nn.conv1d(x, relax.const(wb), strides=stride))
        p = bb.emit(relax.op.add(bb.emit(relax.op.multiply(a, a)), bb.emit(relax.op.multiply(b, b))))
        return bb.emit(relax.Tuple([p, a])) if keep_conv else p

    return make_module({"x": (2, 1, LENGTH)}, body)


def _expected():
    wl = StftFftWorkload(n=2, length=LENGTH, n_fft=N_FFT, hop=HOP)
    cfg = fallback_config(wl, TARGET)
    table, bitrev = tables(wl)

    def body(bb, x):
        gv = bb.add_func(stft_fft_kernel(wl, config=cfg), "edgeavs_stft_fft")
        return relax.call_tir(gv, [x, relax.const(table), relax.const(bitrev)],
                              out_ty=relax.TensorType((2, wl.bins, wl.frames), "float32"))

    return make_module({"x": (2, 1, LENGTH)}, body)


@pytest.mark.parametrize("order", ["re,im", "im,re"])
def test_rewrites_to_one_kernel(order):
    re, im = _weights()
    p = FuseStftFft(target=TARGET)
    after = p(_before(re, im) if order == "re,im" else _before(im, re))
    assert_structural_equal(after, _expected())
    assert (p.stats.found, p.stats.fused, p.stats.no_match) == (1, 1, 0)
    assert p.stats.as_dict()["variants"] == {order: 1}


@pytest.mark.parametrize("case", ["perturbed", "plus_sin", "two_cos", "shifted_window"])
def test_not_the_basis_is_left_alone(case):
    re, im = _weights()
    if case == "perturbed":
        im = im.copy()
        im[5, 0, 17] += 1e-4
        before = _before(re, im)
    elif case == "plus_sin":
        before = _before(re, -im)
    elif case == "two_cos":
        before = _before(re, re)
    else:  # the basis shifted by one sample
        before = _before(np.roll(re, 1, axis=2), np.roll(im, 1, axis=2))
    assert count_candidates(before) == 1 and count_matches(before) == 0
    p = FuseStftFft(target=TARGET)
    assert_structural_equal(p(before), before)
    assert (p.stats.found, p.stats.fused, p.stats.no_match) == (0, 0, 1)
    assert p.stats.as_dict()["no_match"] == 1


def test_different_inputs_or_strides_are_not_candidates():
    re, im = _weights()

    def body(bb, x, y):
        a = bb.emit(relax.op.nn.conv1d(x, relax.const(re), strides=HOP))
        b = bb.emit(relax.op.nn.conv1d(y, relax.const(im), strides=HOP))
        return bb.emit(relax.op.add(bb.emit(relax.op.multiply(a, a)), bb.emit(relax.op.multiply(b, b))))

    two_inputs = make_module({"x": (1, 1, LENGTH), "y": (1, 1, LENGTH)}, body)
    assert count_candidates(two_inputs) == 0
    assert_structural_equal(FuseStftFft(target=TARGET)(two_inputs), two_inputs)


def test_reused_intermediate_is_counted_not_fused():
    re, im = _weights()
    before = _before(re, im, keep_conv=True)
    p = FuseStftFft(target=TARGET)
    assert_structural_equal(p(before), before)
    assert (p.stats.found, p.stats.fused) == (1, 0)


def test_fused_module_matches_unfused(rng):
    re, im = _weights()
    before = _before(re, im)
    after = FuseStftFft(target=TARGET)(before)
    x = rng.standard_normal((2, 1, LENGTH)).astype("float32")
    got, unfused = run_relax(after, x), run_relax(before, x)
    assert rel_l2(got, unfused) <= 1e-6
    assert rel_l2(got, reference(x, N_FFT, HOP)) <= 1e-6


class _FrontEnd:
    """The tiny LightAVSeg's audio front end (``model.audio.logmel``: conv-STFT, mel, log, bn0)."""

    @staticmethod
    def module():
        import torch

        import edgeavs

        torch.manual_seed(0)
        audio = edgeavs.build_model("tiny").audio.eval()

        class LogMel(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.audio = audio

            def forward(self, frames, waveform):
                return self.audio.logmel(waveform)

        return LogMel().eval()


@pytest.mark.parametrize("via", ["export", "onnx"])
def test_tiny_model_front_end_is_rewritten_once(tmp_path, via):
    import torch

    from edgeavs.compiler import frontend, pipeline
    from edgeavs.passes import run_fusion_passes
    from edgeavs.tvm_api import make_target

    graph = _FrontEnd.module()
    wave = 0.1 * torch.randn(1, frontend.SAMPLES, generator=torch.Generator().manual_seed(1))
    inputs = (torch.zeros(1, 3, 32, 32), wave)
    if via == "export":
        mod, params = frontend.import_export(graph, inputs)
    else:
        mod, params = frontend.import_onnx(frontend.export_onnx(graph, inputs, tmp_path / "m.onnx"))
    ctx = pipeline.PipelineContext(target=make_target(TARGET), params=params)
    with ctx.target:
        for phase in pipeline.PIPELINE:
            if phase.name == "edgeavs-fusion":
                break
            for p in phase.passes(ctx):
                mod = p(mod)
        assert count_matches(mod) == 1
        after, stats = run_fusion_passes(mod, TARGET)
    st = stats["edgeavs.stft_fft"].as_dict()
    assert (st["found"], st["fused"], st["no_match"]) == (1, 1, 0)
    assert count_matches(after) == 0
    calls = [b.value for blk in after["main"].body.blocks for b in blk.bindings]
    assert not any(isinstance(c, relax.Call) and getattr(c.op, "name", "") == "relax.nn.conv1d" for c in calls)
    kernels = [f.attrs["edgeavs.kernel"] for _, f in after.functions_items()
               if f.attrs is not None and "edgeavs.kernel" in f.attrs]
    assert kernels == ["edgeavs.stft_fft"]
    wave = wave.numpy()
    with torch.no_grad():
        want = graph(*inputs).numpy()
    args = [inputs[0].numpy(), wave] if len(after["main"].params) == 2 else [wave]
    # log-mel in dB: fp32 differences in the power spectrum are ~1e-7 relative, i.e. ~1e-6 dB
    assert np.abs(run_relax(after, *args) - want).max() <= 1e-3
