"""PyTorch -> Relax: the two import routes and the converters TVM 0.27 lacks.

``export`` (default): ``torch.export`` + ``from_exported_program`` with :data:`CONVERTERS`.
``onnx``: ``torch.onnx.export(dynamo=True, opset 18)`` + ``relax.frontend.onnx.from_onnx``
(imports as is; the legacy exporter's reflect pad does not, see TVM-NOTES).

Both return ``(mod, params)``: ``mod["main"]`` takes the graph inputs followed by the weights
(``params`` maps those weight parameters' names to arrays, in order); the pipeline binds them.
torch and TVM are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path

from edgeavs.errors import EdgeAVSError

INPUT_NAMES = ("frames", "waveform")
SAMPLES = 32000  # one second at 32 kHz (SPEC §1)
ONNX_OPSET = 18

# The order of the auxiliary tensors = the order the model computes them (per level fine ->
# coarse for the encoder, coarse -> fine for the decoder), so "the first tensor whose error
# opens up" is meaningful.
AUX_ENCODER = ("pyramid", "a_enc", "v_enc")
AUX_DECODER = ("a_hat", "v_dec")


# ---------------------------------------------------------------- converters (export route)

def _convert_adaptive_max_pool2d(node, importer):
    """``aten.adaptive_max_pool2d(x, 1)`` (the global max pool P of SPEC §4) -> ``max`` over H, W.

    Returns ``(values, None)``: the indices output is never used by LightAVSeg."""
    from edgeavs.tvm_api import relax

    x = importer.env[node.args[0]]
    size = node.args[1]
    size = list(size) if isinstance(size, (list, tuple)) else [size, size]
    if size != [1, 1]:
        raise EdgeAVSError(f"adaptive_max_pool2d to {size} is not supported (only to 1x1)")
    return (importer.block_builder.emit(relax.op.max(x, axis=[2, 3], keepdims=True)), None)


def _convert_amax(node, importer):
    """``torch.amax(x, dim, keepdim)`` -> relax ``max``."""
    from edgeavs.tvm_api import relax

    x = importer.env[node.args[0]]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", None)
    keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    axis = None if dim is None or (isinstance(dim, (list, tuple)) and not dim) else (
        list(dim) if isinstance(dim, (list, tuple)) else [dim])
    return importer.block_builder.emit(relax.op.max(x, axis=axis, keepdims=bool(keep)))


def _convert_clamp(node, importer):
    """``clamp`` with one open side (``torch.clamp(x, min=1e-10)`` in the log-mel front end).

    TVM lowers it to ``clip(x, lo, inf)``, whose legalisation fails ("Cannot convert infinity
    to BigInt"); emit ``maximum``/``minimum`` with a scalar instead. Two-sided clamps (ReLU6,
    h_sigmoid) stay ``clip`` so that the fusion patterns still see them."""
    from edgeavs.tvm_api import relax

    args = importer.retrieve_args(node)
    x = args[0]
    lo = args[1] if len(args) > 1 else node.kwargs.get("min")
    hi = args[2] if len(args) > 2 else node.kwargs.get("max")
    scalar = (int, float)
    if isinstance(lo, scalar) and isinstance(hi, scalar):
        return importer.block_builder.emit(relax.op.clip(x, lo, hi))
    if (lo is not None and not isinstance(lo, scalar)) or (hi is not None and not isinstance(hi, scalar)):
        raise EdgeAVSError("clamp with tensor bounds is not supported by the edgeavs importer")
    dtype = x.ty.dtype
    if lo is not None:
        x = importer.block_builder.emit(relax.op.maximum(x, relax.const(lo, dtype)))
    if hi is not None:
        x = importer.block_builder.emit(relax.op.minimum(x, relax.const(hi, dtype)))
    return x


CONVERTERS = {
    "adaptive_max_pool2d.default": _convert_adaptive_max_pool2d,
    "amax.default": _convert_amax,
    "clamp.default": _convert_clamp,
}


# ---------------------------------------------------------------- the graph we compile

def aux_names(model, frames, waveform) -> list[str]:
    """Names of the tensors the per-layer graph returns (``logits`` last)."""
    import torch

    with torch.no_grad():
        aux = model(frames, waveform, return_aux=True)
    return [name for name, _ in _flatten_aux(aux)]


def _flatten_aux(aux: dict) -> list:
    levels = len(aux["pyramid"])
    out = []
    for i in range(levels):
        out += [(f"{k}.{i}", aux[k][i]) for k in AUX_ENCODER if k in aux]
    for i in reversed(range(levels)):
        out += [(f"{k}.{i}", aux[k][i]) for k in AUX_DECODER if k in aux]
    out.append(("logits", aux["logits"]))
    return out


def inference_graph(model, aux: bool = False):
    """The module that is exported: ``(frames, waveform) -> logits``, or with ``aux`` a tuple of
    every named intermediate (see :func:`aux_names`) for per-layer verification."""
    import torch

    class _Graph(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, frames, waveform):
            if not aux:
                return self.inner(frames, waveform)
            return tuple(t for _, t in _flatten_aux(self.inner(frames, waveform, return_aux=True)))

    return _Graph(model).eval()


def example_inputs(height: int, width: int, batch: int = 1, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, height, width, generator=g),
            0.1 * torch.randn(batch, SAMPLES, generator=g))


# ---------------------------------------------------------------- the two routes

def import_export(graph, inputs) -> tuple:
    """torch.export -> Relax. Returns ``(mod, params)``."""
    import warnings

    import torch

    from edgeavs.tvm_api import from_exported_program, relax

    with torch.no_grad():
        ep = torch.export.export(graph, tuple(inputs))
    with warnings.catch_warnings():
        # torch 2.13's own ExportedProgram.run_decompositions (which from_exported_program calls)
        # deep-copies its module call graph, whose LeafSpec objects warn that LeafSpec is deprecated:
        # torch's code talking to itself, nothing a user of edgeavs can act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        mod = from_exported_program(ep, keep_params_as_input=True, unwrap_unit_return_tuple=True,
                                    custom_convert_map=CONVERTERS)
    mod, params = relax.frontend.detach_params(mod)
    names = [v.name for v in mod["main"].params[len(inputs):]]
    return mod, dict(zip(names, params.get("main", [])))


def export_onnx(graph, inputs, path, output_names=("logits",)) -> Path:
    """``torch.onnx.export(dynamo=True, opset 18)`` of ``graph`` to ``path``."""
    import os
    import warnings

    import torch

    path = Path(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(graph, tuple(inputs), dynamo=True, opset_version=ONNX_OPSET,
                                 input_names=list(INPUT_NAMES), output_names=list(output_names),
                                 verbose=False)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        prog.save(str(tmp))  # one self-contained file (weights inline, < 2 GB)
    os.replace(tmp, path)
    return path


def import_onnx(path) -> tuple:
    """ONNX -> Relax; weights come back as parameters so that both routes bind them alike."""
    import onnx

    from edgeavs.tvm_api import from_onnx, relax

    model = onnx.load(str(path))
    mod = from_onnx(model, keep_params_in_input=True)
    mod, params = relax.frontend.detach_params(mod)
    n_inputs = len(model.graph.input) - len({i.name for i in model.graph.initializer}
                                             & {i.name for i in model.graph.input})
    names = [v.name for v in mod["main"].params[n_inputs:]]
    return mod, dict(zip(names, params.get("main", [])))
