"""Latency of a compiled artifact vs PyTorch eager vs ONNX Runtime (``edgeavs bench``'s work).

Each runtime runs in its own process (PyTorch and TVM in one process fight over OpenMP; the TVM
worker loads TVM's runtime library alone, ``TVM_USE_RUNTIME_LIB=1``) with
the same input, the same thread count (OMP_NUM_THREADS, TVM_NUM_THREADS; OMP_WAIT_POLICY stays
at its default: PASSIVE made PyTorch 3x slower at 2 threads on this machine), a warm-up, then
the median of ``--repeat`` (>= 30) timed runs. The workers are ``python -m edgeavs.benchmark
worker KIND ...`` (started through :mod:`edgeavs.workers`); ``edgeavs bench`` and
``bench/bench_compiled.py`` are the command and script forms.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

RUNTIMES = ("tvm", "torch", "onnxruntime")


# ---------------------------------------------------------------- workers (one process each)

def _inputs(manifest):
    from edgeavs.data.inputs import random_inputs

    h, w = manifest["resolution"]
    return random_inputs(0, h, w)


def _time(fn, warmup: int, repeat: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "min_ms": times[0],
            "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))], "times_ms": times}


def worker(kind: str, artifact: str, warmup: int, repeat: int, onnx_path: str | None = None) -> dict:
    from edgeavs.compiler.artifact import load_artifact, read_manifest, tvm_libraries, use_runtime_only

    if kind == "tvm":
        use_runtime_only()  # this process only runs the artifact: TVM's runtime library alone
    manifest = read_manifest(artifact)
    frames, waveform = _inputs(manifest)
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    if kind == "tvm":
        model = load_artifact(artifact)
        result = _time(lambda: model.run(frames, waveform), warmup, repeat)
        result["torch_loaded"] = "torch" in sys.modules
        result["tvm_libraries"] = tvm_libraries()
    elif kind in ("torch", "export-onnx"):
        import torch

        from edgeavs.compiler.build import build_torch_model

        torch.set_num_threads(threads)
        model = build_torch_model(manifest["variant"], manifest["weights"])
        f, w = torch.from_numpy(frames), torch.from_numpy(waveform)
        if kind == "export-onnx":
            from edgeavs.compiler import frontend

            frontend.export_onnx(frontend.inference_graph(model), (f, w), onnx_path)
            return {"onnx": onnx_path}
        with torch.inference_mode():
            result = _time(lambda: model(f, w), warmup, repeat)
    elif kind == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        feeds = {"frames": frames, "waveform": waveform}
        result = _time(lambda: sess.run(None, feeds), warmup, repeat)
    else:
        raise ValueError(kind)
    result.update(runtime=kind, threads=threads, repeat=repeat, warmup=warmup, peak_rss_mib=peak_rss_mib())
    return result


def peak_rss_mib() -> float | None:
    """This process's peak resident set so far (``VmHWM``; ``ru_maxrss`` where there is no /proc), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    except (ImportError, OSError):
        return None


def spawn_worker(kind, artifact, threads, warmup, repeat, onnx_path=None) -> dict:
    """One worker process; a failed one is a result ``{"runtime": kind, "error": its last stderr line}``."""
    from edgeavs.workers import RUNTIME_ONLY, WorkerError, child_env, run_json_module

    env = child_env(set={"OMP_NUM_THREADS": str(threads), "TVM_NUM_THREADS": str(threads),
                         "MKL_NUM_THREADS": str(threads), **(RUNTIME_ONLY if kind == "tvm" else {})})
    args = ["worker", kind, str(artifact), "--warmup", str(warmup), "--repeat", str(repeat)] \
        + (["--onnx", onnx_path] if onnx_path else [])
    try:
        return run_json_module("edgeavs.benchmark", args, what=f"the {kind} worker", env=env)
    except WorkerError as exc:
        return {"runtime": kind, "error": exc.detail}


def run_bench(artifact, threads: int | None = None, warmup: int = 5, repeat: int = 30,
              runtimes=RUNTIMES, log=None) -> dict:
    """Benchmark the artifact and its PyTorch/ONNX Runtime equivalents; returns the JSON report."""
    from edgeavs.compiler.artifact import validate_artifact
    from edgeavs.errors import EdgeAVSError

    say = log or (lambda _m: None)
    manifest = validate_artifact(artifact)
    if manifest.get("link", "host") != "host":
        raise EdgeAVSError(f"artifact {artifact} is not for this machine (target {manifest.get('target_name')})")
    threads = threads or int(manifest["target"].get("num-cores", 1))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = str(Path(tmp) / "model.onnx")
        for kind in runtimes:
            if kind == "onnxruntime":
                say("exporting ONNX for ONNX Runtime")
                exp = spawn_worker("export-onnx", artifact, threads, 0, 0, onnx_path)
                if "error" in exp:
                    results[kind] = {"runtime": kind, "error": f"ONNX export: {exp['error']}"}
                    continue
            say(f"timing {kind} ({threads} threads, {warmup} warm-up, {repeat} runs)")
            results[kind] = spawn_worker(kind, artifact, threads, warmup, repeat, onnx_path)
    return {"artifact": str(artifact), "variant": manifest["variant"], "resolution": manifest["resolution"],
            "target": manifest["target"], "threads": threads, "results": results}


def format_table(report: dict) -> str:
    h, w = report["resolution"]
    lines = [f"LightAVSeg-{report['variant']} {h}x{w}, batch 1, {report['threads']} threads",
             f"{'runtime':<13} {'median ms':>10} {'min ms':>9} {'p90 ms':>9} {'vs TVM':>8} {'peak MiB':>9}"]
    base = report["results"].get("tvm", {}).get("median_ms")
    for kind, r in report["results"].items():
        if "error" in r:
            lines.append(f"{kind:<13} error: {r['error']}")
            continue
        ratio = f"{r['median_ms'] / base:7.2f}x" if base else ""
        peak = f"{r['peak_rss_mib']:9.0f}" if r.get("peak_rss_mib") is not None else f"{'-':>9}"
        lines.append(f"{kind:<13} {r['median_ms']:10.2f} {r['min_ms']:9.2f} {r['p90_ms']:9.2f} {ratio:>8} {peak}")
    return "\n".join(lines)


def _main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m edgeavs.benchmark")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker")
    w.add_argument("kind", choices=RUNTIMES + ("export-onnx",))
    w.add_argument("artifact")
    w.add_argument("--warmup", type=int, default=5)
    w.add_argument("--repeat", type=int, default=30)
    w.add_argument("--onnx")
    args = ap.parse_args(argv)
    print(json.dumps(worker(args.kind, args.artifact, args.warmup, args.repeat, args.onnx)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
