"""kernels.int8_conv on the host: exact integers against numpy's int64 accumulation (scale 1, bias 0: float32 is
exact below 2^24), the in-kernel quantization's rounding at .5 ties, real scales/bias against ``reference``, the
zero-point compensation identity, every knob combination sampled from the space, and the dot-product
instructions in the VNNI and sdot builds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeavs.errors import EdgeAVSError
from edgeavs.targets import load_target
from edgeavs.tvm_api import build_prim_func, host_target, make_target, to_tvm, tvm
from kernels import registry
from kernels.int8_conv import (ISAS, PIXEL_LANES, Int8ConvConfig, Int8ConvWorkload, fallback_config,
                               int8_conv_kernel, isa_for, knob_space, prepare_weights, quantize_reference, reference,
                               wpack_shape)

NATIVE = host_target(2)
HOST_ISA = isa_for(NATIVE)
ISAS_HERE = sorted({HOST_ISA, "generic"})
"""The ISAs this machine runs: its own ("vnni" on an AVX-512 VNNI host) and the generic path."""
SDOT = load_target("snapdragon8elite").to_tvm()


def run(wl, x, inv_scale, zero_point, wpack, comp, scale, bias, config=None, target=NATIVE):
    lib = build_prim_func(int8_conv_kernel(wl, target, config), target)
    args = [x, np.array([inv_scale, zero_point], np.float32), wpack, comp, scale, bias,
            np.zeros((wl.n, wl.m, wl.h, wl.w), np.float32)]
    tv = [to_tvm(np.ascontiguousarray(a)) for a in args]
    lib(*tv)
    return tv[-1].numpy()


def exact_acc(x, wq, inv_scale, zero_point):
    q = quantize_reference(x, inv_scale, zero_point).astype(np.int64) - zero_point
    return np.einsum("mk,nkhw->nmhw", wq.astype(np.int64), q)


def case(rng, wl, zero_point=-5, inv_scale=40.0):
    # 3 sigma * 40 reaches past +-127: the clip is exercised too
    x = (3.0 * rng.standard_normal((wl.n, wl.k, wl.h, wl.w))).astype(np.float32)
    wq = rng.integers(-127, 128, (wl.m, wl.k)).astype(np.int8)
    return x, wq, inv_scale, zero_point


SHAPES = [  # (n, m, k, h, w): odd k, m not a multiple of 16 (or 8, or 4), h*w = 1, 7x7, non-square
    (1, 24, 15, 7, 7),
    (1, 16, 3, 8, 8),
    (2, 40, 64, 1, 1),
    (1, 10, 33, 5, 3),
    (1, 64, 128, 14, 14),
]


@pytest.mark.parametrize("isa", ISAS_HERE)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_exact_integers(rng, isa, shape):
    wl = Int8ConvWorkload(*shape, isa=isa)
    x, wq, inv, zp = case(rng, wl)
    wpack, comp = prepare_weights(wq, zp, isa)
    ones, zeros = np.ones(wl.m, np.float32), np.zeros(wl.m, np.float32)
    got = run(wl, x, inv, zp, wpack, comp, ones, zeros)
    want = exact_acc(x, wq, inv, zp)
    assert np.abs(want).max() < 2**24 and np.abs(want).max() > 1000
    np.testing.assert_array_equal(got, want.astype(np.float32))


PIXEL_CASES = [  # (n, m, k, h, w), (co_blocks, pixel_tile): padded and whole tiles, odd k, m not a multiple of 16
    ((1, 24, 15, 7, 7), (4, 1)),
    ((2, 40, 64, 4, 8), (8, 2)),
    ((1, 10, 33, 5, 3), (2, 1)),
    ((1, 48, 128, 16, 16), (4, 4)),
    ((1, 32, 20, 12, 12), (1, 3)),
]


@pytest.mark.parametrize("shape,tile", PIXEL_CASES, ids=lambda s: "x".join(map(str, s)))
def test_pixel_lanes_exact_integers(rng, shape, tile):
    """``lanes="pixel"`` on this host's dot product (vnni here): the words' bytes, the broadcast weights and the
    whole-row epilogue give numpy's exact integers, padded tiles included."""
    assert HOST_ISA in PIXEL_LANES, "this suite's host has AVX-512 VNNI"
    wl = Int8ConvWorkload(*shape, isa=HOST_ISA)
    x, wq, inv, zp = case(rng, wl)
    cfg = Int8ConvConfig(co_blocks=tile[0], pixel_tile=tile[1], lanes="pixel")
    got = run(wl, x, inv, zp, *prepare_weights(wq, zp, HOST_ISA), np.ones(wl.m, np.float32),
              np.zeros(wl.m, np.float32), cfg)
    want = exact_acc(x, wq, inv, zp)
    assert 1000 < np.abs(want).max() < 2**24
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("act", ["none", "relu6"])
def test_pixel_lanes_scales_bias_and_activation(rng, act):
    wl = Int8ConvWorkload(n=1, m=32, k=40, h=8, w=8, isa=HOST_ISA, act=act)
    x, wq, inv, zp = case(rng, wl, zero_point=3, inv_scale=25.0)
    scale = np.full(wl.m, 2e-3, np.float32)
    bias = rng.standard_normal(wl.m).astype(np.float32)
    cfg = Int8ConvConfig(co_blocks=4, pixel_tile=4, lanes="pixel")
    got = run(wl, x, inv, zp, *prepare_weights(wq, zp, HOST_ISA), scale, bias, cfg)
    want = reference(x, wq, inv, zp, scale, bias, act=act)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def test_default_lanes_follow_the_map():
    """The measured rule (``_pixel_lanes_config``): pixel lanes from 14x14 up on vnni and sdot, channel lanes on
    7x7 and 4x4 (padding, one tile) and always on the generic path."""
    def lanes(h, isa="vnni", m=256, facts=NATIVE):
        return fallback_config(Int8ConvWorkload(n=1, m=m, k=128, h=h, w=h, isa=isa), facts)

    big = lanes(56)
    assert (big.lanes, big.pixel_tile, big.co_blocks) == ("pixel", 4, 4)
    assert (lanes(28).lanes, lanes(28).pixel_tile, lanes(28).co_blocks) == ("pixel", 1, 8)
    assert lanes(14).lanes == "pixel" and lanes(7).lanes == "channel" and lanes(4).lanes == "channel"
    assert lanes(56, isa="generic").lanes == "channel"
    assert lanes(28, isa="sdot", facts=SDOT).lanes == "pixel"
    assert lanes(28, m=30).co_blocks == 2  # a divisor of m


