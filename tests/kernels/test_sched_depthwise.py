"""Depthwise and direct-conv schedules against numpy: 3x3/5x5, stride 1/2, odd sizes, 7x7 and 4x4 maps."""

from __future__ import annotations

import pytest

from kernels.depthwise import DepthwiseConfig, DepthwiseWorkload, fallback_config
from kernels.workloads import ConvCase

from .sched_util import BASELINE, NATIVE, check_case

DW = [
    ConvCase(24, 24, 14, 14, k=3, groups=24, act="relu"),
    ConvCase(20, 20, 7, 7, k=5, groups=20, act="relu6"),
    ConvCase(12, 12, 4, 4, k=3, groups=12, act=None),
    ConvCase(16, 16, 13, 11, k=5, stride=2, groups=16, act="relu"),   # stride 2 at odd sizes
    ConvCase(10, 10, 9, 9, k=3, stride=2, groups=10, act="relu"),
]


@pytest.mark.parametrize("case", DW, ids=lambda c: c.label)
def test_depthwise_native(case):
    _, cls, name, _ = check_case(case, NATIVE)
    assert cls == "depthwise" and name in ("depthwise", "generic")


def test_depthwise_tiled_knobs():
    check_case(ConvCase(16, 16, 16, 16, k=3, groups=16, act="relu"), BASELINE,
               {"depthwise": DepthwiseConfig(rows=2, vector=4, vectors=2)}, expect_schedule="depthwise")
    check_case(ConvCase(16, 16, 8, 8, k=5, groups=16, act="relu"), NATIVE,
               {"depthwise": DepthwiseConfig(rows=4, vector=8, vectors=1)}, expect_schedule="depthwise")


def test_depthwise_default_tile_divides_width():
    c = fallback_config(DepthwiseWorkload(channels=128, out_h=56, out_w=56, k=3, stride=1),
                        {"kind": "llvm", "mcpu": "haswell", "num-cores": 2})
    assert 56 % c.width_tile == 0 and 56 % c.rows == 0 and c.tile
    c2 = fallback_config(DepthwiseWorkload(channels=128, out_h=28, out_w=28, k=5, stride=2),
                         {"kind": "llvm", "mcpu": "haswell", "num-cores": 2})
    assert c2.tile and c2.parity  # 5x5 stride 2: the register tile over even/odd column planes


@pytest.mark.parametrize("case", [ConvCase(3, 16, 32, 32, k=3, stride=2, act="relu"),   # stem-like
                                  ConvCase(5, 12, 9, 7, k=3, act="relu6")],
                         ids=lambda c: c.label)
def test_direct_conv(case):
    _, cls, name, _ = check_case(case, NATIVE)
    assert cls == "conv" and name in ("direct_conv", "generic")


def _padded_plane_shape(func) -> list:
    """The allocation lines of the scheduled function's padded planes."""
    return [ln for ln in func.script().splitlines() if "pad_temp" in ln and "alloc_buffer" in ln]


STRIDE2 = [
    ConvCase(19, 19, 7, 7, k=5, stride=2, groups=19, act="relu"),      # padded width 11: odd -> zero column
    ConvCase(13, 13, 9, 15, k=5, stride=2, groups=13, act="relu6"),    # odd sizes, 13 channels
    ConvCase(12, 12, 4, 4, k=5, stride=2, groups=12, act=None),        # 4x4 map -> 2x2
    ConvCase(20, 20, 14, 14, k=5, stride=2, groups=20, act="relu"),    # 14 -> 7: width tile 7 columns
    ConvCase(24, 24, 16, 16, k=5, stride=2, groups=24, act="relu"),    # tiled: 8 columns out
]


@pytest.mark.parametrize("target", [NATIVE, BASELINE], ids=["native", "baseline"])
@pytest.mark.parametrize("case", STRIDE2, ids=lambda c: c.label)
def test_stride2_even_odd_columns(case, target):
    new, cls, name, cfg = check_case(case, target, expect_schedule="depthwise")
    assert cfg.parity
    wp = case.w + 2 * case.pad
    planes = _padded_plane_shape(new)
    assert planes and all(f"T.int64(2), T.int64({-(-wp // 2)}))" in p for p in planes), planes


@pytest.mark.parametrize("tile", [True, False])
@pytest.mark.parametrize("parity", [True, False])
def test_stride2_knobs(tile, parity):
    for case in (ConvCase(20, 20, 16, 16, k=3, stride=2, groups=20, act="relu"),
                 ConvCase(17, 17, 11, 13, k=5, stride=2, groups=17, act="relu")):
        _, _, _, cfg = check_case(case, NATIVE, {"depthwise": DepthwiseConfig(rows=2, vector=4, vectors=1,
                                                                            tile=tile, parity=parity)},
                                  expect_schedule="depthwise")
        assert cfg.parity == parity


def test_stride2_defaults():
    haswell = {"kind": "llvm", "mcpu": "haswell", "num-cores": 2}
    c5 = fallback_config(DepthwiseWorkload(channels=256, out_h=28, out_w=28, k=5, stride=2), haswell)
    assert c5.parity and c5.tile and 28 % c5.width_tile == 0
    c3 = fallback_config(DepthwiseWorkload(channels=128, out_h=56, out_w=56, k=3, stride=2), haswell)
    assert not c3.parity and not c3.tile
    c1 = fallback_config(DepthwiseWorkload(channels=128, out_h=56, out_w=56, k=5, stride=1), haswell)
    assert not c1.parity and c1.tile


def test_3x3_rows_capped_at_8():
    avx512 = {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 2}
    for hw in (112, 56, 28, 14, 7):
        c = fallback_config(DepthwiseWorkload(channels=96, out_h=hw, out_w=hw, k=3, stride=1), avx512)
        assert c.rows <= 8 and hw % c.rows == 0
    c5 = fallback_config(DepthwiseWorkload(channels=512, out_h=28, out_w=28, k=5, stride=1), avx512)
    assert c5.rows == 14  # 5x5: the register budget (16 rows) decides


@pytest.mark.parametrize("case", [ConvCase(24, 24, 14, 14, k=3, groups=24, act="relu"),
                                  ConvCase(20, 20, 14, 14, k=3, stride=2, groups=20, act="relu"),   # 14 -> 7
                                  ConvCase(16, 16, 7, 7, k=3, groups=16, act="relu6"),
                                  ConvCase(12, 12, 28, 28, k=3, stride=2, groups=12, act=None)],   # 28 -> 14
                         ids=lambda c: c.label)
def test_narrow_maps_tile_with_a_7_lane_vector(case):
    """AVX-512 (16 lanes): widths 14 and 7 take one 7-lane vector per row instead of the untiled loops, and
    compute what numpy does."""
    avx512 = {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 2}
    ow = (case.w + 2 * case.pad - case.k) // case.stride + 1
    c = fallback_config(DepthwiseWorkload(channels=case.cout, out_h=ow, out_w=ow, k=case.k, stride=case.stride),
                        avx512)
    assert (c.vector, c.vectors, c.tile) == (7, 1, True)
    _, _, _, cfg = check_case(case, NATIVE, {"depthwise": c}, expect_schedule="depthwise")
    assert cfg.tile and cfg.vector == 7
    neon = fallback_config(DepthwiseWorkload(channels=16, out_h=7, out_w=7, k=3, stride=1),
                           {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a76"})
    assert neon.vector == 4  # 4 lanes: no 5..2 divisor, unchanged
