"""MAC counts with torch's own flop counter (``torch.utils.flop_counter``).

``model_macs`` is the plain counter (convolutions and matmuls; MACs = FLOPs / 2), per part.
``interaction_macs`` counts the audio-visual interaction alone, with its element-wise work
included (max pools, broadcast adds and gates, one op per element, counted as one MAC), and
splits it into the ``spatial`` part, whose tensors span the H×W map, and the ``global`` part
on 1×1 maps. LightAVSeg's claim is that the spatial part is linear in pixels and the global
part constant; TPAVI's spatial part is quadratic.

Baselines (SPEC §9) work on token sequences ``(B, L, C)`` whose shape alone does not say
whether L counts pixels or queries. Their modules therefore carry a ``flop_scope`` label —
``"tokens"`` (pixel tokens: linear in N), ``"pairwise"`` (a token×token matrix: quadratic)
or ``"global"`` (queries, audio) — and the innermost labelled module decides; outside any
label a tensor is spatial when it is a 4-D map with H·W > 1. ``pairwise`` is reported as
its own sub-count of ``spatial``. ``"neck"`` labels a baseline's per-level channel adapter
to 256 channels (AVSBench's dilated-conv ``conv1..4``, AVSegFormer's ``in_proj``): it runs
before the interaction proper, is linear in pixels, and is reported as ``neck``, outside
``total``.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch.utils.flop_counter import (
    FlopCounterMode,
    addmm_flop,
    baddbmm_flop,
    bmm_flop,
    conv_flop,
    mm_flop,
)

aten = torch.ops.aten


def _numel(shape) -> int:
    return int(math.prod(shape)) if shape is not None else 0


def _is_spatial(shape) -> bool:
    return shape is not None and len(shape) == 4 and shape[2] * shape[3] > 1


class _Tally:
    """Custom flop functions that also sort each count into spatial / global."""

    def __init__(self):
        self.spatial = 0
        self.global_ = 0
        self.pairwise = 0
        self.neck = 0
        self._scopes: list[str] = []

    def _add(self, flops: int, spatial: bool) -> int:
        scope = self._scopes[-1] if self._scopes else None
        if scope == "neck":
            self.neck += flops
            return flops
        if scope is not None:
            spatial = scope in ("tokens", "pairwise")
        if scope == "pairwise":
            self.pairwise += flops
        if spatial:
            self.spatial += flops
        else:
            self.global_ += flops
        return flops

    def attach(self, model) -> list:
        """Track the ``flop_scope`` labels of ``model``'s modules while it runs."""
        handles = []
        for m in model.modules():
            scope = getattr(m, "flop_scope", None)
            if scope is None:
                continue
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, s=scope: self._scopes.append(s)))
            handles.append(m.register_forward_hook(self._leave))
        return handles

    def _leave(self, mod, args, out) -> None:
        self._scopes.pop()  # returns None: a forward hook's return value replaces the output

    def mapping(self) -> dict:
        def elementwise(*args, out_shape=None, **kwargs):
            # Two "FLOPs" per element so that FLOPs / 2 counts one MAC-equivalent per element.
            return self._add(2 * _numel(out_shape), _is_spatial(out_shape))

        def maxpool(x_shape, *args, out_shape=None, **kwargs):
            return self._add(2 * _numel(x_shape), _is_spatial(x_shape))

        def conv(*args, out_shape=None, **kwargs):
            # The stock formulas are shape-wrapped: they take the output as ``out_val``.
            return self._add(conv_flop(*args, out_val=out_shape, **kwargs), _is_spatial(out_shape))

        def matmul(fn):
            def count(*args, out_shape=None, **kwargs):
                return self._add(fn(*args, out_val=out_shape, **kwargs), _is_spatial(out_shape))
            return count

        def first_output(*args, out_shape=None, **kwargs):
            # Norms return (out, stats...): count the normalised output, one op per element.
            shape = out_shape[0] if isinstance(out_shape, (tuple, list)) and out_shape and \
                isinstance(out_shape[0], (tuple, list, torch.Size)) else out_shape
            return self._add(2 * _numel(shape), _is_spatial(shape))

        # Keys are overload packets: the counter looks ops up by ``func._overloadpacket``.
        m = {aten.adaptive_max_pool2d: maxpool,
             aten.convolution: conv,
             aten.mm: matmul(mm_flop),
             aten.addmm: matmul(addmm_flop),
             aten.bmm: matmul(bmm_flop),
             aten.baddbmm: matmul(baddbmm_flop)}
        for op in (aten.add, aten.mul, aten.sub, aten.div, aten.hardtanh, aten.relu,
                   aten.clamp, aten.sigmoid, aten._softmax, aten.gelu, aten.exp):
            m[op] = elementwise
        for op in (aten.native_layer_norm, aten.native_group_norm,
                   aten._native_batch_norm_legit_no_training):
            m[op] = first_output
        return m


def _inputs(model, size, batch: int = 1):
    h, w = size
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 3, h, w, generator=g),
            torch.randn(batch, model.cfg.audio.sample_rate, generator=g))


def _maybe_fake(fake: bool):
    """``fake=True`` runs the count on fake tensors (shapes only, no arithmetic): the same
    counts, without computing a 720p affinity matrix just to count it."""
    if not fake:
        return contextlib.nullcontext()
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)


def model_macs(model, size=(224, 224), fake: bool = False) -> dict:
    """MACs per part at ``size`` (plain counter: convs and matmuls)."""
    was = model.training
    model.eval()
    with _maybe_fake(fake), torch.no_grad(), FlopCounterMode(display=False) as fc:
        frames, wave = _inputs(model, size)
        model(frames, wave)
    model.train(was)
    counts = fc.get_flop_counts()
    root = type(model).__name__

    def part(name):
        # A part's count is the sum over its direct children that ran (the backbone runs
        # stage by stage, so ``visual`` itself is never called as a whole).
        prefix = f"{root}.{name}"
        if prefix in counts:
            return sum(counts[prefix].values()) // 2
        under = [k for k in counts if k.startswith(prefix + ".")]
        tops = [k for k in under if not any(k.startswith(o + ".") for o in under)]
        return sum(sum(counts[k].values()) for k in tops) // 2

    out = {"total": sum(counts["Global"].values()) // 2}
    for name in ("visual", "audio", "head"):
        out[name] = part(name)
    parts = getattr(model, "interaction_parts", ("encoder", "decoder"))
    out["interaction"] = sum(part(name) for name in parts)
    return out


def interaction_macs(model, size=(224, 224), fake: bool = False) -> dict:
    """The interaction's MACs with element-wise work, split into spatial and global;
    ``pairwise`` is the part of ``spatial`` spent on token×token matrices and ``neck`` a
    baseline's channel adapter, not in ``total`` (both 0 for LightAVSeg)."""
    was = model.training
    model.eval()
    tally = _Tally()
    with _maybe_fake(fake), torch.no_grad():
        frames, wave = _inputs(model, size)
        aux = model(frames, wave, return_aux=True)
        a0 = model.audio(wave)[:, :, None, None]
        handles = tally.attach(model)
        try:
            with FlopCounterMode(display=False, custom_mapping=tally.mapping()):
                model.run_interaction(aux["pyramid"], a0)
        finally:
            for h in handles:
                h.remove()
    model.train(was)
    return {"total": (tally.spatial + tally.global_) // 2, "spatial": tally.spatial // 2,
            "global": tally.global_ // 2, "pairwise": tally.pairwise // 2,
            "neck": tally.neck // 2}
