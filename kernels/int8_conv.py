"""int8 1x1 convolution with the activation quantized inside the kernel: one fp32 tensor in, one fp32 tensor out.

``y[n, m, h, w] = float32(acc[n, m, h, w] - comp[m]) * scale[m] + bias[m]``, ``acc = sum_k data[n, k, h, w] *
wpack(m, k)`` in int32, where ``data`` is the input quantized in the kernel's pack stage:
``q = clip(rint(x * inv_scale) + zero_point, -128, 127)`` (``x * inv_scale`` in float32, ``rint`` rounds half to
even), fed as ``q + 128`` (uint8) to AVX-512 VNNI's ``vpdpbusd`` and as ``q`` (int8) to AArch64's ``sdot`` and to
the generic path. ``comp`` (from :func:`prepare_weights`) removes the zero point (and VNNI's +128) exactly, so
``acc - comp == sum_k wq[m, k] * (q[k] - zero_point)``.

The PrimFunc (``R.call_tir`` signature, inputs then output)::

    (x: float32[n, k, h, w], qparams: float32[2] = (inv_scale, zero_point), wpack: int8[...],
     comp: int32[m], scale: float32[m], bias: float32[m]) -> y: float32[n, m, h, w]

Stages:

- ``pack``: per pixel tile (or per image with ``parallel="channel"``), NCHW fp32 -> a pixel-major panel
  ``[pixels, k/4, 4]`` of uint8 (vnni) / int8, k zero-padded to a multiple of 4, pixels to the tile (read
  pixels innermost, vectorised over the tile when it divides ``h * w``);
- ``conv``: a register tile of ``co_blocks`` weight blocks x ``pixel_tile`` pixels of int32 accumulators
  (``local``), the inner ``block x 4`` dot product tensorized with ``edgeavs.tvm_api.dot_intrin``: ``vpdpbusd``
  (16 channels, TVM's ``dot_16x4_vnni`` contract) or ``sdot`` (4 channels, ``dot_4x4_i8i8s32_sdot``'s); the
  generic path runs the same loops vectorised over the block's 8 output channels without an intrinsic (correct
  on every CPU, slow);
- ``y``: the epilogue per register tile (dequantise, ``+ bias``, the workload's ``act``), straight from the accumulators (the pixel axis is ``h * w`` fused: no
  div/mod in the vector loop).

That is ``lanes="channel"``: an accumulator vector holds ``BLOCK`` output channels of one pixel, so the epilogue
scatters it over ``BLOCK`` NCHW rows and the pack transposes. ``lanes="pixel"`` (vnni and sdot,
:func:`compute_pixel_lanes`) turns it around: the pack writes one int32 word per (pixel, four input channels)
(``[n, k/4, pixels]``: four contiguous rows of ``x`` quantized as vectors, shifted and or-ed), a vector of
``PIXEL_LANES`` words meets one output channel's four weights broadcast (``dot_intrin(isa, "pixel")``:
``vpdpbusd`` / ``sdot`` with the broadcast on the other operand), and the epilogue stores whole NCHW rows.
Both read the same packed weights.

Weights come packed by :func:`prepare_weights` (the layout depends on the ISA only, never on the config):
vnni ``[ceil(m/16), ceil(k/4), 16, 4]``, sdot ``[ceil(m/4), ceil(k/4), 4, 4]`` (``wpack[mb, kb, i, j] =
wq[mb*B + i, kb*4 + j]``), generic ``[ceil(m/8), ceil(k/4), 4, 8]`` (``wpack[mb, kb, j, i]``), zeros in the padding.

Knobs (:class:`Int8ConvConfig`): ``lanes``; ``co_blocks`` (weight blocks per register tile, a divisor of
``ceil(m/B)``; with pixel lanes output channels per tile), ``pixel_tile`` (pixels per register tile, with pixel
lanes vectors of pixels; the panel is padded to a multiple), ``parallel`` (threads over pixel tiles or over
channel tiles; pixel lanes: pixel tiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeavs.errors import EdgeAVSError
from edgeavs.tvm_api import PrimFunc, dot_intrin, host_target, make_target, target_has_feature, te, tirx, word_byte
from kernels.common import TargetLike, finish, schedule_of
from kernels.defaults import CpuFacts, as_facts, ceil_to, divisors
from kernels.registry import WORKLOAD_ATTR, Entry, kernel_key, register

NAME = "int8_conv"
"""The kernel's name in the registry and in its workload keys."""
CHAIN = f"edgeavs.{NAME}"
ISAS = ("vnni", "sdot", "generic")
BLOCK = {"vnni": 16, "sdot": 4, "generic": 8}
"""Output channels per weight block (the intrinsic's width: 16 int32 lanes of vpdpbusd, 4 of sdot)."""
TENSORIZED = ("vnni", "sdot")
"""The ISAs whose inner product is one instruction (``edgeavs.tvm_api.dot_intrin``)."""
KGROUP = 4
"""Input channels per dot-product step (k is zero-padded to a multiple)."""
PARALLEL = ("pixel", "channel")
LANES = ("channel", "pixel")
"""What one accumulator vector holds: ``"channel"``: ``BLOCK[isa]`` output channels of one pixel; ``"pixel"``
(vnni and sdot): ``PIXEL_LANES[isa]`` pixels of one output channel."""
PIXEL_LANES = {"vnni": 16, "sdot": 4}
"""Pixels per accumulator vector with ``lanes="pixel"`` (the int32 lanes of a 512-bit / 128-bit vector)."""
PIXEL_TILES = (1, 2, 3, 4, 5, 6, 7, 8, 12)


