"""Direct-conv schedules (kernels/conv2d.py) against numpy, the compile-time weight re-layout, and the defaults.

Every scheduled function is compared with the float64 numpy conv of the same case on random inputs:
rel-L2 <= ``TOL`` (fp32 sums of at most a few hundred products are ~1e-7 from float64).
"""

from __future__ import annotations

import pytest

from edgeavs.compiler.pipeline import run_pipeline
from edgeavs.tvm_api import PrimFunc, relax, s_tir, tvm
from kernels.conv2d import LAYOUT_REWRITE, DirectConvConfig, DirectConvWorkload as W, fallback_config, knob_space
from kernels.defaults import cpu_facts
from kernels.workloads import ConvCase

from .sched_util import BASELINE, NATIVE, check_case, rel_l2
from .test_sched_defaults import AARCH64, ORYON

TOL = 1e-6

CASES = [
    ConvCase(3, 32, 17, 15, k=3, stride=2),                          # stem-like: stride 2 at odd sizes
    ConvCase(1, 16, 13, 16, k=3, act=None, bias=False),              # 1 input channel (PANNs' first conv)
    ConvCase(16, 24, 7, 7, k=3),                                     # 7x7 map, 24 channels
    ConvCase(8, 20, 4, 4, k=3, act="relu6"),                         # 4x4 map, 20 channels (5 x 4 lanes)
    ConvCase(6, 12, 9, 11, k=5, stride=2, residual=True),            # 5x5 s2, odd sizes, residual
    ConvCase(5, 7, 9, 7, k=3),                                       # 7 channels: no vector divides them
    ConvCase(48, 64, 14, 1, k=1, act=None),                          # 1x1 on a 14x1 map (squeeze-axial)
    ConvCase(40, 48, 7, 1, k=1, act=None, residual=True),            # 1x1 on a 7x1 map
]


def _expect_blocked(case, lanes: int) -> bool:
    """The documented rule: blocked unless whole contiguous column vectors fit (unit stride, a multiple of the
    full vector width up to 2 vectors dividing the output width), and only when 4 lanes divide the channels."""
    ow = case.out_hw[1] if case.w > 1 else case.out_hw[0]  # the tiled pixel axis: rows of an L x 1 map
    whole_columns = case.stride == 1 and any(ow % d == 0 for d in range(lanes, 2 * lanes + 1, lanes))
    return case.cout % 4 == 0 and not whole_columns


