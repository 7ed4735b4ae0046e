"""Knob search on a remote device (``edgeavs tune --rpc-tracker/--rpc-key``).

A device has no VM profiler to time functions inside the model (TVM 0.27's Relax VM has none, and the
instrumentation of :mod:`edgeavs.tune.in_model` runs in this process), so here:

1. **Per function, on the device.** Each task's default and candidates (:func:`edgeavs.tune.knobs.candidates`)
   are built as single functions with the device's linker and timed there by MetaSchedule's ``RPCRunner``
   (the same path as MetaSchedule's own candidates: upload, random arguments, remote ``time_evaluator``);
   a candidate is a winner when it beats the default by :data:`~edgeavs.tune.knobs.MARGIN`. Tasks go heaviest
   first by their work (flops counted from their blocks: a device has no profile), within the budget.
2. **End to end, on the device.** The model is compiled twice for the target (the build ``edgeavs compile``
   makes, and the one ``compile --records`` makes with the winners), both libraries are loaded on the device
   and timed alternately; when the tuned build is not faster the winners are dropped and recorded as
   rejected, as on the host.

Records are written once, at the end, atomically; entries carry ``"measured": "device"``. On an emulated
device the timings mean nothing (tune says so); the run proves the path.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from edgeavs.tune.knobs import MARGIN, KnobSummary, KnobTask
from kernels.registry import config_from_dict, config_to_dict

E2E_ROUNDS = 3


def _flops(task: KnobTask) -> float:
    """The task's arithmetic per inference: float flops plus the integer ops a kernel declares (int8 convs)."""
    from edgeavs.compiler.breakdown import declared_work, prim_func_flops

    try:
        func = task.build(task.default)
        work = declared_work(func) or prim_func_flops(func)
        return float(work["flops"] + work.get("int_ops", 0)) * len(task.names)
    except Exception:  # noqa: BLE001 - a kernel without blocks counts 0
        return 0.0


def time_functions(funcs: list, tvm_target, device, builder) -> list[float | None]:
    """Seconds per call of each PrimFunc on the device (None: did not build or run)."""
    from edgeavs.tvm_api import IRModule
    from edgeavs.tvm_api import meta_schedule as ms

    inputs = [ms.builder.BuilderInput(IRModule({"main": f.with_attr("global_symbol", "main")}), tvm_target)
              for f in funcs]
    built = builder.build(inputs)
    runner = device.runner()
    slots, run_inputs = [], []
    for i, (f, b) in enumerate(zip(funcs, built)):
        if b.error_msg is None:
            slots.append(i)
            run_inputs.append(ms.runner.RunnerInput(b.artifact_path, "cpu",
                                                    ms.arg_info.ArgInfo.from_prim_func(f)))
    out: list[float | None] = [None] * len(funcs)
    for i, fut in zip(slots, runner.run(run_inputs) if run_inputs else []):
        res = fut.result()
        if res.error_msg is None and res.run_secs:
            out[i] = statistics.median(float(s) for s in res.run_secs)
    return out


def _end_to_end(device, tgt, winners: dict, build_args: dict) -> dict:
    """Compile the default build and the build with ``winners`` for ``tgt``, time both on the device."""
    import numpy as np

    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.compiler.build import compile_artifact
    from edgeavs.device.export import library_for
    from edgeavs.device.remote import open_session
    from edgeavs.tune.in_model import time_alternately
    from edgeavs.compiler.records import RecordsDir

    with tempfile.TemporaryDirectory(prefix="edgeavs-e2e-") as tmp:
        tmp = Path(tmp)
        rec = RecordsDir(tmp / "records")
        rec.create_or_resume(tgt)
        rec.write_knobs(winners)
        compile_artifact(tmp / "default", target=tgt, **build_args)
        compile_artifact(tmp / "tuned", target=tgt, records=rec.path, **build_args)
        libs = {}
        for name in ("default", "tuned"):  # distinct file names: both stay loaded in one server directory
            manifest = read_manifest(tmp / name)
            libs[name] = tmp / f"{name}-{library_for(manifest, device.spec.os)}"
            shutil.copyfile(tmp / name / library_for(manifest, device.spec.os), libs[name])
        arrays = [np.random.default_rng(0).standard_normal(i["shape"]).astype("float32")
                  for i in manifest["inputs"]]
        with open_session(device.spec) as session:  # one session: a server serves one at a time
            vms = {name: session.load_vm(path) for name, path in libs.items()}
            try:
                return time_alternately({f"{name}_ms": (lambda vm=vm: statistics.median(vm.time(*arrays)))
                                         for name, vm in vms.items()}, E2E_ROUNDS)
            finally:
                vms.clear()  # the remote modules hold the session open


