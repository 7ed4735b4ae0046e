"""ToInt8Conv: the 1x1 convolutions of an int8 build compute in int8 with int32 accumulation.

Where it goes: the pipeline's ``precision`` phase of an int8 build, after ``edgeavs-fusion`` (the h-sigmoid and
audio gates, whose 1x1 convs are inside fp32 kernels, and the STFT stay fp32) and before legalisation. The sites
are the 1x1 convolutions (groups 1, stride 1, no padding, fp32, constant weight) -- 81 % of LightAVSeg-T's MACs
and 94 % of -L's at 224 after fusion; the depthwise, 3x3 and attention matmuls stay fp32 in this build.

Scheme (what ``kernels.int8_conv`` computes and ``kernels.int8_conv.reference`` restates in numpy):

* weights: symmetric per output channel, ``s_w[c] = max|W[c]| / 127``, ``wq = rint(W / s_w)`` in [-127, 127];
* the input activation: per tensor, asymmetric int8 (scale ``s_x``, zero point ``z`` in [-128, 127], from the
  calibration's observers, ``edgeavs.compiler.calibrate``): ``q = clip(rint(x / s_x) + z, -128, 127)``, computed
  inside the kernel as it packs its input panel;
* ``y[c] = float32(sum_k wq[c, k] * (q[k] - z)) * (s_x * s_w[c])``: exact int32 accumulation (VNNI ``vpdpbusd`` on
  the x86 host, ``sdot`` on AArch64 with dotprod), dequantised in the kernel's epilogue, which also computes the
  conv's constant bias and a following ReLU / ReLU6 when the conv is their only input (``bias_folded``,
  ``act_folded`` in the report); what follows (residual adds, gates) stays fp32, so activations are fp32
  between layers.

Which convs stay fp32 is decided per site (:func:`sites`): the log-mel front end, the first conv (frames) and the
conv producing the logits (as in the fp16 build), and every site whose isolated int8 output SNR on the
calibration frames is below ``min_snr_db`` (``edgeavs.compiler.calibrate.plan``: the sensitivity report). The plan -- one entry
per site, ``None`` for a site kept in fp32 -- comes in from the caller; :func:`with_site_inputs` gives the module the
calibration runs (every site's input as an extra output).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeavs.passes._rewrite import bindings, dtype_of, op_name, static_shape
from edgeavs.passes.to_fp16 import kept_in_fp32
from edgeavs.tvm_api import Constant, module_pass, relax

NAME = "int8_conv"


@dataclass(frozen=True)
class Site:
    """One 1x1 convolution the int8 build may quantise."""

    index: int
    var: object  # the binding's var
    shape: tuple  # (n, m, k, h, w)
    kept: str | None  # why it stays fp32 regardless of calibration (None: calibrate it)
    weight: object = field(default=None, compare=False, repr=False)  # the conv's constant weight

    @property
    def name(self) -> str:
        n, m, k, h, w = self.shape
        return f"conv1x1#{self.index} {k}->{m} @{h}x{w}"

    def weight_matrix(self) -> np.ndarray:
        """The fp32 weight ``[m, k]``."""
        _, m, k, _, _ = self.shape
        return self.weight.value.numpy().reshape(m, k)


def _is_site(binding) -> bool:
    v = binding.value
    if op_name(v) != "relax.nn.conv2d" or not isinstance(v.args[1], Constant):
        return False
    a = v.attrs
    ws, xs, ys = static_shape(v.args[1]), static_shape(v.args[0]), static_shape(binding.var)
    if ws is None or xs is None or ys is None or len(ws) != 4 or tuple(ws[2:]) != (1, 1):
        return False
    if any(dtype_of(e) != "float32" for e in (v.args[0], v.args[1], binding.var)):
        return False
    return (int(a.groups) == 1 and [int(s) for s in a.strides] == [1, 1]
            and all(int(p) == 0 for p in a.padding) and [int(d) for d in a.dilation] == [1, 1]
            and str(a.data_layout) == "NCHW" and str(a.kernel_layout) == "OIHW"
            and str(a.out_layout) in ("NCHW", "") and str(a.out_dtype) in ("float32", "", "void"))


def sites(func, keep_ends: bool = True) -> list[Site]:
    """The 1x1 convolutions of ``func``, in program order, each with the reason it stays fp32 (or None)."""
    kept = kept_in_fp32(func, keep_ends)
    out = []
    for b in bindings(func):
        if not _is_site(b):
            continue
        n, k, h, w = static_shape(b.value.args[0])
        m = static_shape(b.value.args[1])[0]
        reason = kept.get(b.var)
        out.append(Site(index=len(out), var=b.var, shape=(n, m, k, h, w), kept=reason, weight=b.value.args[1]))
    return out


def with_site_inputs(mod, keep_ends: bool = True):
    """``(mod2, calibrated)``: ``mod2["main"]`` returns ``(outputs, x_0, x_1, ...)``, the inputs of the sites to
    calibrate (those not kept in fp32 by rule), in site order; ``calibrated`` lists those sites."""
    from edgeavs.tvm_api import relax_transform as T

    all_sites = sites(mod["main"], keep_ends)
    calibrated = [s for s in all_sites if s.kept is None]
    flat = T.ToNonDataflow()(mod)
    f = flat["main"]
    flat_sites = sites(f, keep_ends)  # ToNonDataflow keeps the bindings and their order
    if [s.shape for s in flat_sites] != [s.shape for s in all_sites]:
        raise RuntimeError("with_site_inputs: the sites changed under ToNonDataflow")
    values = relax.analysis.get_var2val(f)
    inputs = {s.index: values[s.var].args[0] for s in flat_sites}
    fields = [f.body.body] + [inputs[s.index] for s in calibrated]
    ret = relax.TupleType([e.ty for e in fields])
    body = relax.SeqExpr(f.body.blocks, relax.Tuple(fields))
    new = relax.Function(f.params, body, ret, f.is_pure, f.attrs)
    flat["main"] = new
    flat = T.Normalize()(flat)
    return T.ConvertToDataflow()(flat), calibrated


@dataclass(frozen=True)
class SitePlan:
    """How one site is quantised: the input's scale and zero point (the weights' come from the weight)."""

    scale: float
    zero_point: int


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(wq int8 [m, k], s_w float32 [m])``: symmetric per output channel (an all-zero channel gets scale 1)."""
    w = np.asarray(w, dtype=np.float32)
    amax = np.abs(w).max(axis=1)
    s_w = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    wq = np.clip(np.rint(w / s_w[:, None]), -127, 127).astype(np.int8)
    return wq, s_w


