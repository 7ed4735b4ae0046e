"""``edgeavs tune``: spend a tuning budget where the latency is, keep the records safe.

The loop (our own, not MetaSchedule's task scheduler, so that the budget, the priorities and
the on-disk state are ours):

1. import the model as compile does (``edgeavs.compiler.build.prepare``) and run the pipeline up to
   ``edgeavs-schedules`` (``edgeavs.compiler.pipeline.split_for_tuning``): the fused TIR
   functions are the tasks; functions that carry an edgeavs schedule are marked scheduled
   and are searched through their own knob space, not MetaSchedule's;
2. profile the untuned build once (VM call instrumentation): each task's share of latency;
3. knob search first: the functions our schedules and fusion kernels cover. On the host
   (``edgeavs.tune.in_model``) every candidate is timed inside the compiled model (one build times
   one candidate of every function); on an RPC device (``edgeavs.tune.remote_knobs``) each
   function's candidates are timed on the device one by one; for a device target without a device
   (``edgeavs.tune.projected``) the host's search runs on projected cycles of the emulated AArch64
   build, the records marked projected. Either way a winner is kept only
   when the whole model gets faster end to end. It gets the share of the remaining budget that its
   functions have of the profiled latency, within ``KNOB_SHARE`` (all of it when MetaSchedule has
   no task); every candidate counts as a trial;
4. then, round after round, give a few trials to the MetaSchedule task with the largest remaining share that
   has not converged (two rounds without a 2 % gain), until ``trials`` or ``time_budget``
   runs out; after every round the database is published atomically (edgeavs.compiler.records), so
   Ctrl-C or a crash leaves a valid database and the next run continues from it. A task under
   ``MIN_TASK_SHARE`` of the latency is left out: no schedule of it can pay for a trial;
5. finally (host) the untuned build and the build ``edgeavs compile --records`` makes are timed
   alternately, end to end; the budget keeps ``E2E_RESERVE`` builds' worth of time for it.

Timing noise decides which measured candidate is best, so "same seed, same trials" gives the
same candidates tried, not always the same winner.

Every stage runs under :func:`stage`: an unexpected exception in it (a bug, or TVM failing) becomes one
:class:`~edgeavs.errors.EdgeAVSError` line, ``tune: <stage> failed: <type>: <first line>``, chained to the
original (``--debug`` shows its traceback). Ctrl-C is not caught: what was published stays, and the next
run continues from it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeavs.errors import EdgeAVSError
from edgeavs.compiler.records import RecordsDir

TRIALS_PER_ROUND = 8
KNOB_SHARE = (0.5, 0.9)  # bounds on the knob search's share of the budget when MetaSchedule has tasks too
CONVERGED_GAIN = 0.02
E2E_RESERVE = 3.0
"""The budget keeps this many builds' worth of time for the closing end-to-end check."""
MIN_TASK_SHARE = 0.001
"""A MetaSchedule task under this share of the profiled latency is not searched (unless ``only`` names it)."""
BUILDER_TIMEOUT_S = 120  # the pass form's 30 s times out every build on 2 cores (TVM-NOTES)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else ""


@contextlib.contextmanager
def stage(name: str):
    """Run one stage of tune: an unexpected exception becomes ``EdgeAVSError("tune: <name> failed: <type>:
    <first line>")`` from it. An :class:`EdgeAVSError` (already one line, naming what is wrong) passes
    unchanged, and so do ``KeyboardInterrupt`` and ``SystemExit`` (not ``Exception``): Ctrl-C leaves the records
    as last published."""
    try:
        yield
    except EdgeAVSError:
        raise
    except Exception as exc:
        detail = _first_line(exc)
        raise EdgeAVSError(f"tune: {name} failed: {type(exc).__name__}{': ' + detail if detail else ''}") from exc


METASCHEDULE_LOGGER = "edgeavs.tune.metaschedule"
"""Where MetaSchedule's per-task messages go (search strategy, builder, runner): a library logger, silent
unless the application configures logging."""
logging.getLogger(METASCHEDULE_LOGGER).addHandler(logging.NullHandler())


