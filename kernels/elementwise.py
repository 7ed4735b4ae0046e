"""Generic fallback for everything that is not a conv/GEMM: parallelise the outer loops, vectorise the inner one.

Unscheduled TIR runs one thread, scalar (~2 GFLOP/s). For elementwise chains (folded BN, activations, adds,
broadcasts, resize, concat ...) and reductions (means, maxes, softmax sums) this fallback:

1. inlines every intermediate elementwise block into its elementwise consumers (one pass over memory instead
   of one per op; never into a reduction, where it would sit in the innermost loop);
2. per remaining block: fuses the leading spatial loops and runs them ``parallel`` when the block does at least
   ``min_parallel_work`` iterations; vectorises the innermost spatial loop of a spatial block by ``lanes`` when the
   extent divides (no ``T.where`` guard), or whole when it is short (<= ``max_whole_vector``);
3. a spatial block whose innermost loop cannot be vectorised (a 7x7 map: 7 columns) but whose whole iteration
   space is a multiple of 4 lanes or more, and which reads every operand at the output's own index (adds of two
   maps, activations), is flattened to one loop, split by the vector width and vectorised (the flat index stays
   linear);
4. a "reduction" whose reduction loops all have extent 1 (a 1x1 depthwise conv) is scheduled as a spatial block
   (the unit loops moved outside the vector loop);
5. a reduction whose innermost loop is a reduction over the last (contiguous) index of every operand it reads —
   a matrix-vector product (a 1x1 conv on a 1x1 map), a row sum — is split by a vector width that divides it and
   ``rfactor``-ed: vector partial sums over contiguous loads, then a short horizontal sum (unscheduled, such a
   dot product is scalar and serial: ~2 GFLOP/s).

Knobs (:class:`GenericConfig`): ``lanes``, ``min_parallel_work``, ``max_whole_vector``, ``parallel``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import s_tir
from kernels.blocks import COMM_REDUCE, DATA_PAR, _simplified, inline_into_consumers, root_blocks
from kernels.defaults import CpuFacts, TargetLike, as_facts
from kernels.registry import ANY_CLASS, Entry, register


@dataclass(frozen=True)
class GenericWorkload:
    """The generic schedule's defaults depend on the target alone: no fields."""


@dataclass(frozen=True)
class GenericConfig:
    lanes: int
    parallel: bool = True
    min_parallel_work: int = 16384
    """Below this many iterations a parallel launch costs more than it saves."""
    max_whole_vector: int = 64


def fallback_config(wl: GenericWorkload, facts: CpuFacts | TargetLike = None) -> GenericConfig:
    f = as_facts(facts)
    return GenericConfig(lanes=f.lanes, parallel=f.threads > 1)


