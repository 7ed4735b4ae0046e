"""ApplyEdgeAVSSchedules on a small Relax graph: every PrimFunc classified, report names the unmatched, numerics
unchanged end to end through the VM."""

from __future__ import annotations

import numpy as np

from edgeavs.passes.schedule_ops import ApplyEdgeAVSSchedules
from edgeavs.tvm_api import relax, to_tvm, tvm
from kernels.workloads import fuse

from .sched_util import NATIVE


def _graph():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 14, 14), "float32"))
    w1 = relax.Var("w1", relax.TensorType((32, 16, 1, 1), "float32"))
    w2 = relax.Var("w2", relax.TensorType((32, 1, 3, 3), "float32"))
    idx = relax.Var("idx", relax.TensorType((3,), "int64"))
    with bb.function("main", [x, w1, w2, idx]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, w1)))                      # conv1x1
            y = bb.emit(relax.op.clip(relax.op.nn.conv2d(y, w2, padding=1, groups=32), 0.0, 6.0))  # depthwise
            m = bb.emit(relax.op.mean(y, axis=[2, 3], keepdims=True))                    # reduction
            z = bb.emit(relax.op.multiply(y, relax.op.sigmoid(m)))                       # elementwise
            t = bb.emit(relax.op.take(relax.op.reshape(z, (32, 196)), idx, axis=0))     # gather: tiny
            out = bb.emit_output(t)
        bb.emit_func_output(out)
    return bb.get()


def test_pass_schedules_and_reports():
    mod = fuse(_graph())
    p = ApplyEdgeAVSSchedules(target=NATIVE)
    new = p(mod)
    rep = p.report
    assert rep["enabled"]
    cls = rep["classes"]
    assert cls["conv1x1"]["by_schedule"] == {"gemm": 1}
    assert cls["depthwise"]["scheduled"] == 1
    total = sum(c["functions"] for c in cls.values())
    assert total == sum(1 for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    scheduled = sum(c["scheduled"] for c in cls.values())
    assert scheduled + len(rep["unmatched"]) == total
    # every unmatched function is named and is a function of the module
    names = {gv.name_hint for gv in mod.functions}
    assert set(rep["unmatched"]) <= names
    # numerics: the scheduled module computes what the unscheduled one does
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((1, 16, 14, 14)).astype("float32"),
            rng.standard_normal((32, 16, 1, 1)).astype("float32"),
            rng.standard_normal((32, 1, 3, 3)).astype("float32"), np.array([0, 5, 31], "int64")]
    outs = []
    for m in (mod, new):
        ex = tvm.compile(m, target=NATIVE)
        vm = relax.VirtualMachine(ex, tvm.cpu())
        outs.append(vm["main"](*[to_tvm(a) for a in args]).numpy())
    err = np.linalg.norm(outs[1] - outs[0]) / np.linalg.norm(outs[0])
    assert err <= 1e-6, err


def test_pass_leaves_hand_kernels_and_can_be_disabled(monkeypatch):
    mod = fuse(_graph())
    gv = next(g for g, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc))
    mod[gv] = mod[gv].with_attr("edgeavs.kernel", "edgeavs.test")
    p = ApplyEdgeAVSSchedules(target=NATIVE)
    new = p(mod)
    assert new[gv].attrs.get("edgeavs.schedule", None) is None
    monkeypatch.setenv("EDGEAVS_NO_SCHEDULES", "1")
    p2 = ApplyEdgeAVSSchedules(target=NATIVE)
    same = p2(mod)
    assert p2.report == {"enabled": False}
    tvm.ir.assert_structural_equal(same, mod)
