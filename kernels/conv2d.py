"""Direct (non-1x1) convolution: the stem 3x3 s2, PANNs' first 3x3 conv, 1x1 convs on ``C x L x 1`` maps
(SeaFormer's squeeze-axial attention: the unit width hides their contiguous pixels from ``pointwise``) — any MAC
block with one output-channel (register) axis whose pixels index the input through a window or a stride.

Two register tiles, chosen by the ``blocked`` knob; both thread over output rows (or channel tiles when there is
no row axis), keep the whole reduction (input channels x taps) inside the tile, unroll small tap loops and compute
the fused epilogue (bias, activation, residual) per tile from the accumulators. The zero-padded input copy stays a
separate (parallel, vectorised) loop nest: inlined, its ``if_then_else`` would sit in the innermost loop.

- **blocked** (the NCHW[x]c micro-kernel): the weights are re-laid out as ``[Cout/co_tile, Cin, KH, KW,
  co_tile]`` so the output-channel block of each tap is ``co_tile / vector`` contiguous vector loads; the tile is
  ``width_tile`` output pixels x ``co_tile`` output channels, accumulators pixel-major with channels innermost,
  every input value a broadcast (stride 2 costs nothing: no gathers). Activations stay NCHW: input and output of
  the function are unchanged, and the unrolled epilogue writes the tile back to NCHW from the registers. The
  re-layout is a ``cache_read`` block annotated ``meta_schedule.layout_rewrite_preproc`` when the weight is a
  parameter of the function: the pipeline's ``weight-prepack`` phase (``SplitLayoutRewritePreproc`` +
  ``FoldConstant``) moves it into its own PrimFunc, evaluated once at compile time on a constant weight; on a
  weight computed at run time the call stays in the Relax function (correct, once per inference). A function
  built on its own (tests, ``edgeavs tune``) runs the re-layout on every call.
- **column-vectorised**: ``co_tile`` output channels x ``width_tile`` output columns vectorised over the columns,
  weights read in OIHW order (scalar broadcasts); strided input loads become gathers for stride 2, and a pixel
  extent with no vector-multiple divisor runs on narrow vectors or scalar.

The default (:func:`fallback_config`) is the column tile where it runs whole contiguous vectors, blocked elsewhere
(``bench/bench_direct_conv.py``, ``bench/results/direct_conv.json``).

Knobs (:class:`DirectConvConfig`): ``co_tile``, ``width_tile``, ``vector``, ``unroll_taps``, ``blocked``.
Default from the target and the accumulator's dtype (its lanes: 4 fp32 / 8 fp16 on NEON): :func:`fallback_config`;
search space: :func:`knob_space`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tvm.sym import detect_linear_equation  # tvm.arith in older TVM

from edgeavs.tvm_api import s_tir, tirx
from kernels.blocks import analyze_mac
from kernels.defaults import CpuFacts, TargetLike, as_facts, block_dtype, divisors
from kernels.registry import Entry, register

LAYOUT_REWRITE = "meta_schedule.layout_rewrite_preproc"
"""Block annotation that ``relax.transform.SplitLayoutRewritePreproc`` splits into a weight-prepack PrimFunc."""


@dataclass(frozen=True)
class DirectConvWorkload:
    """A direct conv as the schedule tiles it: output channels, output columns (the tiled pixel axis), taps per
    input channel, and the input elements between two neighbouring output columns."""

    cout: int
    out_w: int
    taps: int
    stride: int = 1
    dtype: str = "float32"
    """The accumulator's (the MAC block's output) dtype: the vectors' element type."""


@dataclass(frozen=True)
class DirectConvConfig:
    co_tile: int
    """Output channels per register tile (blocked: the weight's channel block, a multiple of ``vector``)."""
    width_tile: int
    """Output pixels along the last pixel axis (the columns; the rows of a ``C x L x 1`` map) per tile."""
    vector: int
    """Lanes of one vector (of the accumulator's dtype): over output channels (blocked) or output columns."""
    unroll_taps: bool = True
    blocked: bool = False
    """Blocked weights, vectorised over output channels (default False so that configs written before this knob
    keep their behaviour; the fallback sets it)."""


