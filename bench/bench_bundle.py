"""The Python-free bundle (``edgeavs package``): size by file, runtime build time, host C++ vs Python.

    python bench/bench_bundle.py [--variant large] [--resolution 224] [--threads 2] [--rounds 5]
                                 [--repeat 30] [--cold] [--out bench/results/bundle.json]

1. Compiles LightAVSeg (``--variant``) at ``--resolution`` for snapdragon8elite and packages it
   (``edgeavs package``, the AArch64 Linux bundle without an NDK): the bundle's files and sizes.
2. Runtime build time: the cold build of the TVM runtime + tvm-ffi (as recorded in the cache
   when it was built, or rebuilt now in a fresh cache with ``--cold``) and a cached call.
3. Host latency: the same model compiled for the host, packaged with ``--os host`` (the runner
   and runtime built natively for x86-64), and ``bin/edgeavs-run`` timed against ``edgeavs
   bench``'s Python path (``edgeavs.benchmark`` worker ``tvm``: the artifact through TVM's
   Python runtime-only VM), each in its own process, alternating for ``--rounds`` rounds, same
   seeded input, same thread count; medians of the per-round medians. Both outputs are compared.

The emulated AArch64 latency is NOT a speed figure (qemu's translated code): it is not reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_peers import _cpu_model as cpu_model  # noqa: E402  (lscpu's model line)


def _public_args(argv) -> list[str]:
    """The command's arguments without --workdir (a machine path)."""
    args = list(argv if argv is not None else sys.argv[1:])
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--workdir":
            skip = True
        elif not a.startswith("--workdir="):
            out.append(a)
    return out


def compile_once(out: Path, target: str, variant: str, resolution: int, log) -> Path:
    from edgeavs.compiler import compile_artifact
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.errors import EdgeAVSError

    try:
        m = read_manifest(out)
        if m.get("target_name") == target and m["variant"] == variant and \
                m["resolution"] == [resolution, resolution]:
            log(f"reusing {out}")
            return out
    except EdgeAVSError:
        pass
    log(f"compiling {variant} {resolution} for {target} -> {out}")
    saved = {v: os.environ.pop(v) for v in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
             if v in os.environ}
    try:
        compile_artifact(out, target=target, variant=variant, resolution=resolution)
    finally:
        os.environ.update(saved)
    return out


def cold_build(os_name: str) -> dict:
    """Build the runtime for ``os_name`` in a fresh cache (a child process), timed."""
    with tempfile.TemporaryDirectory(prefix="edgeavs-cold-cache-") as cache:
        code = ("import json,time; from edgeavs.device import bundle as b; "
                f"tc = b.linux_toolchain() if {os_name!r} == 'linux' else b.host_toolchain(); "
                "t = time.perf_counter(); r = b.build_runtime(tc); "
                "print(json.dumps({'seconds': time.perf_counter() - t, 'info': r.info}))")
        env = {**os.environ, "EDGEAVS_CACHE": cache}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"cold build failed: {proc.stderr.strip().splitlines()[-1:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def build_times(os_name: str, cold: bool) -> dict:
    from edgeavs.device import bundle as b

    tc = b.linux_toolchain() if os_name == "linux" else b.host_toolchain()
    result = {"toolchain": tc.describe()}
    if cold:
        c = cold_build(os_name)
        result["cold_seconds"] = round(c["seconds"], 1)
        result["cold_how"] = "rebuilt now in a fresh cache (--cold), 2 compiler processes"
    t0 = time.perf_counter()
    r = b.build_runtime(tc)
    result["cached_seconds"] = round(time.perf_counter() - t0, 3)
    if not cold:
        result["cold_seconds"] = r.info["runtime"]["build_seconds"]
        result["cold_how"] = ("recorded in the cache when it was built "
                              f"({r.info['runtime']['jobs']} compiler processes)")
    result["runner_build_seconds"] = r.info["runner"]["build_seconds"]
    return result


