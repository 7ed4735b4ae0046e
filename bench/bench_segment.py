"""``edgeavs segment`` end to end: compiled artifact (TVM) vs ``--checkpoint`` (PyTorch eager).

Defaults are the issue's setting: LightAVSeg-L at 224, 2 threads, a generated 30-second
1280x720 25 fps clip with sound (``edgeavs.data.synth.demo_clip``). Both modes run the same
weights (the random-init reference model, seed 0: ``edgeavs.reference``), each in its own
process (``edgeavs segment ... --json``), so TVM and PyTorch never share a process and each
peak RSS is that process's own (``VmHWM``). Reports model latency per frame (median, p90),
end-to-end frames/s, real-time factor, and the artifact mode's peak RSS on a 30-s and a 120-s
clip (streaming: it must not grow with the length; those two runs infer at ``--rss-model-fps``
but decode, overlay and encode every frame).

    python bench/bench_segment.py                       # full size: tens of minutes on 2 cores
    python bench/bench_segment.py --variant tiny --resolution 64 --width 320 --height 180 \\
        --seconds 4 --long-seconds 16                   # a smoke run

Writes JSON (default bench/results/segment.json) and prints a table. Pass ``--artifact DIR`` to
skip the compile (it must be the same variant/resolution, random-init seed 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The child records its own peak RSS: VmHWM is per address space and restarts at exec, whereas
# wait4's ru_maxrss also counts the parent's RSS at fork (this script holds torch and the compiler).
SEGMENT = """
import atexit, os, resource, sys

def _peak():
    kib = None
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(os.environ["EDGEAVS_BENCH_PEAK"], "w") as f:
        f.write(str(kib))

atexit.register(_peak)
from edgeavs.commands.segment import segment
segment.main(sys.argv[1:])
"""


def make_clip(path: Path, seconds: float, width: int, height: int, fps: int) -> float:
    from edgeavs.data.synth import demo_clip

    t0 = time.perf_counter()
    demo_clip(path, seconds=seconds, width=width, height=height, fps=fps, switch_s=5.0)
    return time.perf_counter() - t0


def run_segment(args: list[str], threads: int) -> dict:
    """One ``edgeavs segment`` process: its JSON summary plus its own peak RSS (MiB) and wall time."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TVM_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as tmp:
        summary, log, peak = Path(tmp) / "summary.json", Path(tmp) / "log.txt", Path(tmp) / "peak"
        env["EDGEAVS_BENCH_PEAK"] = str(peak)
        t0 = time.perf_counter()
        with open(log, "w") as fh:
            proc = subprocess.run([sys.executable, "-c", SEGMENT, *args, "--threads", str(threads),
                                   "--json", str(summary)], env=env, stdout=fh, stderr=fh)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"edgeavs segment failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
        result = _basenames(json.loads(summary.read_text()))
        result["peak_rss_mib"] = round(int(peak.read_text()) / 1024, 1)  # KiB -> MiB
    result["process_wall_s"] = round(wall, 2)
    return result


_PATH_KEYS = {"video", "output", "masks", "artifact", "checkpoint", "checkpoint_path"}


def _basenames(obj):
    """File names only in the report (no machine paths)."""
    if isinstance(obj, dict):
        return {k: (Path(v).name if k in _PATH_KEYS and isinstance(v, str) else _basenames(v))
                for k, v in obj.items()}
    return obj


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="large")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0, help="The timed clip.")
    ap.add_argument("--long-seconds", type=float, default=120.0, help="The long clip (RSS only).")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--rss-model-fps", type=float, default=1.0,
                    help="Model rate for the two RSS runs (every frame is still decoded and "
                         "encoded; the model's own memory does not depend on the length). 0: all.")
    ap.add_argument("--artifact", type=Path, help="Reuse this artifact instead of compiling.")
    ap.add_argument("--work", type=Path, help="Keep clips, checkpoint and artifact here.")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "segment.json")
    a = ap.parse_args()

    work = a.work or Path(tempfile.mkdtemp(prefix="edgeavs-bench-segment-"))
    work.mkdir(parents=True, exist_ok=True)
    clips = {}
    for secs in (a.seconds, a.long_seconds):
        path = work / f"clip-{a.width}x{a.height}-{secs:g}s.mp4"
        if not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            make_clip(path, secs, a.width, a.height, a.fps)
        clips[secs] = path

    ckpt = work / f"reference-{a.variant}.pt"
    if not ckpt.exists():
        from edgeavs.model import save_checkpoint
        from edgeavs.reference import build_reference_model

        save_checkpoint(build_reference_model(a.variant, seed=0), ckpt)
    art = a.artifact or work / f"artifact-{a.variant}-{a.resolution}-host"
    if a.artifact is None and not (art / "manifest.json").exists():
        print(f"compiling LightAVSeg-{a.variant} {a.resolution} for the host ...", file=sys.stderr)
        from edgeavs.compiler import compile_artifact

        compile_artifact(art, target="host", variant=a.variant, resolution=str(a.resolution))

    def seg(clip, mode, extra=()):
        model = ["--artifact", str(art)] if mode == "artifact" else \
            ["--checkpoint", str(ckpt), "--resolution", str(a.resolution)]
        out = work / f"{clip.stem}-{mode}.mp4"
        print(f"segment {clip.name} with the {mode} {' '.join(extra)}...", file=sys.stderr)
        return run_segment([str(clip), *model, "-o", str(out), "--overwrite", *extra], a.threads)

    rss_fps = ["--fps", f"{a.rss_model_fps:g}"] if a.rss_model_fps else []
    runs = {"artifact": seg(clips[a.seconds], "artifact"),
            "checkpoint": seg(clips[a.seconds], "checkpoint"),
            "rss_short": seg(clips[a.seconds], "artifact", rss_fps),
            "rss_long": seg(clips[a.long_seconds], "artifact", rss_fps)}
    rss_short, rss_long = runs["rss_short"]["peak_rss_mib"], runs["rss_long"]["peak_rss_mib"]
    report = {
        "setting": {"variant": a.variant, "resolution": a.resolution, "threads": a.threads,
                    "clip": f"{a.width}x{a.height} {a.fps} fps", "seconds": a.seconds,
                    "long_seconds": a.long_seconds, "rss_model_fps": a.rss_model_fps},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "runs": runs,
        "peak_rss_mib": {f"{a.seconds:g}s": rss_short, f"{a.long_seconds:g}s": rss_long,
                         "ratio": round(rss_long / rss_short, 3) if rss_short else None},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"LightAVSeg-{a.variant} {a.resolution}, {a.threads} threads, {a.width}x{a.height} "
          f"{a.fps} fps, {a.seconds:g} s")
    print(f"{'mode':<12} {'median ms':>10} {'p90 ms':>8} {'e2e fps':>8} {'RTF':>6} {'peak RSS MiB':>13}")
    for name in ("artifact", "checkpoint"):
        r = runs[name]
        lat = r["model_latency_ms"]
        print(f"{name:<12} {lat['median']:>10.1f} {lat['p90']:>8.1f} {r['end_to_end_fps']:>8.2f} "
              f"{r['real_time_factor']:>6.2f} {r['peak_rss_mib']:>13.1f}")
    print(f"artifact peak RSS: {rss_short} MiB at {a.seconds:g} s, {rss_long} MiB at "
          f"{a.long_seconds:g} s (ratio {report['peak_rss_mib']['ratio']})")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
