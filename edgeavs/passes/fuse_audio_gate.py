"""FuseAudioGate: global max pool -> 1x1 conv (+ bias) -> h-sigmoid -> x audio vector, as one kernel.

LightAVSeg's gate (SPEC §4) ``a * hsig(Conv1x1(P(V)))`` appears once per pyramid level in the reciprocal encoder
and once per level in the fusion decoder. Unfused it is five kernels, four of them on (N, C, 1, 1) tensors; fused,
the max reduction over H x W (the only O(pixels) part) and the tiny gate run in one call to
``kernels.audio_gate``.
"""

from __future__ import annotations

import numpy as np

from edgeavs.passes._rewrite import (FusionPass, FusionStats, MatchContext, const_array, conv1x1_ok, dtype_of,
                                     interior_single_use, run_counted_fusion, run_fusion,
                                     static_shape)
from edgeavs.passes.hsigmoid import hsigmoid_pattern
from edgeavs.tvm_api import IRModule, dpl, module_pass, relax
from kernels.audio_gate import CHAIN as NAME, ENTRY as KERNEL, AudioGateWorkload, audio_gate_kernel
from kernels.registry import pick_kernel_config


def _pattern():
    """The chain's pattern, its annotations (the sub-patterns the rewrite reads) and the check."""
    v = dpl.wildcard()
    pool = dpl.is_op("relax.max")(v)
    shift = dpl.wildcard()
    shifted = dpl.is_op("relax.add")(pool, shift)
    weight = dpl.is_const()
    conv = dpl.is_op("relax.nn.conv2d")(shifted | pool, weight)
    bias = dpl.is_const()
    biased = dpl.is_op("relax.add")(conv, bias)
    hs = hsigmoid_pattern(biased | conv)
    audio = dpl.wildcard()
    root = dpl.is_op("relax.multiply")(audio, hs.output)
    annotations = {"v": v, "pool": pool, "shift": shift, "weight": weight, "conv": conv, "bias": bias, "biased": biased,
                   "audio": audio, "root": root}

    def check(m: dict, ctx: MatchContext) -> str | None:
        form = hs.form(m, ctx.mod)
        if form is None:
            return None
        vshape, out_shape = static_shape(m[v]), static_shape(m[root])
        wshape = static_shape(m[weight])
        if vshape is None or out_shape is None or wshape is None or len(vshape) != 4:
            return None
        if dtype_of(m[v]) != "float32" or dtype_of(m[root]) != "float32":
            return None
        pattrs = m[pool].attrs
        axes = sorted(int(a) % 4 for a in (pattrs.axis or []))
        if axes != [2, 3] or not bool(pattrs.keepdims):
            return None
        if not conv1x1_ok(m[conv], wshape) or wshape[1] != vshape[1]:
            return None
        n, o = vshape[0], wshape[0]
        if shift in m:
            sshape = static_shape(m[shift])
            if sshape is None or sshape[1:] != (vshape[1], 1, 1) or sshape[0] not in (1, n):
                return None
            form = "shift+" + form
        if out_shape != (n, o, 1, 1) or static_shape(m[audio]) != (n, o, 1, 1):
            return None
        if bias in m:
            b = const_array(m[bias])
            if b is None or b.size != o or (b.ndim == 4 and b.shape != (1, o, 1, 1)):
                return None
        return "bias+" + form if bias in m else form

    return root, annotations, check


def _rewrite_fn(ann: dict, target, configs=None):
    def rewrite(orig, m, ctx, kernels):
        # The pool may have other users (after FuseChannelBias the encoder and decoder gates of a level share
        # max(V)): the kernel recomputes it, which is the pass over V that the unfused graph made anyway.
        if not interior_single_use(ctx, m, orig, [ann["v"], ann["audio"], ann["shift"], ann["pool"]]):
            return None
        n, c, h, w = static_shape(m[ann["v"]])
        weight = m[ann["weight"]]
        o = static_shape(weight)[0]
        if ann["bias"] in m:
            bias = relax.const(const_array(m[ann["bias"]]).reshape(o).astype("float32"))
        else:
            bias = relax.const(np.zeros((o,), "float32"))
        args = [m[ann["v"]], weight, bias, m[ann["audio"]]]
        shift_batch = 0
        if ann["shift"] in m:
            shift = m[ann["shift"]]
            shift_batch = static_shape(shift)[0]
            args.append(shift)
        wl = AudioGateWorkload(n=n, c=c, h=h, w=w, o=o, shift_batch=shift_batch)
        cfg, make, _ = pick_kernel_config(configs, KERNEL.name, wl, KERNEL.fallback_config(wl, target),
                                          lambda c: audio_gate_kernel(wl, config=c))
        if cfg.weight_transposed:
            args[1] = relax.const(np.ascontiguousarray(const_array(weight)[:, :, 0, 0].T))
        gv = kernels.get((KERNEL.name, wl, cfg), f"edgeavs_{KERNEL.name}", make)
        return relax.call_tir(gv, args, out_ty=relax.TensorType((n, o, 1, 1), "float32"))

    return rewrite


@module_pass(opt_level=0, name="FuseAudioGate")
class FuseAudioGate(FusionPass):
    """Rewrite every ``a * hsig(conv1x1(max_{H,W}(v) [+ s]) [+ b])`` into ``R.call_tir`` of ``kernels.audio_gate``.

    Preconditions: weights are Relax constants (after BindParams, FoldBatchnormToConv2D,
    DecomposeOpsForInference, CanonicalizeBindings, FoldConstant); static shapes; fp32. Place it before
    LegalizeOps. All three h-sigmoid import forms are matched (``edgeavs.passes.hsigmoid``). A chain whose
    intermediates have other users is counted but left alone.

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
    """Audio-gate chains present (unfused) in ``mod``."""
    root, _, check = _pattern()
    return run_fusion(mod, root, check, None)[1].found


__all__ = ["NAME", "FuseAudioGate", "count_matches"]