def isa_for(target: TargetLike = None) -> str:
    """``"vnni"`` when ``target`` (default: the host; a TVM target, its dict, or an ``edgeavs.targets.Target``)
    has AVX-512 VNNI, ``"sdot"`` for AArch64 with the dot-product extension, else ``"generic"``."""
    if target is None:
        target = host_target()
    if hasattr(target, "tvm_dict"):
        target = target.tvm_dict()
    tgt = make_target(target)
    if target_has_feature(tgt, "avx512vnni"):
        return "vnni"
    triple = str(tgt.attrs.get("mtriple", "") or "")
    if target_has_feature(tgt, "dotprod") and (triple.startswith(("aarch64", "arm64"))
                                               or target_has_feature(tgt, "neon")):
        return "sdot"
    return "generic"


@dataclass(frozen=True)
class Int8ConvWorkload:
    n: int
    m: int
    k: int
    h: int
    w: int
    isa: str = "generic"
    act: str = "none"
    """The activation fused after the bias in the epilogue: ``"none"``, ``"relu"`` or ``"relu6"`` (see :data:`ACTS`)."""


ACTS = {"none": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0)}
"""Epilogue activations: ``(lo, hi)`` bounds of the clip after ``+ bias`` (None: open)."""


@dataclass(frozen=True)
class Int8ConvConfig:
    co_blocks: int = 1
    """Weight blocks (``BLOCK[isa]`` output channels each) per register tile; divides ``ceil(m / block)``."""
    pixel_tile: int = 1
    """Pixels per register tile (the pixel axis is padded to a multiple inside the kernel)."""
    parallel: str = "pixel"
    """"pixel": threads over (image, pixel tile); "channel": over channel tiles (the image packed first)."""
    lanes: str = "channel"
    """"channel": a register tile is ``co_blocks`` weight blocks x ``pixel_tile`` pixels; "pixel" (vnni, sdot;
    threads over pixel tiles): ``co_blocks`` output channels x ``pixel_tile`` vectors of ``PIXEL_LANES[isa]``
    pixels, the input packed four channels to an int32 word per pixel, the output stored as whole NCHW rows."""


