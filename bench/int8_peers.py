"""The int8 peers of ``bench/bench_precision_host.py``: ONNX Runtime static QDQ and ExecuTorch + XNNPACK pt2e,
from the same weights and the same calibration frames.

Bench-only code (the product has no use for another runtime's int8 build):

- :func:`calibration_arrays`: the first ``frames`` frames of a split of an AVSBench tree (the demo tree of
  ``edgeavs data synth``), read with ``edgeavs.data.avsbench.make_dataset`` at ``size``: ``frames (N,3,H,W)``,
  ``waveform (N,32000)`` float32, exactly what the model sees;
- :func:`quantize_onnx`: ``onnxruntime.quantization.quantize_static`` of ``edgeavs export-onnx``'s graph,
  QDQ, per-channel int8 weights, uint8 activations (U8S8, ONNX Runtime's x86 format; MinMax over the
  calibration frames, one at a time);
- :func:`export_pte_int8`: ``torch.export`` here, pt2e ``XNNPACKQuantizer`` (symmetric, per-channel) +
  calibration + XNNPACK lowering in the ExecuTorch export environment (``bench/int8_runners/export_pte_int8.py``);
- :func:`ort_predictor` / :func:`et_logits`: the logits of many frames, batch 1 each, for the accuracy table.

Both int8 peers keep the log-mel front end (:data:`FP32_MODULES`: the STFT convs, the power spectrum, the mel
filter bank and the log) in fp32, as edgeavs' fp16 build does: quantizing the power spectrum before a log
throws away the quiet bins, and with it quantized XNNPACK refuses the delegate at load
(``Failed to create squeeze node ... xnn_status_invalid_parameter``, the ``[:, None]`` after the power
spectrum). ``fp32_front_end=False`` quantizes everything the quantizer takes (ONNX Runtime only: the
ExecuTorch program then fails to load, as said).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = Path(__file__).resolve().with_name("int8_runners")
FP32_MODULES = ("audio.spectrogram_extractor", "audio.logmel_extractor")
"""Modules (qualified names under the model) both int8 peers leave in fp32: the log-mel front end."""


def calibration_arrays(root, task: str, frames: int, size: int, split: str = "train"):
    """The first ``frames`` frames (whole clips of 5 in order, the last one cut) of ``split``."""
    import numpy as np

    from edgeavs.data.avsbench import make_dataset
    from edgeavs.errors import EdgeAVSError

    ds = make_dataset(root, task, split, size=size)
    got_f, got_w, n = [], [], 0
    for i in range(len(ds)):
        if n >= frames:
            break
        item = ds[i]
        got_f.append(item["frames"].numpy())
        got_w.append(item["audio"].numpy())
        n += item["frames"].shape[0]
    if n < frames:
        raise EdgeAVSError(f"{root}: the {task} {split} split has {n} frames, --calibration-frames asks {frames}")
    return (np.concatenate(got_f)[:frames].astype(np.float32),
            np.concatenate(got_w)[:frames].astype(np.float32))


def _in_modules(scopes, names) -> bool:
    for scope in scopes:
        path = "." + str(scope) + "."
        if any(f".{n}." in path for n in names):
            return True
    return False


def onnx_nodes_in(model, names=FP32_MODULES) -> list[str]:
    """Names of the ONNX graph's nodes that come from the modules ``names`` (the dynamo exporter's
    ``pkg.torch.onnx.name_scopes`` metadata)."""
    out = []
    for node in model.graph.node:
        props = {p.key: p.value for p in node.metadata_props}
        scopes = ast.literal_eval(props.get("pkg.torch.onnx.name_scopes", "[]"))
        if _in_modules(scopes, names):
            out.append(node.name)
    return out


ORT_ACTIVATIONS = ("quint8", "qint8")


def quantize_onnx(fp32_onnx, out_onnx, frames, waveform, fp32_front_end: bool = True,
                  activations: str = "quint8") -> dict:
    """``quantize_static`` (QDQ, per-channel int8 weights, MinMax) of ``fp32_onnx`` to ``out_onnx``, calibrated on
    ``frames``/``waveform`` one frame at a time; returns what it did. ``activations``: ``quint8`` (U8S8, the
    format ONNX Runtime's quantization guide names for x86-64: its VNNI / VPMADDUBSW kernels take u8 x s8; on this
    machine's tiny@64 graph 16.5 ms vs 22.6 ms for S8S8) or ``qint8`` (S8S8, quantize_static's default)."""
    import numpy as np
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= frames.shape[0]:
                return None
            i, self.i = self.i, self.i + 1
            return {"frames": np.ascontiguousarray(frames[i:i + 1]),
                    "waveform": np.ascontiguousarray(waveform[i:i + 1])}

        def rewind(self):
            self.i = 0

    t0 = time.perf_counter()
    model = onnx.load(str(fp32_onnx))
    exclude = onnx_nodes_in(model) if fp32_front_end else []
    out_onnx = Path(out_onnx)
    tmp = out_onnx.with_name(f".{out_onnx.name}.{os.getpid()}.tmp")
    quantize_static(str(fp32_onnx), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8 if activations == "quint8" else QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude)
    os.replace(tmp, out_onnx)
    q = onnx.load(str(out_onnx), load_external_data=False)
    ops: dict = {}
    for node in q.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"method": f"onnxruntime.quantization.quantize_static: QDQ, per_channel=True, activations "
                      f"{'QUInt8' if activations == 'quint8' else 'QInt8'}, weights QInt8, CalibrationMethod.MinMax",
            "onnxruntime": onnxruntime.__version__, "calibration_frames": int(frames.shape[0]),
            "fp32_nodes_excluded": len(exclude), "fp32_modules": list(FP32_MODULES) if fp32_front_end else [],
            "QuantizeLinear": ops.get("QuantizeLinear", 0), "DequantizeLinear": ops.get("DequantizeLinear", 0),
            "seconds": round(time.perf_counter() - t0, 1)}


def export_pte_int8(graph, example, frames, waveform, out_pte, python: str, fp32_front_end: bool = True,
                    log=None) -> dict:
    """``torch.export`` of ``graph`` (the inference graph) on ``example`` here, then pt2e int8 + XNNPACK
    lowering by ``python`` (the ExecuTorch export environment) to ``out_pte``; returns its report."""
    import tempfile

    import numpy as np
    import torch

    from edgeavs.errors import EdgeAVSError

    t0 = time.perf_counter()
    out_pte = Path(out_pte)
    with tempfile.TemporaryDirectory(prefix="edgeavs-pte-int8-") as tmp:
        pt2, calib, report = Path(tmp) / "program.pt2", Path(tmp) / "calibration.npz", Path(tmp) / "report.json"
        with torch.no_grad():
            ep = torch.export.export(graph, tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in example))
        torch.export.save(ep, str(pt2))
        np.savez(calib, frames=frames, waveform=waveform)
        cmd = [python, str(RUNNERS / "export_pte_int8.py"), str(pt2), str(calib), str(out_pte), str(report)]
        if fp32_front_end:
            cmd += ["--fp32-modules", ",".join(FP32_MODULES)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise EdgeAVSError(f"the ExecuTorch int8 export failed: {lines[-1] if lines else proc.returncode}")
        rep = json.loads(report.read_text())
    if log:
        log(f"ExecuTorch/XNNPACK int8 export -> {out_pte} in {time.perf_counter() - t0:.0f} s")
    return rep


def ort_predictor(onnx_path, threads: int):
    """``predict(frames (N,3,H,W), waveform (N,32000)) -> logits (N,1,H,W)``: one ONNX Runtime session
    (CPU EP, ``threads`` intra-op threads), run once per frame (the graph is batch 1)."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def predict(frames, waveform):
        return np.concatenate([sess.run(None, {"frames": np.ascontiguousarray(frames[i:i + 1]),
                                                "waveform": np.ascontiguousarray(waveform[i:i + 1])})[0]
                               for i in range(frames.shape[0])])

    return predict


