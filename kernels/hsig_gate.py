"""The h-sigmoid gated product in one kernel: ``y * [upsample](hsig(Conv1x1(x) + b))``.

``x`` (N, CI, Hg, Wg) — optionally through ReLU6 first (SeaFormer's ``proj = ReLU6 -> Conv_BN``) — a 1x1 conv
``w`` (CO, CI, 1, 1) with the folded-BN bias ``b`` (1 or N, CO, 1, 1), h-sigmoid, then the product with ``y`` (N, CO, H, W).
Without upsampling (Sea attention: ``hsig(proj(xx)) * detail``) ``(Hg, Wg) == (H, W)`` and the conv is a GEMM over
NCHW whose epilogue is the gate and the product: the conv output never reaches memory. With upsampling (the
LightHead fusion block: ``local * interpolate(hsig(global_act(x_g)))``, bilinear, half-pixel) the gate is computed
at the coarse resolution into a scratch buffer inside the kernel and upsampled on the fly in the product: the
upsampled gate never reaches memory either.

GEMM schedule (TVM-NOTES "hand schedules"): pixels (H x W fused, contiguous in NCHW) are tiled by ``tile_px`` and
output channels by ``tile_co``; a ``tile_co x tile_px`` accumulator block lives in registers (``tile_px / lanes``
vectors per row), the reduction over CI runs outside it, the pixel axis is vectorised, tiles are ordered pixel-tile
outer / channel-tile inner so the input tile stays in L1, and threads split the (batch, pixel-tile) loop.

Knobs (``HsigGateConfig``): ``tile_co``, ``tile_px``, ``lanes``, ``parallel``; ``fallback_config`` derives them
from the target (accumulators ``tile_co * tile_px / lanes`` fit the SIMD register file with a few to spare, tiles
that divide the extents so no ``T.where`` guard appears).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import PrimFunc, te, tirx
from kernels.common import TargetLike, finish, hsig, lanes_dividing, largest_divisor, schedule_of, target_simd
from kernels.defaults import CpuFacts
from kernels.registry import WORKLOAD_ATTR, Entry, kernel_key, register

NAME = "hsig_gate"
"""The kernel's name in the registry and in its workload keys."""
CHAIN = f"edgeavs.{NAME}"


@dataclass(frozen=True)
class HsigGateWorkload:
    n: int
    ci: int
    hg: int
    wg: int
    co: int
    h: int
    w: int
    in_relu6: bool = False
    bias_batch: int = 1
    """The bias is (bias_batch, CO, 1, 1): 1 for the folded-BN constant, N when FuseChannelBias has merged an
    audio vector into it."""
    dtype: str = "float32"

    @property
    def upsample(self) -> bool:
        return (self.hg, self.wg) != (self.h, self.w)


@dataclass(frozen=True)
class HsigGateConfig:
    tile_co: int = 6
    tile_px: int = 16
    lanes: int = 8
    parallel: bool = True
    vector_axis: str = "px"
    """"px": vectorise over pixels (weights (CO, CI, 1, 1), broadcast per output channel); "co": over output
    channels, for maps with no vector-wide pixel tile (7x7): the weights are then passed transposed, (CI, CO),
    so a vector of output channels is one contiguous load, and each pixel is a broadcast."""

    @property
    def weight_transposed(self) -> bool:
        return self.vector_axis == "co"


def pixel_tiles(wl: HsigGateWorkload) -> list[int]:
    """Pixel tiles the schedule accepts: they divide H x W and, without upsampling, never straddle a row
    (a tile is whole rows or a divisor of W); otherwise TVM's region analysis of ``i * W + j`` over a split of
    the fused pixel loop gives up and the conv cannot be vectorised."""
    pixels = wl.hg * wl.wg
    if wl.upsample:
        return [t for t in range(1, pixels + 1) if pixels % t == 0]
    rows = [k * wl.w for k in range(1, wl.h + 1) if wl.h % k == 0]
    return sorted(set(rows) | {t for t in range(1, wl.w + 1) if wl.w % t == 0})


