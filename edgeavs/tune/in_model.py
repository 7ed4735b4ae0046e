"""In-model knob search: every candidate config is timed where it will run, inside the compiled model.

Why not time each function alone: ``time_evaluator`` on one kernel (its inputs hot in cache, the thread pool
spinning between calls) ranked candidates that then lost inside the model. A 30-minute tune of LightAVSeg-L at
224 that way kept 108 "faster" configs and the tuned build ran 26.0 ms against 23.6 ms untuned (that tune also
timed on a one-thread pool: ``edgeavs.tune.tuner.use_threads`` now sizes it to the target's cores).

One **round** is one build of the whole model. Every task (a workload key of :mod:`edgeavs.tune.knobs`, one or
more functions) gets one config per round, so one build times one candidate of *every* function at once;
the build is profiled through the VM instrumentation (:func:`edgeavs.compiler.profile.profile_functions`, median
per function over :data:`PASSES` passes). A model of ~170 functions with 16 candidates each takes ~17 rounds
for a generation; a round of LightAVSeg-L at 224 takes ~20 s on 2 cores (pipeline, codegen, 15 passes).

1. Round 0: the current configs (the defaults, or what the records already hold).
2. A *generation*: each task's candidates around its current best (:func:`edgeavs.tune.knobs.candidates`: one
   knob changed at a time), one per round; then one round with the knob values that each beat the
   generation's centre combined. A task whose best moved gets another generation around the new best while the budget lasts
   (a local search); the others are done.
3. Confirmation: the build with every task's winner (W) and the round-0 build (D) are profiled alternately,
   :data:`CONFIRM_ROUNDS` times each; a task keeps its winner only when it beats D by :data:`MARGIN` there.
4. End to end: the build with the confirmed winners and D are timed alternately (``time_evaluator`` on the
   whole model, median). When the tuned build is not faster, its knobs are dropped and recorded as rejected:
   by its own measurement a tune never leaves the model slower than it found it.

Records are written once, at the end (atomically, ``edgeavs_knobs.json``): an interrupted search leaves the
file as it was and the next run searches again. Each entry holds the in-model microseconds of the default
and of the winner (sum over the functions sharing the key) and ``"measured": "in-model"``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass, field

from edgeavs.tune.knobs import MARGIN, KnobSummary, KnobTask, candidates
from kernels.registry import WORKLOAD_ATTR, config_from_dict, config_to_dict

PASSES = 15
"""Instrumented passes per round; each function's time is its median over them."""
CONFIRM_ROUNDS = 3
E2E_ROUNDS = 5
E2E_NUMBER = 10
RESERVE_ROUNDS = 3
"""Rounds' worth of time kept for the confirmation and the end-to-end check (two builds and their timing)."""
MAX_GENERATIONS = 4
"""Generations of the local search at most (the first is the neighbourhood of the default)."""


def compile_vm(lowered, tvm_target):
    """A Relax VM on this CPU for a module the whole pipeline (``lower`` included) has run on."""
    from edgeavs.tvm_api import relax, tvm

    return relax.VirtualMachine(tvm.compile(lowered, target=tvm_target, relax_pipeline=None), tvm.cpu())


def build_vm(fused, tvm_target):
    """Compile a scheduled module (``fused``: the pipeline up to ``edgeavs-schedules``) into a Relax VM."""
    from edgeavs.compiler.pipeline import phase_after, run_pipeline

    return compile_vm(run_pipeline(fused, tvm_target, None, start=phase_after("edgeavs-schedules"))[0], tvm_target)


def profile_median(vm, args, passes: int = PASSES) -> dict[str, float]:
    """Median microseconds per inference of each function over ``passes`` instrumented passes."""
    from edgeavs.compiler.profile import profile_functions

    runs = [profile_functions(vm, args, repeat=1) for _ in range(passes)]
    names = set().union(*runs)
    return {n: statistics.median(r.get(n, 0.0) for r in runs) for n in names}


def latency_s(vm, args) -> float:
    """Median seconds of one whole-model run over ``E2E_NUMBER`` runs (one measurement)."""
    from edgeavs.tvm_api import tvm

    ev = vm.time_evaluator("main", tvm.cpu(), number=1, repeat=E2E_NUMBER)
    return statistics.median(ev(*args).results)


