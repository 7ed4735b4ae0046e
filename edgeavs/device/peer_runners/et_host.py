"""ExecuTorch + XNNPACK on this machine: time a ``.pte`` with ExecuTorch's Python runtime.

Run by the Python of an environment with ``executorch`` (the export environment of
``edgeavs.device.peers.export_python``), never edgeavs::

    python et_host.py MODEL.pte INPUTS.npz --threads N --warmup W --repeat R --output OUT.npy

``INPUTS.npz`` holds the graph's inputs in order (``arr_0``, ``arr_1``, ...). Prints one JSON
line: median/min/p90 ms over ``repeat`` timed ``forward`` calls after ``warmup``, the thread
count XNNPACK's pool was set to, the versions; saves the first output to ``OUT.npy``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def set_threads(n: int) -> str:
    """Size the pool XNNPACK's delegate runs on (ExecuTorch's shared pthreadpool); says how."""
    try:
        from executorch.extension.pybindings import portable_lib

        reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
        if reset is not None:
            reset(n)
            return "portable_lib._unsafe_reset_threadpool"
    except ImportError:
        pass
    return "default (ExecuTorch sizes its pool from the CPU count)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pte")
    ap.add_argument("inputs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--output")
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from executorch.runtime import Runtime

    torch.set_num_threads(args.threads)  # the portable kernels outside the delegate
    how = set_threads(args.threads)
    with np.load(args.inputs) as z:
        tensors = [torch.from_numpy(z[f"arr_{i}"]) for i in range(len(z.files))]
    t0 = time.perf_counter()
    method = Runtime.get().load_program(args.pte).load_method("forward")
    load_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        out = method.execute(tensors)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        out = method.execute(tensors)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    if args.output:
        np.save(args.output, out[0].numpy())
    import executorch

    print(json.dumps({"runtime": "executorch-xnnpack", "median_ms": statistics.median(times), "min_ms": times[0],
                      "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))], "times_ms": times,
                      "threads": args.threads, "threadpool": how, "load_s": round(load_s, 3),
                      "executorch": getattr(executorch, "__version__", None), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
