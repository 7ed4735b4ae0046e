"""ToInt8Conv and its sites: which 1x1 convs are quantised, the calibration module, and the rewritten graph
computing exactly what ``kernels.int8_conv.reference`` says (the pass's quantisation of weights and inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.tvm_api import relax, tvm


class _Net:
    """conv1x1 (16 -> 24) + bias -> relu -> conv1x1 (24 -> 8) -> 3x3 conv (not a site) -> conv1x1 (8 -> 4)."""

    @staticmethod
    def build():
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(16, 24, 1), torch.nn.ReLU(), torch.nn.Conv2d(24, 8, 1, bias=False),
                                  torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 1))
        return net.eval()


def _relax(net, x):
    from tests.passes.conftest import import_export

    from edgeavs.compiler.fold_constants import FoldConstants

    mod = import_export(net, [x])
    mod = relax.transform.BindParams("main", {})(mod)
    return FoldConstants()(mod)


@pytest.fixture(scope="module")
def small():
    import torch

    net = _Net.build()
    x = torch.randn(1, 16, 7, 9)
    return net, x, _relax(net, x)


def test_sites_are_the_1x1_convs_in_order(small):
    from edgeavs.passes.int8_conv import sites

    _, _, mod = small
    ss = sites(mod["main"], keep_ends=False)
    assert [s.shape for s in ss] == [(1, 24, 16, 7, 9), (1, 8, 24, 7, 9), (1, 4, 8, 7, 9)]
    assert all(s.kept is None for s in ss)
    kept = sites(mod["main"], keep_ends=True)
    assert [s.kept for s in kept] == ["first conv (frames)", None, "last conv (logits)"]  # reads the input


def test_with_site_inputs_returns_every_site_input(small):
    """The calibration module returns the model's output and, per site, the tensor that site reads."""
    from edgeavs.compiler.pipeline import run_pipeline
    from edgeavs.passes.int8_conv import with_site_inputs
    from edgeavs.tvm_api import VirtualMachine, cpu, host_target, to_tvm

    net, x, mod = small
    col, calibrated = with_site_inputs(mod, keep_ends=False)
    assert [s.index for s in calibrated] == [0, 1, 2]
    host = host_target(1)
    built, _ = run_pipeline(col, host, None, start="legalize")
    vm = VirtualMachine(tvm.compile(built, target=host, relax_pipeline=None), cpu())
    out = vm["main"](to_tvm(x.numpy()))
    import torch

    with torch.no_grad():
        a0 = x
        a1 = torch.relu(net[0](a0))
        a2 = net[3](net[2](a1))
        want = [net(x), a0, a1, a2]
    for got, ref in zip([out[i].numpy() for i in range(4)], want):
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_to_int8_graph_equals_the_reference(small):
    """Every site in int8 (scales chosen here): the compiled graph equals the numpy model of the same scheme
    (weights quantised per channel by the pass, inputs per tensor in the kernel) to fp32 rounding (1e-5 of the
    output's scale), and is measurably not the fp32 graph."""
    import torch

    from edgeavs.compiler.pipeline import _copy, run_pipeline
    from edgeavs.passes.int8_conv import SitePlan, ToInt8Conv, quantize_weight
    from edgeavs.tvm_api import VirtualMachine, cpu, host_target, to_tvm
    from kernels.int8_conv import reference

    net, x, mod = small
    plan = [SitePlan(scale=0.02, zero_point=-3), SitePlan(scale=0.01, zero_point=-128),
            SitePlan(scale=0.05, zero_point=7)]
    host = host_target(2)
    p = ToInt8Conv(plan, target=host, keep_ends=False)
    with host:
        q = p(_copy(mod))
    assert p.report["converted"] == 3 and p.report["sites"] == 3
    assert p.report["bias_folded"] == 1  # the first conv's bias (the last one's add is the graph output: kept)
    assert p.report["act_folded"] == 1  # the relu after the first
    assert "R.nn.conv2d" in q.script(show_meta=False)  # the 3x3 conv stays
    built, _ = run_pipeline(q, host, None, start="legalize")
    vm = VirtualMachine(tvm.compile(built, target=host, relax_pipeline=None), cpu())
    got = vm["main"](to_tvm(x.numpy())).numpy()

    def qconv(conv, a, sp):
        w = conv.weight.detach().numpy()[:, :, 0, 0]
        wq, s_w = quantize_weight(w)
        y = reference(a, wq, np.float32(1.0 / sp.scale), sp.zero_point,
                      (np.float32(sp.scale) * s_w).astype(np.float32), np.zeros(w.shape[0], np.float32))
        b = conv.bias.detach().numpy() if conv.bias is not None else 0.0
        return y + np.reshape(b, (1, -1, 1, 1))

    with torch.no_grad():
        a = np.maximum(qconv(net[0], x.numpy(), plan[0]), 0)
        a = qconv(net[2], a, plan[1])
        a = net[3](torch.from_numpy(a.astype(np.float32))).numpy()
        want = qconv(net[4], a, plan[2])
        fp32 = net(x).numpy()
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)
    assert np.abs(got - fp32).max() > 1e-3 * scale  # it is an int8 graph


def test_to_int8_keeps_planned_none_in_fp32(small):
    from edgeavs.compiler.pipeline import _copy
    from edgeavs.passes.int8_conv import SitePlan, ToInt8Conv
    from edgeavs.tvm_api import host_target

    _, _, mod = small
    host = host_target(1)
    p = ToInt8Conv([SitePlan(0.02, 0), None, SitePlan(0.02, 0)], target=host, keep_ends=False,
                   reasons={1: "sensitivity (SNR < 25 dB)"})
    with host:
        p(_copy(mod))
    assert p.report["converted"] == 2 and p.report["kept"] == {"sensitivity (SNR < 25 dB)": 1}
    p = ToInt8Conv([SitePlan(0.02, 0)] * 3, target=host, keep_ends=True)  # the ends stay fp32 by rule
    with host:
        p(_copy(mod))
    assert p.report["converted"] == 1
    assert p.report["kept"] == {"first conv (frames)": 1, "last conv (logits)": 1}
    with pytest.raises(ValueError, match="the plan has 2 entries for 3 sites"):
        with host:
            ToInt8Conv([None, None], target=host)(_copy(mod))


def test_quantize_weight_is_symmetric_per_channel():
    from edgeavs.passes.int8_conv import quantize_weight

    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -0.01]], np.float32)
    wq, s = quantize_weight(w)
    assert wq.dtype == np.int8 and s.dtype == np.float32
    assert wq[0, 1] == -127 and abs(int(wq[0, 0]) - 64) <= 1 and abs(int(wq[0, 2]) - 32) <= 1
    np.testing.assert_array_equal(wq[1], [0, 0, 0]) and s[1] == 1.0
    assert wq[2, 0] == 127 and np.abs(wq).max() <= 127
    np.testing.assert_allclose(wq * s[:, None], w, atol=s.max() / 2 + 1e-7)
