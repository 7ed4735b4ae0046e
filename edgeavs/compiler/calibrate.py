"""Calibration of an int8 build: observe each 1x1 conv's input on real clips, choose its scale, report sensitivity.

``plan(mod, clips)`` takes the module an int8 build has after ``edgeavs-fusion`` (what the ``precision``
phase's :class:`edgeavs.passes.int8_conv.ToInt8Conv` rewrites) and:

1. builds, for this machine, the same module with every site's input as an extra output
   (:func:`edgeavs.passes.int8_conv.with_site_inputs`; the rest of the pipeline as usual, fp32) and runs it on the
   calibration frames (:func:`calibration_inputs`: an AVSBench-layout tree, the train split, each clip's five
   frames with their one-second audio windows, as training reads them);
2. feeds every site's input to a **torchao** ``HistogramObserver`` (per tensor, asymmetric int8, -128..127: the
   observer the pt2e flow, and with it ExecuTorch's XNNPACK quantizer, uses for static activations; its L2
   search over histogram bins is what we would otherwise write by hand) and takes its scale and zero point;
3. measures each site's **sensitivity** (and ``saturated``, the fraction of its calibration inputs beyond the
   int8 range, which the observer chose to clip): the SNR of its int8 output against its fp32 output on the first
   :data:`SNR_FRAMES` calibration frames (the site alone, its fp32 input quantised as the kernel will:
   ``kernels.int8_conv.reference``); a site below ``min_snr_db`` stays fp32.

The result (:class:`Plan`) is the pass's plan (one entry per site, None = fp32) and the manifest's report: every
site's shape, scale, zero point, SNR and choice, the ten least robust, what stayed fp32 and why.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from edgeavs.errors import EdgeAVSError

DEFAULT_FRAMES = 200
"""``--calibration-frames`` default: 40 clips of five frames (the issue's "a few hundred frames")."""
MIN_SNR_DB = 25.0
"""A site whose isolated int8 output is below this SNR against fp32 stays fp32 (25 dB = rel-L2 5.6 %)."""
SNR_FRAMES = 8
"""Calibration frames the sensitivity is measured on (the first ones)."""
TASKS = ("s4", "ms3")


@dataclass
class Plan:
    entries: list  # per site of int8_conv.sites(): SitePlan or None
    reasons: dict  # site index -> why it stays fp32
    report: dict = field(default_factory=dict)


def check_arguments(precision: str, calibration, calibration_frames=None, what: str = "build") -> None:
    """The calibration options' one-line errors, for compile and tune alike: an int8 ``what`` needs
    ``--calibration``; ``--calibration`` and ``--calibration-frames`` apply to int8 only."""
    if precision == "int8" and calibration is None:
        raise EdgeAVSError("--precision int8 needs --calibration DIR (an AVSBench-layout tree, e.g. `edgeavs data "
                           "synth` output): the activations' scales come from it")
    if precision != "int8" and (calibration is not None or calibration_frames is not None):
        raise EdgeAVSError(f"--calibration{'-frames' if calibration is None else ''} applies to --precision int8 "
                           f"(this {what} is {precision})")


def find_task(root) -> str:
    """The AVSBench task whose metadata ``root`` holds (s4 first), else a one-line error naming the root."""
    from edgeavs.data.avsbench import task_dir

    root = os.fspath(root)
    if not os.path.isdir(root):
        raise EdgeAVSError(f"--calibration {root}: not a folder (an AVSBench-layout tree: `edgeavs data synth` "
                           "makes one)")
    for task in TASKS:
        try:
            task_dir(root, task)
            return task
        except EdgeAVSError:
            continue
    raise EdgeAVSError(f"--calibration {root}: no AVSBench metadata (s4_meta_data.csv or ms3_meta_data.csv, "
                       "directly or under Single-source/ or Multi-sources/)")


def calibration_inputs(root, resolution, frames: int = DEFAULT_FRAMES) -> tuple[list, dict]:
    """``([(frames (1,3,H,W), waveform (1,32000)), ...], info)``: ``frames`` frames of the train split of the
    AVSBench tree at ``root`` (every frame of a clip with its audio window, clip after clip), read at the build's
    resolution (square). One-line errors: not a tree, no train clips, too few frames, a bad file."""
    from edgeavs.data.avsbench import make_dataset

    h, w = resolution
    if frames < 1:
        raise EdgeAVSError(f"--calibration-frames {frames}: must be at least 1")
    if h != w:
        raise EdgeAVSError(f"--calibration: the build is {h}x{w}; calibration reads square frames as training "
                           "does (compile at one size, e.g. --resolution 224)")
    task = find_task(root)
    ds = make_dataset(root, task, "train", size=h)
    if len(ds) == 0:
        raise EdgeAVSError(f"--calibration {os.fspath(root)}: the {task} metadata lists no train clips")
    out = []
    for i in range(len(ds)):
        try:
            item = ds[i]
        except EdgeAVSError as exc:
            raise EdgeAVSError(f"--calibration: {exc}") from exc
        fr, au = item["frames"].numpy(), item["audio"].numpy()
        if fr.shape[-2:] != (h, w):
            raise EdgeAVSError(f"--calibration {os.fspath(root)}: clip {item['name']} reads as "
                               f"{fr.shape[-1]}x{fr.shape[-2]}, the build takes {w}x{h}")
        for k in range(fr.shape[0]):
            out.append((np.ascontiguousarray(fr[k:k + 1], dtype=np.float32),
                        np.ascontiguousarray(au[k:k + 1], dtype=np.float32)))
            if len(out) == frames:
                return out, {"root": os.fspath(root), "task": task, "split": "train", "frames": frames,
                             "clips": i + 1}
    raise EdgeAVSError(f"--calibration-frames {frames}: {os.fspath(root)} has only {len(out)} train frames "
                       f"({len(ds)} {task} clips x 5); ask for fewer")


def _observer():
    """A torchao per-tensor int8 HistogramObserver (torchao's import chatter about optional CUDA kernels that a
    CPU build cannot load is dropped)."""
    import torch

    logging.disable(logging.WARNING)
    try:
        from torchao.quantization.pt2e.observer import HistogramObserver
    finally:
        logging.disable(logging.NOTSET)
    return HistogramObserver(dtype=torch.int8, qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)


def _snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")


def plan(mod, clips: list, *, min_snr_db: float = MIN_SNR_DB, keep_ends: bool = True, log=None,
         calibration: dict | None = None) -> Plan:
    """Calibrate the sites of ``mod`` (the module after ``edgeavs-fusion``) on ``clips`` (see the module
    docstring). ``mod`` is not changed."""
    import torch

    from edgeavs.compiler.pipeline import _copy, run_pipeline
    from edgeavs.passes import int8_conv as Q
    from edgeavs.tvm_api import VirtualMachine, cpu, host_target, to_tvm, tvm
    from kernels.int8_conv import reference

    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    func = mod["main"]
    all_sites = Q.sites(func, keep_ends)
    collect, calibrated = Q.with_site_inputs(_copy(mod), keep_ends)
    host = host_target()
    built, _ = run_pipeline(collect, host, None, start="legalize")
    ex = tvm.compile(built, target=host, relax_pipeline=None)
    vm = VirtualMachine(ex, cpu())
    observers = [_observer() for _ in calibrated]
    kept_inputs: list[list] = [[] for _ in calibrated]
    dev = cpu()
    for i, (frames, wave) in enumerate(clips):
        out = vm["main"](to_tvm(frames), to_tvm(wave))
        xs = [out[1 + j].numpy() for j in range(len(calibrated))]
        for j, x in enumerate(xs):
            observers[j](torch.from_numpy(x))
            if i < SNR_FRAMES:
                kept_inputs[j].append(x)
    t_obs = time.perf_counter() - t0
    entries: list = [None] * len(all_sites)
    reasons = {s.index: s.kept for s in all_sites if s.kept is not None}
    layers = []
    for j, site in enumerate(calibrated):
        scale_t, zp_t = observers[j].calculate_qparams()
        scale, zp = float(scale_t.reshape(-1)[0]), int(zp_t.reshape(-1)[0])
        scale = max(scale, 1e-12)
        w = site.weight_matrix()
        wq, s_w = Q.quantize_weight(w)
        x = np.concatenate(kept_inputs[j], axis=0)
        ref = np.einsum("mk,nkhw->nmhw", w.astype(np.float64), x.astype(np.float64))
        got = reference(x, wq, np.float32(1.0 / scale), zp, (np.float32(scale) * s_w).astype(np.float32),
                        np.zeros(w.shape[0], np.float32))
        snr = _snr_db(ref, got)
        raw = np.rint(x * np.float32(1.0 / scale)) + zp  # before the clip: what falls outside int8's range
        clipped = float(np.mean((raw < -128) | (raw > 127)))
        int8 = snr >= min_snr_db
        if int8:
            entries[site.index] = Q.SitePlan(scale=scale, zero_point=zp)
        else:
            reasons[site.index] = f"sensitivity (SNR < {min_snr_db:g} dB)"
        n, m, k, h, w_ = site.shape
        layers.append({"site": site.index, "conv": site.name, "shape": {"m": m, "k": k, "h": h, "w": w_},
                       "scale": scale, "zero_point": zp, "snr_db": round(snr, 2), "saturated": round(clipped, 5),
                       "int8": bool(int8)})
    kept = [{"site": s.index, "conv": s.name, "reason": reasons[s.index]} for s in all_sites if s.index in reasons]
    worst = sorted(layers, key=lambda r: r["snr_db"])[:10]
    macs = {True: 0, False: 0}
    for s in all_sites:
        n, m, k, h, w_ = s.shape
        macs[entries[s.index] is not None] += n * m * k * h * w_
    report = {"observer": "torchao HistogramObserver (per tensor, affine int8)",
              "weights": "symmetric per output channel, [-127, 127]",
              "min_snr_db": min_snr_db, "snr_frames": min(SNR_FRAMES, len(clips)),
              "calibration": dict(calibration or {"frames": len(clips)}),
              "sites": len(all_sites), "int8_sites": sum(e is not None for e in entries),
              "site_macs_int8": macs[True], "site_macs_fp32": macs[False],
              "least_robust": worst, "kept": kept, "layers": layers,
              "seconds": round(time.perf_counter() - t0, 2), "observe_seconds": round(t_obs, 2)}
    say(f"  calibrate        {report['seconds']:7.2f} s  ({len(clips)} frames, {report['int8_sites']} of "
        f"{len(all_sites)} 1x1 convs int8)")
    return Plan(entries=entries, reasons=reasons, report=report)


__all__ = ["DEFAULT_FRAMES", "MIN_SNR_DB", "Plan", "calibration_inputs", "check_arguments", "find_task", "plan"]
