"""FuseHsigGate: ``y * [bilinear upsample](hsig(Conv1x1_BN([ReLU6](x))))`` as one kernel.

Two places in LightAVSeg: SeaFormer's Sea attention output ``hsig(proj(xx)) * detail`` (``proj`` = ReLU6 then a
1x1 Conv+BN, absorbed as the kernel's prologue) and every LightHead fusion block
``local * interpolate(hsig(global_act(x_g)), bilinear)`` (the upsample is absorbed: the gate is computed at the
coarse resolution inside the kernel). Unfused, the conv output, the h-sigmoid's 3-4 elementwise results and the
upsampled gate each make a pass over memory; fused, only ``x``, ``y`` and the output do.
"""

from __future__ import annotations

import numpy as np

from edgeavs.passes._rewrite import (FusionPass, FusionStats, MatchContext, const_array, conv1x1_ok, dtype_of,
                                     interior_single_use, run_counted_fusion, run_fusion,
                                     static_shape)
from edgeavs.passes.hsigmoid import hsigmoid_pattern, is_scalar
from edgeavs.tvm_api import IRModule, dpl, module_pass, relax
from kernels.hsig_gate import CHAIN as NAME, ENTRY as KERNEL, HsigGateWorkload, hsig_gate_kernel
from kernels.registry import pick_kernel_config


def _resize_ok(call) -> bool:
    attrs = call.attrs
    roi = [float(r) for r in attrs.roi] if attrs.roi is not None else []
    return (str(attrs.layout) == "NCHW" and str(attrs.method) == "linear"
            and str(attrs.coordinate_transformation_mode) == "half_pixel"
            and all(r == 0.0 for r in roi) and str(attrs.out_dtype) in ("", "None", "void", "float32"))


def _pattern():
    """The chain's pattern, its annotations (the sub-patterns the rewrite reads) and the check."""
    x = dpl.wildcard()
    lo, hi = dpl.wildcard(), dpl.wildcard()
    relu6 = dpl.is_op("relax.clip")(x, lo, hi)
    # ONNX spells ReLU6 as Clip with tensor bounds: call_tir(minimum, (call_tir(maximum, (x, 0)), 6)).
    c0, c6, gmax, gmin = dpl.is_const(), dpl.is_const(), dpl.GlobalVarPattern(), dpl.GlobalVarPattern()
    vmax = dpl.is_op("relax.call_tir")(gmax, dpl.is_tuple([x, c0]), add_constraint=False)
    relu6_onnx = dpl.is_op("relax.call_tir")(gmin, dpl.is_tuple([vmax, c6]), add_constraint=False)
    weight = dpl.is_const()
    conv_r = dpl.is_op("relax.nn.conv2d")(relu6 | relu6_onnx, weight)
    conv_p = dpl.is_op("relax.nn.conv2d")(x, weight)
    conv = conv_r | conv_p
    bias = dpl.wildcard()
    biased = dpl.is_op("relax.add")(conv, bias)
    hs = hsigmoid_pattern(biased | conv)
    resize = dpl.is_op("relax.image.resize2d")(hs.output, dpl.wildcard())
    y = dpl.wildcard()
    root = dpl.is_op("relax.multiply")(resize | hs.output, y)
    ann = {"x": x, "relu6": relu6, "weight": weight, "conv_r": conv_r, "conv": conv, "bias": bias,
           "resize": resize, "y": y, "root": root, "lo": lo, "hi": hi, "relu6_onnx": relu6_onnx,
           "vmax": vmax}

    def check(m: dict, ctx: MatchContext) -> str | None:
        form = hs.form(m, ctx.mod)
        if form is None:
            return None
        conv_call = m[conv]
        xin = conv_call.args[0]
        xshape, wshape = static_shape(xin), static_shape(m[weight])
        gshape, out_shape = static_shape(conv_call), static_shape(m[root])
        if None in (xshape, wshape, gshape, out_shape) or len(xshape) != 4 or len(out_shape) != 4:
            return None
        if dtype_of(m[root]) != "float32" or dtype_of(xin) != "float32":
            return None
        if not conv1x1_ok(conv_call, wshape) or [int(s) for s in conv_call.attrs.strides] != [1, 1]:
            return None
        producer = ctx.resolve(xin)
        if isinstance(producer, relax.Call) and getattr(producer.op, "name", "") == "relax.max":
            return None  # the audio gate's pool: FuseAudioGate's chain
        n, co = gshape[0], gshape[1]
        if static_shape(m[y]) != out_shape or out_shape[:2] != (n, co):
            return None
        if resize in m:
            if not _resize_ok(m[resize]):
                return None
        elif out_shape != gshape:
            return None
        if bias in m:
            b = const_array(m[bias])
            bshape = static_shape(m[bias])
            if b is not None:
                if b.size != co or (b.ndim == 4 and b.shape != (1, co, 1, 1)):
                    return None
            elif bshape is None or bshape[1:] != (co, 1, 1) or bshape[0] not in (1, n):
                return None
        if relu6 in m and not (is_scalar(m[lo], 0.0) and is_scalar(m[hi], 6.0)):
            return None
        if relu6_onnx in m and not (is_scalar(m[c0], 0.0) and is_scalar(m[c6], 6.0)
                                    and str(m[gmax].name_hint).startswith("maximum")
                                    and str(m[gmin].name_hint).startswith("minimum")):
            return None
        variant = form
        if resize in m:
            variant = "upsample+" + variant
        if relu6 in m or relu6_onnx in m:
            variant = "relu6+" + variant
        return variant

    return root, ann, check