def test_host_with_avx512_vnni_runs_the_vnni_path():
    """On a VNNI host the host ISA *is* vnni (so test_exact_integers ran it); the other way round only generic."""
    from edgeavs.tvm_api import target_has_feature

    assert (HOST_ISA == "vnni") == target_has_feature(NATIVE, "avx512vnni")


@pytest.mark.parametrize("isa", ISAS_HERE)
def test_quantize_rounds_half_to_even_and_clips(rng, isa):
    """The pack stage's rounding at exact .5 ties and its clip, read through an identity weight (y = q)."""
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 126.5, 127.5, -128.5, -127.5, 300.0, -300.0,
                     0.25, -0.75], np.float32)
    want_q = np.array([0, 2, 2, 0, -2, -2, 4, -4, 126, 127, -128, -128, 127, -128, 0, -1], np.float32)
    assert np.array_equal(want_q, np.clip(np.rint(ties), -128, 127))  # numpy's rint: half to even
    k = ties.size
    wl = Int8ConvWorkload(n=1, m=k, k=k, h=1, w=3, isa=isa)
    perms = [rng.permutation(k) for _ in range(wl.w)]  # each pixel its own order of the ties
    wq = np.eye(k, dtype=np.int8)
    for inv in (1.0, 2.0, 0.5):  # powers of two: x = tie / inv is exact, and so is x * inv
        x = np.stack([ties[p] / np.float32(inv) for p in perms], axis=1).reshape(1, k, 1, wl.w)
        got = run(wl, x, inv, 0, *prepare_weights(wq, 0, isa), np.ones(k, np.float32), np.zeros(k, np.float32))
        want = np.stack([want_q[p] for p in perms], axis=1)
        np.testing.assert_array_equal(got[0, :, 0, :], want)
        np.testing.assert_array_equal(quantize_reference(x, inv, 0)[0, :, 0, :], want)


