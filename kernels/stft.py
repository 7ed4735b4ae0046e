"""The conv-STFT (PANNs front end: conv1d, 1 input channel, kernel 1024, stride 320) as vectorised dot products.

A direct conv schedule vectorises over output positions: with stride 320 every vector load is a gather. Here the
long reduction axis is the contiguous one in both the input window and the filter row, so it is split by the
vector width and ``rfactor``-ed: each (frequency, frame) accumulates ``lanes`` partial sums in a register, the
``co_tile`` frequencies of a tile share one input-window load; the lanes are summed once per output at the end
(reassociated sum: fp32 rel-L2 ~1e-7, tests allow 1e-5). Threads over frequency tiles; the filter tile
(``co_tile`` x kernel floats) stays in cache while all frames stream past it.

Applies to any MAC block whose innermost reduction variable indexes the last dimension of both operands with
unit stride and has an extent of at least ``4 * lanes`` (also plain dense layers / GEMV with long K).

Knobs (:class:`DotConfig`): ``co_tile``, ``lanes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import s_tir, tirx
from kernels.blocks import MacInfo, analyze_mac, inline_into_consumers
from kernels.defaults import CpuFacts, TargetLike, as_facts, divisors
from kernels.registry import Entry, register


@dataclass(frozen=True)
class DotWorkload:
    """Output channels and the length of the (unit-stride) window reduction."""

    cout: int
    k: int


@dataclass(frozen=True)
class DotConfig:
    co_tile: int
    lanes: int
    frame_tile: int = 1
    """Output positions (frames) per register tile: each filter-row load then feeds ``frame_tile`` FMAs. A tile
    that does not divide the frame count adds a guard at the tile level (outside the vector loop)."""


def fallback_config(wl: DotWorkload, facts: CpuFacts | TargetLike = None) -> DotConfig:
    f = as_facts(facts)
    cout, k = wl.cout, wl.k
    lanes = f.lanes
    while lanes > 4 and k % lanes:
        lanes //= 2
    ct = max(d for d in divisors(cout) if d <= min(12, f.vector_registers - 3))
    ft = 2 if 2 * ct + 3 <= f.vector_registers else 1
    return DotConfig(co_tile=ct, lanes=lanes, frame_tile=ft)


def knob_space(wl: DotWorkload, facts: CpuFacts | TargetLike = None) -> dict:
    f = as_facts(facts)
    return {"co_tile": [d for d in divisors(wl.cout) if d <= 16], "lanes": sorted({4, max(4, f.lanes // 2), f.lanes}),
            "frame_tile": [1, 2, 3]}


def applies(info: MacInfo, lanes: int = 4) -> bool:
    """The innermost reduction var is the unit-stride last index of data and weight, and long."""
    if not info.reduce or len(info.register) != 1:
        return False
    r = info.reduce[-1]
    if info.extents[r] < 4 * lanes or info.extents[r] % 4:
        return False
    last = info.data_index[-1]
    if isinstance(last, tirx.Var):
        return last.name == r
    return r in {v.name for v in tirx.analysis.undefined_vars(last)} and not isinstance(last, tirx.Var)


def workload_of(sch: s_tir.Schedule, block, info: MacInfo) -> DotWorkload:
    """The window-dot workload of the MAC ``block`` (``info``: its ``analyze_mac``)."""
    return DotWorkload(cout=info.extents[info.register[0]], k=info.extents[info.reduce[-1]])


def schedule_window_dot(sch: s_tir.Schedule, block, cfg: DotConfig | None = None, target: TargetLike = None,
                        facts: CpuFacts | None = None) -> DotConfig:
    from kernels.pointwise import _epilogue

    inline_into_consumers(sch, sch.get_producers(block))
    info = analyze_mac(sch, block)
    if info is None or not applies(info):
        raise ValueError("not a long unit-stride dot-product reduction")
    it = list(info.iters)
    co, r = info.register[0], info.reduce[-1]
    cfg = cfg or fallback_config(DotWorkload(cout=info.extents[co], k=info.extents[r]), facts or target)
    if info.extents[r] % cfg.lanes or info.extents[co] % cfg.co_tile:
        raise ValueError("lanes / co_tile must divide the reduction / channel extents")
    epi = _epilogue(sch, block)
    loops = sch.get_loops(block)
    pos = {n: i for i, n in enumerate(it)}
    _, rxi = sch.split(loops[pos[r]], [None, cfg.lanes])
    rf = sch.rfactor(rxi, len(info.out_vars))
    loops = sch.get_loops(rf)
    # rfactor keeps the loop order: original iters with r split into (ro, ri)
    names = it[: pos[r]] + ["__ro", "__ri"] + it[pos[r] + 1:]
    lp = dict(zip(names, loops))
    fo, fi = sch.split(lp[co], [None, cfg.co_tile])
    spatial_rest = [lp[v] for v in it if v not in info.reduce and v != co]
    inner = []
    pix = [v for v in it if v not in info.reduce and v != co and info.extents[v] > 1]
    if cfg.frame_tile > 1 and pix:
        t_o, t_i = sch.split(lp[pix[-1]], [None, cfg.frame_tile])
        spatial_rest = [t_o if lp[v].same_as(lp[pix[-1]]) else lp[v] for v in it
                        if v not in info.reduce and v != co]
        inner = [t_i]
    reds = [lp[v] for v in info.reduce[:-1]] + [lp["__ro"]]
    sch.reorder(fo, *spatial_rest, *reds, fi, *inner, lp["__ri"])
    sch.parallel(fo)
    sch.set_scope(rf, 0, "local")
    sch.set_scope(block, 0, "local")
    anchor = spatial_rest[-1] if spatial_rest else fo
    sch.reverse_compute_at(block, anchor)
    sch.reverse_compute_at(epi, anchor)
    sch.unroll(fi)
    for t_i in inner:
        sch.unroll(t_i)
    sch.vectorize(lp["__ri"])
    sch.decompose_reduction(rf, reds[0])
    return cfg


ENTRY = register(Entry(
    name="window_dot", role="schedule", serves=("conv",), order=0, workload=DotWorkload, config=DotConfig,
    fallback_config=fallback_config, knob_space=knob_space,
    build=lambda sch, block, cfg, facts: schedule_window_dot(sch, block, cfg, facts=facts),
    workload_of=workload_of))
