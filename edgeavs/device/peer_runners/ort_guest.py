"""The ONNX Runtime peer inside the emulated guest (qemu user mode, AArch64 Python).

Standard library, numpy and onnxruntime only (never edgeavs)::

    ort_guest.py CONFIG.json

``CONFIG``: ``model`` (.onnx), ``inputs`` (.npy files in the graph's input order), ``output``
(.npy written with the first output of the last run), ``runs``, ``marker_nr``, ``regions``
(as for :mod:`projection_guest`) and ``out`` (the JSON report). One intra-op and one inter-op
thread, sequential execution, all graph optimisations, the CPU execution provider; a warm-up
run, then ``runs`` counted ones between the plugin's markers.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import projection_guest as pg  # noqa: E402  (edgeavs/device/projection_guest.py, stdlib only)


def threads() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def main(argv) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: ort_guest.py CONFIG.json\n")
        return 2
    with open(argv[1]) as fh:
        cfg = json.load(fh)
    threads_at_start = threads()
    import numpy as np
    import onnxruntime as ort

    t0 = time.perf_counter()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(cfg["model"], so, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.load(path) for i, path in zip(sess.get_inputs(), cfg["inputs"])}
    out = sess.run(None, feeds)  # warm-up: first-call work stays out of the counts
    t_load = time.perf_counter() - t0

    marker = pg.Marker(cfg["marker_nr"])
    added = pg.add_regions(marker, cfg["regions"])
    runs = int(cfg.get("runs", 2))
    n_threads = threads()
    t1 = time.perf_counter()
    marker.start()
    for _ in range(runs):
        out = sess.run(None, feeds)
    marker.stop()
    t_runs = time.perf_counter() - t1
    np.save(cfg["output"], out[0])
    report = {"maps": pg.maps(), "ranges": added, "runs": runs, "threads": n_threads,
              "threads_at_start": threads_at_start,
              "output": {"shape": list(out[0].shape)},
              "versions": {"onnxruntime": ort.__version__, "numpy": np.__version__},
              "seconds": {"load": round(t_load, 3), "counted_runs": round(t_runs, 3)}}
    pg.write_report(cfg["out"], report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
