"""1x1 convolution (and any matmul-like MAC block) as a GEMM micro-kernel with the fused epilogue in registers.

The schedule works on the fused PrimFunc the pipeline produces (``conv2d_nchw`` + bias + activation + residual,
``matmul`` + ...), recognised by ``kernels.blocks.analyze_mac``: one register axis (output channels / matmul rows)
and contiguous pixel axes (NCHW pixels / matmul columns). Per TVM-NOTES "Hand schedules":

- the pixel axes are fused into one axis ``p`` (the conv block, its accumulator and the epilogue are re-laid out
  with ``transform_block_layout`` / ``transform_layout``: no div/mod inside the vector loop);
- register tile ``co_tile`` output channels x ``pixel_vectors * lanes`` pixels, accumulators in registers
  (a ``local`` buffer with constant indices), vectorised over pixels, channels unrolled;
- the input panel (all input channels x one pixel tile) is copied to a small contiguous block per pixel tile
  (``pack``), zero-padded up to a whole number of vectors (``pad_einsum``: tiles never need a ``T.where`` guard);
- the epilogue (folded-BN bias, ReLU/ReLU6/clip, h-sigmoid, residual add, anything elementwise that FuseOps put
  after the conv) is inlined into one block and computed per register tile, straight from the accumulators;
- threads over pixel tiles (``parallel="pixel"``) when their count divides evenly over the threads, otherwise
  over channel tiles (``parallel="channel"``, the panel copied once per pixel tile before the parallel loop).

Knobs: :class:`GemmConfig`; default: :func:`fallback_config` (from the target's registers and threads and the
lanes of the accumulator's dtype: 4 fp32 / 8 fp16 on NEON); search space: :func:`knob_space`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import s_tir, tirx
from kernels.blocks import MacInfo, analyze_mac, inline_into_consumers, root_blocks
from kernels.defaults import CpuFacts, TargetLike, as_facts, block_dtype, ceil_to
from kernels.registry import Entry, register


@dataclass(frozen=True)
class GemmWorkload:
    """``out[m, n] = sum_k w[m, k] * x[k, n]`` (per ``batch``): m output channels, n pixels, k input channels."""

    m: int
    n: int
    k: int
    batch: int = 1
    dtype: str = "float32"
    """The accumulator's (the MAC block's output) dtype: the vectors' element type."""

    @classmethod
    def from_info(cls, info: MacInfo, dtype: str = "float32") -> "GemmWorkload":
        red = info.extent(info.reduce)
        return cls(m=info.extent(info.register), n=info.extent(info.pixel), k=red,
                   batch=info.extent(info.shared), dtype=dtype)


@dataclass(frozen=True)
class GemmConfig:
    co_tile: int
    """Output channels per register tile (unrolled)."""
    pixel_vectors: int
    """SIMD vectors per pixel tile (1, 2 or 4: LLVM scalarises 3-vector types); the pixel tile is
    ``pixel_vectors * lanes`` (zero-padded at the end)."""
    lanes: int
    """Lanes of one vector of the accumulator's dtype (fp32: 8 AVX2, 16 AVX-512, 4 NEON; fp16 NEON: 8)."""
    parallel: str = "pixel"
    """"pixel": threads over pixel tiles; "channel": over output-channel tiles."""
    pack: bool = True
    """Copy each input panel to a contiguous zero-padded block (else read the input in place)."""

    @property
    def pixel_tile(self) -> int:
        return self.pixel_vectors * self.lanes


def _score(w: GemmWorkload, ct: int, pv: int, lanes: int) -> float:
    pt = pv * lanes
    eff = (w.n / ceil_to(w.n, pt)) * (w.m / ceil_to(w.m, ct))
    intensity = ct * pv / (ct + pv)  # FMAs per load in the inner loop
    return eff * intensity