def et_logits(python: str, pte, frames, waveform, threads: int):
    """The ``.pte``'s logits of every frame (batch 1 each), run by ExecuTorch's Python runtime in the
    export environment (``bench/int8_runners/et_predict.py``): ``(logits (N,...), its JSON line)``."""
    import tempfile

    import numpy as np

    from edgeavs.errors import EdgeAVSError

    with tempfile.TemporaryDirectory(prefix="edgeavs-et-predict-") as tmp:
        inputs, out = Path(tmp) / "inputs.npz", Path(tmp) / "logits.npy"
        np.savez(inputs, frames=frames, waveform=waveform)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run([python, str(RUNNERS / "et_predict.py"), str(pte), str(inputs), str(out),
                               "--threads", str(threads)], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise EdgeAVSError(f"ExecuTorch on {Path(pte).name} failed: {lines[-1] if lines else proc.returncode}")
        return np.load(out), json.loads(proc.stdout.strip().splitlines()[-1])


class Replay:
    """A predictor that hands back precomputed logits in order (the evaluation's batches are in order):
    ``edgeavs.evaluate.evaluate_predictor`` scores another process's outputs with the same batches."""

    def __init__(self, logits):
        self.logits, self.i = logits, 0

    def __call__(self, frames, waveform):
        n = frames.shape[0]
        out = self.logits[self.i:self.i + n]
        if out.shape[0] != n:
            raise ValueError(f"replay: {self.i + n} frames asked, {self.logits.shape[0]} computed")
        self.i += n
        return out
