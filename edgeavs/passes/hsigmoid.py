"""One matcher for every form in which ``h_sigmoid(x) = ReLU6(x + 3) / 6`` reaches Relax.

The form depends on the import path (TVM-NOTES, checked on TVM 0.27 after the front half of the pipeline):

``add3_clip_clip_div6``
    torch.export of ``F.hardsigmoid`` (decomposed): ``clip(clip(x + 3, 0, inf), -inf, 6) / 6``.
``add3_clip_div6``
    torch.export of ``F.relu6(x + 3) / 6`` (our model's spelling): ``clip(x + 3, 0, 6) / 6``.
``mul_add_clip``
    ONNX ``HardSigmoid``: ``clip(x * (1/6) + 0.5, 0, 1)``.
``add3_max_min_div6``
    ONNX ``Clip`` with tensor bounds (the ONNX export of ``F.relu6(x + 3) / 6``): from_onnx emits
    ``call_tir(maximum, (x + 3, 0))`` then ``call_tir(minimum, (., 6))``, then ``/ 6``.

A final ``/ 6`` may also be spelt ``* (1/6)``. ``hsigmoid_pattern`` returns the pattern and a check that verifies
every constant, since the pattern alone only fixes the op sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgeavs.tvm_api import Constant, IRModule, dpl, tirx

_TOL = 1e-6


def _scalar(expr) -> float | None:
    """The value of a scalar (or all-equal) relax constant or prim value (clip bounds); None otherwise."""
    value = getattr(expr, "value", None)
    if isinstance(expr, Constant) and hasattr(value, "numpy"):
        flat = value.numpy().reshape(-1)
        if flat.size == 0 or not np.all(flat == flat[0]):
            return None
        return float(flat[0])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def is_scalar(expr, expected: float) -> bool:
    value = _scalar(expr)
    if value is None:
        return False
    if math.isinf(expected):
        return math.isinf(value) and (value > 0) == (expected > 0)
    return abs(value - expected) <= _TOL * max(1.0, abs(expected))


@dataclass
class _Form:
    name: str
    output: dpl.DFPattern
    values: list[tuple[dpl.DFPattern, float]] = field(default_factory=list)
    prim_funcs: list[tuple[dpl.DFPattern, str]] = field(default_factory=list)


@dataclass
class HSigmoidMatch:
    """The pattern of all h-sigmoid forms over ``inp`` and how to validate a match."""

    output: dpl.DFPattern
    forms: list[_Form]

    def form(self, matchings: dict, mod: IRModule | None = None) -> str | None:
        """Name of the form that ``matchings`` (a dpl match dict) matched with the right constants, else None."""
        for form in self.forms:
            if form.output not in matchings:
                continue
            if not all(is_scalar(matchings[p], v) for p, v in form.values):
                continue
            ok = True
            for gv_pat, prefix in form.prim_funcs:
                gv = matchings[gv_pat]
                name = str(gv.name_hint)
                if not name.startswith(prefix):
                    ok = False
                elif mod is not None and not isinstance(mod[gv], tirx.PrimFunc):
                    ok = False
            if ok:
                return form.name
        return None


def hsigmoid_pattern(inp: dpl.DFPattern) -> HSigmoidMatch:
    """Pattern matching ``h_sigmoid(inp)`` in any of the four import forms (see the module docstring)."""
    forms: list[_Form] = []

    def div6_form(name: str, body: dpl.DFPattern, values, prim_funcs=()) -> None:
        c_div, c_mul = dpl.is_const(), dpl.is_const()
        div = dpl.is_op("relax.divide")(body, c_div)
        mul = dpl.is_op("relax.multiply")(body, c_mul)
        forms.append(_Form(name, div, list(values) + [(c_div, 6.0)], list(prim_funcs)))
        forms.append(_Form(name, mul, list(values) + [(c_mul, 1.0 / 6.0)], list(prim_funcs)))

    # add3 -> clip(0, inf) -> clip(-inf, 6) -> div6
    c3, lo1, hi1, lo2, hi2 = dpl.is_const(), dpl.wildcard(), dpl.wildcard(), dpl.wildcard(), dpl.wildcard()
    add3 = dpl.is_op("relax.add")(inp, c3)
    clip1 = dpl.is_op("relax.clip")(add3, lo1, hi1)
    clip2 = dpl.is_op("relax.clip")(clip1, lo2, hi2)
    div6_form("add3_clip_clip_div6", clip2,
              [(c3, 3.0), (lo1, 0.0), (hi1, math.inf), (lo2, -math.inf), (hi2, 6.0)])

    # add3 -> clip(0, 6) -> div6
    c3, lo, hi = dpl.is_const(), dpl.wildcard(), dpl.wildcard()
    add3 = dpl.is_op("relax.add")(inp, c3)
    clip = dpl.is_op("relax.clip")(add3, lo, hi)
    div6_form("add3_clip_div6", clip, [(c3, 3.0), (lo, 0.0), (hi, 6.0)])

    # add3 -> call_tir(maximum, 0) -> call_tir(minimum, 6) -> div6   (ONNX Clip with tensor bounds)
    c3, c0, c6 = dpl.is_const(), dpl.is_const(), dpl.is_const()
    gmax, gmin = dpl.GlobalVarPattern(), dpl.GlobalVarPattern()
    add3 = dpl.is_op("relax.add")(inp, c3)
    vmax = dpl.is_op("relax.call_tir")(gmax, dpl.is_tuple([add3, c0]), add_constraint=False)
    vmin = dpl.is_op("relax.call_tir")(gmin, dpl.is_tuple([vmax, c6]), add_constraint=False)
    div6_form("add3_max_min_div6", vmin, [(c3, 3.0), (c0, 0.0), (c6, 6.0)],
              [(gmax, "maximum"), (gmin, "minimum")])

    # mul(1/6) -> add(0.5) -> clip(0, 1)   (ONNX HardSigmoid)
    cm, ch, lo, hi = dpl.is_const(), dpl.is_const(), dpl.wildcard(), dpl.wildcard()
    mul = dpl.is_op("relax.multiply")(inp, cm)
    add = dpl.is_op("relax.add")(mul, ch)
    clip = dpl.is_op("relax.clip")(add, lo, hi)
    forms.append(_Form("mul_add_clip", clip, [(cm, 1.0 / 6.0), (ch, 0.5), (lo, 0.0), (hi, 1.0)]))

    output = forms[0].output
    for form in forms[1:]:
        output = output | form.output
    return HSigmoidMatch(output=output, forms=forms)


FORMS = ("add3_clip_clip_div6", "add3_clip_div6", "add3_max_min_div6", "mul_add_clip")
