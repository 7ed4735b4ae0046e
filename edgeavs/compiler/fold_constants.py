"""FoldConstantsNumpy: fold the cheap constant expressions with numpy before TVM's FoldConstant.

After ``torch.export`` decomposition every BatchNorm arrives as ``expand_dims``/``add``/``sqrt``/
``divide``/``multiply`` chains on weight constants; TVM's ``FoldConstant`` evaluates each such
call by legalising and *building* it with LLVM (~40 ms each, ~1000 calls for LightAVSeg-T: 35 s
on 2 cores). This pass evaluates the elementwise/layout ops in numpy (IEEE float32, same
results) and leaves anything else to ``FoldConstant``, which runs right after it.

Pipeline position: after BindParams/Decompose/Canonicalize, before FoldConstant.
"""

from __future__ import annotations

import numpy as np


def _ints(x):
    return [int(v) for v in x]


def _reshape(call, a, shape):
    return a.reshape(_ints(shape.values))


def _broadcast_to(call, a, shape):
    return np.broadcast_to(a, _ints(shape.values)).copy()


def _expand_dims(call, a):
    axes = sorted(int(v) % (a.ndim + len(call.attrs.axis)) for v in call.attrs.axis)
    for ax in axes:
        a = np.expand_dims(a, ax)
    return a


def _permute_dims(call, a):
    axes = call.attrs.axes
    return np.transpose(a, _ints(axes) if axes is not None else None).copy()


def _squeeze(call, a):
    axis = call.attrs.axis
    return np.squeeze(a, axis=tuple(_ints(axis)) if axis is not None else None)


def _astype(call, a):
    return a.astype(str(call.attrs.dtype))


def _take(call, a, idx):
    axis = call.attrs.axis
    return np.take(a, idx.astype(np.int64), axis=int(axis) if axis is not None else None)


def _binary(fn):
    def f(call, a, b):
        out = fn(a, b)
        return out.astype(np.result_type(a, b)) if out.dtype != np.result_type(a, b) else out
    return f


def _unary(fn):
    return lambda call, a: fn(a).astype(a.dtype)


def _divide(a, b):
    if np.issubdtype(a.dtype, np.integer):
        raise _Skip  # relax integer divide semantics: leave to FoldConstant
    return np.divide(a, b)


class _Skip(Exception):
    pass


class _Unhandled(Exception):
    pass


# relax op name -> numpy evaluation; args after the call are numpy arrays (or ShapeExpr).
RULES = {
    "relax.add": _binary(np.add),
    "relax.subtract": _binary(np.subtract),
    "relax.multiply": _binary(np.multiply),
    "relax.divide": _binary(_divide),
    "relax.maximum": _binary(np.maximum),
    "relax.minimum": _binary(np.minimum),
    "relax.sqrt": _unary(np.sqrt),
    "relax.negative": _unary(np.negative),
    "relax.reshape": _reshape,
    "relax.broadcast_to": _broadcast_to,
    "relax.expand_dims": _expand_dims,
    "relax.permute_dims": _permute_dims,
    "relax.squeeze": _squeeze,
    "relax.astype": _astype,
    "relax.take": _take,
    "relax.abs": _unary(np.abs),
    "relax.clip": lambda call, a, lo, hi: np.clip(a, lo, hi).astype(a.dtype),
    "relax.arange": lambda call, start, end, step: np.arange(start, end, step).astype(str(call.attrs.dtype)),
    # ONNX Clip imports as where(isnan(bound), -inf, bound) on scalar initialisers
    "relax.isnan": lambda call, a: np.isnan(a),
    "relax.where": lambda call, c, a, b: np.where(c, a, b).astype(np.result_type(a, b)),
}


def FoldConstantsNumpy(stats: dict | None = None):  # noqa: N802 - a pass factory, named like TVM's
    """Module pass: evaluate :data:`RULES` ops whose inputs are all constants with numpy.

    ``stats`` (optional dict) receives ``folded`` and ``left``: calls on constants it had no
    rule for, which only TVM's FoldConstant can evaluate."""
    from edgeavs.tvm_api import Constant, mutator_pass, relax, tvm

    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class _Folder(PyExprMutator):
        def _value(self, arg):
            if isinstance(arg, relax.Var):
                bound = self.lookup_binding(arg)
                if bound is not None:
                    arg = bound
            if isinstance(arg, Constant):
                return arg.value.numpy()
            if isinstance(arg, (tvm.tirx.FloatImm, tvm.tirx.IntImm)):  # a scalar operand
                return np.array(arg.value, dtype=str(arg.ty))
            if isinstance(arg, relax.ShapeExpr):
                if all(isinstance(v, tvm.tirx.IntImm) for v in arg.values):
                    return arg
            raise _Skip

        def visit_call_(self, call):
            call = super().visit_call_(call)
            op = call.op
            if not isinstance(op, tvm.ir.Op):
                return call
            rule = RULES.get(op.name)
            try:
                args = [self._value(a) for a in call.args]
                if rule is None:
                    raise _Unhandled
                out = rule(call, *args)
            except _Unhandled:
                counts["left"] += 1
                return call
            except (_Skip, ValueError, TypeError, IndexError):
                return call
            ty = call.ty if hasattr(call, "ty") else call.struct_info
            want = [int(d) for d in ty.shape] if getattr(ty, "shape", None) is not None else None
            out = np.array(out, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
            if want is None or list(out.shape) != want or str(out.dtype) != str(ty.dtype):
                counts["left"] += 1
                return call
            counts["folded"] += 1
            return relax.const(out, str(out.dtype))

    counts = stats if stats is not None else {}
    counts.update(folded=0, left=0)

    return mutator_pass("FoldConstantsNumpy", _Folder)


def FoldConstants():  # noqa: N802
    """FoldConstantsNumpy, then TVM's FoldConstant only if calls on constants are left that
    numpy had no rule for (on LightAVSeg via ONNX, FoldConstant otherwise spends ~20 s
    building ~270 kernels and changes nothing)."""
    from edgeavs.tvm_api import relax, tvm

    @tvm.transform.module_pass(opt_level=0, name="FoldConstants")
    def _pass(mod, _ctx):
        stats: dict = {}
        mod = FoldConstantsNumpy(stats)(mod)
        if stats["left"]:
            mod = relax.transform.FoldConstant()(mod)
        return mod

    return _pass
