"""One small, valid seed input per file kind, generated at test time (nothing binary is checked in).

:func:`build_seeds` writes them into a directory::

    target/*.yaml           the shipped targets (targets/*.yaml)
    artifact/               a compiled LightAVSeg-tiny artifact at 64x64 (model.so + manifest.json)
    records/                a records directory as ``edgeavs tune`` writes it: fingerprint.json for the host
                            target, edgeavs_knobs.json, a one-workload MetaSchedule database
    checkpoint/tiny.pt      an edgeavs checkpoint of LightAVSeg-tiny (random init, seed 0)
    wav/*.wav               int16 mono 16 kHz, int16 stereo 44.1 kHz, float32 mono 48 kHz, uint8 8 kHz, int32
    png/*.png               RGB, palette (a mask), L, RGBA, 16-bit grey
    mp4/*.mp4               6 frames 64x48 with AAC audio (index at the end, and faststart)

Each kind is built once (a ``.done`` marker), so a seeds directory can be reused between runs and by the
reproduction command a failure prints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

KNOBS = {
    "conv1x1/244ab5876c5fa252": {"kind": "gemm", "config": {"co_tile": 2, "pixel_vectors": 2, "lanes": 8,
                                                            "parallel": "pixel", "pack": True},
                                 "functions": ["fused_conv2d_add_relu"], "default_us": 12.5, "tuned_us": 10.1},
    "depthwise/00c0ffee00c0ffee": {"kind": "depthwise", "config": {"rows": 2, "vector": 8, "vectors": 2,
                                                                   "unroll_taps": True, "tile": True,
                                                                   "parity": False},
                                   "functions": ["fused_conv2d1_add1"], "default_us": 8.0, "tuned_us": 7.2},
    "direct/0123456789abcdef": {"kind": "direct_conv", "config": None, "functions": ["fused_conv2d2"],
                                "default_us": 30.0},
    "hsig_gate/n=1,ci=64,hg=8,wg=8,co=64,h=16,w=16,bias_batch=1,dtype=float32": {
        "kind": "hsig_gate", "config": {"tile_co": 4, "tile_px": 16, "lanes": 8, "parallel": True,
                                        "vector_axis": "co"},
        "functions": ["hsig_gate_kernel"], "default_us": 5.0, "tuned_us": 4.0},
    "stft_fft/frames=101": {"kind": "stft_fft", "config": {"frames": 8, "radix": 4}, "functions": ["stft"]},
    "generic/fedcba9876543210": {"kind": "generic", "config": {"lanes": 8, "parallel": True,
                                                               "min_parallel_work": 16384,
                                                               "max_whole_vector": 64}},
}
"""Knob entries in the shape ``edgeavs tune`` writes them (kind, config or null, functions, timings)."""

KINDS = ("target", "artifact", "records", "checkpoint", "wav", "png", "mp4")


def _done(d: Path) -> bool:
    return (d / ".done").is_file()


def _mark(d: Path) -> None:
    (d / ".done").write_text("ok\n")


def build_targets(d: Path) -> None:
    from edgeavs.targets import targets_dir

    for p in sorted(targets_dir().glob("*.yaml")):
        shutil.copyfile(p, d / p.name)


def build_artifact(d: Path, artifact: Path | None = None) -> None:
    """Copy a compiled tiny@64 artifact (compiling one through the CLI, as the compiler tests do, when none is
    given)."""
    if artifact is None:
        from tests.compiler.artifacts import tiny_artifact

        artifact = tiny_artifact()
    for p in Path(artifact).iterdir():
        if p.is_file():
            shutil.copyfile(p, d / p.name)


def seed_workload():
    """The PrimFunc module of the seed database (also what the records fuzz target queries it with)."""
    from edgeavs.tvm_api import IRModule, te

    a = te.placeholder((64,), name="A")
    b = te.compute((64,), lambda i: a[i] * 2.0, name="B")
    return IRModule({"main": te.create_prim_func([a, b])})


def build_records(d: Path) -> None:
    from edgeavs.targets import load_target
    from edgeavs.compiler.knobs import FORMAT as KNOBS_FORMAT
    from edgeavs.compiler.records import FINGERPRINT, KNOBS as KNOBS_FILE, make_fingerprint
    from edgeavs.tvm_api import meta_schedule as ms
    from edgeavs.tvm_api import s_tir

    target = load_target("host")
    (d / FINGERPRINT).write_text(json.dumps(make_fingerprint(target), indent=1))
    (d / KNOBS_FILE).write_text(json.dumps({"format": KNOBS_FORMAT, "functions": KNOBS}, indent=1, sort_keys=True)
                                + "\n")
    mod = seed_workload()
    db = ms.database.JSONDatabase(work_dir=str(d))
    workload = db.commit_workload(mod)
    sch = s_tir.Schedule(mod)
    block = sch.get_sblock("B") if hasattr(sch, "get_sblock") else sch.get_block("B")
    (loop,) = sch.get_loops(block)
    outer, inner = sch.split(loop, [None, 8])
    sch.parallel(outer)
    sch.vectorize(inner)
    db.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, run_secs=[1.5e-6],
                                                     target=target.to_tvm()))
    # the tune log: one line per round
    (d / "tune_log.jsonl").write_text(json.dumps({"round": 1, "task": "main", "trials": 1, "best_us": 1.5}) + "\n")


def build_checkpoint(d: Path) -> None:
    from edgeavs.model import build_model, save_checkpoint

    model = build_model("tiny", seed=0)
    save_checkpoint(model, d / "tiny.pt", epoch=1, metrics={"miou": 0.5})


def build_wavs(d: Path) -> None:
    from scipy.io import wavfile

    t16 = np.arange(4000) / 16000.0
    tone = np.sin(2 * np.pi * 440 * t16)
    wavfile.write(d / "int16_mono_16k.wav", 16000, (tone * 20000).astype(np.int16))
    t44 = np.arange(4410) / 44100.0
    st = np.stack([np.sin(2 * np.pi * 440 * t44), np.sin(2 * np.pi * 660 * t44)], axis=1)
    wavfile.write(d / "int16_stereo_44k.wav", 44100, (st * 20000).astype(np.int16))
    t48 = np.arange(4800) / 48000.0
    wavfile.write(d / "float32_mono_48k.wav", 48000, (0.5 * np.sin(2 * np.pi * 440 * t48)).astype(np.float32))
    t8 = np.arange(2000) / 8000.0
    wavfile.write(d / "uint8_mono_8k.wav", 8000, (128 + 100 * np.sin(2 * np.pi * 440 * t8)).astype(np.uint8))
    wavfile.write(d / "int32_mono_32k.wav", 32000,
                  (np.sin(2 * np.pi * 440 * np.arange(3200) / 32000.0) * 2 ** 30).astype(np.int32))


def build_pngs(d: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / "rgb.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:50] = 1
    pal = Image.fromarray(mask, mode="P")
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * (256 * 3 - 6))
    pal.save(d / "mask_palette.png")
    Image.fromarray(mask * 255).save(d / "mask_l.png")
    rgba = np.concatenate([rgb, np.full((48, 64, 1), 200, np.uint8)], axis=2)
    Image.fromarray(rgba).save(d / "rgba.png")
    Image.fromarray((rng.integers(0, 65536, (16, 16))).astype(np.uint16)).save(d / "grey16.png")


def build_mp4s(d: Path) -> None:
    from edgeavs.video import write_clip

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    t = np.arange(int(0.6 * 16000)) / 16000.0
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_clip(d / "clip.mp4", frames, audio, fps=10, sample_rate=16000)
    write_clip(d / "clip_faststart.mp4", frames, np.stack([audio, audio]), fps=10, sample_rate=16000,
               faststart=True)


def build_seeds(root, kinds=KINDS, artifact=None) -> Path:
    """Build the seeds of ``kinds`` (see the module docstring) under ``root`` unless already there."""
    root = Path(root)
    builders = {"target": build_targets, "artifact": lambda d: build_artifact(d, artifact),
                "records": build_records, "checkpoint": build_checkpoint, "wav": build_wavs, "png": build_pngs,
                "mp4": build_mp4s}
    for kind in kinds:
        d = root / kind
        if _done(d):
            continue
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        builders[kind](d)
        _mark(d)
    return root


def seed_files(root, kind: str) -> list[Path]:
    """The seed inputs of a seeds sub-directory, sorted (a directory kind is one seed: the directory)."""
    d = Path(root) / kind
    if kind in ("artifact", "records"):
        return [d]
    return sorted(p for p in d.iterdir() if p.is_file() and p.name != ".done")
