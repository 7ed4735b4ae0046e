"""Direct (non-1x1) convolution: the stem 3x3 s2, PANNs' 3x3 convs, the conv-STFT as conv1d — any MAC block with
one output-channel (register) axis whose pixels index the input through a window or a stride.

Schedule: threads over output rows (or channel tiles when there is no row axis); register tile ``co_tile``
output channels x ``width_tile`` output columns (vectorised, strided input loads become gathers), the whole
reduction (input channels x taps) inside, taps unrolled when small; the epilogue computed per tile from the
accumulators. The zero-padded input copy stays a separate (parallel, vectorised) loop nest: inlined, its
``if_then_else`` would sit in the innermost loop.

Knobs (:class:`DirectConvConfig`): ``co_tile``, ``width_tile``, ``vector``, ``unroll_taps``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import s_tir
from kernels.blocks import analyze_mac
from kernels.defaults import CpuFacts, TargetLike, cpu_facts, divisors


@dataclass(frozen=True)
class DirectConvConfig:
    co_tile: int
    width_tile: int
    vector: int
    unroll_taps: bool = True


def fallback_config(cout: int, out_w: int, taps: int, target: TargetLike = None,
                    facts: CpuFacts | None = None) -> DirectConvConfig:
    f = facts or cpu_facts(target)
    # the widest vector first, then the widest dividing width tile of whole vectors up to 2 registers
    wt, vec = 1, 1
    for v in (f.lanes, f.lanes // 2, f.lanes // 4):
        if v < 4:
            break
        ds = [d for d in divisors(out_w) if d % v == 0 and d <= 2 * f.lanes]
        if ds:
            wt, vec = max(ds), v
            break
    nvec = max(1, wt // max(vec, 1))
    budget = max(1, (f.vector_registers - nvec - 1) // nvec)
    ct = max(d for d in divisors(cout) if d <= min(budget, 16))
    return DirectConvConfig(co_tile=ct, width_tile=wt, vector=vec, unroll_taps=taps <= 9)


def knob_space(cout: int, out_w: int, target: TargetLike = None) -> dict:
    return {"co_tile": [d for d in divisors(cout) if d <= 16], "width_tile": [d for d in divisors(out_w) if d <= 64],
            "vector": [4, 8, 16], "unroll_taps": [True, False]}


def schedule_direct(sch: s_tir.Schedule, block, cfg: DirectConvConfig | None = None, target: TargetLike = None,
                    facts: CpuFacts | None = None) -> DirectConvConfig:
    from kernels.pointwise import _epilogue

    producers = list(sch.get_producers(block))
    info = analyze_mac(sch, block)
    if info is None or len(info.register) != 1 or not info.pixel:
        raise ValueError("not a direct conv MAC block")
    it = list(info.iters)
    co, xx = info.register[0], info.pixel[-1]
    rows = [v for v in info.pixel[:-1]]
    taps = 1
    for r in info.reduce[1:]:
        taps *= info.extents[r]
    cfg = cfg or fallback_config(info.extents[co], info.extents[xx], taps, target, facts)
    epi = _epilogue(sch, block)
    loops = sch.get_loops(block)
    pos = {n: i for i, n in enumerate(it)}
    fo, fi = sch.split(loops[pos[co]], [None, cfg.co_tile])
    xo, xi = sch.split(loops[pos[xx]], [None, cfg.width_tile])
    outer = [loops[pos[v]] for v in it if v not in (co, xx) and v not in info.reduce]
    red = [loops[pos[v]] for v in info.reduce]
    sch.reorder(*outer, fo, xo, *red, fi, xi)
    sch.set_scope(block, 0, "local")
    sch.reverse_compute_at(epi, xo)
    par_loops = [loops[pos[v]] for v in it if v in rows or (v not in info.reduce and info.extents[v] > 1
                                                            and v not in (co, xx))]
    par_loops = outer if rows else outer + [fo]
    par = sch.fuse(*par_loops) if len(par_loops) > 1 else par_loops[0]
    sch.parallel(par)
    try:
        sch.vectorize(sch.get_loops(epi)[-1])
    except Exception:  # noqa: BLE001
        pass
    if cfg.unroll_taps:
        for r in red[1:]:
            sch.unroll(r)
    sch.unroll(fi)
    if cfg.vector > 1:
        _, xv = sch.split(xi, [None, cfg.vector])
        sch.vectorize(xv)
    sch.decompose_reduction(block, red[0])
    from kernels.elementwise import fallback_config as generic_config, schedule_block

    gcfg = generic_config(target, facts)
    for p in producers:  # the zero-padded input copy stays a block of its own: threads + vectors
        try:
            schedule_block(sch, p, gcfg)
        except Exception:  # noqa: BLE001
            pass
    return cfg