def search(tasks: list[KnobTask], records, device, tgt, *, deadline: float, max_trials: int | None,
           build_args: dict, builder, log=None, on_round=None) -> KnobSummary:
    """Search ``tasks`` on ``device`` (a :class:`edgeavs.tune.remote.TuningDevice`) until ``deadline`` or
    ``max_trials``; ``build_args``: ``compile_artifact``'s model arguments (variant, resolution, checkpoint)
    for the end-to-end check; ``builder``: MetaSchedule's builder with the device's linker."""

    say = log or (lambda _m: None)
    summary = KnobSummary()
    t0 = time.perf_counter()
    functions = dict(records.read_knobs())
    fixed = {k: e for k, e in functions.items() if e.get("config") is not None}
    todo = [t for t in tasks if t.key not in functions]
    summary.resumed = len(tasks) - len(todo)
    todo.sort(key=lambda t: -_flops(t))
    tvm_target = tgt.to_tvm()
    winners, entries, per_task = {}, {}, []
    for task in todo:
        configs = [task.default] + list(task.candidates)
        if max_trials is not None:
            configs = configs[:max(0, max_trials - summary.trials) + 1]
        mean = statistics.mean(per_task) if per_task else 0.0
        if len(configs) < 2 or time.perf_counter() + mean > deadline:
            break
        ts = time.perf_counter()
        funcs, kept_cfgs = [], []
        for cfg in configs:
            try:
                funcs.append(task.build(cfg))
                kept_cfgs.append(cfg)
            except Exception:  # noqa: BLE001 - a config that does not apply to this function
                continue
        secs = time_functions(funcs, tvm_target, device, builder) if funcs else []
        summary.trials += len(configs) - 1
        summary.functions += 1
        per_task.append(time.perf_counter() - ts)
        timed = {c: s for c, s in zip(kept_cfgs, secs) if s is not None}
        t_def = timed.get(task.default)
        entry = {"kind": task.kind, "config": None, "functions": sorted(task.names),
                 "candidates": len(configs) - 1, "measured": "device"}
        if t_def is not None:
            best = min(timed, key=timed.get)
            entry.update(default_us=round(t_def * 1e6, 3), best_us=round(t_def * 1e6, 3))
            if best != task.default and timed[best] < t_def * (1 - MARGIN):
                winners[task.key] = {"kind": task.kind, "config": config_to_dict(best)}
                entry["best_us"] = round(timed[best] * 1e6, 3)
                entry["winner"] = config_to_dict(best)
        else:
            entry["error"] = "the default did not build or run on the device"
        entries[task.key] = entry
        if on_round is not None:
            on_round(len(configs) - 1, 0.0)
        say(f"  knobs {task.names[0]:<40} {task.kind:<12} {len(configs) - 1:2d} candidates on the device"
            + (f", winner {entry['best_us']:.1f} us vs {entry['default_us']:.1f}" if task.key in winners else ""))
    e2e = {}
    if winners:
        say(f"  end to end on the device: the default build against the build with {len(winners)} winners ...")
        e2e = _end_to_end(device, tgt, {**fixed, **winners}, build_args)
        if e2e["tuned_ms"] >= e2e["default_ms"]:
            e2e["rejected"] = len(winners)
            say(f"  knobs rejected: {e2e['tuned_ms']:.2f} ms tuned vs {e2e['default_ms']:.2f} ms default")
            winners = {}
        else:
            say(f"  knobs confirmed on the device: {e2e['tuned_ms']:.2f} ms vs {e2e['default_ms']:.2f} ms")
    for key, entry in entries.items():
        won = entry.pop("winner", None)
        if key in winners:
            entry["config"] = winners[key]["config"]
            config_from_dict(entry["kind"], entry["config"])  # a config we write is one compile can read
        elif won is not None:
            entry["rejected"] = won
            entry["best_us"] = entry["default_us"]
        functions[key] = entry
    records.write_knobs(functions)
    records.append_log({"knobs": {"functions": summary.functions, "trials": summary.trials,
                                  "kept": len(winners), "measured": "device", "end_to_end": e2e,
                                  "seconds": round(time.perf_counter() - t0, 1)}})
    summary.tuned = len(winners)
    summary.end_to_end = e2e
    summary.seconds = round(time.perf_counter() - t0, 1)
    return summary