def time_alternately(timers: dict, rounds: int) -> dict[str, float]:
    """``{name: median ms}`` of ``timers`` (name -> a callable returning seconds), called in turn ``rounds``
    times, so load that comes and goes hits every side alike."""
    times = {name: [] for name in timers}
    for _ in range(rounds):
        for name, measure in timers.items():
            times[name].append(measure())
    return {name: round(statistics.median(t) * 1e3, 3) for name, t in times.items()}


def _copy(mod):
    from edgeavs.tvm_api import IRModule

    return IRModule(dict(mod.functions_items()), attrs=mod.attrs, global_infos=mod.global_infos)


@dataclass(eq=False)
class _State:
    """One task's search: the generation's centre, its best so far, the candidates still to time."""

    task: KnobTask
    center: object  # the config this generation's candidates vary one knob of
    center_us: float = float("inf")
    best: object = None
    best_us: float = float("inf")
    default_us: float = float("inf")
    queue: list = field(default_factory=list)
    timed: dict = field(default_factory=dict)  # config -> in-model us, this generation
    seen: set = field(default_factory=set)  # every config timed (or found not to build), all generations
    generation: int = 1
    combined: bool = False
    trials: int = 0

    def start(self, center, us: float, space: dict) -> None:
        self.center, self.center_us, self.best, self.best_us = center, us, center, us
        self.timed = {center: us}
        self.seen.add(center)
        self.queue = [c for c in candidates(center, space) if c not in self.seen]
        self.combined = False


class ModelBench:
    """Whole-model builds with some tasks on candidate configs, profiled per function.

    A build runs the pipeline from ``folded`` (the module after ``fold-constants``) with the configs as knob
    records, exactly as ``edgeavs compile --records`` would: the fusion kernels whose knobs change their call
    (transposed weights) are rebuilt with their call site."""

    measured = "in-model"  # the records' "measured" field, and what a round's figures are
    entry_extra: dict = {}

    def __init__(self, folded, tvm_target, inputs, passes: int = PASSES, precision_kw: dict | None = None):
        from edgeavs.passes.schedule_ops import lowers
        from edgeavs.tvm_api import make_target, tvm

        self.folded = folded
        self.precision_kw = dict(precision_kw or {})  # the precision phase's arguments (int8: the plan)
        self.target = make_target(tvm_target)
        self.passes = passes
        self.dev = tvm.cpu()
        self.args = [tvm.runtime.tensor(a, self.dev) for a in inputs] if inputs is not None else None
        self._lowers = lowers
        self._ok: dict = {}  # (key, config) -> whether it builds and lowers for its function

    def applies(self, task: KnobTask, cfg) -> bool:
        """Whether ``cfg`` builds and lowers for ``task``'s function (checked alone, in ~10 ms)."""
        ck = (task.key, cfg)
        if ck not in self._ok:
            try:
                self._ok[ck] = self._lowers(task.build(cfg), self.target) is None
            except Exception:  # noqa: BLE001 - a config that does not apply to this function
                self._ok[ck] = False
        return self._ok[ck]

    def build(self, assign: dict):
        """``(vm, {workload key: [function names]})`` of the model with each assigned task on its config
        (``assign``: KnobTask -> config; tasks not in it keep their defaults)."""
        lowered, names = self.lower(assign)
        return compile_vm(lowered, self.target), names

    def lower(self, assign: dict, linked_weights: list | None = None):
        """``(lowered module, {workload key: [function names]})``: the pipeline of :meth:`build`
        (``linked_weights``: a list to collect the weights into, as ``compile_artifact`` links them)."""
        from edgeavs.compiler.pipeline import phase_after, run_pipeline
        from edgeavs.tvm_api import PrimFunc

        functions = {t.key: {"kind": t.kind, "config": config_to_dict(c)} for t, c in assign.items()
                     if c != t.default}
        lowered = run_pipeline(_copy(self.folded), self.target, None, start=phase_after("fold-constants"),
                               schedule_configs={"functions": functions} if functions else None,
                               linked_weights=linked_weights, **self.precision_kw)[0]
        names: dict = {}
        for gv, func in lowered.functions_items():
            if isinstance(func, PrimFunc) and func.attrs is not None and WORKLOAD_ATTR in func.attrs:
                names.setdefault(str(func.attrs[WORKLOAD_ATTR]), []).append(gv.name_hint)
        return lowered, names

    def profile(self, vm) -> dict[str, float]:
        return profile_median(vm, self.args, self.passes)

    def latency(self, vm) -> float:
        return latency_s(vm, self.args)