def knob_space(wl: GenericWorkload, facts: CpuFacts | TargetLike = None) -> dict:
    f = as_facts(facts)
    return {"lanes": sorted({f.lanes, max(1, f.lanes // 2), f.lanes * 2}), "parallel": [True, False],
            "min_parallel_work": [4096, 16384, 65536], "max_whole_vector": [16, 64]}


def _extent(sch, loop) -> int | None:
    try:
        return int(sch.get(loop).extent)
    except (TypeError, ValueError):
        return None


def _loads(expr, out: list) -> list:
    """Every buffer load in ``expr`` (not inside indices)."""
    from edgeavs.tvm_api import tirx, tvm

    if isinstance(expr, tvm.ir.TensorLoad):
        out.append(expr)
    elif isinstance(expr, tirx.Cast):
        _loads(expr.value, out)
    elif isinstance(expr, tvm.ir.Call):
        for a in expr.args:
            _loads(a, out)
    elif isinstance(expr, tirx.Select):
        for a in (expr.condition, expr.true_value, expr.false_value):
            _loads(a, out)
    elif hasattr(expr, "a") and hasattr(expr, "b"):
        _loads(expr.a, out)
        _loads(expr.b, out)
    return out


def _var_names(expr) -> set:
    from edgeavs.tvm_api import tirx

    return {v.name for v in tirx.analysis.undefined_vars(expr)}


def _extent_of(dim) -> int | None:
    try:
        return int(dim)
    except (TypeError, ValueError):
        return None


def _vector_factor(extent: int, lanes: int) -> int | None:
    for f in (lanes, lanes // 2, 4):
        if f >= 4 and extent % f == 0 and extent >= 2 * f:
            return f
    return None


def vectorize_reduction(sch: s_tir.Schedule, block, cfg: GenericConfig) -> bool:
    """Step 5 of the module docstring on one reduction block; False (schedule untouched) when it does not apply.

    The trailing reduction loops (legalised blocks put them last) whose variables index the trailing dimensions of
    every operand they read, in order and plainly (a mean over H and W of NCHW), are fused into one contiguous
    reduction, split by a vector width that divides it, and the inner part ``rfactor``-ed into vector lanes."""
    from edgeavs.tvm_api import tirx

    blk = sch.get(block)
    if blk.init is None or not isinstance(blk.body, tirx.BufferStore):
        return False
    loops = sch.get_loops(block)
    iters = list(blk.iter_vars)
    if len(loops) != len(iters):
        return False
    exts = [_extent(sch, lp) for lp in loops]
    if any(e is None for e in exts):
        return False
    n_red = 0
    while n_red < len(iters) and int(iters[len(iters) - 1 - n_red].iter_type) == COMM_REDUCE:
        n_red += 1
    run = list(range(len(iters) - n_red, len(iters)))
    rv = [i for i in run if exts[i] > 1]
    n_lead = 0
    while n_lead < len(iters) and int(iters[n_lead].iter_type) == DATA_PAR:
        n_lead += 1
    if not rv or n_lead + n_red != len(iters):
        return False
    names = [iters[i].var.name for i in rv]
    unit = [iv.var for iv, e in zip(iters, exts) if e == 1]
    reads = [ld for ld in _loads(blk.body.value, [])
             if any(set(names) & _var_names(ix) for ix in ld.indices)]
    if not reads:
        return False
    for ld in reads:
        idx = _simplified(list(ld.indices), unit)  # extent-1 iteration variables -> 0
        shape = [_extent_of(d) for d in ld.source.shape]
        pos = [i for i, ix in enumerate(idx) if set(names) & _var_names(ix)]
        if pos != list(range(pos[0], pos[0] + len(names))):
            return False
        if any(not isinstance(idx[q], tirx.Var) or idx[q].name != v for q, v in zip(pos, names)):
            return False
        # the reduction walks memory contiguously: inner dims exactly as long as the loops, then extent-1 dims
        if any(shape[q] != exts[r] for q, r in zip(pos[1:], rv[1:])) \
                or any(d != 1 for d in shape[pos[-1] + 1:]):
            return False
    total = 1
    for i in rv:
        total *= exts[i]
    factor = _vector_factor(total, cfg.lanes)
    if factor is None:
        return False
    units = [loops[i] for i in run if exts[i] == 1]
    if units:
        sch.reorder(*units, *[loops[i] for i in rv])
    red = sch.fuse(*[loops[i] for i in rv]) if len(rv) > 1 else loops[rv[0]]
    _, ri = sch.split(red, [None, factor])
    rf = sch.rfactor(ri, factor_axis=len(blk.body.indices))
    rf_loops = sch.get_loops(rf)
    sch.vectorize(rf_loops[-1])  # the factored lanes: now a spatial axis of the partial sums, innermost
    lead = rf_loops[:n_lead]
    spatial_work = 1
    for lp in lead:
        spatial_work *= _extent(sch, lp) or 1
    if cfg.parallel and lead and spatial_work >= 2 and spatial_work * total >= cfg.min_parallel_work:
        fused = sch.fuse(*lead) if len(lead) > 1 else lead[0]
        sch.parallel(fused)
        sch.reverse_compute_at(block, fused)
    return True


def _flatten_and_vectorize(sch: s_tir.Schedule, block, cfg: GenericConfig, total: int) -> bool:
    """Step 3 of the module docstring; False (schedule untouched) when it does not apply."""
    from edgeavs.tvm_api import tirx

    blk = sch.get(block)
    store = blk.body
    names = [iv.var.name for iv in blk.iter_vars]
    if not isinstance(store, tirx.BufferStore) or len(store.indices) != len(names):
        return False
    if any(not isinstance(ix, tirx.Var) or ix.name != n for ix, n in zip(store.indices, names)):
        return False
    # every operand read at the output's own index: a broadcast operand would be read through div/mod of the
    # flat index (gathers: measured 2x slower than the scalar loop on a 7x1 + 1x7 broadcast add)
    for ld in _loads(store.value, []):
        idx = list(ld.indices)
        if len(idx) != len(names) or any(not isinstance(ix, tirx.Var) or ix.name != n
                                         for ix, n in zip(idx, names)):
            return False
    lanes = next((f for f in (cfg.lanes, cfg.lanes // 2, 4) if f >= 4 and total % f == 0), None)
    if lanes is None or total < 2 * lanes:
        return False
    loops = sch.get_loops(block)
    flat = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    outer, vec = sch.split(flat, [None, lanes])
    if cfg.parallel and total >= cfg.min_parallel_work:
        sch.parallel(outer)
    sch.vectorize(vec)
    return True


def _inner_vector(extent: int, cfg: GenericConfig) -> str | None:
    """How an innermost spatial loop of ``extent`` is vectorised: ``"split"`` into ``cfg.lanes``-wide vectors,
    ``"whole"`` (one vector of the whole loop), or None (left scalar)."""
    if extent % cfg.lanes == 0 and extent > cfg.lanes:
        return "split"
    if 1 < extent <= cfg.max_whole_vector and (extent % 4 == 0 or extent >= cfg.lanes):
        return "whole"
    return None


def _parallel_and_vectorize(sch: s_tir.Schedule, par_loops, vec, cfg: GenericConfig, total: int) -> bool:
    """Fuse and parallelise ``par_loops`` (when the work is large enough and the fused extent >= 2), vectorise
    ``vec`` (when given); True when anything was applied."""
    applied = False
    if cfg.parallel and total >= cfg.min_parallel_work and par_loops:
        fused = sch.fuse(*par_loops) if len(par_loops) > 1 else par_loops[0]
        if (_extent(sch, fused) or 0) >= 2:
            sch.parallel(fused)
            applied = True
    if vec is not None:
        sch.vectorize(vec)
        applied = True
    return applied


def _unit_reduction(sch: s_tir.Schedule, block, cfg: GenericConfig, loops, iters, exts, total) -> bool:
    """A "reduction" whose reduction loops all have extent 1 (a 1x1 depthwise conv: a per-channel scale) is
    elementwise work: move those loops outside the innermost spatial loop, then vectorise that and parallelise
    the outer spatial loops (as a spatial block). False (untouched) when it does not apply."""
    if len(iters) != len(loops):
        return False
    red = [i for i, iv in enumerate(iters) if int(iv.iter_type) == COMM_REDUCE]
    if not red or any(exts[i] != 1 for i in red) or red != list(range(len(iters) - len(red), len(iters))):
        return False
    sp = [i for i in range(len(loops)) if i not in red]
    if not sp:
        return False
    inner = loops[sp[-1]]
    plan = _inner_vector(exts[sp[-1]], cfg)
    vec = None
    if plan is not None:
        sch.reorder(*[loops[i] for i in red], inner)
        vec = sch.split(inner, [None, cfg.lanes])[1] if plan == "split" else inner
    outer = [loops[i] for i in sp[:-1]] if vec is not None else [loops[i] for i in sp]
    if vec is None and len(outer) > 1:
        outer = outer[:-1]  # keep the contiguous inner loop serial
    return _parallel_and_vectorize(sch, outer, vec, cfg, total)


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
    if not spatial and _unit_reduction(sch, block, cfg, loops, iters, exts, total):
        return True
    if not spatial and vectorize_reduction(sch, block, cfg):
        return True
    if spatial and len(iters) == len(loops) and _inner_vector(exts[-1], cfg) is None \
            and _flatten_and_vectorize(sch, block, cfg, total):
        return True
    # leading loops whose block iter is spatial (one-to-one bindings from legalisation)
    lead = 0
    if len(iters) == len(loops):
        for iv in iters:
            if int(iv.iter_type) != DATA_PAR:
                break
            lead += 1
    vec_loop = None
    if spatial:
        plan = _inner_vector(exts[-1], cfg)
        if plan == "split":
            vec_loop = sch.split(loops[-1], [None, cfg.lanes])[1]
        elif plan == "whole":
            vec_loop = loops[-1]
        loops = sch.get_loops(block)
        lead = len(loops) - 1 if vec_loop is not None else len(loops)
    par_loops = loops[:lead]
    if spatial and vec_loop is None and len(par_loops) > 1:
        par_loops = par_loops[:-1]  # keep the contiguous inner loop serial: one thread per row
    return _parallel_and_vectorize(sch, par_loops, vec_loop, cfg, total)


def schedule_generic(sch: s_tir.Schedule, cfg: GenericConfig | None = None, target: TargetLike = None,
                     skip=()) -> int:
    """Inline intermediates, then parallelise/vectorise each remaining root block (except names in ``skip``).
    Returns the number of blocks scheduled."""
    cfg = cfg or fallback_config(GenericWorkload(), target)
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


def _apply(sch: s_tir.Schedule, _block, cfg: GenericConfig | None, facts) -> GenericConfig:
    """The registry's builder: every root block; ValueError when there was nothing to schedule."""
    cfg = cfg or fallback_config(GenericWorkload(), facts)
    if schedule_generic(sch, cfg) == 0:
        raise ValueError("nothing to parallelise or vectorise")
    return cfg


ENTRY = register(Entry(
    name="generic", role="schedule", serves=(ANY_CLASS,), order=100, workload=GenericWorkload, config=GenericConfig,
    fallback_config=fallback_config, knob_space=knob_space, build=_apply,
    workload_of=lambda sch, block, info: GenericWorkload()))
