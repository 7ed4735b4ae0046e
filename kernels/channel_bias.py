"""Broadcast channel bias ``x [+ r] + B(a)``: the fallback kernel of FuseChannelBias.

FuseChannelBias first sinks ``x + B(a)`` into the consumers of the sum (1x1 convs, the global max pool, further
bias adds), where it costs O(channels) instead of a pass over the feature map; only an add whose consumers cannot
absorb it reaches this kernel. Here the add is at least one vectorised pass, fused with a producing residual add
(``x + r``) when that add has no other user.

``out[n, c, h, w] = x[n, c, h, w] (+ r[n, c, h, w]) + a[n or 0, c, 0, 0]``.

Knobs (``ChannelBiasConfig``): ``lanes`` (SIMD width over the fused H x W axis; shrunk to divide it), ``parallel``
(threads over N x C).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeavs.tvm_api import PrimFunc, te
from kernels.common import TargetLike, finish, lanes_dividing, schedule_of, target_simd
from kernels.defaults import CpuFacts
from kernels.registry import WORKLOAD_ATTR, Entry, kernel_key, register

NAME = "channel_bias"
"""The kernel's name in the registry and in its workload keys."""
CHAIN = f"edgeavs.{NAME}"


@dataclass(frozen=True)
class ChannelBiasWorkload:
    n: int
    c: int
    h: int
    w: int
    a_batch: int
    residual: bool = False
    dtype: str = "float32"


@dataclass(frozen=True)
class ChannelBiasConfig:
    lanes: int = 8
    parallel: bool = True


def fallback_config(wl: ChannelBiasWorkload, facts: CpuFacts | TargetLike = None) -> ChannelBiasConfig:
    simd = target_simd(facts)
    lanes = lanes_dividing(wl.h * wl.w, simd.lanes())
    return ChannelBiasConfig(lanes=lanes, parallel=simd.num_cores > 1 and wl.n * wl.c * wl.h * wl.w >= 16384)


def knob_space(wl: ChannelBiasWorkload, facts: CpuFacts | TargetLike = None) -> dict[str, list]:
    full = target_simd(facts).lanes()
    return {"lanes": sorted({lanes_dividing(wl.h * wl.w, v) for v in (1, 2, 4, 8, 16) if v <= full}),
            "parallel": [False, True]}


def compute(wl: ChannelBiasWorkload):
    x = te.placeholder((wl.n, wl.c, wl.h, wl.w), wl.dtype, name="x")
    a = te.placeholder((wl.a_batch, wl.c, 1, 1), wl.dtype, name="a")
    an = (lambda n: n) if wl.a_batch == wl.n else (lambda n: 0)
    if wl.residual:
        r = te.placeholder((wl.n, wl.c, wl.h, wl.w), wl.dtype, name="r")
        out = te.compute(x.shape, lambda n, c, i, j: x[n, c, i, j] + r[n, c, i, j] + a[an(n), c, 0, 0],
                         name="channel_bias")
        return [x, r, a, out]
    out = te.compute(x.shape, lambda n, c, i, j: x[n, c, i, j] + a[an(n), c, 0, 0], name="channel_bias")
    return [x, a, out]


def schedule(wl: ChannelBiasWorkload, cfg: ChannelBiasConfig) -> PrimFunc:
    sch = schedule_of(compute(wl))
    block = sch.get_sblock("channel_bias")
    n, c, i, j = sch.get_loops(block)
    nc = sch.fuse(n, c)
    p = sch.fuse(i, j)
    lanes = lanes_dividing(wl.h * wl.w, cfg.lanes)
    if lanes > 1:
        _, pl = sch.split(p, [None, lanes])
        sch.vectorize(pl)
    if cfg.parallel:
        sch.parallel(nc)

    # the workload key: how edgeavs tune finds this kernel's workload and its records match it again
    return finish(sch.mod["main"], CHAIN, cfg).with_attr(WORKLOAD_ATTR, kernel_key(NAME, wl))


def channel_bias_kernel(wl: ChannelBiasWorkload, target: TargetLike = None,
                        config: ChannelBiasConfig | None = None) -> PrimFunc:
    return schedule(wl, config or fallback_config(wl, target))


def reference(x, a, r=None):
    return x + (0 if r is None else r) + a


__all__ = ["CHAIN", "ChannelBiasWorkload", "ChannelBiasConfig", "fallback_config", "knob_space", "compute",
           "schedule", "channel_bias_kernel", "reference"]


ENTRY = register(Entry(
    name=NAME, role="kernel", serves=(CHAIN,), workload=ChannelBiasWorkload, config=ChannelBiasConfig,
    fallback_config=fallback_config, knob_space=knob_space, build=schedule))
