"""Run fuzz cases of one kind in a child process, and watch it from the parent.

Child (``python -m tests.fuzz.runner --kind K --seed S --cases N --seeds DIR --out RESULTS.jsonl``): for each case
``i`` it appends ``{"event": "start", "i": i}`` to RESULTS.jsonl (flushed) *before* the case, then builds the case's
input from ``random.Random(f"{kind}/{seed}/{i}")``, runs the entry point under a per-case alarm and appends the
outcome:

* ``accepted``: the entry point returned;
* ``clean``: :class:`~edgeavs.errors.EdgeAVSError` with a non-empty one-line message;
* ``bad``: anything else (another exception type, a multi-line or empty message, the alarm: a hang), with the
  exception type, message, the library frame that raised it (``edgeavs/...py:line``) and the mutation.

Parent (:func:`run_kind`): starts the child, and when it dies of a signal, exits early, or stops making progress
(a hang in C code, where the alarm cannot interrupt), the case it started last is recorded as ``bad`` (signal name
and the child's faulthandler stack) and a new child continues with the next case.

One case again, with its traceback: ``python -m tests.fuzz.runner --kind K --seed S --case I --seeds DIR``
(``--keep DIR`` leaves the input there).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASE_TIMEOUT_S = 20.0
MEMORY_LIMIT = 8 << 30
"""Address-space cap of a child (an input that makes the library allocate without bound fails as MemoryError
instead of taking the machine)."""


class CaseTimeout(BaseException):
    """The per-case alarm (a BaseException, so no ``except Exception`` in the library swallows it)."""


def _on_alarm(signum, frame):
    raise CaseTimeout()


def _where(tb) -> tuple[str, str]:
    """(the deepest frame in the library — edgeavs/, kernels/, cli.py — and the innermost frame) as path:line."""
    frames = traceback.extract_tb(tb)
    lib, inner = "", ""
    for fr in frames:
        p = Path(fr.filename)
        try:
            rel = p.resolve().relative_to(REPO).as_posix()
        except ValueError:
            rel = None
        if rel and (rel.startswith("edgeavs/") or rel.startswith("kernels/") or rel == "cli.py"):
            lib = f"{rel}:{fr.lineno} ({fr.name})"
        inner = f"{rel or p.name}:{fr.lineno} ({fr.name})"
    return lib, inner


def classify(exc: BaseException | None, timeout_s: float) -> dict:
    from edgeavs.errors import EdgeAVSError

    if exc is None:
        return {"outcome": "accepted"}
    if isinstance(exc, EdgeAVSError):
        msg = str(exc)
        if msg.strip() and "\n" not in msg and "\r" not in msg:
            return {"outcome": "clean", "message": msg[:300]}
        why = "empty message" if not msg.strip() else "multi-line message"
        lib, inner = _where(exc.__traceback__)
        return {"outcome": "bad", "type": f"EdgeAVSError ({why})", "message": msg[:500], "where": lib,
                "innermost": inner}
    if isinstance(exc, CaseTimeout):
        lib, inner = _where(exc.__traceback__)
        return {"outcome": "bad", "type": f"hang (> {timeout_s:g} s)", "message": "", "where": lib,
                "innermost": inner}
    lib, inner = _where(exc.__traceback__)
    return {"outcome": "bad", "type": f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", ""),
            "message": m_short(str(exc)), "where": lib, "innermost": inner,
            "traceback": "".join(traceback.format_exception(exc))[-3000:]}


def m_short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


def case_rng(kind: str, seed: int, i: int) -> random.Random:
    return random.Random(f"{kind}/{seed}/{i}")


def run_case(kind: str, seed: int, i: int, seeds_dir: Path, case_dir: Path, timeout_s: float) -> dict:
    from tests.fuzz.seeds import seed_files
    from tests.fuzz.targets import TARGETS

    target = TARGETS[kind]
    rng = case_rng(kind, seed, i)
    seed_path = rng.choice(seed_files(seeds_dir, target.seed_kind))
    path, desc = target.make(rng, seed_path, case_dir)
    exc = None
    import faulthandler

    faulthandler.disable()
    faulthandler.enable()  # again: TVM installs its own SIGSEGV handler (called after ours) when it is imported
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    t0 = time.perf_counter()
    try:
        target.run(path)
    except BaseException as e:  # noqa: BLE001 - classifying every outcome is the point
        if isinstance(e, KeyboardInterrupt):
            raise
        exc = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    result = classify(exc, timeout_s)
    result.update({"i": i, "desc": desc, "seconds": round(time.perf_counter() - t0, 3)})
    return result


def _limit_memory() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def child_main(args) -> int:
    import faulthandler

    faulthandler.enable()
    os.environ.setdefault("TVM_NUM_THREADS", "1")
    _limit_memory()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    import warnings

    warnings.simplefilter("ignore")
    from tests.fuzz.targets import TARGETS

    TARGETS[args.kind].warm()  # the imports, outside the timed cases
    seeds_dir = Path(args.seeds)
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{args.kind}-", dir=args.work))
    out = open(args.out, "a", buffering=1)
    stop = args.start + args.cases
    try:
        for i in range(args.start, stop):
            out.write(json.dumps({"event": "start", "i": i}) + "\n")
            out.flush()
            case_dir = work / f"case-{i}"
            try:
                result = run_case(args.kind, args.seed, i, seeds_dir, case_dir, args.timeout)
            except CaseTimeout:  # the alarm fired between cases
                result = {"outcome": "bad", "type": "hang (> timeout)", "i": i, "desc": "", "message": ""}
            if result["outcome"] == "bad" and args.crashers:
                keep = Path(args.crashers) / f"{args.kind}-seed{args.seed}-case{i}"
                if not keep.exists() and case_dir.exists():
                    shutil.copytree(case_dir, keep)
                    result["kept"] = str(keep)
            shutil.rmtree(case_dir, ignore_errors=True)
            out.write(json.dumps({"event": "done", **result}, default=str) + "\n")
            out.flush()
        out.write(json.dumps({"event": "end"}) + "\n")
    finally:
        out.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


# ------------------------------------------------------------------ the parent side

def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by the child's death
    return out


def run_kind(kind: str, seed: int, cases: int, seeds_dir, work_dir, timeout_s: float = CASE_TIMEOUT_S,
             crashers=None, stall_s: float | None = None, max_restarts: int = 30, jobs: int = 1) -> dict:
    """Run cases ``0 .. cases-1`` of ``kind`` in child processes (``jobs`` of them at a time, each a contiguous
    range of cases); returns the summary: counts, the bad cases, seconds."""
    import concurrent.futures

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = max(1, min(jobs, cases))
    bounds = [cases * k // jobs for k in range(jobs + 1)]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        parts = list(pool.map(lambda k: _run_range(kind, seed, bounds[k], bounds[k + 1], seeds_dir, work_dir,
                                                   timeout_s, crashers, stall_s or timeout_s + 30.0,
                                                   max_restarts, tag=f"{kind}-seed{seed}-part{k}"),
                              range(jobs)))
    done: dict[int, dict] = {}
    for part in parts:
        done.update(part[0])
    bad = [done[i] for i in sorted(done) if done[i]["outcome"] == "bad"]
    counts = {o: sum(1 for e in done.values() if e["outcome"] == o) for o in ("accepted", "clean", "bad")}
    return {"kind": kind, "seed": seed, "cases": cases, "run": len(done), **counts, "bad_cases": bad,
            "seconds": round(time.perf_counter() - t0, 1), "restarts": sum(p[1] for p in parts),
            "slowest": max(done.values(), key=lambda e: e.get("seconds", 0), default={}).get("seconds")}


def _run_range(kind, seed, lo, hi, seeds_dir, work_dir: Path, timeout_s, crashers, stall_s, max_restarts, tag):
    """Cases ``lo .. hi-1`` in a child; a new child after each case that killed or hung one."""
    results = work_dir / f"{tag}.jsonl"
    if results.exists():
        results.unlink()
    done: dict[int, dict] = {}
    start, restarts = lo, 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep), "PYTHONFAULTHANDLER": "1"}
    from tests.fuzz.targets import TARGETS

    per_child = TARGETS[kind].per_child or hi - lo
    while start < hi:
        stop = min(hi, start + per_child)
        cmd = [sys.executable, "-m", "tests.fuzz.runner", "--kind", kind, "--seed", str(seed), "--start",
               str(start), "--cases", str(stop - start), "--seeds", str(seeds_dir), "--out", str(results),
               "--timeout", str(timeout_s), "--work", str(work_dir)]
        if crashers:
            cmd += ["--crashers", str(crashers)]
        log = work_dir / f"{tag}-from{start}.log"
        with open(log, "wb") as logf:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT)
            last_size, last_change, hung = -1, time.monotonic(), False
            while proc.poll() is None:
                time.sleep(0.1)
                size = results.stat().st_size if results.exists() else 0
                if size != last_size:
                    last_size, last_change = size, time.monotonic()
                elif time.monotonic() - last_change > stall_s:
                    hung = True
                    proc.kill()
                    proc.wait()
                    break
        events = _read_events(results)
        started = None
        for e in events:
            if e.get("event") == "start":
                started = e["i"]
            elif e.get("event") == "done":
                done[e["i"]] = e
        if all(i in done for i in range(start, stop)):
            start = stop
            continue
        rc = proc.returncode
        if started is None or started in done:
            # died before its first case or between cases: nothing to blame on a case
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"fuzz child for {kind} exited with {rc} outside a case:\n{tail}")
        tail = log.read_text(errors="replace")[-2500:]
        if rc is not None and rc > 0 and "Traceback (most recent call last)" in tail:
            raise RuntimeError(f"fuzz child for {kind} failed (a harness error, not a finding):\n{tail}")
        why = (f"hang (no progress in {stall_s:g} s; killed)" if hung
               else _signal_name(rc) if rc < 0 else f"child exited with status {rc}")
        done[started] = {"event": "done", "i": started, "outcome": "bad", "type": why, "message": "",
                         "where": _crash_frame(log.read_text(errors="replace")), "innermost": "",
                         "desc": _describe_case(kind, seed, started, seeds_dir), "child_log_tail": tail}
        restarts += 1
        start = started + 1
        if restarts > max_restarts:
            break
    return done, restarts


def _crash_frame(log: str) -> str:
    """Where a child died: the innermost library frame of the faulthandler dump (``edgeavs/...py:line``) and the
    first native frames of TVM's crash report, when the child printed them."""
    import re

    lib, native = "", []
    for line in log.splitlines():
        py = re.search(r'File "([^"]+)", line (\d+) in (\S+)', line)
        if py and not lib:
            try:
                rel = Path(py.group(1)).resolve().relative_to(REPO).as_posix()
            except ValueError:
                rel = ""
            if rel.startswith(("edgeavs/", "kernels/")) or rel == "cli.py":
                lib = f"{rel}:{py.group(2)} ({py.group(3)})"
        c = re.search(r'File "([^"]+)", line \d+, in (.+)$', line)
        if c and len(native) < 3 and "sigaction" not in c.group(1) and not c.group(1).endswith(".py"):
            native.append(c.group(2).strip()[:80])
    parts = [lib] if lib else []
    if native:
        parts.append("native: " + " <- ".join(native))
    return "; ".join(parts)


