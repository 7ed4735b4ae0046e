"""ExecuTorch + XNNPACK int8: pt2e static quantization of a saved ``torch.export`` program, then the
same lowering as the fp32 ``.pte`` (``edgeavs/device/peer_runners/export_pte.py``).

Run by the Python of the export environment (``executorch`` beside torch; not edgeavs)::

    python export_pte_int8.py PROGRAM.pt2 CALIBRATION.npz OUT.pte REPORT.json [--fp32-modules A,B]

``CALIBRATION.npz``: ``frames (N,3,H,W)`` and ``waveform (N,32000)`` float32, fed one frame at a
time (batch 1, the program's shapes) to the observers. The quantizer is ExecuTorch's
``XNNPACKQuantizer`` with ``get_symmetric_quantization_config(is_per_channel=True)``: int8 weights,
symmetric per output channel; int8 activations, per tensor, static (ranges from the calibration
frames); what it does not annotate stays fp32 (XNNPACK runs those ops in fp32, or they run outside
the delegate), and so do the nodes of the modules ``--fp32-modules`` names (qualified names under the
model, matched in each node's ``nn_module_stack``). torchao's ``prepare_pt2e`` / ``convert_pt2e``; the converted model is exported
again and lowered with ``XnnpackPartitioner`` (the rewrites of ``export_pte.lower_to_pte``).
"""

from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "edgeavs", "device", "peer_runners"))

from export_pte import lower_to_pte  # noqa: E402  (torch + executorch only)


def in_modules(node, names) -> bool:
    """Whether ``node`` comes from one of the modules ``names`` (by its ``nn_module_stack``)."""
    for entry in (node.meta.get("nn_module_stack") or {}).values():
        path = "." + str(entry[0]) + "."
        if any(f".{name}." in path for name in names):
            return True
    return False


def quantize(ep, frames, waveform, fp32_modules=()):
    """The pt2e-quantized module of ``ep`` calibrated on the frames; the modules named in
    ``fp32_modules`` (qualified names in the exported graph) are left unannotated (fp32)."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    if fp32_modules:
        quantizer.set_filter_function(lambda node: not in_modules(node, fp32_modules))
    prepared = prepare_pt2e(ep.module(), quantizer)
    with torch.no_grad():
        for i in range(frames.shape[0]):
            prepared(torch.from_numpy(frames[i:i + 1]), torch.from_numpy(waveform[i:i + 1]))
    return convert_pt2e(prepared)


def main(argv) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("program")
    ap.add_argument("calibration")
    ap.add_argument("pte")
    ap.add_argument("report")
    ap.add_argument("--fp32-modules", default="")
    args = ap.parse_args(argv[1:])
    fp32_modules = tuple(m for m in args.fp32_modules.split(",") if m)
    import numpy as np
    import torch

    t0 = time.perf_counter()
    ep = torch.export.load(args.program)
    with np.load(args.calibration) as z:
        frames, waveform = z["frames"].astype(np.float32), z["waveform"].astype(np.float32)
    example = tuple(torch.from_numpy(a[:1]) for a in (frames, waveform))
    converted = quantize(ep, frames, waveform, fp32_modules)
    quantized_ops = sum(1 for n in converted.graph.nodes if n.op == "call_function"
                        and "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target))
    t_quant = time.perf_counter() - t0
    with torch.no_grad():
        ep_q = torch.export.export(converted, example)
    report = lower_to_pte(ep_q, args.pte, t0)
    report.update({"quantizer": "XNNPACKQuantizer(get_symmetric_quantization_config(is_per_channel=True))",
                   "calibration_frames": int(frames.shape[0]), "quantize_nodes": quantized_ops,
                   "fp32_modules": list(fp32_modules),
                   "quantize_seconds": round(t_quant, 1)})
    with open(args.report, "w") as fh:
        json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