@pytest.mark.parametrize("target", [NATIVE, BASELINE], ids=["native", "baseline"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_default_config(case, target):
    _, cls, _, cfg = check_case(case, target, expect_schedule="direct_conv", tol=TOL)
    assert cls == "conv"
    assert cfg.blocked == _expect_blocked(case, cpu_facts(target).lanes), cfg


BLOCKED = [DirectConvConfig(co_tile=8, width_tile=1, vector=4, blocked=True),
           DirectConvConfig(co_tile=8, width_tile=3, vector=8, unroll_taps=False, blocked=True),
           DirectConvConfig(co_tile=16, width_tile=7, vector=4, blocked=True)]


@pytest.mark.parametrize("cfg", BLOCKED, ids=str)
def test_blocked_knobs(cfg):
    for case in (ConvCase(3, 16, 14, 14, k=3, stride=2), ConvCase(32, 16, 7, 1, k=1, act=None)):
        _, _, _, got = check_case(case, NATIVE, {"direct_conv": cfg}, expect_schedule="direct_conv", tol=TOL)
        assert got == cfg


def test_column_knobs():
    cfg = DirectConvConfig(co_tile=4, width_tile=8, vector=4, blocked=False)
    check_case(ConvCase(4, 8, 9, 16, k=3, stride=2), NATIVE, {"direct_conv": cfg}, expect_schedule="direct_conv",
               tol=TOL)


def test_blocked_config_that_does_not_divide_falls_back():
    # co_tile 16 does not divide 24 channels: the direct schedule refuses, the generic one computes it
    cfg = DirectConvConfig(co_tile=16, width_tile=7, vector=16, blocked=True)
    _, _, name, _ = check_case(ConvCase(8, 24, 7, 7, k=3), NATIVE, {"direct_conv": cfg}, tol=TOL)
    assert name != "direct_conv"


def _blocks(func: PrimFunc) -> list:
    sch = s_tir.Schedule(func)
    out = []

    def walk(b):
        for c in sch.get_child_blocks(b):
            out.append(sch.get(c))
            walk(c)

    walk(sch.get_sblock("root"))
    return out


def _compile_and_run(case, bind: bool):
    args = case.inputs(seed=3)
    params = {"w": tvm.runtime.tensor(args[1])} if bind else {}
    mod, _ = run_pipeline(case.relax_module(), NATIVE, params)
    vm = relax.VirtualMachine(tvm.compile(mod, target=NATIVE, relax_pipeline=None), tvm.cpu())
    inputs = [args[0]] + ([] if bind else [args[1]]) + args[2:]
    got = vm["main"](*[tvm.runtime.tensor(a) for a in inputs]).numpy()
    return mod, rel_l2(got, case.reference(args))


STEM = ConvCase(3, 32, 18, 18, k=3, stride=2)


def test_constant_weight_is_blocked_at_compile_time():
    mod, err = _compile_and_run(STEM, bind=True)
    assert err <= TOL
    funcs = {gv.name_hint: f for gv, f in mod.functions_items() if isinstance(f, PrimFunc)}
    assert sorted(funcs) == ["fused_conv2d_add_relu"]  # no prepack function left, the name kept
    conv = funcs["fused_conv2d_add_relu"]
    cfg = fallback_config(W(32, 9, 27, stride=2), NATIVE)
    shapes = [[int(d) for d in p.shape] for p in conv.params]
    assert [32 // cfg.co_tile, 3, 3, 3, cfg.co_tile] in shapes and [32, 3, 3, 3] not in shapes  # pre-blocked
    assert not any(LAYOUT_REWRITE in b.annotations for b in _blocks(conv))  # no re-layout left per call


def test_runtime_weight_keeps_a_correct_relayout_call():
    mod, err = _compile_and_run(STEM, bind=False)
    assert err <= TOL
    names = sorted(gv.name_hint for gv, f in mod.functions_items() if isinstance(f, PrimFunc))
    assert names == ["fused_conv2d_add_relu", "fused_conv2d_add_relu_weight_prepack"]


def test_weight_prepack_phase_is_off_without_schedules():
    mod, _ = run_pipeline(STEM.relax_module(), NATIVE, {"w": tvm.runtime.tensor(STEM.inputs()[1])},
                          schedules=False)
    conv = next(f for f in mod.functions.values() if isinstance(f, PrimFunc))
    assert [int(d) for d in conv.params[1].shape] == [32, 3, 3, 3]


def test_defaults_host():
    f = cpu_facts(NATIVE)
    stem = fallback_config(W(32, 112, 27, stride=2), NATIVE)
    assert stem.blocked and stem.co_tile % stem.vector == 0 and 32 % stem.co_tile == 0
    assert 112 % stem.width_tile == 0
    assert stem.width_tile * stem.co_tile // stem.vector <= f.vector_registers // 2
    for cout, n in ((256, 14), (320, 7), (384, 4)):  # the 1x1 convs on L x 1 maps
        c = fallback_config(W(cout, n, 1), NATIVE)
        assert c.blocked and n % c.width_tile == 0 and cout % c.co_tile == 0 and c.vector == f.lanes
    panns = fallback_config(W(32, 64, 9), NATIVE)  # whole contiguous column vectors: the column tile
    assert not panns.blocked and panns.vector == f.lanes and 64 % panns.width_tile == 0
    assert not fallback_config(W(30, 112, 27, stride=2), NATIVE).blocked  # 30 channels: no 4-lane vector divides


@pytest.mark.parametrize("target", [ORYON, AARCH64], ids=["snapdragon8elite", "aarch64"])
def test_defaults_neon(target):
    f = cpu_facts(target)
    stem = fallback_config(W(32, 112, 27, stride=2), target)
    assert stem.blocked and stem.vector == 4 and stem.co_tile % 4 == 0 and 112 % stem.width_tile == 0
    assert stem.width_tile * stem.co_tile // 4 <= f.vector_registers // 2
    attn = fallback_config(W(256, 14, 1), target)
    assert attn.blocked and attn.vector == 4 and 14 % attn.width_tile == 0
    panns = fallback_config(W(32, 64, 9), target)
    assert not panns.blocked and panns.vector == 4


def test_neon_schedule_lowers():
    # schedule_prim_func runs the TIR pipeline for the target and keeps a schedule only when it lowers
    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import make_target

    from .sched_util import fused_func

    new, _, name, cfg, err = schedule_prim_func(fused_func(STEM), make_target(ORYON))
    assert name == "direct_conv" and cfg.blocked and cfg.vector == 4, err
    assert any(LAYOUT_REWRITE in b.annotations for b in _blocks(new))


def test_knob_space_and_json():
    from kernels.registry import config_from_dict, config_to_dict

    space = knob_space(W(256, 14, 1), NATIVE)
    assert space["blocked"] == [True, False] and 32 in space["co_tile"] and 7 in space["width_tile"]
    cfg = fallback_config(W(256, 14, 1), NATIVE)
    assert config_from_dict("direct_conv", config_to_dict(cfg)) == cfg
    old = {"co_tile": 16, "width_tile": 1, "vector": 1, "unroll_taps": True}  # a record from before the knob
    assert config_from_dict("direct_conv", old).blocked is False
    with pytest.raises(ValueError):
        config_from_dict("direct_conv", {**old, "blocked": "yes"})

