"""Shared pieces of the edgeavs CPU kernels: target facts, tile choice, and how a kernel is finished.

Every kernel module (``kernels/<chain>.py``) follows the former TOPI layout: a compute (TE), a schedule with
named knobs (a frozen ``*Config`` dataclass), ``fallback_config(workload, facts)`` that derives a good config
from the target's SIMD width / register count / core count (TOPI's ``_fallback_schedule``), and
``knob_space(workload, facts)`` listing the values a tuner may try (``facts``: ``kernels.defaults.CpuFacts`` or a
target). Each module declares itself once, as an entry of ``kernels.registry``.
"""

from __future__ import annotations

from typing import Any, Mapping

from edgeavs.tvm_api import PrimFunc, SimdInfo, Target, s_tir, simd_info, te, tirx

TargetLike = Mapping[str, Any] | str | Target | None

OPAQUE = 8
"""``op_pattern`` kOpaque: FuseOps must leave our scheduled kernels alone."""


def target_simd(target) -> SimdInfo:
    """SIMD facts of ``target`` (default: the host), or of ``kernels.defaults.CpuFacts`` (the same numbers)."""
    from kernels.defaults import CpuFacts

    if isinstance(target, CpuFacts):
        return SimdInfo(vector_bits=target.lanes * 32, num_vector_registers=target.vector_registers,
                        num_cores=target.threads)
    return simd_info(target)


def vector_lanes(target: TargetLike, dtype_bits: int = 32) -> int:
    """fp32 lanes of one SIMD register of ``target`` (4 NEON/SSE, 8 AVX2, 16 AVX-512)."""
    return target_simd(target).lanes(dtype_bits)


def largest_divisor(extent: int, limit: int, multiple_of: int = 1) -> int | None:
    """The largest ``d <= limit`` with ``d % multiple_of == 0`` and ``extent % d == 0``; None if there is none."""
    d = min(limit, extent)
    d -= d % multiple_of
    while d >= multiple_of and d > 0:
        if extent % d == 0:
            return d
        d -= multiple_of
    return None


def lanes_dividing(extent: int, lanes: int) -> int:
    """The widest power-of-two vector ``<= lanes`` that divides ``extent`` (1 if none): no ``T.where`` guards."""
    v = max(1, lanes)
    while v > 1 and extent % v:
        v //= 2
    return v


def pixel_tile(extent: int, lanes: int, preferred_vectors: int) -> int:
    """A pixel tile of ``preferred_vectors`` vectors, shrunk to divide ``extent`` when that costs < 2x.

    A split that does not divide adds a ``T.where`` guard (correct, 2-4x slower, TVM-NOTES), so a dividing tile is
    taken whenever one of at least half the preferred size exists.
    """
    want = lanes * preferred_vectors
    if extent <= want:
        return extent
    d = largest_divisor(extent, want, lanes)
    if d is not None and 2 * d >= want:
        return d
    d = largest_divisor(extent, want, 1)
    if d is not None and 2 * d >= want:
        return d
    return want


def finish(func: PrimFunc, chain: str, config: Any) -> PrimFunc:
    """Attach the attributes every edgeavs kernel carries (chain name, config, opaque to FuseOps)."""
    attrs = {
        "tirx.noalias": True,
        "op_pattern": OPAQUE,
        "edgeavs.kernel": chain,
        "edgeavs.config": str(config),
    }
    if func.attrs is not None and "global_symbol" in func.attrs:
        func = func.without_attr("global_symbol")  # private: the module names it (one symbol per kernel)
    for key, value in attrs.items():
        func = func.with_attr(key, value)
    return func


def schedule_of(tensors: list) -> s_tir.Schedule:
    """A schedule over the PrimFunc that TE creates for ``tensors`` (inputs then outputs)."""
    return s_tir.Schedule(te.create_prim_func(tensors))


def hsig(x, dtype: str = "float32"):
    """``ReLU6(x + 3) / 6`` on a TE expression (the unfused graph's exact arithmetic)."""
    three = tirx.const(3.0, dtype)
    zero = tirx.const(0.0, dtype)
    six = tirx.const(6.0, dtype)
    return te.min(te.max(x + three, zero), six) / six