def tune_contexts(extracted, *, seed: int, num_threads: int) -> list:
    """MetaSchedule tuning contexts for ``extracted`` tasks, as ``ms.relax_integration.
    extracted_tasks_to_tune_contexts`` makes them (post-order-apply space, evolutionary search, the same
    per-task seeds, already-scheduled tasks skipped), but logging to :data:`METASCHEDULE_LOGGER`.

    TVM's helper configures the process's logging itself (``ms.logging.create_loggers``): it calls
    ``logging.config.dictConfig``, which closes every handler in the process (the application's, pytest's),
    and it names the handlers already on the ``tvm.s_tir.meta_schedule`` logger in that config, so one
    without a name (``addHandler(StreamHandler())`` by anyone earlier in the process) makes every later
    call fail with ``AttributeError: 'NoneType' object has no attribute 'format'``, and a named one of
    someone else's with ``ValueError: Unable to configure logger``. It also logged to ``sys.stdout`` (mixed
    into ``tune --json``) and kept files open in the deleted scratch directory. Nothing global is
    configured here, so tune runs the same however often it is called in one process."""
    from edgeavs.tvm_api import meta_schedule as ms

    logger = logging.getLogger(METASCHEDULE_LOGGER)
    contexts = []
    for task, rand_state in zip(extracted, ms.utils.fork_seed(seed, n=len(extracted))):
        if task.mod.attrs.get("tirx.is_scheduled", False):
            continue  # as TVM's helper: nothing to search
        contexts.append(ms.TuneContext(mod=task.dispatched[0], target=task.target,
                                       space_generator="post-order-apply", search_strategy="evolutionary",
                                       task_name=task.task_name, logger=logger, rand_state=rand_state,
                                       num_threads=num_threads).clone())
    return contexts


def metaschedule_round(context, done: int, n: int, *, work_dir, builder, runner, database) -> None:
    """``n`` more trials (``done`` so far) of one task's search, measured into ``database``."""
    from edgeavs.tvm_api import meta_schedule as ms

    ms.tune_tasks(tasks=[context], task_weights=[1.0], work_dir=str(work_dir),
                  max_trials_global=done + n, max_trials_per_task=done + n, num_trials_per_iter=n,
                  builder=builder, runner=runner, database=database, cost_model="xgb",
                  task_scheduler="round-robin")


def parse_duration(text) -> float:
    """``90``, ``90s``, ``30m``, ``1h``, ``1h30m`` -> seconds."""
    import re

    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", s)
    if not parts or "".join(f"{a}{b}" for a, b in parts) != s.replace(" ", ""):
        raise EdgeAVSError(f"--time-budget {text!r}: expected e.g. 90s, 30m, 1h30m")
    return sum(float(a) * {"h": 3600, "m": 60, "s": 1}[b] for a, b in parts)


@dataclass
class Task:
    name: str
    context: object  # ms.TuneContext
    calls: int
    profiled_us: float  # total per inference in the untuned build
    best_us: float | None = None  # best measured time of one call
    trials: int = 0
    stale_rounds: int = 0
    history: list = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.stale_rounds >= 2

    def current_us(self) -> float:
        if self.best_us is None:
            return self.profiled_us
        return min(self.profiled_us, self.best_us * self.calls)


def _task_func(task):
    mod = task.dispatched[0]
    return mod["main"] if "main" in [gv.name_hint for gv in mod.get_global_vars()] else mod


def _scheduled_by_edgeavs(func) -> bool:
    attrs = getattr(func, "attrs", None)
    return attrs is not None and ("edgeavs.schedule" in attrs or "edgeavs.kernel" in attrs)


def use_threads(n: int, log=None) -> int:
    """Size TVM's thread pool for timing: ``n`` threads (the target's cores). TVM sizes the pool once, on first
    use, from ``TVM_NUM_THREADS`` — without it from the *physical* cores on x86, 1 on a 2-vCPU machine, so
    knobs would be chosen for one thread and deployed on two. Returns the pool's size; when the pool was already
    started with another size (TVM ran in this process before), says so through ``log``."""
    import os

    from edgeavs.tvm_api import tvm

    os.environ["TVM_NUM_THREADS"] = str(n)
    got = int(tvm.get_global_func("runtime.NumThreads")())
    if got != n and log is not None:
        log(f"  note: timing with {got} TVM threads, not the target's {n}: this process started TVM's thread "
            "pool before tune (run tune in a fresh process)")
    return got


def _profile(fused, tvm_target, inputs) -> dict:
    """Per-function microseconds per inference in the untuned build (instrumented; for shares)."""
    from edgeavs.tune.in_model import build_vm, profile_median
    from edgeavs.tvm_api import tvm

    return profile_median(build_vm(fused, tvm_target), [tvm.runtime.tensor(a, tvm.cpu()) for a in inputs], 5)


