"""The knob search's tasks and candidates (``edgeavs tune``), read from the kernel registry.

Every edgeavs schedule and fusion kernel is an entry of ``kernels.registry`` with a ``Config``, a target-derived
``fallback_config(workload, facts)`` and a ``knob_space(workload, facts)``. ``edgeavs tune`` searches those spaces
here (MetaSchedule only gets what our schedules leave):

1. **Workload keys.** A function is named by what it computes, not by its (compile-dependent) symbol:
   ``<class>/<structural hash of the unscheduled PrimFunc>`` for a function ``ApplyEdgeAVSSchedules`` scheduled
   (e.g. ``conv1x1/244ab5876c5fa252``), ``<kernel>/<workload fields>`` for a fusion kernel
   (``hsig_gate/n=1,ci=64,...``). The key is the ``edgeavs.workload`` attribute of the scheduled function.
2. **Candidates.** One knob changed at a time over its ``knob_space`` values around a centre config (the values
   nearest the centre first, at most :data:`MAX_CANDIDATES`). Each candidate counts as one trial of the tune
   budget. The search itself, which times candidates inside the compiled model and keeps a config only when it
   wins there and end to end, is :mod:`edgeavs.tune.in_model`.
3. **Records.** ``edgeavs_knobs.json`` in the records directory (``edgeavs.compiler.records``): per key the kind
   (schedule or kernel name), the winning config (``null``: the default stayed), the functions and the in-model
   timings. A run that finds a key there skips it (resume) and builds that function with the recorded config.

At compile time ``configs["functions"]`` (the records' entries) overrides the default for a function whose key
matches (``ApplyEdgeAVSSchedules`` and the fusion passes call ``kernels.registry.tuned_config``); such a function
carries ``edgeavs.knobs = "tuned"``. Entries whose key matches no function (another model or resolution) are
counted as stale and ignored (``kernels.registry.usage``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

from kernels.registry import ANY_CLASS, WORKLOAD_ATTR, get as registry_entry, parse_kernel_key

MARGIN = 0.03
"""A candidate must be this much faster than the default (re-measured) to replace it."""
MAX_CANDIDATES = 16
MAX_VALUES_PER_KNOB = 6


# ------------------------------------------------------------------ tasks and candidates

@dataclass(eq=False)  # identity: tasks are dict keys of the search
class KnobTask:
    key: str
    kind: str
    names: list  # the functions (symbols) that share this key
    default: object
    space: dict
    build: Callable  # config -> scheduled PrimFunc (raises when the config does not apply)
    profiled_us: float = 0.0
    candidates: list = field(default_factory=list)


def _near(values: list, default, limit: int) -> list:
    """Up to ``limit`` values other than ``default``, the nearest first (by ratio for numbers)."""
    others = [v for v in values if v != default]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in others + [default]) and default:
        others.sort(key=lambda v: (abs(math.log(max(v, 1e-9) / default)), v))
    return others[:limit]


def candidates(default, space: dict, limit: int = MAX_CANDIDATES) -> list:
    """One knob changed at a time, interleaved over the knobs (each gets its nearest values first)."""
    names = [f.name for f in dataclasses.fields(default)]
    per_knob = [[(k, v) for v in _near(list(space[k]), getattr(default, k), MAX_VALUES_PER_KNOB)]
                for k in names if k in space]
    out, seen = [], {default}
    for i in range(max((len(p) for p in per_knob), default=0)):
        for p in per_knob:
            if i < len(p):
                cand = dataclasses.replace(default, **{p[i][0]: p[i][1]})
                if cand not in seen:
                    seen.add(cand)
                    out.append(cand)
    return out[:limit]


def _scheduled_space(kind: str, func, target) -> dict:
    """The knob space of schedule ``kind`` for the unscheduled ``func`` (its registry entry's ``knob_space`` of
    the function's workload); empty when the function has no MAC block the schedule could tile."""
    from edgeavs.passes.schedule_ops import classify
    from edgeavs.tvm_api import s_tir
    from kernels.blocks import analyze_mac
    from kernels.defaults import cpu_facts

    entry = registry_entry(kind)
    sch = s_tir.Schedule(func)
    _, block = classify(sch)
    info = analyze_mac(sch, block) if block is not None else None
    if info is None and ANY_CLASS not in entry.serves:
        return {}
    facts = cpu_facts(target)
    return entry.knob_space(entry.workload_of(sch, block, info), facts)


def knob_tasks(pre, scheduled, target, profile: dict, only=()) -> list[KnobTask]:
    """One task per workload key among the functions of ``scheduled`` that carry one (``pre``: the same module
    before ``ApplyEdgeAVSSchedules``), hottest first by ``profile`` (microseconds per inference by symbol)."""
    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import PrimFunc
    from kernels.registry import names

    schedules = names("schedule")
    by_key: dict[str, KnobTask] = {}
    for gv, func in scheduled.functions_items():
        name = gv.name_hint
        if not isinstance(func, PrimFunc) or func.attrs is None or WORKLOAD_ATTR not in func.attrs:
            continue
        if only and not any(o in name for o in only):
            continue
        key = str(func.attrs[WORKLOAD_ATTR])
        if key in by_key:
            by_key[key].names.append(name)
            by_key[key].profiled_us += profile.get(name, 0.0)
            continue
        if "edgeavs.kernel" in func.attrs:
            try:
                kind, wl, entry = parse_kernel_key(key)
            except ValueError:
                continue
            default = entry.fallback_config(wl, target)
            space = entry.knob_space(wl, target)
            build = (lambda e, w: (lambda cfg: e.build(w, cfg)))(entry, wl)
        else:
            kind = str(func.attrs.get("edgeavs.schedule", ""))
            if kind not in schedules or gv not in pre.functions:
                continue
            src = pre[gv]
            _, _, sname, default, _ = schedule_prim_func(src, target, None, check_lowering=False)
            if sname != kind or default is None:
                continue
            space = _scheduled_space(kind, src, target)

            def build(cfg, src=src, kind=kind):
                new, _, got, _, err = schedule_prim_func(src, target, {kind: cfg}, check_lowering=False)
                if got != kind:
                    raise ValueError(err or f"{kind} does not apply")
                return new

        task = KnobTask(key=key, kind=kind, names=[name], default=default, space=space, build=build,
                        profiled_us=profile.get(name, 0.0))
        task.candidates = candidates(default, space)
        by_key[key] = task
    return sorted(by_key.values(), key=lambda t: (-t.profiled_us, t.key))


# ------------------------------------------------------------------ the search's summary

@dataclass
class KnobSummary:
    functions: int = 0  # searched in this run
    resumed: int = 0  # skipped: already in the records
    tuned: int = 0  # searched in this run and a candidate kept
    trials: int = 0
    rounds: int = 0  # whole-model builds timed (edgeavs.tune.in_model)
    seconds: float = 0.0
    gain_us: float = 0.0  # saving per inference: in-model default minus tuned time of the kept functions
    end_to_end: dict = field(default_factory=dict)  # {"default_ms", "tuned_ms"[, "rejected"]}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


__all__ = ["MARGIN", "KnobTask", "KnobSummary", "candidates", "knob_tasks"]
