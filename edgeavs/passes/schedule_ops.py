"""ApplyEdgeAVSSchedules: give every TIR PrimFunc a CPU schedule chosen by its block structure (no tuning run).

Where it goes: after ``FuseTIR`` (the pipeline's ``fuse-ops`` phase) and before the lowering passes
(``RewriteDataflowReshape`` ... ``VMShapeLower``), under ``with target:`` or with ``target=`` given. Each fused
PrimFunc is classified by its blocks (``kernels.blocks.analyze_mac``), never by its name:

=============  =========================================================  ==========================
class          structure                                                  schedule
=============  =========================================================  ==========================
conv1x1        MAC block, one register axis, contiguous pixels, 4-D out    ``kernels.pointwise``
matmul         same, other ranks (matmul, dense); or no register axis     ``kernels.pointwise``
               (matrix-vector, 1x1 depthwise)
depthwise      MAC block, channel in data and weight, 1 input channel     ``kernels.depthwise``
conv           MAC block, one register axis, strided/windowed pixels      ``kernels.stft`` (long unit-
                                                                          stride reduction), else
                                                                          ``kernels.conv2d``
elementwise    only spatial blocks                                        ``kernels.elementwise``
reduction      any other reduction (mean, max, softmax, pool)             ``kernels.elementwise``
=============  =========================================================  ==========================

The schedule column is data: each schedule is an entry of ``kernels.registry`` that names the classes it
serves (``kernels.registry.schedules_for(cls)``: in their ``order``, the generic schedule, serving every class,
last). A specialised schedule that fails falls back to the next, at last the generic one; a function whose schedule does not lower (the
TIR pipeline is run on it, ~10 ms) stays unscheduled. PrimFuncs that already carry ``edgeavs.kernel`` (the
fusion passes' hand-written kernels) are left alone. ``report`` (after the pass ran) counts per class how many
functions got which schedule and names the functions nothing matched.
"""

from __future__ import annotations

import os
from collections import defaultdict

from edgeavs.tvm_api import IRModule, PrimFunc, Target, make_target, s_tir, tvm

PASS_NAME = "ApplyEdgeAVSSchedules"
CLASSES = ("conv1x1", "matmul", "depthwise", "conv", "elementwise", "reduction")


def classify(sch: s_tir.Schedule):
    """``(class, mac_block_or_None)`` of the PrimFunc under ``sch``."""
    from kernels.blocks import analyze_mac, is_spatial, root_blocks

    blocks = root_blocks(sch)
    macs = [(b, info) for b in blocks if (info := analyze_mac(sch, b)) is not None]
    if len(macs) == 1:
        b, info = macs[0]
        if len(info.register) == 1 and info.pixels_contiguous:
            return ("conv1x1" if len(info.out_vars) == 4 else "matmul"), b
        if not info.register and info.pixels_contiguous:
            return "matmul", b  # matrix-vector (or 1x1 depthwise): the GEMM schedule without a register axis
        if not info.register and info.shared and info.pixel:
            return "depthwise", b
        if len(info.register) == 1:
            return "conv", b
    if all(is_spatial(sch, b) for b in blocks):
        return "elementwise", None
    return "reduction", None


def lowers(func: PrimFunc, target: Target) -> str | None:
    """None when the TIR pipeline lowers ``func`` for ``target``; else the error's last line."""
    try:
        mod = IRModule({"main": func.with_attr("global_symbol", "main")})
        mod = tvm.tirx.transform.BindTarget(target.with_host(target))(mod)
        pipe, _, _ = tvm.tirx.get_default_tir_pipeline(target)
        pipe(mod)
        return None
    except Exception as exc:  # noqa: BLE001 - any lowering failure keeps the function unscheduled
        lines = str(exc).strip().splitlines()
        return lines[-1] if lines else type(exc).__name__