def _task_us(task: KnobTask, prof: dict, names: dict) -> float:
    return sum(prof.get(n, 0.0) for n in names.get(task.key, task.names))


def _combine(state: _State):
    """The generation's centre with every knob value that beat the centre on its own; None when fewer than two
    knobs did (the combination is then one of the timed candidates) or it was timed already."""
    wins = [(us, c) for c, us in state.timed.items() if us < state.center_us and c != state.center]
    combo, changed = state.center, 0
    for k in [f.name for f in dataclasses.fields(state.center)]:
        vals = [(us, getattr(c, k)) for us, c in wins if getattr(c, k) != getattr(state.center, k)]
        if vals:
            combo = dataclasses.replace(combo, **{k: min(vals, key=lambda x: x[0])[1]})
            changed += 1
    return combo if changed >= 2 and combo not in state.seen else None


def search(tasks: list[KnobTask], records, folded, tvm_target, inputs, *, deadline: float,
           max_trials: int | None, log=None, passes: int = PASSES, on_round=None, bench=None) -> KnobSummary:
    """Search the knob spaces of ``tasks`` inside the model (see the module docstring) until ``deadline``
    (``time.perf_counter()``) or ``max_trials`` candidates; tasks the records already hold are skipped and
    keep their recorded config. Writes ``edgeavs_knobs.json`` once, atomically, and returns the summary.
    ``on_round(trials, saved_us)`` is called after each round (the progress bar).

    ``bench``: the cost source, a :class:`ModelBench` on this CPU by default; another with the same methods
    (``applies``, ``build``, ``profile``, ``latency``, ``measured``, ``entry_extra``) puts another clock under
    the same search: :class:`edgeavs.tune.projected.ProjectedBench` gives projected Oryon cycles of the
    emulated AArch64 build."""
    say = log or (lambda _m: None)
    summary = KnobSummary()
    t0 = time.perf_counter()
    functions = dict(records.read_knobs())

    fixed = {}  # tasks already in the records: their recorded config (or default) is part of every build
    todo = []
    for task in tasks:
        entry = functions.get(task.key)
        if entry is None:
            todo.append(task)
            continue
        summary.resumed += 1
        if entry.get("config") is not None:
            fixed[task] = config_from_dict(entry["kind"], entry["config"])
    if not todo:
        summary.seconds = round(time.perf_counter() - t0, 1)
        return summary
    bench = bench if bench is not None else ModelBench(folded, tvm_target, inputs, passes=passes)
    round_secs: list[float] = []

    def run_round(assign: dict) -> tuple[dict, object, dict]:
        ts = time.perf_counter()
        vm, names = bench.build({**fixed, **assign})
        prof = bench.profile(vm)
        round_secs.append(time.perf_counter() - ts)
        return prof, vm, names

    states = [_State(task=t, center=t.default) for t in todo]
    prof0, vm_default, names0 = run_round({})
    for s in states:
        s.default_us = _task_us(s.task, prof0, names0)
        s.start(s.task.default, s.default_us, s.task.space)
    trials, rounds = 0, 1

    def next_queue() -> bool:
        """Refill the queues at the end of a generation: first its combination round, then a new generation
        around the tasks whose best moved. False when the search is over."""
        for s in states:
            if not s.combined:
                s.combined = True
                combo = _combine(s)
                if combo is not None:
                    s.queue = [combo]
        if any(s.queue for s in states):
            return True
        for s in states:
            if s.best != s.center and s.generation < MAX_GENERATIONS:
                s.generation += 1
                s.start(s.best, s.best_us, s.task.space)
        return any(s.queue for s in states)

    while any(s.queue for s in states) or next_queue():
        live = sorted((s for s in states if s.queue), key=lambda s: -s.default_us)  # hottest first
        if max_trials is not None:
            live = live[:max(0, max_trials - trials)]
        if not live or time.perf_counter() + statistics.mean(round_secs) * (1 + RESERVE_ROUNDS) > deadline:
            break
        assign = {s.task: s.best for s in states if s.best != s.task.default}
        trying = {}
        for s in live:
            cfg = s.queue.pop(0)
            s.seen.add(cfg)
            s.trials += 1
            trials += 1
            if not bench.applies(s.task, cfg):
                continue  # does not build or lower for this function: counted, never timed
            assign[s.task] = cfg
            trying[s] = cfg
        if not trying:
            continue
        prof, _, names = run_round(assign)
        rounds += 1
        for s, cfg in trying.items():
            us = _task_us(s.task, prof, names)
            s.timed[cfg] = us
            if us < s.best_us:
                s.best, s.best_us = cfg, us
        if on_round is not None:
            on_round(len(live), sum(s.default_us - s.best_us for s in states))
        say(f"  knob round {rounds}: {len(trying)} candidates, {bench.measured} estimate "
            f"{sum(s.best_us for s in states) / 1e3:.2f} ms for the functions searched "
            f"({sum(s.default_us for s in states) / 1e3:.2f} ms on their defaults)")

    # confirmation: winners (W) against the defaults (D), profiled alternately
    winners = {s: s.best for s in states if s.best != s.task.default}
    confirmed: dict = {}
    e2e = {}
    if winners:
        vm_w, names_w = bench.build({**fixed, **{s.task: c for s, c in winners.items()}})
        d_runs, w_runs = [], []
        for _ in range(CONFIRM_ROUNDS):
            d_runs.append(bench.profile(vm_default))
            w_runs.append(bench.profile(vm_w))
        for s in states:
            s.default_us = statistics.median(_task_us(s.task, p, names0) for p in d_runs)
            w_us = statistics.median(_task_us(s.task, p, names_w) for p in w_runs)
            if s in winners and w_us < s.default_us * (1 - MARGIN):
                confirmed[s] = winners[s]
                s.best_us = w_us
            else:
                s.best, s.best_us = s.task.default, s.default_us
        if confirmed:
            vm_k = vm_w if len(confirmed) == len(winners) else bench.build(
                {**fixed, **{s.task: c for s, c in confirmed.items()}})[0]
            e2e = time_alternately({"default_ms": lambda: bench.latency(vm_default),
                                    "tuned_ms": lambda: bench.latency(vm_k)}, E2E_ROUNDS)
            e2e["measured"] = bench.measured
            if e2e["tuned_ms"] >= e2e["default_ms"]:
                say(f"  knobs rejected: the tuned build ran {e2e['tuned_ms']:.2f} ms end to end ({bench.measured}), "
                    f"the default {e2e['default_ms']:.2f} ms")
                e2e["rejected"] = len(confirmed)
                for s in confirmed:
                    s.best, s.best_us = s.task.default, s.default_us
                confirmed = {}
            else:
                say(f"  knobs confirmed end to end ({bench.measured}): {e2e['tuned_ms']:.2f} ms vs "
                    f"{e2e['default_ms']:.2f} ms default ({len(confirmed)} functions tuned)")

    # A task the budget never reached stays out of the records, so that a resumed run searches it; one with no
    # candidate at all is recorded (nothing is left to search).
    searched = [s for s in states if s.trials or not s.task.candidates]
    for s in searched:
        kept = s in confirmed
        entry = {"kind": s.task.kind, "config": config_to_dict(s.best) if kept else None,
                 "functions": sorted(s.task.names), "default_us": round(s.default_us, 3),
                 "best_us": round(s.best_us if kept else s.default_us, 3), "candidates": s.trials,
                 "measured": bench.measured, **bench.entry_extra}
        if s in winners and not kept:
            entry["rejected"] = config_to_dict(winners[s])
        functions[s.task.key] = entry
    records.write_knobs(functions)
    records.append_log({"knobs": {"functions": len(searched), "rounds": rounds, "trials": trials,
                                  "measured": bench.measured, "kept": len(confirmed), "candidates_won": len(winners),
                                  "end_to_end": e2e, "seconds": round(time.perf_counter() - t0, 1)}})
    summary.functions = len(searched)
    summary.tuned = len(confirmed)
    summary.trials = trials
    summary.rounds = rounds
    summary.gain_us = round(sum(s.default_us - s.best_us for s in confirmed), 1)
    summary.end_to_end = e2e
    summary.seconds = round(time.perf_counter() - t0, 1)
    return summary