def _describe_case(kind, seed, i, seeds_dir) -> str:
    """The mutation of case ``i`` (rebuilt here: the child died before it could say)."""
    try:
        from tests.fuzz.seeds import seed_files
        from tests.fuzz.targets import TARGETS

        rng = case_rng(kind, seed, i)
        seed_path = rng.choice(seed_files(seeds_dir, TARGETS[kind].seed_kind))
        with tempfile.TemporaryDirectory() as tmp:
            return TARGETS[kind].make(rng, seed_path, Path(tmp))[1]
    except Exception as exc:  # noqa: BLE001 - a description only
        return f"(could not rebuild the mutation: {exc})"


def repro_command(kind: str, seed: int, i: int, seeds_dir) -> str:
    return f"python -m tests.fuzz.runner --kind {kind} --seed {seed} --case {i} --seeds {seeds_dir}"


def signature(bad: dict) -> str:
    return f"{bad.get('type')} at {bad.get('where') or bad.get('innermost') or '?'}"


def format_summary(summaries: list[dict]) -> str:
    lines = [f"{'kind':<12} {'cases':>6} {'accepted':>9} {'clean':>6} {'bad':>4} {'seconds':>8}"]
    for s in summaries:
        lines.append(f"{s['kind']:<12} {s['run']:>6} {s['accepted']:>9} {s['clean']:>6} {s['bad']:>4} "
                     f"{s['seconds']:>8.1f}")
    return "\n".join(lines)