def _parallel_mode(w: GemmWorkload, pixel_tile: int, threads: int) -> str:
    tiles = -(-w.n // pixel_tile) * w.batch
    # an uneven split costs at most 1/tiles-per-thread; one parallel region per pixel tile costs more
    return "pixel" if threads == 1 or tiles % threads == 0 or tiles >= 4 * threads else "channel"


def fallback_config(w: GemmWorkload, facts: CpuFacts | TargetLike = None) -> GemmConfig:
    """The register tile that maximises FMAs per load x useful fraction (padding), within the register file:
    ``co_tile * pixel_vectors`` accumulators + ``pixel_vectors`` inputs + 1 broadcast weight. Threads over
    channel tiles start one parallel region per pixel tile (~5 us each), weighed against the work, so a pixel
    tile whose count splits evenly over the threads is preferred when there are many tiles."""
    f = as_facts(facts)
    lanes = f.lanes_for(w.dtype)
    best = None
    for pv in (1, 2, 4):  # 3 vectors = a <48 x float> LLVM type: measured 30-40x slower (scalarised)
        if pv > 1 and (pv // 2) * lanes >= w.n:
            break
        mode = _parallel_mode(w, pv * lanes, f.threads)
        tiles = -(-w.n // (pv * lanes)) * w.batch
        penalty = 1.0
        if mode == "channel":
            # one parallel launch (~5 us) per pixel tile against the work (at a conservative 20 GFLOP/s/thread)
            work_us = 2.0 * w.m * w.n * w.k * w.batch / (20e3 * f.threads)
            penalty = work_us / (work_us + 5.0 * tiles)
        for ct in range(1, 17):
            if ct * pv + pv + 1 > f.vector_registers or ct > w.m:
                continue
            s = _score(w, ct, pv, lanes) * penalty
            if w.n % (pv * lanes):
                s *= 0.3  # padded pixel tiles: the pack copy and the epilogue run scalar (guarded)
            if w.m % ct:
                s *= 0.8  # padded channels: a weight copy per call
            if best is None or s > best[0] + 1e-9:
                best = (s, ct, pv, mode)
    _, ct, pv, mode = best
    return GemmConfig(co_tile=ct, pixel_vectors=pv, lanes=lanes, parallel=mode, pack=True)


def knob_space(w: GemmWorkload, facts: CpuFacts | TargetLike = None) -> dict:
    """What ``edgeavs tune`` may search (every combination is a valid schedule)."""
    f = as_facts(facts)
    return {
        "co_tile": [c for c in range(1, 17) if c <= w.m],
        "pixel_vectors": [1, 2, 4],
        "lanes": [f.lanes_for(w.dtype)],
        "parallel": ["pixel", "channel"],
        "pack": [True],  # pack=False only for single-axis pixels (matmul); conv pixels need the copy
    }


def _block_index(sch, block, buffer_name: str, kind: str) -> int:
    regions = sch.get(block).reads if kind == "read" else sch.get(block).writes
    for i, r in enumerate(regions):
        if r.source.name == buffer_name:
            return i
    raise ValueError(f"{buffer_name} not {kind} by block")


def _fuse_trailing(ndim: int, k: int, shape_tail: list[int]):
    """An index map over ``ndim`` indices that fuses the last ``k`` (row-major) into one."""
    from edgeavs.tvm_api import tirx as _t

    def f(*idx):
        fused = idx[ndim - k]
        for j in range(ndim - k + 1, ndim):
            fused = fused * shape_tail[j - (ndim - k)] + idx[j]
        return list(idx[: ndim - k]) + [fused]

    return _t.IndexMap.from_func(f, ndim=ndim)


def _fuse_positions(ndim: int, positions: list[int], extents: list[int]):
    """An index map over ``ndim`` block iters that fuses the iters at ``positions`` (consecutive) into one."""
    from edgeavs.tvm_api import tirx as _t

    first = positions[0]

    def f(*idx):
        fused = idx[first]
        for p, e in zip(positions[1:], extents[1:]):
            fused = fused * e + idx[p]
        return [idx[i] for i in range(first)] + [fused] + [idx[i] for i in range(ndim) if i > positions[-1]]

    return _t.IndexMap.from_func(f, ndim=ndim)


def _epilogue(sch, block):
    """Inline everything after ``block`` into one final spatial block over the conv's output; return that block
    (or a ``cache_write`` copy-back when the conv writes the function's output directly)."""
    blocks = root_blocks(sch)
    idx = next(i for i, b in enumerate(blocks) if sch.get(b).name_hint == sch.get(block).name_hint)
    after = blocks[idx + 1:]
    if after:
        inline_into_consumers(sch, after[:-1])
        after = root_blocks(sch)[idx + 1:]
    if not after:
        return sch.cache_write(block, 0, "global")
    if len(after) != 1:
        raise ValueError("epilogue is not a single elementwise block")
    return after[0]


def _plain_spatial(sch, block) -> bool:
    """A spatial block that writes one buffer indexed by its iters, in order."""
    blk = sch.get(block)
    if any(int(iv.iter_type) != 0 for iv in blk.iter_vars) or len(blk.writes) != 1:
        return False
    body = blk.body
    names = [iv.var.name for iv in blk.iter_vars]
    return (hasattr(body, "indices") and len(body.indices) == len(names)
            and all(isinstance(e, tirx.Var) and e.name == n for e, n in zip(body.indices, names)))


def schedule_gemm(sch: s_tir.Schedule, block, cfg: GemmConfig | None = None, target: TargetLike = None,
                  facts: CpuFacts | None = None) -> GemmConfig:
    """Schedule the MAC ``block`` of ``sch`` (and everything after it) as a GEMM; returns the config used.

    Raises ``ValueError`` when the block is not GEMM-like (the caller keeps the function unscheduled)."""
    inline_into_consumers(sch, sch.get_producers(block))
    info = analyze_mac(sch, block)
    if info is None or len(info.register) > 1 or not info.pixels_contiguous:
        raise ValueError("not a GEMM-like MAC block")
    wl = GemmWorkload.from_info(info, block_dtype(sch, block))
    cfg = cfg or fallback_config(wl, facts or target)
    gemv = not info.register
    if gemv:
        # matrix-vector (fc layers on a pooled vector, 1x1 depthwise): no register axis; the "data" operand is
        # the weight matrix itself, streamed once, so it is never packed
        cfg = GemmConfig(co_tile=1, pixel_vectors=cfg.pixel_vectors, lanes=cfg.lanes, parallel="pixel",
                         pack=False)
    epi = _epilogue(sch, block)
    if not _plain_spatial(sch, epi):
        raise ValueError("epilogue does not iterate over the conv output")
    conv_name = sch.get(block).name_hint
    iters = list(info.iters)
    ndim_out = len(info.out_vars)
    pix_pos = [iters.index(v) for v in info.pixel]
    pix_ext = [info.extents[v] for v in info.pixel]
    k = len(info.pixel)
    out_buf = sch.get(block).writes[0].source
    tail = [int(s) for s in out_buf.shape[ndim_out - k:]]
    if k == 1 and any(info.extents[v] == 1 for v in iters):
        # drop the extent-1 iters (a 1xW map's row, a 1x1 kernel's taps): indices like ``yy + ry`` become
        # plain vars, which ``pad_einsum`` needs
        keep = [i for i, v in enumerate(iters) if info.extents[v] > 1]
        sch.transform_block_layout(block, tirx.IndexMap.from_func(lambda *idx: [idx[i] for i in keep],
                                                                   ndim=len(iters)))
        iters = [iters[i] for i in keep]
        pix_pos = [iters.index(v) for v in info.pixel]
    if k > 1:
        if pix_pos != list(range(pix_pos[0], pix_pos[0] + k)):
            raise ValueError("pixel iters are not consecutive")
        sch.transform_layout(block, ("write", 0), _fuse_trailing(ndim_out, k, tail))
        sch.transform_block_layout(block, _fuse_positions(len(iters), pix_pos, pix_ext))
        epi_n = len(sch.get(epi).iter_vars)
        sch.transform_block_layout(epi, _fuse_positions(epi_n, list(range(epi_n - k, epi_n)), tail))
    if not cfg.pack and k > 1:
        raise ValueError("pack=False needs a single pixel axis (the fused NCHW pixels are read through div/mod)")
    pack = None
    if cfg.pack:
        pack = sch.cache_read(block, _block_index(sch, block, info.data, "read"), "global")
        if k > 1:
            dbuf_nd = len(info.data_index)
            dshape = [int(s) for s in sch.get(pack).reads[0].source.shape[dbuf_nd - k:]]
            sch.transform_layout(pack, ("write", 0), _fuse_trailing(dbuf_nd, k, dshape))
            pn_ = len(sch.get(pack).iter_vars)
            sch.transform_block_layout(pack, _fuse_positions(pn_, list(range(pn_ - k, pn_)), dshape))
    # iteration vars after the pixel fusion
    blk_iters = list(sch.get(block).iter_vars)
    names = [iv.var.name for iv in blk_iters]
    p_pos = pix_pos[0]
    co_pos = iters.index(info.register[0]) if not gemv else None
    if co_pos is not None and co_pos > p_pos:
        co_pos -= k - 1
    n_pix = info.extent(info.pixel)
    pt, ct = cfg.pixel_tile, cfg.co_tile
    pn, cn = ceil_to(n_pix, pt), ceil_to(wl.m, ct)
    if pn != n_pix or cn != wl.m:
        pads = [1] * len(names)
        pads[p_pos] = pt  # pad_einsum pads each extent to a multiple of its factor
        if co_pos is not None:
            pads[co_pos] = ct
        sch.pad_einsum(block, pads)
        for b in list(root_blocks(sch)):
            nm = sch.get(b).name_hint
            if nm.endswith("_pad") and nm != conv_name:
                # the input pad block reads the (packed) input: inline the pack copy into it; the output
                # copy-back of the padded accumulator is inlined into the epilogue
                try:
                    if pack is not None and sch.get(pack).name_hint + "_pad" == nm:
                        sch.compute_inline(pack)
                        pack = b
                    elif any(w.source.name == nm.rsplit("_pad", 1)[0] for w in sch.get(b).writes):
                        sch.compute_inline(b)
                except Exception:  # noqa: BLE001
                    pass
        for b in list(root_blocks(sch)):
            nm = sch.get(b).name_hint
            if nm.endswith("_pad") and not (pack is not None and sch.get(pack).name_hint == nm):
                try:
                    sch.compute_inline(b)
                except Exception:  # noqa: BLE001
                    pass
    loops = sch.get_loops(block)
    blk_iters = list(sch.get(block).iter_vars)
    reduce_pos = [i for i, iv in enumerate(blk_iters) if int(iv.iter_type) == 2]
    po, pi = sch.split(loops[p_pos], [None, pt])
    fo = fi = None
    if co_pos is not None:
        fo, fi = sch.split(loops[co_pos], [None, ct])
    outer = [loops[i] for i in range(len(loops)) if i not in (p_pos, co_pos) and i not in reduce_pos]
    red = [loops[i] for i in reduce_pos]
    sch.reorder(*outer, po, *([fo] if fo is not None else []), *red, *([fi] if fi is not None else []), pi)
    sch.set_scope(block, 0, "local")
    sch.reverse_compute_at(epi, fo if fo is not None else po)
    if cfg.parallel == "pixel":
        par = sch.fuse(*outer, po) if outer else po
        sch.parallel(par)
        if pack is not None:
            sch.compute_at(pack, par)
    else:
        if pack is not None:
            sch.compute_at(pack, po)
        sch.parallel(fo if fo is not None else po)
    if pack is not None:
        try:
            sch.vectorize(sch.get_loops(pack)[-1])
        except Exception:  # noqa: BLE001 - a guarded (padded) copy stays scalar
            pass
    el = sch.get_loops(epi)
    try:
        sch.vectorize(el[-1])
    except Exception:  # noqa: BLE001
        pass
    if fi is not None:
        sch.unroll(fi)
    sch.vectorize(pi)
    sch.decompose_reduction(block, red[0])
    return cfg


ENTRY = register(Entry(
    name="gemm", role="schedule", serves=("conv1x1", "matmul"), workload=GemmWorkload, config=GemmConfig,
    fallback_config=fallback_config, knob_space=knob_space,
    build=lambda sch, block, cfg, facts: schedule_gemm(sch, block, cfg, facts=facts),
    workload_of=lambda sch, block, info: GemmWorkload.from_info(info, block_dtype(sch, block)),
    choices={"parallel": ("pixel", "channel")}, dtypes=("float32", "float16")))