def _end_to_end(mod, tvm_target, params, records, inputs, rounds: int = 5, steps=None,
                precision_kw: dict | None = None) -> dict:
    """The untuned build and the build ``edgeavs compile --records`` makes, timed alternately (median ms).
    ``steps``: a :class:`~edgeavs.tune.progress.Steps` of 3 (the two builds, the timing)."""
    from edgeavs.compiler.pipeline import run_pipeline
    from edgeavs.tune.in_model import compile_vm, latency_s, time_alternately
    from edgeavs.tvm_api import tvm

    step = steps.step if steps is not None else (lambda _name: contextlib.nullcontext())
    knobs = records.read_knobs()
    builds = {}
    for name, kw in (("untuned_ms", {}), ("tuned_ms", {"records": str(records.path),
                                                       "schedule_configs": {"functions": knobs} if knobs else None})):
        with step(f"the {name.split('_')[0]} build"):
            lowered = run_pipeline(mod, tvm_target, params, **kw, **(precision_kw or {}))[0]
            builds[name] = compile_vm(lowered, tvm_target)
    args = [tvm.runtime.tensor(a, tvm.cpu()) for a in inputs]
    with step("timing both, alternately"):
        return time_alternately({name: (lambda vm=vm: latency_s(vm, args)) for name, vm in builds.items()},
                                rounds)


def _best_us(db, task) -> float | None:
    if not db.has_workload(task.context.mod):
        return None
    recs = db.get_top_k(db.commit_workload(task.context.mod), 1)
    if not recs:
        return None
    secs = [float(s) for s in recs[0].run_secs] if recs[0].run_secs else []
    return 1e6 * sum(secs) / len(secs) if secs else None


