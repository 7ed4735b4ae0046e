#!/usr/bin/env python
"""Snapdragon 8 Elite cross-compile and emulated verification figures, plus the tune-over-RPC test's wall time.

    python bench/bench_device.py                       # tiny and large at 224, then the tune test
    python bench/bench_device.py --variants tiny --no-tune-test

For each variant: ``edgeavs compile --target snapdragon8elite`` (wall time; without an NDK only the
AArch64 Linux library is linked), then ``edgeavs verify ART --device emulated --report`` (wall time, worst max abs
and rel-L2 over ``--seeds`` cases; the emulator's start-up is part of the time). Then, unless ``--no-tune-test``,
``pytest tests/device/test_tune_rpc.py`` (tracker + emulated device, tune 2 trials, compile with the records,
verify) and its wall time. Each command runs in its own process. Emulated figures say nothing about the phone's
speed; they depend on the machine and its load, so the load averages before and after are recorded.

Writes ``--out`` (default ``bench/results/device.json``) atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _run(cmd: list[str], log, check: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    log(f"$ {' '.join(cmd)}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    secs = time.perf_counter() - t0
    if check and proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
        raise SystemExit(f"{cmd[1] if len(cmd) > 1 else cmd[0]} failed (exit {proc.returncode}):\n{tail}")
    return proc, secs


def _cli(args: list[str], log, check: bool = True):
    return _run([sys.executable, str(ROOT / "cli.py"), *args], log, check)


def bench_variant(variant: str, resolution: str, seeds: int, work: Path, log) -> dict:
    art = work / f"sd8e-{variant}-{resolution}"
    if art.exists():
        shutil.rmtree(art)
    _, compile_s = _cli(["compile", "--target", "snapdragon8elite", "--variant", variant, "--resolution",
                         resolution, "-q", "-o", str(art)], log)
    manifest = json.loads((art / "manifest.json").read_text())
    report_path = work / f"verify-{variant}-{resolution}.json"
    proc, verify_s = _cli(["verify", str(art), "--device", "emulated", "--seeds", str(seeds),
                           "--report", str(report_path), "--overwrite"], log, check=False)
    if not report_path.is_file():
        raise SystemExit(f"verify of {variant} wrote no report (exit {proc.returncode}): "
                         f"{proc.stdout.strip().splitlines()[-1:]}")
    report = json.loads(report_path.read_text())
    worst = report.get("worst") or {}
    return {
        "compile_seconds": round(compile_s, 1),
        "libraries": [lib["file"] for lib in manifest.get("libraries", [])],
        "libraries_skipped": [s.get("reason") for s in manifest.get("libraries_skipped", [])],
        "verify_emulated": {"seconds": round(verify_s, 1), "seeds": seeds, "passed": bool(report.get("passed")),
                            "exit_code": proc.returncode, "max_abs": worst.get("max_abs"),
                            "rel_l2": worst.get("rel_l2"),
                            # "tolerance", or verify's fp32 noise-floor rule (rel-L2 vs float64 within 2x PyTorch's)
                            "passed_by": sorted({c.get("passed_by") or "tolerance" for c in report.get("cases", [])}),
                            "noise_floor": report.get("noise_floor")},
    }


def bench_tune_test(log) -> dict:
    proc, secs = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "tests/device/test_tune_rpc.py"], log, check=False)
    last = next((ln for ln in reversed(proc.stdout.strip().splitlines()) if ln.strip()), "")
    return {"test": "tests/device/test_tune_rpc.py", "seconds": round(secs, 1), "exit_code": proc.returncode,
            "result": last.strip("= ")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="tiny,large", help="comma-separated LightAVSeg variants")
    ap.add_argument("--resolution", default="224")
    ap.add_argument("--seeds", type=int, default=2, help="verify cases per variant (qemu is ~10x slower)")
    ap.add_argument("--no-tune-test", action="store_true", help="skip timing tests/device/test_tune_rpc.py")
    ap.add_argument("--workdir", default=None, help="artifacts go here (default: a temporary directory)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "device.json"))
    args = ap.parse_args(argv)

    from edgeavs.device.emulator import setup_emulator
    from edgeavs.io.atomic import atomic_write_text

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    emulator = setup_emulator(log=log)  # idempotent; not part of any figure
    load_before = os.getloadavg()
    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-device-")
        work = Path(tmp.name)
    try:
        variants = {v: bench_variant(v, args.resolution, args.seeds, work, log)
                    for v in [v.strip() for v in args.variants.split(",") if v.strip()]}
        tune_test = None if args.no_tune_test else bench_tune_test(log)
    finally:
        if tmp is not None:
            tmp.cleanup()
    result = {
        "target": "snapdragon8elite", "resolution": args.resolution, "variants": variants,
        "tune_rpc_test": tune_test,
        "emulator": {"qemu": emulator.get("qemu"), "cpu": "max,sve=off,sme=off"},
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "note": "emulated timings (qemu-user) say nothing about the phone; wall times include process start-up",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    for v, r in variants.items():
        ver = r["verify_emulated"]
        print(f"{v:<6} compile {r['compile_seconds']:6.1f} s   verify --device emulated {ver['seconds']:6.1f} s "
              f"({'PASS' if ver['passed'] else 'FAIL'} by {', '.join(ver['passed_by'])}, max abs {ver['max_abs']:.3g}, "
              f"rel-L2 {ver['rel_l2']:.3g})")
    if tune_test:
        print(f"tune test {tune_test['seconds']:.1f} s ({tune_test['result']})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
