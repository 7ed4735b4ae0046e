"""Generic fallback for everything that is not a conv/GEMM: parallelise the outer loops, vectorise the inner one.

Unscheduled TIR runs one thread, scalar (~2 GFLOP/s). For elementwise chains (folded BN, activations, adds,
broadcasts, resize, concat ...) and reductions (means, maxes, softmax sums) this fallback:

1. inlines every intermediate elementwise block into its elementwise consumers (one pass over memory instead
   of one per op; never into a reduction, where it would sit in the innermost loop);
2. per remaining block: fuses the leading spatial loops and runs them ``parallel`` when the block does at least
   ``min_parallel_work`` iterations; vectorises the innermost spatial loop of a spatial block by ``lanes`` when the
   extent divides (no ``T.where`` guard), or whole when it is short (<= ``max_whole_vector``).

Knobs (:class:`GenericConfig`): ``lanes``, ``min_parallel_work``, ``max_whole_vector``, ``parallel``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import s_tir
from kernels.blocks import COMM_REDUCE, DATA_PAR, inline_into_consumers, root_blocks
from kernels.defaults import CpuFacts, TargetLike, cpu_facts


@dataclass(frozen=True)
class GenericConfig:
    lanes: int
    parallel: bool = True
    min_parallel_work: int = 16384
    """Below this many iterations a parallel launch costs more than it saves."""
    max_whole_vector: int = 64


def fallback_config(target: TargetLike = None, facts: CpuFacts | None = None) -> GenericConfig:
    f = facts or cpu_facts(target)
    return GenericConfig(lanes=f.lanes, parallel=f.threads > 1)


def knob_space(target: TargetLike = None) -> dict:
    f = cpu_facts(target)
    return {"lanes": sorted({f.lanes, max(1, f.lanes // 2), f.lanes * 2}), "parallel": [True, False],
            "min_parallel_work": [4096, 16384, 65536], "max_whole_vector": [16, 64]}


def _extent(sch, loop) -> int | None:
    try:
        return int(sch.get(loop).extent)
    except (TypeError, ValueError):
        return None


def schedule_block(sch: s_tir.Schedule, block, cfg: GenericConfig) -> bool:
    """Parallelise/vectorise one block in place; True when anything was applied."""
    loops = sch.get_loops(block)
    if not loops:
        return False
    iters = list(sch.get(block).iter_vars)
    exts = [_extent(sch, lp) for lp in loops]
    if any(e is None for e in exts):
        return False
    total = 1
    for e in exts:
        total *= e
    spatial = all(int(iv.iter_type) == DATA_PAR for iv in iters)
    # leading loops whose block iter is spatial (one-to-one bindings from legalisation)
    lead = 0
    if len(iters) == len(loops):
        for iv in iters:
            if int(iv.iter_type) != DATA_PAR:
                break
            lead += 1
    applied = False
    vec_loop = None
    if spatial and len(loops) >= 1:
        inner = loops[-1]
        e = exts[-1]
        if e % cfg.lanes == 0 and e > cfg.lanes:
            _, vec_loop = sch.split(inner, [None, cfg.lanes])
        elif 1 < e <= cfg.max_whole_vector and (e % 4 == 0 or e >= cfg.lanes):
            vec_loop = inner
        loops = sch.get_loops(block)
        lead = len(loops) - 1 if vec_loop is not None else len(loops)
    if cfg.parallel and total >= cfg.min_parallel_work and lead >= 1:
        par_loops = loops[:lead] if not spatial else loops[:lead]
        if spatial and vec_loop is None and len(par_loops) > 1:
            par_loops = par_loops[:-1]  # keep the contiguous inner loop serial: one thread per row
        if par_loops:
            fused = sch.fuse(*par_loops) if len(par_loops) > 1 else par_loops[0]
            if (_extent(sch, fused) or 0) >= 2:
                sch.parallel(fused)
                applied = True
    if vec_loop is not None:
        sch.vectorize(vec_loop)
        applied = True
    return applied


def schedule_generic(sch: s_tir.Schedule, cfg: GenericConfig | None = None, target: TargetLike = None,
                     skip=()) -> int:
    """Inline intermediates, then parallelise/vectorise each remaining root block (except names in ``skip``).
    Returns the number of blocks scheduled."""
    cfg = cfg or fallback_config(target)
    blocks = [b for b in root_blocks(sch) if sch.get(b).name_hint not in skip]

    def spatial(b):
        return all(int(iv.iter_type) == DATA_PAR for iv in sch.get(b).iter_vars)

    # only into spatial consumers: an inlined zero-pad or gather inside a reduction's innermost loop costs more
    # than the memory pass it saves
    inline_into_consumers(sch, [b for b in blocks if spatial(b)
                                and all(spatial(c) for c in sch.get_consumers(b))])
    n = 0
    for b in root_blocks(sch):
        if sch.get(b).name_hint in skip:
            continue
        if any(int(iv.iter_type) not in (DATA_PAR, COMM_REDUCE) for iv in sch.get(b).iter_vars):
            continue
        n += bool(schedule_block(sch, b, cfg))
    return n
