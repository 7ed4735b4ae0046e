"""How the audio-visual interaction scales with resolution: LightAVSeg vs the SPEC §9 baselines.

For each fusion and resolution (batch 1, one second of audio, ``--threads`` threads):

- MACs of the interaction alone (``interaction_macs``: spatial / global / pairwise, the
  baseline's channel-adapter neck apart) and of the whole model (``model_macs``), counted on
  fake tensors by torch's flop counter;
- PyTorch eager latency of the whole model (warm-up, then the median of up to ``--repeat``
  runs; wall and process CPU time) and the peak resident memory of the process that ran it
  (``ru_maxrss``); the same for ``run_interaction`` alone on one frame's backbone outputs;
- the compiled latency (``edgeavs compile --fusion F``, our schedules, no tuning) of the
  artifact directory ``--artifacts DIR/{variant}-{fusion}-{H}x{W}``; with ``--compile`` the
  missing ones are compiled first (each under ``--compile-timeout``), and a size that cannot
  be compiled is recorded with the compiler's one-line reason.

Every measurement runs in its own subprocess under a time cap, so an out-of-memory kill or a
timeout is recorded for that cell and the sweep goes on. Output: ``scaling.json`` and
``scaling.png`` (log-log: interaction spatial MACs vs pixels, and eager latency vs pixels,
with fitted slopes) in ``--out`` (default ``bench/results`` next to this script).

    python bench/scaling.py                       # the full sweep (several minutes)
    python bench/scaling.py --kinds compiled --artifacts ART --compile --resume   # + compiled latency
    python bench/scaling.py --sizes 224x224,448x448 --fusions lightavseg,tpavi --repeat 5
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
FUSIONS = ("lightavseg", "tpavi", "avsegformer")
KINDS = ("macs", "eager", "interaction", "compiled")
SIZES = ((224, 224), (320, 320), (448, 448), (640, 640), (720, 1280))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ----------------------------------------------------------------------------- workers
def _work_macs(variant: str, fusion: str, size) -> dict:
    from edgeavs.model import build_model
    from edgeavs.model.flops import interaction_macs, model_macs

    model = build_model(variant, fusion=fusion, seed=0)
    return {"interaction": interaction_macs(model, size, fake=True),
            "model": model_macs(model, size, fake=True)}


def _work_eager(variant: str, fusion: str, size, repeat: int, budget_s: float) -> dict:
    """Wall and CPU time per run. On a shared machine the wall time includes waiting for a
    core; the process CPU time (both threads, OMP_WAIT_POLICY=PASSIVE so that no thread
    spins while its peer is descheduled) tracks the work itself."""
    import torch

    from edgeavs.model import build_model

    start = time.perf_counter()
    model = build_model(variant, fusion=fusion, seed=0).eval()
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(1, 3, *size, generator=g)
    wave = torch.randn(1, model.cfg.audio.sample_rate, generator=g)
    rss_built = _rss_mib()
    wall, cpu = [], []
    with torch.inference_mode():
        t0 = time.perf_counter()
        model(frames, wave)  # warm-up (allocator, oneDNN primitives)
        warm = time.perf_counter() - t0
        for _ in range(repeat):
            # Stop early rather than be killed: keep the runs already timed.
            if wall and time.perf_counter() - start + statistics.median(wall) > budget_s:
                break
            c0, t0 = time.process_time(), time.perf_counter()
            model(frames, wave)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"median_ms": 1e3 * statistics.median(wall), "min_ms": 1e3 * min(wall),
            "cpu_median_ms": 1e3 * statistics.median(cpu), "cpu_min_ms": 1e3 * min(cpu),
            "runs": len(wall), "warmup_ms": 1e3 * warm,
            "peak_rss_mib": _rss_mib(), "rss_after_build_mib": rss_built,
            "loadavg_1min": os.getloadavg()[0]}


def _work_interaction(variant: str, fusion: str, size, repeat: int, budget_s: float) -> dict:
    """Eager latency of ``run_interaction`` alone, on the backbone outputs of one frame."""
    import torch

    from edgeavs.model import build_model

    start = time.perf_counter()
    model = build_model(variant, fusion=fusion, seed=0).eval()
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(1, 3, *size, generator=g)
    wave = torch.randn(1, model.cfg.audio.sample_rate, generator=g)
    wall, cpu = [], []
    with torch.inference_mode():
        pyramid = model(frames, wave, return_aux=True)["pyramid"]
        a0 = model.audio(wave)[:, :, None, None]
        model.run_interaction(pyramid, a0)  # warm-up
        for _ in range(repeat):
            if wall and time.perf_counter() - start + statistics.median(wall) > budget_s:
                break
            c0, t0 = time.process_time(), time.perf_counter()
            model.run_interaction(pyramid, a0)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"median_ms": 1e3 * statistics.median(wall), "min_ms": 1e3 * min(wall),
            "cpu_median_ms": 1e3 * statistics.median(cpu), "runs": len(wall),
            "peak_rss_mib": _rss_mib(), "loadavg_1min": os.getloadavg()[0]}


def _work_compiled(variant: str, fusion: str, size, repeat: int, artifacts: str | None,
                   budget_s: float) -> dict:
    try:
        from edgeavs.compiler.artifact import load_artifact
    except ImportError as e:
        return {"status": "skipped", "reason": f"no artifact runner ({e})"}
    if not artifacts:
        return {"status": "skipped", "reason": "no --artifacts directory given"}
    path = Path(artifacts) / f"{variant}-{fusion}-{size[0]}x{size[1]}"
    if not path.is_dir():
        failed = path.with_name(path.name + ".error")
        if failed.is_file():
            return {"status": "cannot-compile", "reason": failed.read_text().strip()}
        return {"status": "skipped", "reason": f"no artifact {path.name} in --artifacts"}
    import numpy as np

    start = time.perf_counter()
    runner = load_artifact(path)
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((runner.batch, 3, *size), dtype=np.float32)
    wave = rng.standard_normal((runner.batch, 32000), dtype=np.float32)
    runner.run(frames, wave)
    times = []
    for _ in range(repeat):
        if times and time.perf_counter() - start + statistics.median(times) > budget_s:
            break
        t0 = time.perf_counter()
        runner.run(frames, wave)
        times.append(time.perf_counter() - t0)
    return {"status": "ok", "median_ms": 1e3 * statistics.median(times), "runs": len(times),
            "peak_rss_mib": _rss_mib()}


def _worker(spec: dict) -> dict:
    size = tuple(spec["size"])
    budget = 0.85 * spec["timeout"]
    if spec["kind"] == "compiled":
        # torch-free, as edgeavs runs artifacts (TVM_NUM_THREADS is set by the driver).
        return _work_compiled(spec["variant"], spec["fusion"], size, spec["repeat"],
                              spec["artifacts"], budget)
    import torch

    torch.set_num_threads(spec["threads"])
    if spec["kind"] == "macs":
        return _work_macs(spec["variant"], spec["fusion"], size)
    if spec["kind"] == "interaction":
        return _work_interaction(spec["variant"], spec["fusion"], size, spec["repeat"], budget)
    return _work_eager(spec["variant"], spec["fusion"], size, spec["repeat"], budget)



# ----------------------------------------------------------------------------- driver
def _measure(spec: dict) -> dict:
    """Run one measurement in a fresh interpreter; an OOM kill or a timeout is a result."""
    n = str(spec["threads"])
    # OMP_WAIT_POLICY stays at its default: PASSIVE made PyTorch ~3x slower at 2 threads here.
    env = dict(os.environ, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, TVM_NUM_THREADS=n)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=spec["timeout"], env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "reason": f"over the {spec['timeout']} s cap"}
    wall = time.perf_counter() - t0
    if p.returncode == 0:
        return {"status": "ok", "wall_s": round(wall, 1), **json.loads(p.stdout.strip().splitlines()[-1])}
    tail = (p.stderr or "").strip().splitlines()[-3:]
    oom = p.returncode in (-9, 137) or any("MemoryError" in s or "out of memory" in s.lower()
                                           for s in tail)
    return {"status": "oom" if oom else "error", "returncode": p.returncode, "stderr_tail": tail}


def _compile(variant: str, fusion: str, size, artifacts: str, timeout: int) -> dict:
    """Compile the missing artifact ``{variant}-{fusion}-{H}x{W}`` (our CLI, its own process).
    A failure leaves ``<name>.error`` holding the one-line reason, read by the compiled cell."""
    path = Path(artifacts) / f"{variant}-{fusion}-{size[0]}x{size[1]}"
    if path.is_dir():
        return {"status": "ok", "reused": True}
    cli = HERE.parent / "cli.py"
    cmd = [sys.executable, str(cli), "compile", "--variant", variant, "--fusion", fusion,
           "--resolution", f"{size[0]}x{size[1]}", "-o", str(path), "-q"]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        reason = f"compile over the {timeout} s cap"
    else:
        if p.returncode == 0:
            return {"status": "ok", "seconds": round(time.perf_counter() - t0, 1)}
        lines = [s for s in (p.stderr or "").strip().splitlines() if s.startswith("Error:")]
        reason = lines[-1] if lines else f"compile exited {p.returncode}"
    path.with_name(path.name + ".error").write_text(reason + "\n")
    return {"status": "error", "reason": reason}


def _pixels(size) -> int:
    return size[0] * size[1]


def _slope(points) -> float | None:
    """Least-squares slope of log(y) against log(pixels)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den