def _rewrite_fn(ann: dict, target, configs=None):
    def rewrite(orig, m, ctx: MatchContext, kernels):
        prologue = [m[p] for p in (ann["relu6"], ann["relu6_onnx"], ann["vmax"]) if p in m]
        in_relu6 = bool(prologue) and all(ctx.single_use(e) for e in prologue)
        if in_relu6:
            data = m[ann["x"]]
            inputs = [ann["x"], ann["y"], ann["bias"]]
        else:
            data = m[ann["conv"]].args[0]
            inputs = [ann["x"], ann["relu6"], ann["relu6_onnx"], ann["vmax"], ann["y"], ann["bias"]]
        bound = ctx.var_of(data)
        data = bound if bound is not None else data
        if not interior_single_use(ctx, m, orig, inputs):
            return None
        n, ci, hg, wg = static_shape(data)
        weight = m[ann["weight"]]
        co = static_shape(weight)[0]
        bias_batch = 1
        if ann["bias"] in m and const_array(m[ann["bias"]]) is None:
            bias = m[ann["bias"]]
            bias_batch = static_shape(bias)[0]
        elif ann["bias"] in m:
            bias = relax.const(const_array(m[ann["bias"]]).reshape(1, co, 1, 1).astype("float32"))
        else:
            bias = relax.const(np.zeros((1, co, 1, 1), "float32"))
        _, _, h, w = static_shape(orig)
        wl = HsigGateWorkload(n=n, ci=ci, hg=hg, wg=wg, co=co, h=h, w=w, in_relu6=bool(in_relu6),
                              bias_batch=bias_batch)
        cfg, make, _ = pick_kernel_config(configs, KERNEL.name, wl, KERNEL.fallback_config(wl, target),
                                          lambda c: hsig_gate_kernel(wl, config=c))
        if cfg.weight_transposed:
            weight = relax.const(np.ascontiguousarray(const_array(weight)[:, :, 0, 0].T))
        gv = kernels.get((KERNEL.name, wl, cfg), f"edgeavs_{KERNEL.name}", make)
        return relax.call_tir(gv, [data, weight, bias, m[ann["y"]]],
                              out_ty=relax.TensorType((n, co, h, w), "float32"))

    return rewrite


@module_pass(opt_level=0, name="FuseHsigGate")
class FuseHsigGate(FusionPass):
    """Rewrite every ``y * [resize2d_bilinear](hsig(conv1x1([relu6](x)) [+ b]))`` into ``R.call_tir`` of
    ``kernels.hsig_gate``.

    Preconditions: weights are Relax constants and BN is folded (after BindParams, FoldBatchnormToConv2D,
    DecomposeOpsForInference, CanonicalizeBindings, FoldConstant); static shapes; fp32. Place it before
    LegalizeOps, after FuseAudioGate (a gate on a global max pool is left to that pass). The ReLU6 before the conv
    is absorbed only when nothing else uses it. All h-sigmoid import forms are matched.

    Parameters
    ----------
    target : dict | str | tvm.target.Target, optional
        Target the kernel's default schedule is derived from; default the current target, else the host.
    configs : dict, optional
        ``{"functions": {workload key: knob entry}}`` (``edgeavs tune`` records): a kernel whose workload has an
        entry is built with its tuned config instead of the default (``kernels.registry.pick_kernel_config``).

    After running, ``self.stats`` (``FusionStats``) holds how many chains were found and fused.
    """

    def transform_module(self, mod: IRModule, _ctx) -> IRModule:
        root, ann, check = _pattern()
        self.stats = FusionStats()
        return run_counted_fusion(mod, root, check, _rewrite_fn(ann, self.resolved_target, self.configs),
                                  self.stats)

def count_matches(mod: IRModule) -> int:
    """h-sigmoid gated products present (unfused) in ``mod``."""
    root, _, check = _pattern()
    return run_fusion(mod, root, check, None)[1].found


__all__ = ["NAME", "FuseHsigGate", "count_matches"]