def _blocked_tile(cout: int, out_w: int, f: CpuFacts, lanes: int) -> tuple[int, int, int] | None:
    """``(co_tile, width_tile, vector)`` of the blocked tile: the widest vector that divides ``cout``; then the
    tile with the most accumulators within half the registers (measured on the stem: 28 of 32 AVX-512 registers
    ran 1.5x slower than 16), ties to 2 vectors of channels, then to the wider pixel tile. None when no vector of
    at least 4 lanes divides ``cout``. ``lanes``: of one register, in the accumulator's dtype."""
    for v in (lanes, lanes // 2, lanes // 4):
        if v < 4 or cout % v:
            continue
        best = None
        for nvec in range(1, 5):
            if cout % (nvec * v):
                continue
            wt = max(d for d in divisors(out_w) if d * nvec <= max(1, f.vector_registers // 2) or d == 1)
            score = (wt * nvec, min(nvec, 2), wt)
            if best is None or score > best[0]:
                best = (score, nvec * v, wt)
        return best[1], best[2], v
    return None


def _column_tile(cout: int, out_w: int, f: CpuFacts, lanes: int) -> tuple[int, int, int]:
    """``(co_tile, width_tile, vector)`` of the column-vectorised tile: the widest vector first, then the widest
    dividing width tile of whole vectors up to 2 registers, channels filling the remaining registers."""
    wt, vec = 1, 1
    for v in (lanes, lanes // 2, lanes // 4):
        if v < 4:
            break
        ds = [d for d in divisors(out_w) if d % v == 0 and d <= 2 * lanes]
        if ds:
            wt, vec = max(ds), v
            break
    nvec = max(1, wt // max(vec, 1))
    budget = max(1, (f.vector_registers - nvec - 1) // nvec)
    return max(d for d in divisors(cout) if d <= min(budget, 16)), wt, vec


def fallback_config(wl: DirectConvWorkload, facts: CpuFacts | TargetLike = None, *,
                    blocked: bool | None = None) -> DirectConvConfig:
    """The column-vectorised tile where it runs whole contiguous vectors (full-width vectors dividing ``out_w``,
    unit ``stride``: the input elements of neighbouring output pixels); otherwise blocked, when a vector of at
    least 4 lanes divides ``cout`` (``blocked`` forces either). Measured on LightAVSeg-L
    (``bench/results/direct_conv.json``): PANNs' first conv (1 input channel, 9 taps, 64 columns) runs ~1.3x
    faster column-vectorised (the blocked tile's transposing write-back outweighs its 9 FMAs per output); the stem
    (stride 2) 2.4x and the 1x1 convs on 14/7/4-pixel maps 2-9x faster blocked."""
    f = as_facts(facts)
    lanes = f.lanes_for(wl.dtype)
    cout, out_w, taps, stride = wl.cout, wl.out_w, wl.taps, wl.stride
    unroll = taps <= 9
    ct, wt, vec = _column_tile(cout, out_w, f, lanes)
    if blocked is None:
        blocked = vec < lanes or stride != 1
    tile = _blocked_tile(cout, out_w, f, lanes) if blocked else None
    if tile is not None:
        ct, wt, vec = tile
    return DirectConvConfig(co_tile=ct, width_tile=wt, vector=vec, unroll_taps=unroll, blocked=tile is not None)


def knob_space(wl: DirectConvWorkload, facts: CpuFacts | TargetLike = None) -> dict:
    """What ``edgeavs tune`` may search; a blocked config whose ``co_tile`` is no multiple of ``vector`` does not
    apply (the tuner skips it). ``vector``: 4, 8, 16 and the register's lanes in the accumulator's dtype."""
    lanes = as_facts(facts).lanes_for(wl.dtype)
    return {"co_tile": [d for d in divisors(wl.cout) if d <= 64],
            "width_tile": [d for d in divisors(wl.out_w) if d <= 64],
            "vector": sorted({4, 8, 16, lanes}), "unroll_taps": [True, False], "blocked": [True, False]}


def _pixel_stride(sch: s_tir.Schedule, block, info) -> int:
    """Elements of the input between the inputs of two neighbouring output pixels along the tiled pixel axis."""
    var = next(iv.var for iv in sch.get(block).iter_vars if iv.var.name == info.pixel[-1])
    shape = [int(d) for d in next(r.source for r in sch.get(block).reads if r.source.name == info.data).shape]
    stride = 0
    for d, e in enumerate(info.data_index):
        coef = detect_linear_equation(e, [var])
        if coef:
            stride += int(coef[0]) * math.prod(shape[d + 1:])
    return stride


def _index_map(ndim: int, fn):
    return tirx.IndexMap.from_func(fn, ndim=ndim)


def _pack_weight(sch: s_tir.Schedule, block, weight: str, co: str, cb: int):
    """Copy the weight into ``[Cout/cb, <other dims>, cb]`` (its output-channel dim split, the block innermost)
    with a ``cache_read``; annotate the copy as a layout-rewrite preproc when the weight is a parameter. The copy
    keeps the plain loop nest of ``cache_read`` (what ``s_tir.transform.RemoveWeightLayoutRewriteBlock``, used to
    time a function without its preproc, accepts)."""
    reads = sch.get(block).reads
    idx = next(i for i, r in enumerate(reads) if r.source.name == weight)
    region = reads[idx].region
    dim = next((i for i, r in enumerate(region) if isinstance(r.min, tirx.Var) and r.min.name == co), None)
    if dim is None:
        raise ValueError("the weight is not indexed by the output channel")
    is_param = any(p.same_as(reads[idx].source) for p in sch.mod["main"].params)
    nd = len(region)
    pack = sch.cache_read(block, idx, "global")
    blocked = _index_map(nd, lambda *i: [i[dim] // cb, *[i[k] for k in range(nd) if k != dim], i[dim] % cb])
    sch.transform_layout(pack, ("write", 0), blocked)
    if is_param:
        sch.annotate(pack, LAYOUT_REWRITE, True)
    return pack


def _channels_innermost(sch: s_tir.Schedule, block, out_vars: tuple, co: str) -> None:
    """Lay out the conv's (intermediate) output with the output-channel dim innermost: the accumulators."""
    nd, d = len(out_vars), out_vars.index(co)
    sch.transform_layout(block, ("write", 0), _index_map(nd, lambda *i: [i[k] for k in range(nd) if k != d] + [i[d]]))


def workload_of(sch: s_tir.Schedule, block, info) -> DirectConvWorkload:
    """The direct-conv workload of the MAC ``block`` (``info``: its ``analyze_mac``)."""
    taps = 1
    for r in info.reduce[1:]:
        taps *= info.extents[r]
    return DirectConvWorkload(cout=info.extents[info.register[0]], out_w=info.extents[info.pixel[-1]], taps=taps,
                              stride=_pixel_stride(sch, block, info), dtype=block_dtype(sch, block))


def schedule_direct(sch: s_tir.Schedule, block, cfg: DirectConvConfig | None = None, target: TargetLike = None,
                    facts: CpuFacts | None = None) -> DirectConvConfig:
    """Schedule the direct-conv MAC ``block`` of ``sch`` and its epilogue; returns the config used.

    Raises ``ValueError`` when the block is not a direct conv or a blocked config does not divide its output
    channels (the caller then tries the next schedule)."""
    from kernels.elementwise import GenericWorkload, fallback_config as generic_config, schedule_block
    from kernels.pointwise import _epilogue

    producers = list(sch.get_producers(block))
    info = analyze_mac(sch, block)
    if info is None or len(info.register) != 1 or not info.pixel:
        raise ValueError("not a direct conv MAC block")
    it = list(info.iters)
    co, xx = info.register[0], info.pixel[-1]
    rows = info.pixel[:-1]
    cfg = cfg or fallback_config(workload_of(sch, block, info), facts or target)
    if cfg.blocked and (info.extents[co] % cfg.co_tile or cfg.co_tile % cfg.vector):
        raise ValueError(f"blocked: co_tile {cfg.co_tile} must divide {info.extents[co]} output channels "
                         f"and be a multiple of vector {cfg.vector}")
    epi = _epilogue(sch, block)
    if cfg.blocked:
        _pack_weight(sch, block, info.weight, co, cfg.co_tile)
        _channels_innermost(sch, block, info.out_vars, co)
    loops = sch.get_loops(block)
    pos = {n: i for i, n in enumerate(it)}
    fo, fi = sch.split(loops[pos[co]], [None, cfg.co_tile])
    xo, xi = sch.split(loops[pos[xx]], [None, cfg.width_tile])
    outer = [loops[pos[v]] for v in it if v not in (co, xx) and v not in info.reduce]
    red = [loops[pos[v]] for v in info.reduce]
    if cfg.blocked:
        fio, fv = sch.split(fi, [None, cfg.vector])
        sch.reorder(*outer, fo, xo, *red, xi, fio, fv)
    else:
        sch.reorder(*outer, fo, xo, *red, fi, xi)
    sch.set_scope(block, 0, "local")
    sch.reverse_compute_at(epi, xo)
    par_loops = outer if rows else outer + [fo]
    par = sch.fuse(*par_loops) if len(par_loops) > 1 else par_loops[0]
    sch.parallel(par)
    if cfg.unroll_taps:
        for r in red[1:]:
            sch.unroll(r)
    epi_loops = sch.get_loops(epi)
    if cfg.blocked:
        sch.unroll(xi)
        sch.unroll(fio)
        sch.vectorize(fv)
        depth = next(i for i, lp in enumerate(epi_loops) if sch.get(lp).same_as(sch.get(xo))) + 1
        for lp in epi_loops[depth:]:  # the tile's transpose back to NCHW, from registers
            sch.unroll(lp)
    else:
        sch.unroll(fi)
        if cfg.vector > 1:
            _, xv = sch.split(xi, [None, cfg.vector])
            sch.vectorize(xv)
        try:
            sch.vectorize(epi_loops[-1])
        except Exception:  # noqa: BLE001 - an epilogue loop that does not vectorise stays scalar
            pass
    sch.decompose_reduction(block, red[0])
    gcfg = generic_config(GenericWorkload(), facts or target)
    for p in producers:  # the zero-padded input copy: threads + vectors
        try:
            schedule_block(sch, p, gcfg)
        except Exception:  # noqa: BLE001
            pass
    return cfg


ENTRY = register(Entry(
    name="direct_conv", role="schedule", serves=("conv",), order=1, workload=DirectConvWorkload,
    config=DirectConvConfig, fallback_config=fallback_config, knob_space=knob_space,
    build=lambda sch, block, cfg, facts: schedule_direct(sch, block, cfg, facts=facts),
    workload_of=workload_of, dtypes=("float32", "float16")))