def _series(results, fusion, getter):
    out = []
    for r in results:
        if r["fusion"] != fusion:
            continue
        try:
            v = getter(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            out.append((_pixels(r["size"]), v))
    return out


def summarise(results: list[dict], fusions) -> dict:
    """Slopes per fusion and the 448²/224² ratios the O(N) claim is checked against."""
    getters = {
        "interaction_spatial_macs": lambda r: r["macs"]["interaction"]["spatial"],
        "interaction_total_macs": lambda r: r["macs"]["interaction"]["total"],
        "interaction_pairwise_macs": lambda r: r["macs"]["interaction"]["pairwise"],
        "model_macs": lambda r: r["macs"]["model"]["total"],
        "eager_ms": lambda r: r["eager"]["median_ms"],
        "eager_min_ms": lambda r: r["eager"]["min_ms"],
        "eager_cpu_ms": lambda r: r["eager"]["cpu_median_ms"],
        "interaction_ms": lambda r: r["interaction"]["median_ms"],
        "interaction_cpu_ms": lambda r: r["interaction"]["cpu_median_ms"],
        "compiled_ms": lambda r: r["compiled"]["median_ms"],
    }
    out = {}
    for f in fusions:
        entry = {"slopes": {}, "ratio_448_over_224": {}}
        for name, get in getters.items():
            series = _series(results, f, get)
            entry["slopes"][name] = _slope(series)
            by = dict(series)
            a, b = by.get(224 * 224), by.get(448 * 448)
            entry["ratio_448_over_224"][name] = (b / a) if a and b else None
        out[f] = entry
    return out


def plot(results: list[dict], summary: dict, fusions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax3, ax2) = plt.subplots(1, 3, figsize=(18, 5.2))
    colors = dict(zip(FUSIONS, ("tab:green", "tab:red", "tab:blue")))
    for f in fusions:
        c = colors.get(f)
        s = _series(results, f, lambda r: r["macs"]["interaction"]["spatial"])
        if s:
            k = summary[f]["slopes"]["interaction_spatial_macs"]
            ax1.plot(*zip(*s), "o-", color=c, label=f"{f} (slope {k:.2f})")
        s = _series(results, f, lambda r: r["interaction"]["cpu_median_ms"])
        if s:
            k = summary[f]["slopes"]["interaction_cpu_ms"]
            ax3.plot(*zip(*s), "o-", color=c, label=f"{f}, CPU time (slope {k:.2f})")
        s = _series(results, f, lambda r: r["eager"]["cpu_median_ms"])
        if s:
            k = summary[f]["slopes"]["eager_cpu_ms"]
            ax2.plot(*zip(*s), "o-", color=c, label=f"{f}, CPU time (slope {k:.2f})")
        s = _series(results, f, lambda r: r["eager"]["median_ms"])
        if s:
            k = summary[f]["slopes"]["eager_ms"]
            ax2.plot(*zip(*s), "x--", color=c, alpha=0.5, label=f"{f}, wall (slope {k:.2f})")
        s = _series(results, f, lambda r: r["compiled"]["median_ms"])
        if s:
            k = summary[f]["slopes"]["compiled_ms"]
            ax2.plot(*zip(*s), "s:", color=c, label=f"{f}, edgeavs compiled (slope {k:.2f})")
    for ax, title, ylabel in (
            (ax1, "Interaction MACs, spatial part (torch flop counter)", "MACs"),
            (ax3, "Interaction alone, PyTorch eager (median)", "ms"),
            (ax2, "Whole model, batch 1, 2 threads (median): PyTorch eager and compiled", "ms")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pixels (H·W)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


@click.command()
@click.option("--worker", hidden=True, help="Internal: run one measurement (JSON spec).")
@click.option("--variant", default="large", show_default=True)
@click.option("--fusions", default=",".join(FUSIONS), show_default=True)
@click.option("--sizes", default=",".join(f"{h}x{w}" for h, w in SIZES), show_default=True,
              help="Comma-separated HxW.")
@click.option("--threads", default=2, show_default=True, type=int)
@click.option("--repeat", default=10, show_default=True, type=int, help="Timed runs (median).")
@click.option("--timeout", default=120, show_default=True, type=int,
              help="Seconds per measurement subprocess.")
@click.option("--artifacts", type=click.Path(file_okay=False),
              help="Directory of compiled artifacts named {variant}-{fusion}-{H}x{W}.")
@click.option("--out", type=click.Path(file_okay=False), default=str(HERE / "results"),
              show_default="bench/results")
@click.option("--kinds", default="macs,eager,interaction,compiled", show_default=True,
              help="Which measurements to run.")
@click.option("--resume", is_flag=True,
              help="Keep the cells already in --out/scaling.json (a skipped cell is measured again).")
@click.option("--compile", "compile_missing", is_flag=True,
              help="Compile the artifacts missing from --artifacts first (edgeavs compile --fusion).")
@click.option("--compile-timeout", default=1200, show_default=True, type=int,
              help="Seconds per compile.")
def main(worker, variant, fusions, sizes, threads, repeat, timeout, artifacts, out, kinds, resume,
         compile_missing, compile_timeout):
    """Sweep fusions × resolutions; write scaling.json and scaling.png."""
    if worker:
        click.echo(json.dumps(_worker(json.loads(worker))))
        return
    fusions = [f.strip() for f in fusions.split(",") if f.strip()]
    bad = [f for f in fusions if f not in FUSIONS]
    if bad:
        raise click.BadParameter(f"unknown fusion(s) {bad}; choose from {list(FUSIONS)}",
                                 param_hint="--fusions")
    try:
        size_list = [tuple(int(v) for v in s.lower().split("x")) for s in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"{sizes!r}: expected HxW[,HxW...]", param_hint="--sizes")
    kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    if set(kinds) - set(KINDS):
        raise click.BadParameter(f"{kinds}: choose from {', '.join(KINDS)}", param_hint="--kinds")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = {"variant": variant, "threads": threads, "repeat": repeat, "timeout": timeout,
            "artifacts": artifacts}
    load_before = os.getloadavg()
    results, loads = [], {"loadavg_before": load_before}
    if resume and (out / "scaling.json").exists():
        old = json.loads((out / "scaling.json").read_text())
        if old.get("config", {}).get("variant") == variant:
            results = old["results"]
            loads = {k: v for k, v in old["config"].items() if k.startswith("loadavg")}

    def save():
        import torch

        summary = summarise(results, fusions)
        doc = {"config": {**base, "sizes": [list(s) for s in size_list], "batch": 1,
                          "audio_seconds": 1, "torch": torch.__version__,
                          "python": platform.python_version(), "machine": platform.machine(),
                          "cpu_count": os.cpu_count(),
                          # Other work on the machine inflates wall times: how busy it was
                          # (each timed cell also records its own 1-minute load average).
                          **loads},
               "results": results, "summary": summary}
        (out / "scaling.json").write_text(json.dumps(doc, indent=1) + "\n")
        return summary

    # MACs first (shapes only, quick); then timings one at a time so they do not overlap.
    # The JSON is rewritten after every cell, so an interrupted sweep resumes (--resume).
    for kind in kinds:
        for f in fusions:
            for size in size_list:
                r = next((x for x in results if x["fusion"] == f and x["size"] == list(size)), None)
                if r is None:
                    r = {"fusion": f, "size": list(size), "pixels": _pixels(size)}
                    results.append(r)
                prev = r.get(kind)
                if resume and prev is not None and prev.get("status", "ok") != "skipped":
                    continue
                if kind == "compiled" and compile_missing and artifacts:
                    r["compile"] = _compile(variant, f, size, artifacts, compile_timeout)
                    click.echo(f"compile  {f:12s} {size[0]}x{size[1]}: {json.dumps(r['compile'])}", err=True)
                m = _measure({**base, "kind": kind, "fusion": f, "size": list(size)})
                if kind == "macs" and m.get("status") == "ok":
                    m = {"interaction": m["interaction"], "model": m["model"]}
                r[kind] = m
                loads["loadavg_after"] = os.getloadavg()
                click.echo(f"{kind:8s} {f:12s} {size[0]}x{size[1]}: {json.dumps(m)[:200]}", err=True)
                save()
    summary = save()
    plot(results, summary, fusions, out / "scaling.png")
    click.echo(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