def _check(wl: Int8ConvWorkload) -> None:
    for f in ("n", "m", "k", "h", "w"):
        v = getattr(wl, f)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise EdgeAVSError(f"int8_conv workload: {f}={v!r} is not a positive integer")
    if wl.isa not in ISAS:
        raise EdgeAVSError(f"int8_conv workload: isa {wl.isa!r} is not one of {', '.join(ISAS)}")
    if wl.act not in ACTS:
        raise EdgeAVSError(f"int8_conv workload: act {wl.act!r} is not one of {', '.join(ACTS)}")


def _blocks(wl: Int8ConvWorkload) -> int:
    return -(-wl.m // BLOCK[wl.isa])


def _regs_per_block(wl: Int8ConvWorkload, f: CpuFacts) -> int:
    """Vector registers one block of int32 accumulators takes (one for vnni/sdot; generic: 8 lanes)."""
    if wl.isa in TENSORIZED:
        return 1
    return max(1, BLOCK["generic"] * 32 // f.vector_bits)


def _pixel_lanes_config(wl: Int8ConvWorkload, f: CpuFacts) -> Int8ConvConfig | None:
    """The ``lanes="pixel"`` default, or None where channel lanes are expected to win. Measured (vnni, 2 threads,
    ``bench/bench_int8_conv.py``, LightAVSeg-L's 1x1 convs at 224): pixel lanes 1.6-2x faster than channel lanes
    from 28^2 up (3-4x fp32: the NCHW output is stored as whole vectors, the input packed as whole vectors) and
    even at 14^2 with its last tile padded; channel lanes ahead at 7^2 (a third of the last vector padding) and
    4^2 (one pixel tile: one thread). So: pixel lanes when at least 90 % of the padded pixels are real and there
    are two pixel tiles per thread; the widest unpadded tile of 4, 2 or 1 vectors; 4 channels per tile with 2 or
    more vectors, else 8 (the measured best, a divisor of m, within the registers)."""
    lanes = PIXEL_LANES.get(wl.isa)
    if lanes is None:
        return None
    pixels = wl.h * wl.w
    pv = next((p for p in (4, 2) if pixels % (p * lanes) == 0), 1)
    useful = pixels / ceil_to(pixels, pv * lanes)
    tiles = wl.n * -(-pixels // (pv * lanes))
    if useful < 0.9 or tiles < 2 * f.threads:
        return None
    for co in ((4, 2, 1) if pv > 1 else (8, 4, 2, 1)):
        if wl.m % co == 0 and co * pv + pv + 1 <= f.vector_registers:
            return Int8ConvConfig(co_blocks=co, pixel_tile=pv, parallel="pixel", lanes="pixel")
    return None


def fallback_config(wl: Int8ConvWorkload, facts: CpuFacts | TargetLike = None, *,
                    lanes: str | None = None) -> Int8ConvConfig:
    """Pixel lanes where :func:`_pixel_lanes_config` expects them to win; else (and on the generic path) the
    channel-lane register tile with the most dot products per load x useful fraction (pixel padding; a tile that
    does not divide h*w counts half: its pack and epilogue stay scalar), within the register file (accumulators
    + one weight vector per block + a broadcast); threads over pixel tiles unless there are too few of them.
    ``lanes="channel"``: the channel-lane default even where pixel lanes would be chosen (for comparisons)."""
    _check(wl)
    f = as_facts(facts)
    r = _regs_per_block(wl, f)
    pixels = wl.h * wl.w
    blocks = _blocks(wl)
    px = _pixel_lanes_config(wl, f) if lanes != "channel" else None
    if px is not None:
        return px
    best = None
    for cb in divisors(blocks):
        if cb > 8:
            break
        for pt in PIXEL_TILES:
            if pt > pixels and pt > 1:
                break
            if (cb * pt + cb) * r + 1 > f.vector_registers:
                continue
            useful = pixels / ceil_to(pixels, pt)
            score = useful * (cb * pt) / (cb + pt)
            if pixels % pt:
                score *= 0.5  # a padded tile: the pack and the epilogue run scalar (guarded)
            if best is None or score > best[0] + 1e-9:
                best = (score, cb, pt)
    _, cb, pt = best
    pixel_tiles = wl.n * -(-pixels // pt)
    channel_tiles = blocks // cb
    parallel = "pixel" if f.threads == 1 or pixel_tiles >= 2 * f.threads or pixel_tiles >= channel_tiles \
        else "channel"
    return Int8ConvConfig(co_blocks=cb, pixel_tile=pt, parallel=parallel)


def knob_space(wl: Int8ConvWorkload, facts: CpuFacts | TargetLike = None) -> dict[str, list]:
    """What ``edgeavs tune`` may search: every combination :func:`schedule` accepts computes the same integers
    (the few it refuses, e.g. ``lanes="pixel"`` with ``parallel="channel"``, are skipped as candidates)."""
    _check(wl)
    pixels = wl.h * wl.w
    space = {"co_blocks": sorted({d for d in divisors(_blocks(wl)) if d <= 8}
                                 | ({d for d in divisors(wl.m) if d <= 16} if wl.isa in PIXEL_LANES else set())),
             "pixel_tile": [p for p in PIXEL_TILES if p <= pixels or p == 1],
             "parallel": list(PARALLEL)}
    if wl.isa in PIXEL_LANES:
        space["lanes"] = list(LANES)
    return space


def _check_config(wl: Int8ConvWorkload, cfg: Int8ConvConfig) -> None:
    if cfg.lanes not in LANES:
        raise ValueError(f"int8_conv: lanes={cfg.lanes!r} is not one of {', '.join(LANES)}")
    if cfg.lanes == "pixel":
        if wl.isa not in PIXEL_LANES:
            raise ValueError(f"int8_conv: lanes='pixel' needs vnni or sdot, not {wl.isa}")
        if cfg.parallel != "pixel":
            raise ValueError("int8_conv: lanes='pixel' threads over pixel tiles (parallel='pixel')")
        if cfg.co_blocks < 1 or cfg.pixel_tile < 1 or ceil_to(wl.m, cfg.co_blocks) > _blocks(wl) * BLOCK[wl.isa]:
            raise ValueError(f"int8_conv: co_blocks={cfg.co_blocks} channels per tile overrun the packed weights "
                             f"of m={wl.m}")
        return
    if _blocks(wl) % cfg.co_blocks:
        raise ValueError(f"int8_conv: co_blocks={cfg.co_blocks} does not divide the {_blocks(wl)} weight blocks "
                         f"of m={wl.m}")
    if cfg.pixel_tile < 1 or cfg.co_blocks < 1:
        raise ValueError(f"int8_conv: tiles must be positive ({cfg})")
    if cfg.parallel not in PARALLEL:
        raise ValueError(f"int8_conv: parallel={cfg.parallel!r} is not one of {', '.join(PARALLEL)}")


def wpack_shape(m: int, k: int, isa: str) -> tuple[int, int, int, int]:
    """The shape of :func:`prepare_weights`' ``wpack`` for ``m`` output and ``k`` input channels."""
    b = BLOCK[isa]
    mb, kb = -(-m // b), -(-k // KGROUP)
    return (mb, kb, KGROUP, b) if isa == "generic" else (mb, kb, b, KGROUP)


def _inputs(wl: Int8ConvWorkload):
    """The kernel's input placeholders ``x, qparams, wpack, comp, scale, bias`` (the module docstring)."""
    n, m, k, h, w = wl.n, wl.m, wl.k, wl.h, wl.w
    return (te.placeholder((n, k, h, w), "float32", name="x"), te.placeholder((2,), "float32", name="qparams"),
            te.placeholder(wpack_shape(m, k, wl.isa), "int8", name="wpack"),
            te.placeholder((m,), "int32", name="comp"), te.placeholder((m,), "float32", name="scale"),
            te.placeholder((m,), "float32", name="bias"))


def _quantizer(wl: Int8ConvWorkload, x, qp, dtype: str):
    """``q(b, kk, p)``: the pack's quantisation of ``x[b, kk, pixel p]`` as ``dtype``, ``clip(rint(x * inv_scale) +
    zero_point, -128, 127)``, fed as ``q + 128`` (uint8 range) to vnni and as ``q`` to sdot / generic. One
    definition for both layouts: their integers must agree with :func:`quantize_reference`."""
    shift, lo, hi = (128.0, 0.0, 255.0) if wl.isa == "vnni" else (0.0, -128.0, 127.0)
    w = wl.w

    def q(b, kk, p):
        # + (zp + 128) in one add: the same as (+ zp) + 128 wherever the clip lets a value through (both exact
        # below 2^23)
        zp = qp[1] + tirx.const(shift, "float32") if shift else qp[1]
        v = tirx.nearbyint(x[b, kk, p // w, p % w] * qp[0]) + zp
        return te.max(te.min(v, tirx.const(hi, "float32")), tirx.const(lo, "float32")).astype(dtype)

    return q


def compute(wl: Int8ConvWorkload, cfg: Int8ConvConfig):
    """The TE stages ``pack`` -> ``conv`` -> ``y``; returns ``[x, qparams, wpack, comp, scale, bias, y]``."""
    b_ = BLOCK[wl.isa]
    n, k, h, w = wl.n, wl.k, wl.h, wl.w
    kb_n = -(-k // KGROUP)
    mp = _blocks(wl) * b_
    pixels = h * w
    pp = ceil_to(pixels, cfg.pixel_tile)
    x, qp, wp, comp, scale, bias = _inputs(wl)
    ddtype = "uint8" if wl.isa == "vnni" else "int8"
    quantized = _quantizer(wl, x, qp, ddtype)

    def quantize(b, kb, ki, p):
        kk = kb * KGROUP + ki
        v = quantized(b, kk, p)
        conds = ([p < pixels] if pp != pixels else []) + ([kk < k] if kb_n * KGROUP != k else [])
        if not conds:
            return v
        return tirx.if_then_else(tirx.all(*conds), v, tirx.const(0, ddtype))

    # iterated pixels innermost (contiguous fp32 loads); the schedule lays the panel out [n, pixels, k/4, 4]
    panel = te.compute((n, kb_n, KGROUP, pp), quantize, name="pack")
    rkb = te.reduce_axis((0, kb_n), name="kb")
    rki = te.reduce_axis((0, KGROUP), name="ki")

    def weight(mm, kb, ki):
        if wl.isa == "generic":
            return wp[mm // b_, kb, ki, mm % b_]
        return wp[mm // b_, kb, mm % b_, ki]

    conv = te.compute(
        (n, pp, mp),
        lambda b, p, mm: te.sum(panel[b, rkb, rki, p].astype("int32") * weight(mm, rkb, rki).astype("int32"),
                                axis=[rkb, rki]),
        name="conv")
    y = _epilogue(wl, lambda b, c, p: conv[b, p, c], comp, scale, bias)
    return [x, qp, wp, comp, scale, bias, y]


def _epilogue(wl: Int8ConvWorkload, acc, comp, scale, bias):
    """The output stage ``y``: ``float32(acc(b, c, pixel) - comp[c]) * scale[c] + bias[c]``, then ``act``."""
    act_lo, act_hi = ACTS[wl.act]

    def epilogue(b, c, i, j):
        v = (acc(b, c, i * wl.w + j) - comp[c]).astype("float32") * scale[c] + bias[c]
        if act_lo is not None:
            v = te.max(v, tirx.const(act_lo, "float32"))
        if act_hi is not None:
            v = te.min(v, tirx.const(act_hi, "float32"))
        return v

    return te.compute((wl.n, wl.m, wl.h, wl.w), epilogue, name="y")


def schedule(wl: Int8ConvWorkload, cfg: Int8ConvConfig) -> PrimFunc:
    _check(wl)
    _check_config(wl, cfg)
    if cfg.lanes == "pixel":
        return _schedule_pixel_lanes(wl, cfg)
    b_ = BLOCK[wl.isa]
    pt, cb = cfg.pixel_tile, cfg.co_blocks
    sch = schedule_of(compute(wl, cfg))
    pack, conv, epi = sch.get_sblock("pack"), sch.get_sblock("conv"), sch.get_sblock("y")
    w = wl.w
    sch.transform_layout(pack, ("write", 0), tirx.IndexMap.from_func(lambda b, kb, ki, p: [b, p, kb, ki], ndim=4))
    # the epilogue over (n, m, h*w): its pixel axis matches the accumulators' (no div/mod per element)
    sch.transform_block_layout(epi, tirx.IndexMap.from_func(lambda b, c, i, j: [b, c, i * w + j], ndim=4))

    b, p, mm, kb, ki = sch.get_loops(conv)
    po, pi = sch.split(p, [None, pt])
    mo, mc, mi = sch.split(mm, [None, cb, b_])
    if cfg.parallel == "pixel":
        sch.reorder(b, po, mo, kb, pi, mc, mi, ki)
    else:
        sch.reorder(b, mo, po, kb, pi, mc, mi, ki)
    sch.reverse_compute_at(epi, mo if cfg.parallel == "pixel" else po)
    if cfg.parallel == "pixel":
        par = sch.fuse(b, po)
        sch.parallel(par)
        sch.compute_at(pack, par)
    else:
        sch.compute_at(pack, b)
        sch.parallel(mo)

    if wl.isa not in TENSORIZED:
        sch.reorder(ki, pi)
        sch.vectorize(mi)
        sch.unroll(ki)
    init = sch.decompose_reduction(conv, kb)
    if wl.isa in TENSORIZED:
        sch.vectorize(sch.get_loops(init)[-1])
        sch.tensorize(mi, dot_intrin(wl.isa))
    sch.unroll(mc)
    sch.unroll(pi)
    # the accumulators in registers: after tensorize (the intrinsics describe global buffers)
    sch.set_scope(init, 0, "local")

    padded = (wl.h * wl.w) % pt != 0
    # the pack per pixel tile: pixels innermost (contiguous fp32 loads of x, quantized as vectors); guarded
    # (padded) tiles stay scalar (TVM does not vectorise the guard)
    if cfg.parallel == "pixel" and not padded and pt > 1:
        sch.vectorize(sch.get_loops(pack)[-1])
    # the epilogue: channel rows of the tile, pixels innermost (contiguous stores)
    if not padded and pt > 1:
        sch.vectorize(sch.get_loops(epi)[-1])
    return finish(sch.mod["main"], CHAIN, cfg).with_attr(WORKLOAD_ATTR, kernel_key(NAME, wl))


def compute_pixel_lanes(wl: Int8ConvWorkload, cfg: Int8ConvConfig):
    """The TE stages of ``lanes="pixel"``: ``pack`` (int32 words ``[n, k/4, pixels]``, byte ``j`` of a word the
    quantized input channel ``4 * kb + j`` of that pixel) -> ``conv`` ``[n, m', pixels']`` -> ``y``; the same
    arguments as :func:`compute`."""
    lanes = PIXEL_LANES[wl.isa]
    n, m, k, h, w = wl.n, wl.m, wl.k, wl.h, wl.w
    b_ = BLOCK[wl.isa]
    kb_n = -(-k // KGROUP)
    pixels = h * w
    pp = ceil_to(pixels, cfg.pixel_tile * lanes)
    mq = ceil_to(m, cfg.co_blocks)
    x, qp, wp, comp, scale, bias = _inputs(wl)
    signed = wl.isa != "vnni"
    quantized = _quantizer(wl, x, qp, "int32")

    def word(b, kb, p):
        out = None
        for j in range(KGROUP):
            kk = kb * KGROUP + j
            q = quantized(b, kk, p)
            if signed and j < KGROUP - 1:
                q = tirx.bitwise_and(q, 255)  # two's complement byte; the top byte's sign fills the word
            if kb_n * KGROUP != k:
                q = tirx.if_then_else(kk < k, q, 0)
            term = q if j == 0 else tirx.shift_left(q, 8 * j)
            out = term if out is None else tirx.bitwise_or(out, term)
        return tirx.if_then_else(p < pixels, out, 0) if pp != pixels else out

    panel = te.compute((n, kb_n, pp), word, name="pack")
    rkb = te.reduce_axis((0, kb_n), name="kb")
    rki = te.reduce_axis((0, KGROUP), name="ki")
    conv = te.compute(
        (n, mq, pp),
        lambda b, mm, p: te.sum(word_byte(panel[b, rkb, p], rki, signed)
                                * wp[mm // b_, rkb, mm % b_, rki].astype("int32"), axis=[rkb, rki]),
        name="conv")
    y = _epilogue(wl, lambda b, c, p: conv[b, c, p], comp, scale, bias)
    return [x, qp, wp, comp, scale, bias, y]


def _schedule_pixel_lanes(wl: Int8ConvWorkload, cfg: Int8ConvConfig) -> PrimFunc:
    lanes = PIXEL_LANES[wl.isa]
    co, pv = cfg.co_blocks, cfg.pixel_tile
    sch = schedule_of(compute_pixel_lanes(wl, cfg))
    pack, conv, epi = sch.get_sblock("pack"), sch.get_sblock("conv"), sch.get_sblock("y")
    w = wl.w
    sch.transform_block_layout(epi, tirx.IndexMap.from_func(lambda b, c, i, j: [b, c, i * w + j], ndim=4))
    b, mm, p, kb, ki = sch.get_loops(conv)
    po, pvl, pl = sch.split(p, [None, pv, lanes])
    mo, mc = sch.split(mm, [None, co])
    sch.reorder(b, po, mo, kb, mc, pvl, pl, ki)
    sch.reverse_compute_at(epi, mo)
    par = sch.fuse(b, po)
    sch.parallel(par)
    sch.compute_at(pack, par)
    init = sch.decompose_reduction(conv, kb)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.tensorize(pl, dot_intrin(wl.isa, "pixel"))
    sch.unroll(mc)
    sch.unroll(pvl)
    sch.set_scope(init, 0, "local")
    padded = (wl.h * wl.w) % (pv * lanes) != 0
    # the pack and the epilogue over whole vectors of pixels (contiguous loads of x, contiguous NCHW stores);
    # a padded tile's guards stay scalar
    if not padded:
        for blk in (pack, epi):
            inner = sch.get_loops(blk)[-1]
            _, vec = sch.split(inner, [None, lanes])
            sch.vectorize(vec)
    return finish(sch.mod["main"], CHAIN, cfg).with_attr(WORKLOAD_ATTR, kernel_key(NAME, wl))


def int8_conv_kernel(wl: Int8ConvWorkload, target: TargetLike = None,
                     config: Int8ConvConfig | None = None) -> PrimFunc:
    """The scheduled PrimFunc for ``wl`` (``config``: default :func:`fallback_config` of ``target``)."""
    return schedule(wl, config or fallback_config(wl, target))


def work(wl: Int8ConvWorkload) -> dict:
    """One call's work on the workload, without padding: ``macs`` (all int8 x int8 -> int32), ``int_ops`` (2 per
    MAC) and the float ``flops`` around them, counted as :mod:`edgeavs.compiler.breakdown` counts blocks: the pack
    stage's 5 per input element (``* inv_scale``, ``rint``, ``+ zero_point``, the clip's max and min) and the
    epilogue's 2 per output element (``* scale``, ``+ bias``) plus one per bound of the fused activation."""
    pixels = wl.n * wl.h * wl.w
    macs = pixels * wl.m * wl.k
    bounds = sum(b is not None for b in ACTS[wl.act])
    return {"macs": macs, "int_ops": 2 * macs, "flops": 5 * pixels * wl.k + (2 + bounds) * pixels * wl.m}


def prepare_weights(wq: np.ndarray, zero_point: int, isa: str) -> tuple[np.ndarray, np.ndarray]:
    """``(wpack, comp)`` for int8 weights ``wq [m, k]`` (symmetric, per output channel) and the input's int8
    ``zero_point``: ``wpack`` in the layout the ``isa``'s kernel reads (:func:`wpack_shape`, zeros in the
    padding), ``comp`` int32 ``[m]`` with ``acc[m, p] - comp[m] == sum_k wq[m, k] * (q[k, p] - zero_point)``
    (vnni reads ``q + 128``: ``comp = (zero_point + 128) * rowsum``; sdot/generic ``zero_point * rowsum``)."""
    if isa not in ISAS:
        raise EdgeAVSError(f"int8_conv weights: isa {isa!r} is not one of {', '.join(ISAS)}")
    wq = np.asarray(wq)
    if wq.dtype != np.int8 or wq.ndim != 2 or 0 in wq.shape:
        raise EdgeAVSError(f"int8_conv weights: want a non-empty int8 [m, k] array, got {wq.dtype} "
                           f"{list(wq.shape)}")
    if isinstance(zero_point, bool) or int(zero_point) != zero_point or not -128 <= int(zero_point) <= 127:
        raise EdgeAVSError(f"int8_conv weights: zero_point {zero_point!r} is not an int8 value")
    m, k = wq.shape
    b_ = BLOCK[isa]
    mb, kb = -(-m // b_), -(-k // KGROUP)
    full = np.zeros((mb * b_, kb * KGROUP), np.int8)
    full[:m, :k] = wq
    blocks = full.reshape(mb, b_, kb, KGROUP)  # [mb, i, kb, j]
    order = (0, 2, 3, 1) if isa == "generic" else (0, 2, 1, 3)
    wpack = np.ascontiguousarray(blocks.transpose(order))
    rowsum = wq.astype(np.int64).sum(axis=1)
    comp = (int(zero_point) + (128 if isa == "vnni" else 0)) * rowsum
    return wpack, comp.astype(np.int32)


def quantize_reference(x: np.ndarray, inv_scale: float, zero_point: int) -> np.ndarray:
    """``clip(rint(x * inv_scale) + zero_point, -128, 127)`` as int8 (``x * inv_scale`` in float32, ``rint``
    half to even): what the kernel's pack stage computes."""
    t = np.rint(np.asarray(x, np.float32) * np.float32(inv_scale)) + np.float32(zero_point)
    return np.clip(t, -128, 127).astype(np.int8)


def reference(x, wq, inv_scale, zero_point, scale, bias, act: str = "none") -> np.ndarray:
    """float32 ``[n, m, h, w]``: ``float32(sum_k wq[m, k] * (q[n, k, h, w] - zero_point)) * scale[m] + bias[m]``
    with the exact integer sum (int64) and ``q`` from :func:`quantize_reference`, then ``act``'s clip."""
    q = quantize_reference(x, inv_scale, zero_point).astype(np.int64) - int(zero_point)
    acc = np.einsum("mk,nkhw->nmhw", np.asarray(wq, np.int64), q)
    s = np.asarray(scale, np.float32)[None, :, None, None]
    b = np.asarray(bias, np.float32)[None, :, None, None]
    y = (acc.astype(np.float32) * s + b).astype(np.float32)
    lo, hi = ACTS[act]
    return np.clip(y, lo, hi).astype(np.float32) if (lo, hi) != (None, None) else y


__all__ = ["ACTS", "BLOCK", "CHAIN", "ISAS", "LANES", "PIXEL_LANES", "Int8ConvConfig", "Int8ConvWorkload", "NAME", "compute", "fallback_config",
           "int8_conv_kernel", "isa_for", "knob_space", "prepare_weights", "quantize_reference", "reference",
           "schedule", "work", "wpack_shape"]


ENTRY = register(Entry(
    name=NAME, role="kernel", serves=(CHAIN,), workload=Int8ConvWorkload, config=Int8ConvConfig,
    fallback_config=fallback_config, knob_space=knob_space, build=schedule, choices={"parallel": PARALLEL},
    dtypes=("int8",), work=work))
