"""Depthwise kxk convolution (3x3 / 5x5, stride 1 / 2) with the fused bias + activation epilogue.

Works on the fused ``group_conv2d_nchw`` PrimFunc (groups == channels), recognised by structure (the channel
axis indexes both data and weight). TVM-NOTES "Hand schedules": threads over channels; per channel the padded
plane is built once (``pad_temp`` computed at the channel loop: it stays in L1/L2); the output is tiled
``rows`` x ``vectors * vector`` pixels with the accumulators in registers, vectorised over the output width,
taps unrolled; the width tile must divide the output width (``pad_einsum`` rejects the
windowed access), else the config degrades to ``tile=False``.

Knobs (:class:`DepthwiseConfig`): ``rows``, ``vector`` (lanes per vector), ``vectors`` (per row),
``unroll_taps``. Default from the target and the accumulator's dtype (its lanes: 4 fp32 / 8 fp16 on NEON):
:func:`fallback_config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import s_tir
from kernels.blocks import analyze_mac
from kernels.defaults import CpuFacts, TargetLike, as_facts, block_dtype, ceil_to
from kernels.registry import Entry, register


@dataclass(frozen=True)
class DepthwiseWorkload:
    channels: int
    out_h: int
    out_w: int
    k: int
    stride: int
    dtype: str = "float32"
    """The accumulator's (the MAC block's output) dtype: the vectors' element type."""


@dataclass(frozen=True)
class DepthwiseConfig:
    rows: int
    vector: int
    vectors: int
    unroll_taps: bool = True
    tile: bool = True
    """False: only threads over channels and the per-channel padded plane (LLVM vectorises the plain loops)."""
    parity: bool = False
    """Stride 2: store the padded plane split into even and odd columns so every tap's loads are contiguous
    (default False so that configs written before this knob keep their behaviour; the fallback sets it)."""

    @property
    def width_tile(self) -> int:
        return self.vector * self.vectors


