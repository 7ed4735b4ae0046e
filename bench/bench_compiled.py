#!/usr/bin/env python
"""Latency of a compiled edgeavs artifact vs PyTorch eager vs ONNX Runtime.

    python bench/bench_compiled.py ARTIFACT [--threads 2] [--repeat 30] [--json out.json]

Same as ``edgeavs bench``: each runtime in its own process, same input and thread count,
warm-up then the median of >= 30 runs; prints a table and writes the JSON report.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeavs.commands.bench import bench  # noqa: E402

if __name__ == "__main__":
    bench(prog_name="bench_compiled.py")
