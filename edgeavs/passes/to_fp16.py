"""ToFloat16: the convolutions and matmuls of an fp16 build compute in half precision.

Where it goes: the pipeline's ``precision`` phase, after ``edgeavs-fusion`` (whose kernels, the gates and the
STFT, stay fp32) and before legalisation. Every ``conv1d``/``conv2d``/``matmul`` with float32 operands, except
those kept in fp32 (below), becomes

* ``accumulate="float32"``: ``conv2d(astype(x, f16), W16, out_dtype=f32)``: fp16 operands, products summed in
  fp32 (on AArch64 the vector code widens to fp32 FMLA: half the weight bytes, fp32's arithmetic rate);
* ``accumulate="float16"``: ``astype(conv2d(astype(x, f16), W16, out_dtype=f16), f32)``: fp16 FMLA, 8 lanes
  per 128-bit vector on ``+fullfp16`` (twice fp32's rate), at fp16's rounding of every partial sum.

Constant weights are rounded to float16 here (numpy, round to nearest even); the bias, the activations and
every other op stay fp32, so the graph keeps fp32 between the MAC layers (what the fused epilogues read).
Kept in fp32 (``ToFloat16.kept``, the manifest's precision report):

* the log-mel front end: every MAC op whose result reaches the graph's first ``log`` (the mel filter bank;
  the STFT is the fp32 ``edgeavs.stft_fft`` kernel) — fp16's 11-bit mantissa on power spectra that span
  ~1e-10..1e4 is what log amplifies;
* with ``keep_ends`` (default): the first conv on the frames (the stem, reading normalised pixels) and the
  conv producing the output (the mask logits' last layer), the two the sensitivity study names.
"""

from __future__ import annotations

import numpy as np

from edgeavs.passes._rewrite import bindings, op_name
from edgeavs.passes._rewrite import dtype_of as _dtype
from edgeavs.tvm_api import Constant, module_pass, relax

ACCUMULATE = ("float32", "float16")
MAC_OPS = ("relax.nn.conv2d", "relax.nn.conv1d", "relax.matmul")


def kept_in_fp32(func, keep_ends: bool = True) -> dict:
    """``{var: reason}`` of the MAC bindings of ``func`` that stay fp32 (see the module docstring)."""
    binds = bindings(func)
    producer = {b.var: b.value for b in binds}
    macs = [b for b in binds if op_name(b.value) in MAC_OPS]
    kept = {}
    logs = [b for b in binds if op_name(b.value) == "relax.log"]
    if logs:  # the ancestors of the first log: the front end
        seen, stack = set(), [logs[0].value]
        while stack:
            expr = stack.pop()
            for var in relax.analysis.free_vars(expr):
                if var in producer and var not in seen:
                    seen.add(var)
                    stack.append(producer[var])
        kept.update({b.var: "log-mel front end" for b in macs if b.var in seen})
    if keep_ends and macs:
        frames = func.params[0]
        first = next((b for b in macs if any(v.same_as(frames) for v in relax.analysis.free_vars(b.value))), None)
        if first is not None:
            kept.setdefault(first.var, "first conv (frames)")
        convs = [b for b in macs if op_name(b.value) != "relax.matmul"]
        if convs:
            kept.setdefault(convs[-1].var, "last conv (logits)")
    return kept


def _half(expr, bb):
    if isinstance(expr, Constant):
        return relax.const(expr.value.numpy().astype(np.float16), "float16")
    return bb.emit(relax.op.astype(expr, "float16"))


def _remake(call, a, b, out_dtype):
    op, attrs = op_name(call), call.attrs
    if op == "relax.matmul":
        return relax.op.matmul(a, b, out_dtype=out_dtype)
    make = relax.op.nn.conv2d if op == "relax.nn.conv2d" else relax.op.nn.conv1d
    return make(a, b, strides=attrs.strides, padding=attrs.padding, dilation=attrs.dilation,
                groups=attrs.groups, data_layout=attrs.data_layout, kernel_layout=attrs.kernel_layout,
                out_layout=attrs.out_layout, out_dtype=out_dtype)


@module_pass(opt_level=0, name="ToFloat16")
class ToFloat16:
    """The MAC layers of every Relax function in fp16 (see the module docstring). After the pass ran,
    ``report`` holds ``{"converted": n, "kept": {reason: n}, "accumulate": ...}``."""

    def __init__(self, accumulate: str = "float32", keep_ends: bool = True):
        if accumulate not in ACCUMULATE:
            raise ValueError(f"accumulate {accumulate!r}: expected one of {ACCUMULATE}")
        self.accumulate = accumulate
        self.keep_ends = keep_ends
        self.report: dict = {}

    def transform_module(self, mod, _ctx):
        accumulate = self.accumulate
        converted, kept_counts = 0, {}

        @relax.expr_functor.mutator
        class Mutator(relax.PyExprMutator):
            def __init__(self, mod, kept):
                super().__init__(mod)
                self.kept = kept

            def visit_var_binding_(self, binding):
                nonlocal converted
                value = binding.value
                if (op_name(value) not in MAC_OPS or binding.var in self.kept
                        or not isinstance(binding.var, relax.DataflowVar)
                        or any(_dtype(a) != "float32" for a in value.args) or _dtype(binding.var) != "float32"):
                    super().visit_var_binding_(binding)
                    return
                bb = self.builder_
                a = _half(self.visit_expr(value.args[0]), bb)
                b = _half(self.visit_expr(value.args[1]), bb)
                out = _remake(value, a, b, accumulate)
                if accumulate != "float32":
                    out = relax.op.astype(bb.emit(out), "float32")
                self.set_var_remap(binding.var, bb.emit(out))
                converted += 1

        for gv, func in list(mod.functions_items()):
            if not isinstance(func, relax.Function):
                continue
            kept = kept_in_fp32(func, self.keep_ends)
            for reason in kept.values():
                kept_counts[reason] = kept_counts.get(reason, 0) + 1
            m = Mutator(mod, kept)
            m.builder_.update_func(gv, m.visit_expr(func))
            mod = m.builder_.get()
        self.report = {"converted": converted, "kept": kept_counts, "accumulate": accumulate,
                       "keep_ends": self.keep_ends}
        return mod
