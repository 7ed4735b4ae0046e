"""The PyTorch reference run, meant for its own process (PyTorch and TVM in one process fight
over OpenMP threads): ``python -m edgeavs.reference --variant V (--checkpoint P | --seed S)
--inputs in.npz --out out.npz [--aux]``.

``edgeavs.model.builder.build_reference_model`` builds the model for both this run and ``edgeavs
compile``, so an artifact and its reference are the same weights by construction.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from edgeavs.model.builder import build_reference_model

def run_reference(model, frames, waveform, aux: bool = False, float64: bool = False) -> dict:
    """Named outputs as numpy: ``{"logits": ...}`` or, with ``aux``, every intermediate.
    ``float64`` runs model and inputs in double precision (the fp32 noise floor)."""
    import torch

    dtype = np.float64 if float64 else np.float32
    if float64:
        model = model.double()
    with torch.no_grad():
        f = torch.from_numpy(np.ascontiguousarray(frames, dtype=dtype))
        w = torch.from_numpy(np.ascontiguousarray(waveform, dtype=dtype))
        if not aux:
            return {"logits": model(f, w).numpy()}
        from edgeavs.compiler.frontend import _flatten_aux

        return {name: t.numpy() for name, t in _flatten_aux(model(f, w, return_aux=True))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeavs.reference", description=__doc__.splitlines()[0])
    ap.add_argument("--variant", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fusion", default="lightavseg", help="audio-visual fusion of a random-init model")
    ap.add_argument("--inputs", required=True, help=".npz with frames (N,3,H,W) and waveform (N,32000)")
    ap.add_argument("--out", required=True, help=".npz to write the named outputs to")
    ap.add_argument("--aux", action="store_true", help="also every per-layer intermediate")
    ap.add_argument("--float64", action="store_true", help="run in double precision")
    ap.add_argument("--float64-out", help="after the fp32 run, also run in double precision and write "
                                           "those outputs to this .npz (one model build for both)")
    ap.add_argument("--no-mkldnn", action="store_true",
                    help="PyTorch's native CPU kernels instead of oneDNN (the verify spread study)")
    args = ap.parse_args(argv)

    import torch

    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    if args.no_mkldnn:
        torch.backends.mkldnn.enabled = False
    from edgeavs.errors import EdgeAVSError

    try:
        model = build_reference_model(args.variant, args.checkpoint, args.seed, args.fusion)
        data = np.load(args.inputs)
        outs = run_reference(model, data["frames"], data["waveform"], aux=args.aux,
                             float64=args.float64)
        exact = None
        if args.float64_out:  # second: run_reference(float64=True) converts the model in place
            exact = run_reference(model, data["frames"], data["waveform"], aux=args.aux, float64=True)
    except EdgeAVSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    np.savez(args.out, **outs)
    if exact is not None:
        np.savez(args.float64_out, **exact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
