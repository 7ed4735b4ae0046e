"""Import small torch modules into Relax the two ways the pipeline does (torch.export and ONNX)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.tvm_api import relax, tvm


def _adaptive_max_pool2d(node, importer):
    # Only the global case (output 1x1) is used by LightAVSeg: a max over H, W with keepdims.
    x = importer.env[node.args[0]]
    size = node.args[1]
    if list(size) not in ([1, 1], [1]) and size != 1:
        raise NotImplementedError(f"adaptive_max_pool2d to {size}")
    return importer.block_builder.emit(relax.op.max(x, axis=[2, 3], keepdims=True))


CONVERTERS = {"adaptive_max_pool2d.default": _adaptive_max_pool2d}


def front_half(mod: tvm.IRModule) -> tvm.IRModule:
    """The pipeline's front half: what our passes see (weights as constants, BN folded)."""
    return tvm.transform.Sequential([
        relax.transform.FoldBatchnormToConv2D(),
        relax.transform.DecomposeOpsForInference(),
        relax.transform.CanonicalizeBindings(),
        relax.transform.FoldConstant(),
    ])(mod)


def import_export(module, args) -> tvm.IRModule:
    import torch
    from tvm.relax.frontend.torch import from_exported_program

    ep = torch.export.export(module.eval(), tuple(args))
    mod = from_exported_program(ep, custom_convert_map=CONVERTERS, unwrap_unit_return_tuple=True)
    return front_half(mod)


def import_onnx(module, args, tmp_path) -> tvm.IRModule:
    import onnx
    import torch
    from tvm.relax.frontend.onnx import from_onnx

    path = str(tmp_path / "m.onnx")
    torch.onnx.export(module.eval(), tuple(args), path, dynamo=True, opset_version=18, verbose=False)
    return front_half(from_onnx(onnx.load(path)))


def randomize(module, seed: int = 0):
    """Non-trivial weights and BN statistics so that folding errors would show."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for name, b in module.named_buffers():
            if b.dtype.is_floating_point:
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module.eval()


def run_relax(mod: tvm.IRModule, *inputs: np.ndarray) -> np.ndarray:
    ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(x) for x in inputs])
    if isinstance(out, (list, tuple)) or type(out).__name__ == "Array":
        out = out[0]
    return out.numpy()


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_module(inputs: dict, body) -> tvm.IRModule:
    """A one-function module: ``body(bb, *params)`` emits the dataflow bindings and returns the output."""
    bb = relax.BlockBuilder()
    params = [relax.Var(name, relax.TensorType(shape, "float32")) for name, shape in inputs.items()]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *params))
        bb.emit_func_output(out)
    return bb.get()


def emit_hsig(bb, x, form: str = "add3_clip_div6"):
    """h_sigmoid(x) in one of its import forms (edgeavs.passes.hsigmoid)."""
    f32 = lambda v: relax.const(v, "float32")  # noqa: E731
    op = relax.op
    if form == "add3_clip_div6":
        return bb.emit(op.divide(bb.emit(op.clip(bb.emit(op.add(x, f32(3.0))), 0, 6)), f32(6.0)))
    if form == "add3_clip_clip_div6":
        t = bb.emit(op.clip(bb.emit(op.add(x, f32(3.0))), 0, float("inf")))
        return bb.emit(op.divide(bb.emit(op.clip(t, float("-inf"), 6)), f32(6.0)))
    if form == "mul_add_clip":
        t = bb.emit(op.add(bb.emit(op.multiply(f32(1.0 / 6.0), x)), f32(0.5)))
        return bb.emit(op.clip(t, 0, 1))
    if form == "add2_clip_div6":  # not an h-sigmoid
        return bb.emit(op.divide(bb.emit(op.clip(bb.emit(op.add(x, f32(2.0))), 0, 6)), f32(6.0)))
    raise ValueError(form)