def fallback_config(w: DepthwiseWorkload, facts: CpuFacts | TargetLike = None) -> DepthwiseConfig:
    """Vector = the SIMD width (or a half/quarter of it when that wastes less padding of the output width; on a
    narrow map no power of two tiles, :func:`_narrow_vector`);
    as many vectors per row as cover the width up to 4; rows so that accumulators use about half the registers."""
    f = as_facts(facts)
    lanes = f.lanes_for(w.dtype)
    best = None
    v = lanes
    while v >= 4 or v == lanes:
        waste = ceil_to(w.out_w, v) / w.out_w
        if best is None or waste < best[0] - 1e-9:
            best = (waste, v)
        if v <= 4:
            break
        v //= 2
    vec = best[1]
    narrow = _narrow_vector(w, lanes) if w.out_w % vec else None
    if narrow is not None:
        vec = narrow
    nv = 1 if narrow is not None else min(4, -(-w.out_w // vec))  # narrow: two 7-lane vectors measured 2x slower
    while nv > 1 and ceil_to(w.out_w, vec * nv) > ceil_to(w.out_w, vec):
        nv -= 1
    budget = max(1, (f.vector_registers // 2) // nv)
    if w.k <= 3:
        # 3x3 taps on AVX-512 (32 registers -> 16 rows): 8 rows measured 1.6-2.7x faster at 112x112 and 56x56 (the
        # input rows the taps need compete for the registers); 5x5 showed no difference
        budget = min(budget, 8)
    rows = max(r for r in range(1, min(budget, w.out_h) + 1) if w.out_h % r == 0)
    # stride 2 (measured on L's shapes, 2 threads, AVX-512): 5x5 taps gain from the even/odd column planes with
    # the register tile (56->28: 2.1 -> 1.3 ms, 14->7: 164 -> 81 us); 3x3 taps lose with it (112->56: 1.3 ->
    # 3.7 ms) and keep channel threads over the plain plane
    split = w.stride == 2 and w.k >= 5
    return DepthwiseConfig(rows=rows, vector=vec, vectors=nv, tile=w.stride == 1 or split or narrow is not None,
                           parity=split)


def _narrow_vector(w: DepthwiseWorkload, lanes: int) -> int | None:
    """On a map narrower than the SIMD width that no power-of-two vector tiles (14, 7: the tile would degrade
    to the untiled loops), one vector of the width's largest divisor from 5 up to half the SIMD width, e.g. 7
    lanes. Measured (AVX-512, Zen 4, 2 threads, LightAVSeg-L's fused functions at 224, nine alternating rounds
    against the untiled loops): 3x3 s2 to 14^2 266 -> 87 us, 3x3 s1 at 14^2 112 -> 65 and 77 -> 41 us, 3x3 at
    7^2 43 -> 31 us; 5x5 s2 to 7^2 the same within the noise (54-75 vs 57-59 us); two 7-lane vectors per row
    lost to one (150 vs 87 us). None elsewhere (NEON's 4 lanes have no such divisor)."""
    if w.out_w > lanes:
        return None
    return next((d for d in range(lanes // 2, 4, -1) if w.out_w % d == 0), None)


def knob_space(w: DepthwiseWorkload, facts: CpuFacts | TargetLike = None) -> dict:
    lanes = as_facts(facts).lanes_for(w.dtype)
    narrow = _narrow_vector(w, lanes)
    return {"rows": [r for r in (1, 2, 4, 7, 8, 14) if w.out_h % r == 0],
            "vector": sorted({lanes, max(4, lanes // 2), 4} | ({narrow} if narrow else set())),
            "vectors": [1, 2, 4], "unroll_taps": [True, False],
            "tile": [True, False], "parity": [True, False] if w.stride == 2 else [True]}


def column_stride(info, column: str) -> int | None:
    """How far the data's column index moves per output column (the conv stride), read from the data index."""
    from tvm.sym.analyzer import Analyzer

    from edgeavs.tvm_api import tirx

    expr = info.data_index[-1]
    values = []
    for at in (0, 1):
        ana = Analyzer()
        for v in tirx.analysis.undefined_vars(expr):
            ana.bind(v, tirx.const(at if v.name == column else 0, str(v.ty.dtype)))
        try:
            values.append(int(ana.simplify(expr)))
        except (TypeError, ValueError):
            return None
    return values[1] - values[0] if values[1] > values[0] else None


def _split_columns_by_parity(sch: s_tir.Schedule, pad_block) -> None:
    """Store the padded plane as ``[..., column % 2, column // 2]``: a stride-2 tap ``2 x + kx`` then reads plane
    ``kx % 2`` at ``x + kx // 2``, contiguous in ``x`` (TVM-NOTES: 5x5 s2 2.2-3.7 ms -> 0.40 ms). An odd padded
    width leaves one zero column at the end of the odd plane."""
    from edgeavs.tvm_api import tirx

    buf = sch.get(pad_block).writes[0].source
    ndim = len(buf.shape)
    width = int(buf.shape[-1])

    def parity(*idx):
        return [*idx[:-1], idx[-1] % 2, idx[-1] // 2]

    index_map = tirx.IndexMap.from_func(parity, ndim=ndim)
    sch.transform_layout(pad_block, ("write", 0), index_map,
                         pad_value=tirx.const(0.0, str(buf.dtype)) if width % 2 else None)


def workload_of(sch: s_tir.Schedule, block, info) -> DepthwiseWorkload:
    """The depthwise workload of the MAC ``block`` (``info``: its ``analyze_mac``); the stride from the data's
    column index, else from the padded input's width."""
    ch, (yy, xx) = info.shared[0], info.pixel
    ky = [r for r in info.reduce if info.extents[r] > 1]
    k = info.extents[ky[0]] if ky else 1
    oh, ow = info.extents[yy], info.extents[xx]
    producers = list(sch.get_producers(block))
    pad_block = producers[0] if len(producers) == 1 else None
    din = sch.get(pad_block).reads[0].source if pad_block is not None else None
    stride = column_stride(info, xx)
    if stride is None:
        stride = max(1, (int(din.shape[-1]) + 2 * (k // 2) - k) // max(1, ow - 1)) if din is not None and ow > 1 else 1
    return DepthwiseWorkload(channels=info.extents[ch], out_h=oh, out_w=ow, k=k, stride=stride,
                             dtype=block_dtype(sch, block))


def schedule_depthwise(sch: s_tir.Schedule, block, cfg: DepthwiseConfig | None = None, target: TargetLike = None,
                       facts: CpuFacts | None = None) -> DepthwiseConfig:
    from kernels.pointwise import _epilogue

    info = analyze_mac(sch, block)
    if info is None or info.register or not info.shared or len(info.pixel) != 2:
        raise ValueError("not a depthwise MAC block")
    it = list(info.iters)
    ch, (yy, xx) = info.shared[0], info.pixel
    oh, ow = info.extents[yy], info.extents[xx]
    producers = list(sch.get_producers(block))
    pad_block = producers[0] if len(producers) == 1 else None
    wl = workload_of(sch, block, info)
    stride = wl.stride
    cfg = cfg or fallback_config(wl, facts or target)
    epi = _epilogue(sch, block)
    if cfg.tile and (ow % cfg.width_tile or oh % cfg.rows):
        cfg = DepthwiseConfig(cfg.rows, cfg.vector, cfg.vectors, cfg.unroll_taps, tile=False, parity=cfg.parity)
    if stride == 2 and cfg.parity and pad_block is not None:
        _split_columns_by_parity(sch, pad_block)
    if not cfg.tile:
        loops = sch.get_loops(block)
        pos = {n: i for i, n in enumerate(it)}
        outer = [loops[pos[v]] for v in it[: pos[ch] + 1]]
        par = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        sch.parallel(par)
        for p in producers:
            sch.compute_at(p, par)
        sch.reverse_compute_at(epi, par)
        return cfg
    wt = cfg.width_tile
    loops = sch.get_loops(block)
    pos = {n: i for i, n in enumerate(it)}
    yo, yi = sch.split(loops[pos[yy]], [None, cfg.rows])
    xo, xi = sch.split(loops[pos[xx]], [None, wt])
    outer = [loops[pos[v]] for v in it if v not in (yy, xx) and v not in info.reduce]
    red = [loops[pos[v]] for v in info.reduce]
    sch.reorder(*outer, yo, xo, *red, yi, xi)
    par = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    sch.parallel(par)
    sch.set_scope(block, 0, "local")
    sch.reverse_compute_at(epi, xo)
    for p in producers:
        try:
            sch.compute_at(p, par)
            pl = sch.get_loops(p)
            if len(pl) > 1:
                sch.vectorize(pl[-1]) if int(sch.get(pl[-1]).extent) % 4 == 0 else None
        except Exception:  # noqa: BLE001 - leave the producer at the root
            pass
    try:
        sch.vectorize(sch.get_loops(epi)[-1])
    except Exception:  # noqa: BLE001
        pass
    if cfg.unroll_taps:
        for r in red:
            sch.unroll(r)
    sch.unroll(yi)
    _, xv = sch.split(xi, [None, cfg.vector])
    sch.vectorize(xv)
    sch.decompose_reduction(block, red[0])
    return cfg


ENTRY = register(Entry(
    name="depthwise", role="schedule", serves=("depthwise",), workload=DepthwiseWorkload, config=DepthwiseConfig,
    fallback_config=fallback_config, knob_space=knob_space,
    build=lambda sch, block, cfg, facts: schedule_depthwise(sch, block, cfg, facts=facts),
    workload_of=workload_of, dtypes=("float32", "float16")))
