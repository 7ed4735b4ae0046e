"""FuseStftFft: the conv-STFT power spectrum (two DFT-basis conv1d, squared and added) as one real-FFT kernel.

PANNs' front end (SPEC §3) computes ``re = conv1d(x, W_re)``, ``im = conv1d(x, W_im)`` with stride ``hop`` on the
reflect-padded signal, where ``W_re = window * cos`` and ``W_im = -window * sin`` are the Hann-windowed DFT basis
``(n_fft/2 + 1, 1, n_fft)``, then ``power = re * re + im * im`` ``(N, bins, frames)`` -- the value the graph
consumes (transposed to ``(N, 1, frames, bins)`` for the mel matmul). Both import routes (torch.export, ONNX) give
exactly this dataflow. The chain becomes one ``R.call_tir`` of ``kernels.stft_fft`` on the padded signal: a real
FFT per frame, ~68x fewer flops than the two convs.

The rewrite is only valid for that basis, so the weights are checked numerically at compile time against the
float64 basis (``kernels.stft_fft.dft_basis``): every element within ``WEIGHT_ATOL`` (fp32 rounding of values
<= 1 is 6e-8). A conv pair of the right shape with any other weights is not rewritten and is reported as
``no_match``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeavs.passes._rewrite import (FusionPass, FusionStats, MatchContext, const_array, dtype_of, interior_single_use,
                                     run_counted_fusion, run_fusion, static_shape)
from edgeavs.tvm_api import IRModule, dpl, module_pass, relax
from kernels.registry import pick_kernel_config
from kernels.stft_fft import CHAIN as NAME, ENTRY as KERNEL, StftFftWorkload, dft_basis, stft_fft_kernel, tables

WEIGHT_ATOL = 1e-6
"""Largest |weight - basis| accepted: ~16 fp32 ulps at 1.0; an fp32-rounded basis is within 6e-8."""


@dataclass
class StftFftStats(FusionStats):
    """``FusionStats`` plus ``no_match``: conv-STFT-shaped pairs left alone because their weights are not the
    Hann-windowed DFT basis."""

    no_match: int = 0

    def as_dict(self) -> dict:
        return {**super().as_dict(), "no_match": self.no_match}


def _conv1d_ok(call, hop: int | None = None) -> int | None:
    """The stride when ``call`` is a plain NCW conv1d (no padding, dilation 1, one group, fp32), else None."""
    a = call.attrs
    strides = [int(s) for s in a.strides]
    if (len(strides) != 1 or [int(p) for p in a.padding] != [0, 0] or [int(d) for d in a.dilation] != [1]
            or int(a.groups) != 1 or str(a.data_layout) != "NCW" or str(a.kernel_layout) != "OIW"
            or str(a.out_layout) != "NCW" or str(a.out_dtype) not in ("", "float32", "void", "None")):
        return None
    return strides[0] if hop is None or strides[0] == hop else None


_BASIS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _is_basis(w: np.ndarray, which: int) -> bool:
    """``w`` (bins, 1, n_fft) equals the windowed cos (``which=0``) or -sin (``which=1``) basis to fp32."""
    n_fft = w.shape[-1]
    if n_fft not in _BASIS:
        _BASIS[n_fft] = dft_basis(n_fft)
    return bool(np.all(np.abs(w[:, 0, :].astype(np.float64) - _BASIS[n_fft][which]) <= WEIGHT_ATOL))


def _pattern(check_weights: bool = True):
    """The chain's pattern, its annotations and the check (``check_weights=False``: shape-only candidates)."""
    x = dpl.wildcard()
    wa, wb = dpl.is_const(), dpl.is_const()
    ca = dpl.is_op("relax.nn.conv1d")(x, wa)
    cb = dpl.is_op("relax.nn.conv1d")(x, wb)
    root = dpl.is_op("relax.add")(dpl.is_op("relax.multiply")(ca, ca), dpl.is_op("relax.multiply")(cb, cb))
    annotations = {"x": x, "wa": wa, "wb": wb, "ca": ca, "cb": cb, "root": root}

    def check(m: dict, ctx: MatchContext) -> str | None:
        if not m[ca].args[0].same_as(m[cb].args[0]):
            return None
        xshape, oshape = static_shape(m[x]), static_shape(m[root])
        sa, sb = static_shape(m[wa]), static_shape(m[wb])
        if xshape is None or oshape is None or len(xshape) != 3 or xshape[1] != 1 or sa != sb or sa is None:
            return None
        bins, one, n_fft = sa
        if one != 1 or n_fft < 8 or n_fft & (n_fft - 1) or bins != n_fft // 2 + 1:
            return None
        if dtype_of(m[x]) != "float32" or dtype_of(m[root]) != "float32":
            return None
        hop = _conv1d_ok(m[ca])
        if hop is None or _conv1d_ok(m[cb], hop) is None or xshape[2] < n_fft:
            return None
        if oshape != (xshape[0], bins, (xshape[2] - n_fft) // hop + 1):
            return None
        if not check_weights:
            return "candidate"
        a, b = const_array(m[wa]), const_array(m[wb])
        if a is None or b is None:
            return None
        if _is_basis(a, 0) and _is_basis(b, 1):
            return "re,im"
        if _is_basis(a, 1) and _is_basis(b, 0):
            return "im,re"
        return None

    return root, annotations, check


def _rewrite_fn(ann: dict, target, configs=None):
    def rewrite(orig, m, ctx, kernels):
        if not interior_single_use(ctx, m, orig, [ann["x"]]):
            return None
        x = m[ann["x"]]
        n, _, length = static_shape(x)
        n_fft = static_shape(m[ann["wa"]])[2]
        hop = int(m[ann["ca"]].attrs.strides[0])
        wl = StftFftWorkload(n=n, length=length, n_fft=n_fft, hop=hop)
        cfg, make, _ = pick_kernel_config(configs, KERNEL.name, wl, KERNEL.fallback_config(wl, target),
                                          lambda c: stft_fft_kernel(wl, config=c))
        gv = kernels.get((KERNEL.name, wl, cfg), f"edgeavs_{KERNEL.name}", make)
        table, bitrev = tables(wl)
        return relax.call_tir(gv, [x, relax.const(table), relax.const(bitrev)],
                              out_ty=relax.TensorType((n, wl.bins, wl.frames), "float32"))

    return rewrite


@module_pass(opt_level=0, name="FuseStftFft")
class FuseStftFft(FusionPass):
    """Rewrite every ``conv1d(x, W_re)^2 + conv1d(x, W_im)^2`` whose weights are the Hann-windowed DFT basis into
    ``R.call_tir`` of ``kernels.stft_fft`` (a real FFT per frame).

    Preconditions: the weights are Relax constants (after BindParams and FoldConstant); static shapes; fp32;
    both convs read the same signal with the same stride and no padding (the reflect padding is a separate op
    before them, as both import routes produce it). Place it before LegalizeOps. Either conv may be the real
    one. A pair whose weights are not the basis is left alone and counted in ``stats.no_match``; a chain whose
    intermediates (a conv, a square) have other users is counted as found but not fused.

    Parameters
    ----------
    target : dict | str | tvm.target.Target, optional
        Target the kernel's default config is derived from; default the current target, else the host.
    configs : dict, optional
        Tuned kernel knobs (``configs["functions"]``, keyed by ``kernels.registry.kernel_key``), as the other
        fusion passes take them; without an entry the kernel gets ``fallback_config``.

    After running, ``self.stats`` (``StftFftStats``) holds how many were found, fused and rejected.
    """

    STATS = StftFftStats

    def transform_module(self, mod: IRModule, _ctx) -> IRModule:
        root, ann, check = _pattern()
        self.stats = StftFftStats()
        candidates = count_candidates(mod)
        mod = run_counted_fusion(mod, root, check, _rewrite_fn(ann, self.resolved_target, self.configs),
                                 self.stats)
        self.stats.no_match = candidates - self.stats.found  # found: counted by run_counted_fusion
        return mod

def count_matches(mod: IRModule) -> int:
    """Conv-STFT power chains with DFT-basis weights present (unfused) in ``mod``."""
    root, _, check = _pattern()
    return run_fusion(mod, root, check, None)[1].found


def count_candidates(mod: IRModule) -> int:
    """Conv pairs of the conv-STFT's shape squared and added, whatever their weights."""
    root, _, check = _pattern(check_weights=False)
    return run_fusion(mod, root, check, None)[1].found


__all__ = ["NAME", "WEIGHT_ATOL", "FuseStftFft", "StftFftStats", "count_matches", "count_candidates"]
