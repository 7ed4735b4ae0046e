"""The kernel/schedule registry: every entry declared once, one fallback signature, dispatch in order, and a new
entry reaching the schedule pass through its registration alone."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from kernels import registry
from kernels.defaults import cpu_facts
from tests.kernels.sched_util import NATIVE

SCHEDULES = {"gemm", "depthwise", "direct_conv", "window_dot", "generic"}
KERNELS = {"hsig_gate", "audio_gate", "channel_bias", "stft_fft", "int8_conv"}
INT8 = {"int8_conv"}
"""Kernels whose MACs run on int8 operands (int32 accumulators): their one dtype is int8."""


def _sample(cls):
    """A workload of ``cls`` with small valid-looking fields (defaults kept)."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            continue
        values[f.name] = {"bool": False, "str": "float32"}.get(str(f.type), 2)
    return cls(**values)


def test_every_schedule_and_kernel_is_one_entry():
    assert set(registry.names("schedule")) == SCHEDULES
    assert set(registry.names("kernel")) == KERNELS
    for e in registry.entries():
        assert e.role in registry.ROLES
        if e.name in INT8:
            assert e.dtypes == ("int8",), e.name
        else:
            assert e.dtypes[0] == "float32" and set(e.dtypes) <= {"float32", "float16"}, e.name
        assert dataclasses.is_dataclass(e.workload) and dataclasses.is_dataclass(e.config)
        # ONE signature: (workload, facts) for the default and the space
        for fn in (e.fallback_config, e.knob_space):
            params = list(inspect.signature(fn).parameters.values())
            assert len([p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]) == 2, (e.name, fn)
            assert params[1].name == "facts", (e.name, fn)
        if e.role == "kernel":
            assert registry.kernel_for_chain(f"edgeavs.{e.name}") is e


def test_dispatch_order_per_op_class():
    assert [e.name for e in registry.schedules_for("conv")] == ["window_dot", "direct_conv", "generic"]
    assert [e.name for e in registry.schedules_for("conv1x1")] == ["gemm", "generic"]
    assert [e.name for e in registry.schedules_for("depthwise")] == ["depthwise", "generic"]
    assert [e.name for e in registry.schedules_for("reduction")] == ["generic"]


def test_facts_or_target_give_the_same_default():
    facts = cpu_facts(NATIVE)
    for e in registry.entries("kernel"):
        wl = _sample(e.workload)
        cfg = e.fallback_config(wl, facts)
        assert cfg == e.fallback_config(wl, NATIVE)
        assert registry.config_from_dict(e.name, registry.config_to_dict(cfg)) == cfg
        kind, back, entry = registry.parse_kernel_key(registry.kernel_key(e.name, wl))
        assert (kind, back, entry) == (e.name, wl, e)
        assert set(e.knob_space(wl, facts)) <= {f.name for f in dataclasses.fields(e.config)}


def test_unknown_kind_and_bad_choice_are_one_line_value_errors():
    with pytest.raises(ValueError, match="unknown kind 'nope'"):
        registry.config_from_dict("nope", {})
    with pytest.raises(ValueError, match="gemm: knob parallel=\"rows\" is not one of pixel, channel"):
        registry.config_from_dict("gemm", {"co_tile": 1, "pixel_vectors": 1, "lanes": 4, "parallel": "rows"})


def test_a_new_schedule_is_one_registration(monkeypatch):
    """A schedule registered for a class is tried before the generic one by the schedule pass; unregistered,
    the function is scheduled as before."""
    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import te
    from kernels import elementwise

    a = te.placeholder((4096,), name="A")
    b = te.compute((4096,), lambda i: a[i] * 2.0, name="B")
    func = te.create_prim_func([a, b])
    seen = []

    def build(sch, block, cfg, facts):
        seen.append(cfg)
        return elementwise.ENTRY.build(sch, block, cfg, facts)

    entry = dataclasses.replace(elementwise.ENTRY, name="test_only", serves=("elementwise",), order=0, build=build)
    monkeypatch.setitem(registry._ENTRIES, "test_only", entry)
    from edgeavs.tvm_api import make_target

    target = make_target(NATIVE)
    _, cls, name, cfg, err = schedule_prim_func(func, target, {"test_only": elementwise.GenericConfig(lanes=4)})
    assert (cls, name, seen) == ("elementwise", "test_only", [elementwise.GenericConfig(lanes=4)]), err
    assert "test_only" in registry.config_classes()
    monkeypatch.delitem(registry._ENTRIES, "test_only")
    assert schedule_prim_func(func, target)[2] == "generic"