def schedule_prim_func(func: PrimFunc, target: Target, configs: dict | None = None,
                       check_lowering: bool = True):
    """Schedule one PrimFunc. Returns ``(new_func, class, schedule_name, config, error)``; ``schedule_name`` is
    None when nothing applied (``new_func`` is then ``func``)."""
    from kernels import registry
    from kernels.defaults import cpu_facts

    facts = cpu_facts(target)
    configs = configs or {}
    sch = s_tir.Schedule(func)
    cls, block = classify(sch)
    wkey = registry.function_key(func, cls)
    tuned = registry.tuned_config(configs, wkey)  # configs["functions"][key]: this function's tuned knobs
    if tuned is not None:
        configs = {**configs, tuned[0]: tuned[1]}
    # the registry's schedules for this class, in order (the generic one, serving every class, last)
    attempts = [(e.name, (lambda s, b, e=e: e.build(s, b, configs.get(e.name), facts)))
                for e in registry.schedules_for(cls)]
    error = None
    for name, fn in attempts:
        sch = s_tir.Schedule(func)
        b = None
        if block is not None:
            b = classify(sch)[1]
        try:
            cfg = fn(sch, b)
        except Exception as exc:  # noqa: BLE001 - try the next schedule
            lines = str(exc).strip().splitlines()
            error = f"{name}: {lines[-1] if lines else type(exc).__name__}"
            continue
        new = sch.mod["main"]
        for key, value in func.attrs.items() if func.attrs is not None else []:
            new = new.with_attr(key, value)
        new = new.with_attr("edgeavs.schedule", name).with_attr("edgeavs.config", str(cfg))
        new = new.with_attr(registry.WORKLOAD_ATTR, wkey)
        if tuned is not None and tuned[0] == name:
            new = new.with_attr(registry.TUNED_ATTR, "tuned")
        if check_lowering:
            err = lowers(new, target)
            if err is not None:
                error = f"{name}: does not lower: {err}"
                continue
        return new, cls, name, cfg, error
    return func, cls, None, None, error


@tvm.transform.module_pass(opt_level=0, name=PASS_NAME)
class ApplyEdgeAVSSchedules:
    """Assign each PrimFunc of the module a schedule by its pattern (see the module docstring).

    Parameters
    ----------
    target : Target or dict, optional
        Default: ``Target.current()`` (the pipeline runs under ``with target:``).
    configs : dict, optional
        Per schedule name (``gemm``, ``depthwise``, ``direct_conv``, ``generic``) a config that replaces the
        target-derived default; ``configs["functions"][key]`` (``edgeavs tune``'s knob records, keyed by
        ``kernels.registry.function_key``: class + structural hash, stable across compiles) overrides it
        for the one function with that key, which then carries ``edgeavs.knobs="tuned"``.
    check_lowering : bool
        Run the TIR pipeline on each scheduled function and keep the unscheduled one when it fails.

    After the pass ran, ``report`` holds ``{"classes": {class: {"functions", "scheduled", "by_schedule"}},
    "unmatched": [names], "errors": {name: message}, "knobs": {"tuned", "default", "records", "stale", ...}}``
    (``knobs``: functions, fusion kernels included, on tuned vs default knobs; stale = knob records that matched
    no function and were ignored). ``EDGEAVS_NO_SCHEDULES=1`` disables the pass.
    """

    def __init__(self, target=None, configs: dict | None = None, check_lowering: bool = True):
        self.target = target
        self.configs = configs
        self.check_lowering = check_lowering
        self.report: dict = {}

    def transform_module(self, mod: IRModule, _ctx) -> IRModule:
        if os.environ.get("EDGEAVS_NO_SCHEDULES"):
            self.report = {"enabled": False}
            return mod
        target = make_target(self.target) if self.target is not None else Target.current()
        if target is None:
            from edgeavs.tvm_api import host_target

            target = host_target()
        classes: dict = defaultdict(lambda: {"functions": 0, "scheduled": 0, "by_schedule": defaultdict(int)})
        unmatched, errors = [], {}
        updates = {}
        for gv, func in mod.functions.items():
            if not isinstance(func, PrimFunc):
                continue
            attrs = func.attrs
            if attrs is not None and ("edgeavs.kernel" in attrs or "edgeavs.schedule" in attrs):
                continue
            new, cls, name, _cfg, err = schedule_prim_func(func, target, self.configs, self.check_lowering)
            entry = classes[cls]
            entry["functions"] += 1
            if name is None:
                unmatched.append(gv.name_hint)
                if err:
                    errors[gv.name_hint] = err
                continue
            entry["scheduled"] += 1
            entry["by_schedule"][name] += 1
            if err:
                errors[gv.name_hint] = err
            updates[gv] = new
        for gv, new in updates.items():
            mod[gv] = new
        from kernels.registry import usage as knob_usage

        self.report = {
            "enabled": True,
            "target": str(target.attrs.get("mcpu", "")) or str(target.kind.name),
            "classes": {k: {"functions": v["functions"], "scheduled": v["scheduled"],
                            "by_schedule": dict(v["by_schedule"])} for k, v in sorted(classes.items())},
            "unmatched": sorted(unmatched),
            "errors": errors,
            "knobs": knob_usage(mod, self.configs),
        }
        return mod