def _prim(expr):
    """The float of a constant scalar argument (a ``FloatImm``/``IntImm``, or a ``relax.PrimValue`` of one), else
    None."""
    value = getattr(expr, "value", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    value = getattr(value, "value", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _act_of(value) -> str | None:
    """The ``kernels.int8_conv.ACTS`` name of ``relu(x)`` / ``clip(x, 0, 6)``, else None."""
    op = op_name(value)
    if op == "relax.nn.relu":
        return "relu"
    if op == "relax.clip" and len(value.args) == 3 and (_prim(value.args[1]), _prim(value.args[2])) == (0.0, 6.0):
        return "relu6"
    return None


def _foldable_epilogues(func, planned: dict) -> tuple[dict, dict, dict]:
    """``(bias, act, folded)``: what follows each planned site that its kernel's epilogue computes instead -- a
    bias ``add(site, c)`` with a constant ``c`` of shape ``(1, m, 1, 1)`` (``bias[site var] = c`` as float32
    ``[m]``), then (or directly) ``relu`` / ``clip(0, 6)`` (``act[site var]``), each the one user of what it
    reads; ``folded[var of a folded op] = site var``."""
    users: dict = {}
    for b in bindings(func):
        for v in relax.analysis.free_vars(b.value):
            users.setdefault(v, []).append(b)
    outputs = set(relax.analysis.free_vars(func.body.body))

    def only_user(var):
        us = users.get(var, [])
        if len(us) != 1 or var in outputs or not isinstance(us[0].var, relax.DataflowVar):
            return None
        return us[0] if static_shape(us[0].var) == static_shape(var) else None

    bias, act, folded = {}, {}, {}
    for var, (site, _p) in planned.items():
        m = site.shape[1]
        tail = var
        user = only_user(tail)
        if user is not None and op_name(user.value) == "relax.add":
            v = user.value
            other = v.args[1] if v.args[0].same_as(tail) else v.args[0] if v.args[1].same_as(tail) else None
            if isinstance(other, Constant) and dtype_of(other) == "float32" \
                    and static_shape(other) in ((1, m, 1, 1), (m, 1, 1)):
                bias[var] = other.value.numpy().reshape(m).astype(np.float32)
                folded[user.var] = var
                tail = user.var
                user = only_user(tail)
        if user is not None and _act_of(user.value) is not None:
            act[var] = _act_of(user.value)
            folded[user.var] = var
    return bias, act, folded


@module_pass(opt_level=0, name="ToInt8Conv")
class ToInt8Conv:
    """Replace every planned site of ``main`` with ``R.call_tir`` of ``kernels.int8_conv`` (see the module
    docstring). ``plan``: one :class:`SitePlan` or None per site of :func:`sites` (None: stays fp32), in site
    order. After the pass ran, ``report`` holds ``{"converted": n, "kept": {reason: n}, "isa": ...}``."""

    def __init__(self, plan: list, target=None, configs=None, keep_ends: bool = True, reasons: dict | None = None):
        self.plan = list(plan)
        self.target = target
        self.configs = configs
        self.keep_ends = keep_ends
        self.reasons = dict(reasons or {})  # site index -> why a None entry stays fp32
        self.report: dict = {}

    def transform_module(self, mod, _ctx):
        from edgeavs.tvm_api import Target
        from kernels import int8_conv as K
        from kernels.registry import pick_kernel_config

        target = self.target if self.target is not None else Target.current()
        isa = K.isa_for(target)
        func = mod["main"]
        all_sites = sites(func, self.keep_ends)
        if len(all_sites) != len(self.plan):
            raise ValueError(f"ToInt8Conv: the plan has {len(self.plan)} entries for {len(all_sites)} sites")
        planned = {s.var: (s, p) for s, p in zip(all_sites, self.plan) if p is not None and s.kept is None}
        kept_counts: dict = {}
        for s, p in zip(all_sites, self.plan):
            if s.kept is not None or p is None:
                reason = s.kept or self.reasons.get(s.index, "kept")
                kept_counts[reason] = kept_counts.get(reason, 0) + 1
        configs, converted, kernels = self.configs, 0, {}
        biases, acts, folded = _foldable_epilogues(func, planned)

        @relax.expr_functor.mutator
        class Mutator(relax.PyExprMutator):
            def visit_var_binding_(self, binding):
                nonlocal converted
                if binding.var in folded:  # the conv's bias add: now in the kernel's epilogue
                    self.set_var_remap(binding.var, self.visit_expr(folded[binding.var]))
                    return
                hit = planned.get(binding.var)
                if hit is None:
                    super().visit_var_binding_(binding)
                    return
                site, p = hit
                n, m, k, h, w = site.shape
                wq, s_w = quantize_weight(site.weight_matrix())
                wpack, comp = K.prepare_weights(wq, int(p.zero_point), isa)
                wl = K.Int8ConvWorkload(n=n, m=m, k=k, h=h, w=w, isa=isa, act=acts.get(binding.var, "none"))
                cfg, make, _ = pick_kernel_config(configs, K.NAME, wl, K.fallback_config(wl, target),
                                                  lambda c, wl=wl: K.int8_conv_kernel(wl, target, config=c))
                key = (wl, cfg)
                if key not in kernels:
                    kernels[key] = self.builder_.add_func(make(), f"edgeavs_{K.NAME}")
                gv = kernels[key]
                x = self.visit_expr(binding.value.args[0])
                args = [x,
                        relax.const(np.array([1.0 / p.scale, p.zero_point], dtype=np.float32)),
                        relax.const(np.ascontiguousarray(wpack)),
                        relax.const(np.ascontiguousarray(comp, dtype=np.int32)),
                        relax.const((np.float32(p.scale) * s_w).astype(np.float32)),
                        relax.const(biases.get(binding.var, np.zeros(m, dtype=np.float32)))]
                call = relax.call_tir(gv, args, out_ty=relax.TensorType((n, m, h, w), "float32"))
                self.set_var_remap(binding.var, self.builder_.emit(call))
                converted += 1

        m_ = Mutator(mod)
        m_.builder_.update_func(mod.get_global_var("main"), m_.visit_expr(func))
        out = m_.builder_.get()
        self.report = {"converted": converted, "kept": kept_counts, "isa": isa,
                       "sites": len(all_sites), "bias_folded": len(biases), "act_folded": len(acts)}
        return out


__all__ = ["NAME", "Site", "SitePlan", "sites", "with_site_inputs", "quantize_weight", "ToInt8Conv"]