@pytest.mark.parametrize("isa", ISAS_HERE)
def test_real_scales_and_bias(rng, isa):
    wl = Int8ConvWorkload(n=1, m=40, k=48, h=6, w=6, isa=isa)
    x, wq, inv, zp = case(rng, wl, zero_point=7, inv_scale=25.0)
    scale = (rng.uniform(0.5, 2.0, wl.m) * 1e-3).astype(np.float32)
    bias = rng.standard_normal(wl.m).astype(np.float32)
    got = run(wl, x, inv, zp, *prepare_weights(wq, zp, isa), scale, bias)
    want = reference(x, wq, inv, zp, scale, bias)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_fused_activation(rng, act):
    """The epilogue's activation: the clip of ``reference`` after the bias, and it does clip (values on both
    sides of the bounds exist before it)."""
    wl = Int8ConvWorkload(n=1, m=32, k=40, h=4, w=8, isa=HOST_ISA, act=act)
    x, wq, inv, zp = case(rng, wl, zero_point=3, inv_scale=25.0)
    scale = np.full(wl.m, 2e-3, np.float32)
    bias = rng.standard_normal(wl.m).astype(np.float32)
    got = run(wl, x, inv, zp, *prepare_weights(wq, zp, HOST_ISA), scale, bias)
    plain = reference(x, wq, inv, zp, scale, bias)
    want = reference(x, wq, inv, zp, scale, bias, act=act)
    assert (plain < 0).any() and (act != "relu6" or (plain > 6).any())
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
    assert got.min() >= 0 and (act != "relu6" or got.max() <= 6)


@pytest.mark.parametrize("isa", ISAS)
def test_prepare_weights_layout_and_compensation(rng, isa):
    m, k, zp = 21, 11, -9
    wq = rng.integers(-127, 128, (m, k)).astype(np.int8)
    wpack, comp = prepare_weights(wq, zp, isa)
    assert wpack.dtype == np.int8 and wpack.shape == wpack_shape(m, k, isa) and comp.dtype == np.int32
    # unpack the layout: [mb, kb, i, j] (vnni/sdot) or [mb, kb, j, i] (generic) -> [m_pad, k_pad]
    mb, kb = wpack.shape[:2]
    blocks = wpack if isa != "generic" else wpack.transpose(0, 1, 3, 2)
    full = blocks.transpose(0, 2, 1, 3).reshape(mb * blocks.shape[2], kb * 4)
    np.testing.assert_array_equal(full[:m, :k], wq)
    assert not full[m:].any() and not full[:, k:].any()
    q = rng.integers(-128, 128, (k, 50))
    data = q + (128 if isa == "vnni" else 0)  # what the kernel feeds its dot product
    acc = wq.astype(np.int64) @ data
    np.testing.assert_array_equal(acc - comp[:, None], wq.astype(np.int64) @ (q - zp))


def test_prepare_weights_refuses_bad_input():
    with pytest.raises(EdgeAVSError, match="int8 \\[m, k\\]"):
        prepare_weights(np.zeros((4, 4), np.float32), 0, "vnni")
    with pytest.raises(EdgeAVSError, match="zero_point 200"):
        prepare_weights(np.zeros((4, 4), np.int8), 200, "vnni")
    with pytest.raises(EdgeAVSError, match="isa 'avx'"):
        prepare_weights(np.zeros((4, 4), np.int8), 0, "avx")
    with pytest.raises(EdgeAVSError, match="m=0"):
        int8_conv_kernel(Int8ConvWorkload(n=1, m=0, k=4, h=1, w=1))


