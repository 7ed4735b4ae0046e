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
    assert not c2.tile  # stride 2: channel threads only (measured faster than the register tile)


@pytest.mark.parametrize("case", [ConvCase(3, 16, 32, 32, k=3, stride=2, act="relu"),   # stem-like
                                  ConvCase(5, 12, 9, 7, k=3, act="relu6")],
                         ids=lambda c: c.label)
def test_direct_conv(case):
    _, cls, name, _ = check_case(case, NATIVE)
    assert cls == "conv" and name in ("direct_conv", "generic")