def fallback_config(wl: HsigGateWorkload, facts: CpuFacts | TargetLike = None) -> HsigGateConfig:
    """Register-blocked GEMM tile from the SIMD width and register count (TOPI ``_fallback_schedule`` style):
    the widest vector that some accepted pixel tile of about ``vecs`` vectors allows, then as many output
    channels as the accumulators (``tile_co * tile_px / lanes`` registers, 4 spare) allow."""
    simd = target_simd(facts)
    vecs = 2 if simd.num_vector_registers <= 16 else 3
    tiles = pixel_tiles(wl)
    tile_px, lanes = tiles[-1], 1
    v = simd.lanes()
    while v >= 1:
        want = v * vecs
        fits = [t for t in tiles if t % v == 0 and v <= t <= 4 * want]
        if fits:
            tile_px, lanes = min(fits, key=lambda t: (abs(t - want), t)), v
            break
        v //= 2
    if lanes == 1:
        small = [t for t in tiles if t <= 4 * vecs]
        tile_px = small[-1] if small else tiles[0]
    acc_budget = simd.num_vector_registers - 4
    co_lanes = lanes_dividing(wl.co, simd.lanes())
    if lanes == 1 and co_lanes > 1:
        # No pixel tile is a multiple of 2 lanes (7x7 = 49): vectorise over output channels instead,
        # one pixel by up to 4 channel vectors. Measured on AVX-512 (2 threads, 7x7, 256..384 -> 320):
        # 1 px x 4 vectors 0.07-0.11 ms, 7 px x 1 vector 0.09-0.13 ms, but 7 px x 2 or 4 vectors
        # 1.0-1.5 ms — LLVM no longer keeps that accumulator block in registers.
        tile_px = tiles[0]
        vectors = 4
        tile_co = co_lanes * (largest_divisor(wl.co // co_lanes, vectors) or 1)
        tasks = wl.n * (wl.hg * wl.wg // tile_px) * (wl.co // tile_co)
        return HsigGateConfig(tile_co=tile_co, tile_px=tile_px, lanes=co_lanes, vector_axis="co",
                              parallel=simd.num_cores > 1 and tasks >= 2 * simd.num_cores)
    per_row = max(1, tile_px // lanes)
    want_co = max(1, min(12, acc_budget // per_row))
    if lanes < simd.lanes():
        # Half-width vectors (a 14-wide map on AVX2): more channels per tile measured 1.7x faster even past the
        # register budget (Zen-class x86, 14x14, 128 -> 128).
        want_co = max(want_co, 4)
    tile_co = largest_divisor(wl.co, want_co) or 1
    tasks = wl.n * (wl.hg * wl.wg // tile_px) * (wl.co // tile_co)
    return HsigGateConfig(tile_co=tile_co, tile_px=tile_px, lanes=lanes,
                          parallel=simd.num_cores > 1 and tasks >= 2 * simd.num_cores)


def knob_space(wl: HsigGateWorkload, facts: CpuFacts | TargetLike = None) -> dict[str, list]:
    lanes = target_simd(facts).lanes()
    return {
        "tile_co": [t for t in (1, 2, 3, 4, 6, 8, 12) if t <= wl.co and wl.co % t == 0],
        "tile_px": [t for t in pixel_tiles(wl) if t <= 8 * lanes],
        "lanes": [v for v in (1, 2, 4, 8, 16) if v <= lanes],
        "parallel": [False, True],
        "vector_axis": ["px", "co"],
    }


def _bilinear_source(out_idx, in_size: int, out_size: int):
    """TOPI resize2d "linear" + "half_pixel": the float source coordinate, its floor and fraction."""
    scale = tirx.const(float(in_size) / float(out_size), "float32")
    src = (out_idx.astype("float32") + tirx.const(0.5, "float32")) * scale - tirx.const(0.5, "float32")
    lo = te.floor(src).astype("int32")
    return lo, src - lo.astype("float32")


def compute(wl: HsigGateWorkload, weight_transposed: bool = False):
    x = te.placeholder((wl.n, wl.ci, wl.hg, wl.wg), wl.dtype, name="x")
    if weight_transposed:
        w = te.placeholder((wl.ci, wl.co), wl.dtype, name="w")
        wat = lambda o, k: w[k, o]  # noqa: E731
    else:
        w = te.placeholder((wl.co, wl.ci, 1, 1), wl.dtype, name="w")
        wat = lambda o, k: w[o, k, 0, 0]  # noqa: E731
    bb = te.placeholder((wl.bias_batch, wl.co, 1, 1), wl.dtype, name="b")
    y = te.placeholder((wl.n, wl.co, wl.h, wl.w), wl.dtype, name="y")

    class _Bias:
        def __getitem__(self, no):
            n, o = no
            return bb[n if wl.bias_batch == wl.n else 0, o, 0, 0]

    b = _Bias()
    wg = wl.wg

    def xin(n, k, p):
        v = x[n, k, p // wg, p % wg]
        if wl.in_relu6:
            v = te.min(te.max(v, tirx.const(0.0, wl.dtype)), tirx.const(6.0, wl.dtype))
        return v

    k = te.reduce_axis((0, wl.ci), name="k")
    conv = te.compute((wl.n, wl.co, wl.hg * wl.wg),
                      lambda n, o, p: te.sum(wat(o, k) * xin(n, k, p), axis=k), name="conv")
    if not wl.upsample:
        out = te.compute((wl.n, wl.co, wl.h, wl.w),
                         lambda n, o, i, j: y[n, o, i, j] * hsig(conv[n, o, i * wl.w + j] + b[n, o], wl.dtype),
                         name="hsig_gate")
        return [x, w, bb, y, out]

    gate = te.compute((wl.n, wl.co, wl.hg * wl.wg), lambda n, o, p: hsig(conv[n, o, p] + b[n, o], wl.dtype),
                      name="gate")

    def up(n, o, i, j):
        i0, fi = _bilinear_source(i, wl.hg, wl.h)
        j0, fj = _bilinear_source(j, wl.wg, wl.w)

        def at(ii, jj):
            ii = te.max(te.min(ii, wl.hg - 1), 0)
            jj = te.max(te.min(jj, wl.wg - 1), 0)
            return gate[n, o, ii * wl.wg + jj]

        one = tirx.const(1.0, "float32")
        top = at(i0, j0) * (one - fj) + at(i0, j0 + 1) * fj
        bottom = at(i0 + 1, j0) * (one - fj) + at(i0 + 1, j0 + 1) * fj
        return top * (one - fi) + bottom * fi

    out = te.compute((wl.n, wl.co, wl.h, wl.w), lambda n, o, i, j: y[n, o, i, j] * up(n, o, i, j),
                     name="hsig_gate")
    return [x, w, bb, y, out]


def _schedule_gemm(sch, consumer, conv, cfg: HsigGateConfig, fused_hw: bool, pixels: int) -> None:
    """Register-tile ``conv`` under the pixel/channel tiles of its elementwise ``consumer``."""
    loops = sch.get_loops(consumer)
    if fused_hw:
        n, o, i, j = loops
        p = sch.fuse(i, j)
    else:
        n, o, p = loops
    po, pi = sch.split(p, [None, cfg.tile_px])
    oo, oi = sch.split(o, [None, cfg.tile_co])
    by_co = cfg.vector_axis == "co"
    sch.reorder(n, po, oo, *((pi, oi) if by_co else (oi, pi)))
    vector = cfg.lanes > 1 and cfg.tile_px % cfg.lanes == 0 and (pixels % cfg.tile_px == 0)
    if by_co:
        vector = cfg.lanes > 1 and cfg.tile_co % cfg.lanes == 0
    elif vector:
        sch.vectorize(pi if cfg.tile_px == cfg.lanes else sch.split(pi, [None, cfg.lanes])[1])
    if cfg.parallel:
        # Threads over (batch, pixel tile, channel tile): enough tasks even for 8 cores on a 7x7 map; a thread's
        # contiguous chunk keeps one pixel tile for consecutive channel tiles (the input tile stays in L1).
        oo = sch.fuse(n, po, oo)
        sch.parallel(oo)
    sch.compute_at(conv, oo)
    # The accumulator tile: "local" lets CompactBufferAllocation shrink it to tile_co x tile_px under the tile
    # loop (per thread), and, unrolled and vectorised, LLVM keeps it in registers.
    sch.set_scope(conv, 0, "local")
    outer = [sch.get(lp).same_as(sch.get(oo)) for lp in sch.get_loops(consumer)].index(True) + 1
    inner = sch.get_loops(conv)[outer:]
    c_k, spatial = inner[-1], list(inner[:-1])  # (n, o, p) minus the unit loops compute_at dropped
    c_p = spatial.pop() if cfg.tile_px > 1 and spatial else None
    c_o = spatial.pop() if cfg.tile_co > 1 and spatial else None
    if by_co:
        order = [lp for lp in inner[:-1] if not (c_o is not None and sch.get(lp).same_as(sch.get(c_o)))]
        sch.reorder(c_k, *order, *([c_o] if c_o is not None else []))
        if vector and c_o is not None:
            if cfg.tile_co == cfg.lanes:
                sch.vectorize(c_o)
            else:
                om, ol = sch.split(c_o, [None, cfg.lanes])
                sch.vectorize(ol)
                sch.unroll(om)
        if c_p is not None:
            sch.unroll(c_p)
        sch.decompose_reduction(conv, c_k)
        return
    sch.reorder(c_k, *inner[:-1])
    if vector and c_p is not None and cfg.tile_px == cfg.lanes:
        sch.vectorize(c_p)
    elif vector and c_p is not None:
        pv, pl = sch.split(c_p, [None, cfg.lanes])
        sch.vectorize(pl)
        sch.unroll(pv)
    if c_o is not None:
        sch.unroll(c_o)
    sch.decompose_reduction(conv, c_k)


def schedule(wl: HsigGateWorkload, cfg: HsigGateConfig) -> PrimFunc:
    if cfg.tile_px not in pixel_tiles(wl):
        raise ValueError(f"hsig_gate: tile_px={cfg.tile_px} is not one of {pixel_tiles(wl)} for {wl}")
    if wl.co % cfg.tile_co:
        raise ValueError(f"hsig_gate: tile_co={cfg.tile_co} does not divide CO={wl.co}")
    sch = schedule_of(compute(wl, cfg.weight_transposed))
    conv = sch.get_sblock("conv")
    out = sch.get_sblock("hsig_gate")
    if not wl.upsample:
        _schedule_gemm(sch, out, conv, cfg, fused_hw=True, pixels=wl.h * wl.w)
    else:
        gate = sch.get_sblock("gate")
        _schedule_gemm(sch, gate, conv, cfg, fused_hw=False, pixels=wl.hg * wl.wg)
        n, o, i, j = sch.get_loops(out)
        no = sch.fuse(n, o)
        lanes = lanes_dividing(wl.w, cfg.lanes)
        if lanes > 1:
            _, jl = sch.split(j, [None, lanes])
            sch.vectorize(jl)
        if cfg.parallel:
            sch.parallel(no)

    # the workload key: how edgeavs tune finds this kernel's workload and its records match it again
    return finish(sch.mod["main"], CHAIN, cfg).with_attr(WORKLOAD_ATTR, kernel_key(NAME, wl))


def hsig_gate_kernel(wl: HsigGateWorkload, target: TargetLike = None,
                     config: HsigGateConfig | None = None) -> PrimFunc:
    """The fixed-shape scheduled PrimFunc for ``wl`` (``config`` defaults to ``fallback_config``).

    Arguments: x, w, b, y, out — ``w`` is (CO, CI, 1, 1), or (CI, CO) when ``config.weight_transposed``."""
    return schedule(wl, config or fallback_config(wl, target))


def reference(x, w, b, y, in_relu6: bool = False):
    """numpy reference of the unfused chain (bilinear upsample with PyTorch's align_corners=False)."""
    import numpy as np

    if in_relu6:
        x = np.clip(x, 0.0, 6.0)
    g = np.einsum("ok,nkhw->nohw", w[:, :, 0, 0], x) + b.reshape(-1, w.shape[0], 1, 1)
    g = np.clip(g + 3.0, 0.0, 6.0) / 6.0
    hg, wg = g.shape[2:]
    h, wo = y.shape[2:]
    if (hg, wg) != (h, wo):
        def src(n_out, n_in):
            s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
            s = np.maximum(s, 0.0)
            lo = np.minimum(np.floor(s).astype(int), n_in - 1)
            hi = np.minimum(lo + 1, n_in - 1)
            return lo, hi, s - lo
        i0, i1, fi = src(h, hg)
        j0, j1, fj = src(wo, wg)
        top = g[:, :, i0][:, :, :, j0] * (1 - fj) + g[:, :, i0][:, :, :, j1] * fj
        bot = g[:, :, i1][:, :, :, j0] * (1 - fj) + g[:, :, i1][:, :, :, j1] * fj
        g = top * (1 - fi)[:, None] + bot * fi[:, None]
    return y * g


__all__ = ["CHAIN", "HsigGateWorkload", "HsigGateConfig", "fallback_config", "knob_space", "compute",
           "schedule", "hsig_gate_kernel", "reference"]


ENTRY = register(Entry(
    name=NAME, role="kernel", serves=(CHAIN,), workload=HsigGateWorkload, config=HsigGateConfig,
    fallback_config=fallback_config, knob_space=knob_space, build=schedule, choices={"vector_axis": ("px", "co")}))
