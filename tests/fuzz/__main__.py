"""The longer fuzz run: ``python -m tests.fuzz --cases 5000 [--kind wav ...] [--seed S] [--jobs N]``.

Builds the seeds (compiling LightAVSeg-tiny at 64x64 once, unless ``--seeds DIR`` already holds them), runs every
kind (or the ``--kind`` ones), prints a table per kind (cases, accepted, clean errors, bad) and every distinct
failure signature with one case to reproduce; exits 1 when any case is bad.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.fuzz.runner import CASE_TIMEOUT_S, format_bad, format_summary, run_kind
from tests.fuzz.seeds import build_seeds
from tests.fuzz.targets import KINDS, TARGETS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="Cases per kind (default 1000).")
    ap.add_argument("--kind", action="append", choices=KINDS, help="Only this kind (repeatable).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="Child processes per kind.")
    ap.add_argument("--seeds", default=None, help="Seeds directory to reuse (built there when missing).")
    ap.add_argument("--work", default=None, help="Where results, child logs and bad inputs go.")
    ap.add_argument("--timeout", type=float, default=CASE_TIMEOUT_S, help="Seconds per case.")
    ap.add_argument("--json", default=None, help="Also write the summaries here.")
    args = ap.parse_args(argv)
    kinds = args.kind or list(KINDS)
    work = Path(args.work or tempfile.mkdtemp(prefix="edgeavs-fuzz-"))
    seeds = Path(args.seeds) if args.seeds else work / "seeds"
    build_seeds(seeds, kinds=sorted({TARGETS[k].seed_kind for k in kinds}))
    summaries = []
    for kind in kinds:
        s = run_kind(kind, args.seed, args.cases, seeds, work / "runs", timeout_s=args.timeout,
                     crashers=work / "bad-inputs", jobs=args.jobs)
        summaries.append(s)
        print(format_summary([s]).splitlines()[1], flush=True)
    print()
    print(format_summary(summaries))
    for s in summaries:
        if s["bad"]:
            print(format_bad(s, seeds, limit=50))
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=1, default=str))
    print(f"\nseeds: {seeds}\nresults, child logs, bad inputs: {work}")
    return 1 if any(s["bad"] or s["run"] < s["cases"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