@pytest.mark.parametrize("isa", ISAS_HERE)
def test_knob_space_configs_build_and_agree(rng, isa):
    wl = Int8ConvWorkload(n=2, m=48, k=20, h=5, w=5, isa=isa)
    space = knob_space(wl, NATIVE)
    # 48 channels: 3 blocks of 16 (vnni; pixel lanes: any divisor of 48 up to 16) or 6 of 8 (generic); 25
    # pixels: every tile up to 12
    assert space["co_blocks"] == {"vnni": [1, 2, 3, 4, 6, 8, 12, 16], "generic": [1, 2, 3, 6]}[isa]
    assert space["pixel_tile"] == [1, 2, 3, 4, 5, 6, 7, 8, 12] and space["parallel"] == ["pixel", "channel"]
    assert list(space) == ["co_blocks", "pixel_tile", "parallel"] + (["lanes"] if isa in PIXEL_LANES else [])
    x, wq, inv, zp = case(rng, wl)
    wpack, comp = prepare_weights(wq, zp, wl.isa)
    want = exact_acc(x, wq, inv, zp).astype(np.float32)
    blocks = -(-wl.m // {"vnni": 16, "generic": 8}[isa])
    picks = [Int8ConvConfig(**registry.config_to_dict(fallback_config(wl, NATIVE)))]
    for lanes, parallel in [("channel", "pixel"), ("channel", "channel"), ("pixel", "pixel")]:
        if lanes not in space.get("lanes", ["channel"]):
            continue
        tiles = [(c, p) for c, p in itertools.product(space["co_blocks"], space["pixel_tile"])
                 if (blocks % c == 0 if lanes == "channel" else wl.m % c == 0)]
        picks += [Int8ConvConfig(*tiles[i], parallel=parallel, lanes=lanes)
                  for i in rng.choice(len(tiles), size=3, replace=False)]
    for cfg in picks:
        got = run(wl, x, inv, zp, wpack, comp, np.ones(wl.m, np.float32), np.zeros(wl.m, np.float32), cfg)
        np.testing.assert_array_equal(got, want, err_msg=str(cfg))


def test_a_config_that_does_not_tile_m_is_refused():
    wl = Int8ConvWorkload(n=1, m=48, k=8, h=2, w=2, isa="vnni")
    with pytest.raises(ValueError, match="co_blocks=2 does not divide the 3 weight blocks"):
        int8_conv_kernel(wl, config=Int8ConvConfig(co_blocks=2, pixel_tile=2))
    with pytest.raises(ValueError, match="co_blocks=5 channels per tile overrun"):
        int8_conv_kernel(wl, config=Int8ConvConfig(co_blocks=5, pixel_tile=1, lanes="pixel"))
    with pytest.raises(ValueError, match="threads over pixel tiles"):
        int8_conv_kernel(wl, config=Int8ConvConfig(co_blocks=4, pixel_tile=1, lanes="pixel", parallel="channel"))
    with pytest.raises(ValueError, match="needs vnni or sdot, not generic"):
        int8_conv_kernel(Int8ConvWorkload(n=1, m=48, k=8, h=2, w=2), config=Int8ConvConfig(lanes="pixel"))
    with pytest.raises(ValueError, match="lanes='rows' is not one of"):
        int8_conv_kernel(wl, config=Int8ConvConfig(lanes="rows"))


def test_isa_for_named_targets():
    assert isa_for(SDOT) == "sdot"
    assert isa_for(load_target("aarch64-linux")) == "sdot"  # Cortex-A76 has dotprod
    assert isa_for(load_target("x86-avx2")) == "generic"
    assert isa_for({"kind": "llvm", "mcpu": "icelake-server"}) == "vnni"
    assert isa_for({"kind": "llvm", "mcpu": "skylake-avx512"}) == "generic"  # AVX-512 without VNNI
    assert isa_for({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}) == "generic"


def _asm(wl, target, config=None) -> str:
    lib = tvm.compile(int8_conv_kernel(wl, target, config).with_attr("global_symbol", "main"), target=target)
    return "\n".join(m.inspect_source("s") for m in [lib.mod, *lib.mod.imports] if m.kind == "llvm")


@pytest.mark.parametrize("lanes", ["channel", "pixel"])
def test_vnni_build_runs_vpdpbusd(lanes):
    target = make_target({"kind": "llvm", "mcpu": "icelake-server", "num-cores": 2})
    asm = _asm(Int8ConvWorkload(n=1, m=64, k=32, h=8, w=8, isa="vnni"), target,
               Int8ConvConfig(co_blocks=4, pixel_tile=1 if lanes == "pixel" else 4, lanes=lanes))
    assert "vpdpbusd" in asm


@pytest.mark.parametrize("lanes", ["channel", "pixel"])
def test_sdot_build_runs_sdot(lanes):
    asm = _asm(Int8ConvWorkload(n=1, m=64, k=32, h=8, w=8, isa="sdot"), SDOT,
               Int8ConvConfig(co_blocks=4, pixel_tile=4, lanes=lanes))
    assert "sdot\tv" in asm


@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
def test_declared_work_matches_the_blocks_of_the_generic_kernel(act):
    # the generic path runs plain MAC blocks; on a workload with no padding (k a multiple of 4, m of 8, the
    # pixels a multiple of the tile) counting its blocks must give what ``work`` declares for every ISA
    from edgeavs.compiler.breakdown import prim_func_flops
    from kernels.int8_conv import work

    wl = Int8ConvWorkload(n=1, m=32, k=64, h=14, w=14, isa="generic", act=act)
    counted = prim_func_flops(int8_conv_kernel(wl, config=Int8ConvConfig(co_blocks=1, pixel_tile=4)))
    declared = work(wl)
    assert counted == {"macs": declared["macs"], "flops": declared["flops"]}
    assert declared["int_ops"] == 2 * declared["macs"] == 2 * 32 * 64 * 14 * 14