def tune(out, *, target="host", variant=None, resolution="224", checkpoint=None,
         trials: int | None = None, time_budget: float = 1800.0, seed: int = 0,
         rpc_tracker: str | None = None, rpc_key: str | None = None, only=(), log=None,
         progress: bool = True, remote_os: str | None = None, precision: str = "fp32", calibration=None,
         calibration_frames: int | None = None) -> dict:
    """Tune LightAVSeg for ``target`` into the records directory ``out``. Returns a summary.

    ``only``: substrings of task (TIR function) names; when given, only those tasks are
    searched (the profile still covers the whole model). ``precision``: ``fp32`` or ``int8`` (calibrated on
    ``calibration`` as ``compile --precision int8`` is; the int8 kernels' knobs are searched like the others and
    the records are marked int8). Every failure is an :class:`EdgeAVSError`
    (see :func:`stage`); Ctrl-C raises ``KeyboardInterrupt`` with the records as last published.
    """
    from edgeavs.compiler import pipeline
    from edgeavs.compiler.build import prepare
    from edgeavs.compiler.frontend import example_inputs
    from edgeavs.targets import Target, load_target
    from edgeavs.tvm_api import meta_schedule as ms

    from edgeavs.tune.progress import Steps, bar_safe, enabled, ticking

    say = bar_safe(log) or (lambda _m: None)
    bars = enabled(progress)  # the bars: on stderr, only on a terminal
    t_start = time.perf_counter()
    tgt = target if isinstance(target, Target) else load_target(target)
    if (rpc_tracker is None) != (rpc_key is None):
        raise EdgeAVSError("--rpc-tracker and --rpc-key go together")
    projection = None  # a target that is not this machine, without a device: projected cycles (tune.projected)
    if not tgt.is_host and rpc_tracker is None:
        from edgeavs.tune.projected import require_projection

        with stage("projection setup"):
            projection = require_projection(tgt)
    remote = None
    if rpc_tracker is not None:  # checked before any compilation: a bad address fails fast
        from edgeavs.tune.remote import connect_tuning_device

        with stage("device connection"):
            remote = connect_tuning_device(tgt, rpc_tracker, rpc_key, remote_os=remote_os, log=say)
    if precision not in ("fp32", "int8"):
        raise EdgeAVSError(f"--precision {precision!r}: tune searches fp32 and int8 builds")
    from edgeavs.compiler import calibrate

    calibrate.check_arguments(precision, calibration, calibration_frames, what="search")
    if precision == "int8":
        from edgeavs.compiler.build import check_precision

        check_precision(precision, tgt)
        calibrate.find_task(calibration)
    records = RecordsDir(out)
    with stage("records setup"):
        if projection is not None:
            from edgeavs.tune.projected import records_cost

            resumed = records.create_or_resume(tgt, cost=records_cost(projection), precision=precision)
        else:
            resumed = records.create_or_resume(tgt, precision=precision)
    with stage("model import"), Steps("model import", 2, bars) as steps:
        with steps.step("the PyTorch model"):
            source = prepare(variant, checkpoint, resolution, seed=0)  # compile's opening step
        variant, (h, w) = source.variant, source.resolution
        say(f"tuning LightAVSeg-{variant} {h}x{w} for {tgt.name} into {records.path}"
            f"{' (continuing)' if resumed else ''}")
        with steps.step("torch.export and the Relax import"):
            mod, params, _, _ = source.import_relax("export")
        tvm_target = tgt.to_tvm()
    precision_kw = {}
    if precision == "int8":
        with stage("calibration"):
            clips, calib_info = calibrate.calibration_inputs(calibration, (h, w),
                                                             calibration_frames or calibrate.DEFAULT_FRAMES)
            front = pipeline.run_pipeline(mod, tvm_target, params, stop="edgeavs-fusion")[0]
            plan = calibrate.plan(front, clips, log=say, calibration=calib_info)
            del front
        precision_kw = {"precision": "int8", "int8_plan": plan}
    from edgeavs.tune import knobs as knob_search

    with tempfile.TemporaryDirectory(prefix="edgeavs-tune-") as scratch:
        scratch = Path(scratch)
        with stage("task preparation"), Steps("task preparation", 4 if tgt.is_host else 3, bars) as steps:
            # folded: where the in-model knob search's builds start; pre: fused, not yet scheduled (knob
            # candidates are scheduled from it); fused: with the default knobs (tasks and the profile)
            with steps.step("the pipeline up to the schedules"):
                folded, pre, fused = pipeline.split_for_tuning(mod, tvm_target, params, **precision_kw)
            with steps.step("MetaSchedule's task extraction"):
                records.seed_workdir(scratch)
                db = ms.database.JSONDatabase(work_dir=str(scratch))
                # Functions with an edgeavs schedule (or a hand kernel) are searched through their own
                # knobs, not MetaSchedule's space: only what our schedules left is a task here.
                all_tasks = ms.relax_integration.extract_tasks(fused, tvm_target)
                extracted = [t for t in all_tasks if not _scheduled_by_edgeavs(_task_func(t))]
                contexts = tune_contexts(extracted, seed=seed,
                                         num_threads=max(1, tgt.num_cores if tgt.is_host else 2))
            by_name = {t.task_name: t for t in extracted}
            build_s = 0.0  # one build and profile of the model: what the closing end-to-end check costs, about
            threads = None
            if tgt.is_host:
                threads = use_threads(tgt.num_cores, say)
                inputs = [a.numpy() for a in example_inputs(h, w)]
                tb = time.perf_counter()
                with steps.step("one untuned build, profiled"):
                    prof = _profile(fused, tvm_target, inputs)
                build_s = time.perf_counter() - tb
            else:
                prof = {}
            tasks, negligible = [], 0
            total_profiled = sum(prof.values())
            for ctx in contexts:
                if only and not any(o in ctx.task_name for o in only):
                    continue
                if prof and not only and prof.get(ctx.task_name, 0.0) < MIN_TASK_SHARE * total_profiled:
                    negligible += 1  # its whole time is below the timing noise of the model: no trial can pay
                    continue
                ext = by_name[ctx.task_name]
                tasks.append(Task(ctx.task_name, ctx, calls=int(ext.weight),
                                  profiled_us=prof.get(ctx.task_name, 1.0)))
            if projection is not None and tasks:
                say(f"  {len(tasks)} MetaSchedule tasks left at TVM's defaults: without a device only edgeavs's "
                    f"knobs are searched, by projected {projection.name} cycles (edgeavs.tune.projected)")
                tasks = []
            for t in tasks:
                t.best_us = _best_us(db, t)
            # Our schedules' and kernels' knob spaces (edgeavs.tune.knobs), timed in this process: host only.
            with steps.step("the knob spaces"):
                ktasks = knob_search.knob_tasks(pre, fused, tvm_target, prof, only=only)
        if only and not tasks and not ktasks:
            raise EdgeAVSError(f"--only {', '.join(only)}: no tuning task matches; tasks are: "
                               f"{', '.join(sorted(c.task_name for c in contexts))}")
        total_profiled = total_profiled or float(len(tasks))
        if not resumed:
            with stage("records publication"):
                records.append_log({"profile_us": {k: round(v, 1) for k, v in sorted(prof.items())},
                                    "tasks": [t.name for t in tasks]})
        if prof:
            say(f"  {len(tasks)} MetaSchedule tasks ({len(all_tasks) - len(extracted)} functions carry edgeavs "
                f"schedules, {negligible} left out: each under {MIN_TASK_SHARE:.1%} of the latency); "
                f"untuned latency {total_profiled / 1e3:.2f} ms (instrumented)")
        elif projection is None:
            say(f"  {len(tasks)} MetaSchedule tasks")
        bar = None
        if bars:
            from tqdm import tqdm

            bar = tqdm(total=trials, unit="trial", desc="tune", file=sys.stderr, dynamic_ncols=True)
        ticker = contextlib.ExitStack()  # closed with the bar (idempotent)
        ticker.enter_context(ticking(bar))  # a round (a build, or MetaSchedule's batch) takes tens of seconds

        def show(n: int, estimate_ms: float | None) -> None:
            if bar is not None:
                bar.update(n)
                left = f"{max(0, time_budget - (time.perf_counter() - t_start)) / 60:.1f}m"
                if estimate_ms is None:  # no profile on a remote device: no estimate
                    bar.set_postfix(left=left)
                else:
                    bar.set_postfix(best_ms=f"{estimate_ms:.2f}", left=left)

        # Knob tasks first: they cover most of the latency. Their share of the time and trials: their share of
        # the profiled latency (within KNOB_SHARE) when MetaSchedule has tasks too, else all of it.
        projected_untuned = None
        covered = sum(t.profiled_us for t in ktasks) / total_profiled if prof else 0.0
        share = min(KNOB_SHARE[1], max(KNOB_SHARE[0], covered)) if tasks else 1.0
        from edgeavs.tune.remote import build_candidate

        try:
            if bar is not None:
                bar.set_postfix_str("knob search: the default build first")
            with stage("knob search"):
                builder = ms.builder.LocalBuilder(max_workers=max(1, min(2, tgt.num_cores)),
                                                  timeout_sec=BUILDER_TIMEOUT_S,
                                                  **(remote.builder_options() if remote
                                                     else {"f_build": build_candidate}))
                if tgt.is_host:
                    from edgeavs.tune import in_model

                    say(f"  {len(ktasks)} edgeavs functions (by workload) to search through their knob spaces, "
                        "timed inside the model")
                    left = max(0.0, t_start + time_budget - time.perf_counter() - E2E_RESERVE * build_s)
                    knob_run = in_model.search(
                        ktasks, records, folded, tvm_target, inputs, deadline=time.perf_counter() + share * left,
                        max_trials=None if trials is None else int(round(share * trials)), log=say,
                        bench=in_model.ModelBench(folded, tvm_target, inputs, precision_kw=precision_kw),
                        on_round=lambda n, saved_us: show(n, (total_profiled - saved_us) / 1e3))
                elif projection is not None:
                    from edgeavs.tune import in_model
                    from edgeavs.tune.projected import ProjectedBench, input_specs

                    say(f"  {len(ktasks)} edgeavs functions (by workload) to search through their knob spaces, "
                        f"ranked by projected {projection.name} cycles of the emulated AArch64 build (no device)")
                    left = max(0.0, t_start + time_budget - time.perf_counter())
                    with ProjectedBench(folded, tgt, projection, input_specs(h, w),
                                        precision_kw=precision_kw) as pbench:
                        knob_run = in_model.search(
                            ktasks, records, folded, tvm_target, None, deadline=time.perf_counter() + share * left,
                            max_trials=None if trials is None else int(round(share * trials)), log=say,
                            bench=pbench, on_round=lambda n, saved_us: show(n, None))
                        if pbench.first is not None:
                            projected_untuned = pbench.first["total"]["ms"]
                else:
                    from edgeavs.tune import remote_knobs

                    say(f"  {len(ktasks)} edgeavs functions (by workload) to search through their knob spaces, "
                        "timed on the device")
                    left = max(0.0, t_start + time_budget - time.perf_counter())
                    knob_run = remote_knobs.search(
                        ktasks, records, remote, tgt, deadline=time.perf_counter() + share * left,
                        max_trials=None if trials is None else int(round(share * trials)), log=say,
                        build_args={"variant": variant, "resolution": f"{h}x{w}", "checkpoint": checkpoint},
                        builder=builder, on_round=lambda n, _saved: show(n, None))
        except BaseException:
            ticker.close()
            if bar is not None:
                bar.close()
            raise

        def estimate_ms():
            gained = sum(t.profiled_us - t.current_us() for t in tasks) + knob_run.gain_us
            return (total_profiled - gained) / 1e3

        done_trials, rounds, round_secs = knob_run.trials, 0, []
        try:
            with stage("MetaSchedule tuning"):
                if remote is not None:  # edgeavs.tune.remote: candidates linked and measured on the device
                    runner = remote.runner()
                else:
                    runner = ms.runner.LocalRunner()
            if remote is not None:
                with stage("records publication"):
                    records.append_log({"device": remote.info})
            while True:
                left = time_budget - (time.perf_counter() - t_start) - E2E_RESERVE * build_s
                if trials is not None and done_trials >= trials:
                    break
                mean_round = sum(round_secs) / len(round_secs) if round_secs else 0.0
                if left <= 0 or (round_secs and left < mean_round):
                    break
                live = [t for t in tasks if not t.converged]
                if not live:
                    break
                task = max(live, key=lambda t: (t.current_us(), -t.trials))
                n = TRIALS_PER_ROUND if trials is None else min(TRIALS_PER_ROUND, trials - done_trials)
                t0 = time.perf_counter()
                before = task.best_us
                if bar is not None and rounds == 0:
                    bar.set_postfix_str(f"MetaSchedule: the first round ({task.name})")
                with stage("MetaSchedule tuning"):
                    metaschedule_round(task.context, task.trials, n, work_dir=scratch, builder=builder,
                                       runner=runner, database=db)
                    task.best_us = _best_us(db, task)
                task.trials += n
                done_trials += n
                rounds += 1
                gain = (before - task.best_us) / before if before and task.best_us else 1.0
                task.stale_rounds = task.stale_rounds + 1 if gain < CONVERGED_GAIN else 0
                round_secs.append(time.perf_counter() - t0)
                with stage("records publication"):
                    records.commit_from(scratch)
                    records.append_log({"round": rounds, "task": task.name, "trials": n,
                                        "best_us": task.best_us, "estimate_ms": round(estimate_ms(), 3),
                                        "seconds": round(round_secs[-1], 1)})
                show(n, estimate_ms() if prof else None)
        finally:
            ticker.close()
            if bar is not None:
                bar.close()
    end_to_end = None
    with stage("records check"):
        database = records.validate()
    if tgt.is_host and (knob_run.tuned or database["records"]):
        say("  end to end: the untuned build against the build compile --records makes ...")
        with stage("end-to-end check"), Steps("end to end", 3, bars) as steps:
            end_to_end = _end_to_end(mod, tvm_target, params, records, inputs, steps=steps,
                                     precision_kw=precision_kw)
        with stage("records publication"):
            records.append_log({"end_to_end": end_to_end})
        say(f"  end to end: untuned {end_to_end['untuned_ms']:.2f} ms, tuned {end_to_end['tuned_ms']:.2f} ms")
    summary = {"records": str(records.path), "target": tgt.name, "variant": variant,
               "resolution": [h, w], "tasks": len(tasks), "rounds": rounds, "trials": done_trials,
               "untuned_ms": round(total_profiled / 1e3, 3) if prof else None,
               "estimate_ms": round(estimate_ms(), 3) if prof else None,
               "seconds": round(time.perf_counter() - t_start, 1), "resumed": resumed,
               "database": database, "knobs": knob_run.as_dict(), "end_to_end": end_to_end,
               "threads": threads}
    if remote is not None:
        summary["device"] = remote.info
    if projection is not None:  # what the search saw: projected, not measured
        e2e_p = knob_run.end_to_end or {}
        summary["projected"] = {"cpu": projection.name, "untuned_ms": projected_untuned,
                                "tuned_ms": (e2e_p.get("default_ms") if e2e_p.get("rejected") else
                                             e2e_p.get("tuned_ms", projected_untuned)),
                                "cost": records.info()["cost"]}
    return summary
