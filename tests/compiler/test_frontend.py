"""Our converters for what TVM 0.27's torch importer lacks, and the numpy constant folder."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edgeavs.compiler import frontend
from edgeavs.compiler.fold_constants import FoldConstantsNumpy
from edgeavs.tvm_api import relax, tvm


class _Uses(torch.nn.Module):
    def forward(self, x, y):
        p = F.adaptive_max_pool2d(x, 1)                          # adaptive_max_pool2d.default
        m = torch.amax(x, dim=(2, 3), keepdim=True)              # amax.default
        c = torch.clamp(y, min=1e-3)                             # one-sided clamp (log-mel)
        return p + m + torch.log10(c).mean() + F.relu6(x + 3.0) / 6.0


def _build_and_run(mod, params, args):
    with tvm.target.Target({"kind": "llvm"}):
        mod = relax.transform.BindParams("main", params)(mod) if params else mod
        ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(a) for a in args]).numpy()


def test_converters_match_torch():
    x = torch.randn(1, 4, 6, 5)
    y = torch.rand(1, 7) - 0.2
    graph = _Uses().eval()
    mod, params = frontend.import_export(graph, (x, y))
    text = mod.script(show_meta=False)
    assert "R.max(" in text and "R.maximum(" in text and "R.clip(" in text
    assert "inf" not in text  # the open side became maximum(), not clip(.., inf)
    got = _build_and_run(mod, params, [x.numpy(), y.numpy()])
    np.testing.assert_allclose(got, graph(x, y).numpy(), rtol=1e-5, atol=1e-5)


def test_numpy_folding_matches_and_leaves_the_rest():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 4, 2, 2), "float32"))
    var = np.array([0.5, 1.0, 2.0, 4.0], "float32")
    with bb.function("main", [x]):
        with bb.dataflow():
            e = bb.emit(relax.op.expand_dims(relax.const(var), axis=[0, 2, 3]))
            s = bb.emit(relax.op.sqrt(relax.op.add(e, relax.const(1e-5, "float32"))))
            out = bb.emit_output(bb.emit(relax.op.divide(x, s)))
        bb.emit_func_output(out)
    mod = relax.transform.Normalize()(bb.get())
    folded = relax.transform.DeadCodeElimination()(FoldConstantsNumpy()(mod))
    calls = [b.value for b in folded["main"].body.blocks[0].bindings if isinstance(b.value, relax.Call)]
    assert [c.op.name for c in calls] == ["relax.divide"]  # only the op on the input is left
    data = np.random.default_rng(0).standard_normal((1, 4, 2, 2)).astype("float32")
    np.testing.assert_allclose(_build_and_run(folded, None, [data]), _build_and_run(mod, None, [data]),
                               rtol=1e-7)
    # nothing constant: the module comes back structurally unchanged
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.add(x, x)))
        bb.emit_func_output(out)
    plain = bb.get()
    tvm.ir.assert_structural_equal(FoldConstantsNumpy()(plain), plain)