def sizes(record: dict) -> dict:
    return {"files": {k: v["bytes"] for k, v in sorted(record["files"].items(),
                                                         key=lambda kv: -kv[1]["bytes"])},
            "total_bytes": record["total_bytes"],
            "total_mib": round(record["total_bytes"] / 2**20, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="large")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="rebuild both runtimes in a fresh cache")
    ap.add_argument("--workdir", default=None, help="where artifacts and bundles go (kept)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bundle.json"))
    args = ap.parse_args(argv)

    import numpy as np

    from edgeavs.benchmark import _inputs, spawn_worker
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.device.bundle import package, parse_latency, run_bundle
    from edgeavs.io.atomic import write_json

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    work = Path(args.workdir or tempfile.mkdtemp(prefix="edgeavs-bench-bundle-"))
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{args.variant}-{args.resolution}"

    sd = compile_once(work / f"{tag}-sd8e", "snapdragon8elite", args.variant, args.resolution, log)
    dev_bundle = package(sd, work / f"{tag}-sd8e-bundle", overwrite=True, log=log)
    host = compile_once(work / f"{tag}-host", "host", args.variant, args.resolution, log)
    host_bundle_dir = work / f"{tag}-host-bundle"
    host_bundle = package(host, host_bundle_dir, os_name="host", overwrite=True, log=log)

    builds = {"linux-aarch64": build_times("linux", args.cold),
              "host-x86_64": build_times("host", args.cold)}

    # host latency, alternating: the C++ runner vs edgeavs bench's Python path
    frames, waveform = _inputs(read_manifest(host))
    f, w, o = work / "frames.npy", work / "waveform.npy", work / "runner_logits.npy"
    np.save(f, frames)
    np.save(w, waveform)
    runner, python = [], []
    for r in range(args.rounds):
        for kind in (("runner", "python") if r % 2 == 0 else ("python", "runner")):
            if kind == "runner":
                out = run_bundle(host_bundle_dir, ["--frames", f, "--audio", w, "--out", o,
                                                   "--runs", args.repeat, "--warmup", args.warmup,
                                                   "--threads", args.threads], threads=args.threads)
                runner.append(parse_latency(out)["median_ms"])
            else:
                res = spawn_worker("tvm", str(host), args.threads, args.warmup, args.repeat)
                if "error" in res:
                    raise SystemExit(f"python worker: {res['error']}")
                python.append(res["median_ms"])
            log(f"round {r}: {kind} {(runner if kind == 'runner' else python)[-1]:.2f} ms")

    code = ("import numpy as np, sys; from edgeavs.compiler.artifact import use_runtime_only, "
            "load_artifact; use_runtime_only(); from edgeavs.benchmark import _inputs; "
            "m = load_artifact(sys.argv[1]); fr, wv = _inputs(m.manifest); "
            "np.save(sys.argv[2], m.run(fr, wv))")
    ref_path = work / "python_logits.npy"
    subprocess.run([sys.executable, "-c", code, str(host), str(ref_path)], check=True, cwd=ROOT,
                   env={**os.environ, "TVM_NUM_THREADS": str(args.threads)})
    a, e = np.load(o), np.load(ref_path)
    agreement = {"max_abs": float(np.abs(a - e).max()),
                 "rel_l2": float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30))}

    med_r, med_p = statistics.median(runner), statistics.median(python)
    result = {
        "what": f"LightAVSeg-{args.variant} at {args.resolution}: edgeavs package bundle",
        "command": "python bench/bench_bundle.py " + " ".join(_public_args(argv)),
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "bundle_linux_aarch64": {"os": dev_bundle["os"], "triple": dev_bundle["triple"],
                                 "toolchain": dev_bundle["toolchain"], **sizes(dev_bundle)},
        "bundle_host_x86_64": {"toolchain": host_bundle["toolchain"], **sizes(host_bundle)},
        "runtime_build": builds,
        "host_latency": {
            "threads": args.threads, "rounds": args.rounds, "repeat": args.repeat,
            "warmup": args.warmup,
            "cpp_runner_median_ms": round(med_r, 3), "python_path_median_ms": round(med_p, 3),
            "cpp_over_python": round(med_r / med_p, 3),
            "cpp_runner_rounds_ms": runner, "python_path_rounds_ms": python,
            "how": ("each in its own process, alternating; runner: bin/edgeavs-run --runs "
                    f"{args.repeat} --warmup {args.warmup} (edgeavs_model_run: copy in, main, "
                    "copy out); python: edgeavs.benchmark worker tvm (load_artifact(...).run, "
                    "TVM runtime-only), the median of each round, then the median of rounds"),
            "outputs_cpp_vs_python": agreement,
        },
        "emulated_latency": "not reported: qemu-aarch64's translated code says nothing about "
                            "the phone's speed (see edgeavs device project for a projection)",
    }
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("runtime_build", "host_latency")}, indent=2))
    print(f"bundle (linux-aarch64): {result['bundle_linux_aarch64']['total_mib']} MiB -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