def format_bad(summary: dict, seeds_dir, limit: int = 8) -> str:
    """The distinct failure signatures of one kind, each with its count and one example to reproduce."""
    groups: dict[str, list] = {}
    for b in summary["bad_cases"]:
        groups.setdefault(signature(b), []).append(b)
    out = []
    for sig, items in list(groups.items())[:limit]:
        b = items[0]
        out.append(f"  [{summary['kind']}] {len(items)}x {sig}: {b.get('message', '')[:200]}\n"
                   f"      e.g. case {b['i']}: {b.get('desc', '')[:200]}\n"
                   f"      reproduce: {repro_command(summary['kind'], summary['seed'], b['i'], seeds_dir)}")
    if len(groups) > limit:
        out.append(f"  ... {len(groups) - limit} more signatures")
    return "\n".join(out)


def single_case(args) -> int:
    """Run one case in this process and print what happened (with the traceback)."""
    import faulthandler

    faulthandler.enable()
    seeds_dir = Path(args.seeds) if args.seeds else None
    if seeds_dir is None or not seeds_dir.exists():
        from tests.fuzz.seeds import build_seeds

        seeds_dir = build_seeds(seeds_dir or Path(tempfile.mkdtemp(prefix="fuzz-seeds-")))
    from tests.fuzz.targets import TARGETS

    TARGETS[args.kind].warm()
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fuzz-case-"))
    case_dir = keep / f"{args.kind}-seed{args.seed}-case{args.case}"
    shutil.rmtree(case_dir, ignore_errors=True)
    result = run_case(args.kind, args.seed, args.case, seeds_dir, case_dir, args.timeout)
    tb = result.pop("traceback", None)
    print(json.dumps(result, indent=1, default=str))
    if tb:
        print(tb)
    print(f"input: {case_dir}")
    return 1 if result["outcome"] == "bad" else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--case", type=int, default=None, help="Run only this case, here, with its traceback.")
    ap.add_argument("--seeds", default=None, help="The seeds directory (tests.fuzz.seeds).")
    ap.add_argument("--out", default=None, help="Results (JSON lines) to append to.")
    ap.add_argument("--work", default=None)
    ap.add_argument("--crashers", default=None, help="Copy the inputs of bad cases here.")
    ap.add_argument("--keep", default=None, help="With --case: where to leave the input.")
    ap.add_argument("--timeout", type=float, default=CASE_TIMEOUT_S)
    args = ap.parse_args(argv)
    if args.case is not None:
        return single_case(args)
    if not args.out or not args.seeds:
        ap.error("--out and --seeds are required (or --case)")
    return child_main(args)


if __name__ == "__main__":
    sys.exit(main())
