"""ExecuTorch: the logits of a ``.pte`` for many frames, one at a time (batch 1), for the accuracy table.

Run by the Python of the export environment (not edgeavs)::

    python et_predict.py MODEL.pte INPUTS.npz OUT.npy [--threads N]

``INPUTS.npz``: ``frames (N,3,H,W)``, ``waveform (N,32000)`` float32; ``OUT.npy``: the first output
of every frame, stacked ``(N, ...)`` float32. Prints one JSON line (frames, seconds, threads).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "edgeavs", "device", "peer_runners"))

from et_host import set_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pte")
    ap.add_argument("inputs")
    ap.add_argument("output")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from executorch.runtime import Runtime

    torch.set_num_threads(args.threads)
    how = set_threads(args.threads)
    method = Runtime.get().load_program(args.pte).load_method("forward")
    t0 = time.perf_counter()
    with np.load(args.inputs) as z:
        frames, waveform = z["frames"], z["waveform"]
    outs = []
    for i in range(frames.shape[0]):
        out = method.execute([torch.from_numpy(np.ascontiguousarray(frames[i:i + 1])),
                              torch.from_numpy(np.ascontiguousarray(waveform[i:i + 1]))])
        outs.append(out[0].numpy().copy())
    tmp = f"{args.output}.{os.getpid()}.tmp.npy"
    np.save(tmp, np.concatenate(outs).astype(np.float32))
    os.replace(tmp, args.output)
    print(json.dumps({"frames": int(frames.shape[0]), "seconds": round(time.perf_counter() - t0, 2),
                      "threads": args.threads, "threadpool": how}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
