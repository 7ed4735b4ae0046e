"""The fuzz targets: per file kind, how a case's input is made from a seed and the library entry point the CLI
runs on it.

A :class:`FuzzTarget` has

* ``seed_kind``: the seeds sub-directory (:mod:`tests.fuzz.seeds`) it starts from;
* ``make(rng, seed, case_dir) -> (path, description)``: write one mutated input under ``case_dir``;
* ``run(path)``: what the CLI does with such a file, through the same library functions. Returning is
  "accepted"; an :class:`~edgeavs.errors.EdgeAVSError` is a clean refusal; anything else is a bug.

| kind        | CLI                                   | entry point                                                      |
|-------------|---------------------------------------|------------------------------------------------------------------|
| target      | ``--target FILE.yaml`` (compile, tune) | ``edgeavs.targets.load_target``                                  |
| manifest    | ``segment --artifact DIR``            | ``edgeavs.segment.ArtifactPredictor`` (``load_artifact``) + one run |
| artifact-so | ``segment --artifact DIR``            | ``edgeavs.compiler.artifact.load_artifact`` (model.so mutated, manifest rehashed) |
| knobs       | ``compile --records DIR``             | ``RecordsDir.open`` / ``read_knobs`` / ``validate``, ``knobs.tuned_config`` |
| fingerprint | ``compile --records DIR``             | the same, ``fingerprint.json`` mutated                           |
| database    | ``compile --records DIR``             | the same + ``RecordsDir.database()`` and a query of its workload  |
| checkpoint  | ``--checkpoint FILE`` (compile, info, segment) | ``edgeavs.model.load_checkpoint``                       |
| wav         | AVSBench audio (train, evaluate)      | ``edgeavs.io.audio.load_audio`` + ``split_windows``              |
| png         | AVSBench frames and masks             | ``edgeavs.io.frames.load_frame`` / ``load_mask`` / ``normalize`` |
| mp4         | ``segment VIDEO``                     | ``edgeavs.video.MediaReader``: open, every frame, its audio window |
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tests.fuzz import mutators as m


@dataclass(frozen=True)
class FuzzTarget:
    kind: str
    seed_kind: str
    make: Callable
    run: Callable
    doc: str
    warm: Callable = lambda: None
    """The entry point's imports (run once per child, before the first case)."""
    per_child: int = 0
    """Cases per child process (0: all of its range): a loaded library or model is never unmapped, so the kinds
    that load a new 25 MB one per case start a fresh child now and then."""


@functools.lru_cache(maxsize=16)
def seed_bytes(path: Path) -> bytes:
    """A seed file's bytes, read once per process (the checkpoint and model.so are tens of MB)."""
    return Path(path).read_bytes()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _file_kind(mutate, suffix=None):
    def make(rng, seed: Path, case_dir: Path):
        data, desc = mutate(rng, seed_bytes(seed))
        return _write(case_dir / (seed.stem + (suffix or seed.suffix)), data), f"{seed.name}: {desc}"

    return make


# ------------------------------------------------------------------ target YAML

def run_target(path):
    from edgeavs.targets import load_target

    t = load_target(path)
    t.tvm_dict()
    t.fingerprint()


# ------------------------------------------------------------------ artifact

def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def make_manifest(rng, seed: Path, case_dir: Path):
    out = case_dir / "artifact"
    out.mkdir(parents=True)
    for p in seed.iterdir():
        if p.is_file() and p.name not in ("manifest.json", ".done"):
            _link_or_copy(p, out / p.name)
    data, desc = m.mutate_json(rng, seed_bytes(seed / "manifest.json"))
    _write(out / "manifest.json", data)
    return out, f"manifest.json: {desc}"


def run_manifest(path):
    """``edgeavs segment --artifact``: the predictor (load_artifact, the manifest's input size), then one frame as
    the segment loop feeds it (batch 1, the manifest's input size, one second of audio)."""
    from edgeavs.segment import ArtifactPredictor

    pred = ArtifactPredictor(path)
    h, w = pred.input_size
    frames = np.zeros((1, 3, h, w), np.float32)
    logits = pred(frames, np.zeros((1, 32000), np.float32))
    np.asarray(logits, np.float32)[0, 0]


def make_library(rng, seed: Path, case_dir: Path):
    """model.so mutated and the manifest's sha256 for it updated, so the damage reaches the loader."""
    out = case_dir / "artifact"
    out.mkdir(parents=True)
    manifest = json.loads((seed / "manifest.json").read_text())
    for p in seed.iterdir():
        if p.is_file() and p.name not in ("manifest.json", "model.so", ".done"):
            _link_or_copy(p, out / p.name)
    data, desc = m.mutate_elf(rng, seed_bytes(seed / "model.so"))
    _write(out / "model.so", data)
    manifest.setdefault("files", {})["model.so"] = hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out, f"model.so (manifest rehashed): {desc}"


def run_library(path):
    from edgeavs.compiler.artifact import load_artifact

    load_artifact(path)


# ------------------------------------------------------------------ records

_HOST = []


def _host():
    if not _HOST:
        from edgeavs.targets import load_target

        _HOST.append(load_target("host"))
    return _HOST[0]


def _records_make(filename, mutate):
    def make(rng, seed: Path, case_dir: Path):
        out = case_dir / "records"
        shutil.copytree(seed, out, ignore=shutil.ignore_patterns(".done"))
        name = filename(rng) if callable(filename) else filename
        data, desc = mutate(rng, (out / name).read_bytes())
        _write(out / name, data)
        return out, f"{name}: {desc}"

    return make


def run_records(path):
    """``edgeavs compile --records DIR``: open (fingerprint checked against the host target), validate, read the
    knob records and resolve each entry as the schedule passes do, load the MetaSchedule database and query the
    seed's workload in it (what ``MetaScheduleApplyDatabase`` does)."""
    from edgeavs.compiler.records import RecordsDir
    from kernels import registry as knobs

    rec = RecordsDir(path).open(_host())
    functions = rec.read_knobs()
    rec.validate()
    rec.fingerprint()
    configs = {"functions": functions}
    for key in list(functions):
        knobs.tuned_config(configs, key)
    if rec.workloads.exists():
        from tests.fuzz.seeds import seed_workload

        db = rec.database()
        for r in db.get_all_tuning_records():
            r.workload.mod
            r.trace
        target = _host().to_tvm()
        db.query_ir_module(seed_workload(), target, "main")


# ------------------------------------------------------------------ checkpoint

@functools.lru_cache(maxsize=2)
def _checkpoint_object(path: Path):
    import io

    import torch

    return torch.load(io.BytesIO(seed_bytes(path)), map_location="cpu", weights_only=True)


def make_checkpoint(rng, seed: Path, case_dir: Path):
    obj = _checkpoint_object(seed)
    copy = {**obj, "state_dict": dict(obj["state_dict"])}  # what a mutation changes is replaced, never modified
    data, desc = m.checkpoint_mutation(rng, seed_bytes(seed), copy)
    return _write(case_dir / "tiny.pt", data), desc


def run_checkpoint(path):
    from edgeavs.model import load_checkpoint

    load_checkpoint(path)


# ------------------------------------------------------------------ audio, images, video

def run_wav(path):
    from edgeavs.io.audio import load_audio, split_windows

    split_windows(load_audio(path), 5)


def run_png(path):
    from edgeavs.io.frames import load_frame, load_mask, normalize

    normalize(load_frame(path, 64))
    load_frame(path)
    load_mask(path, (64, 64))


def run_mp4(path):
    """``edgeavs segment VIDEO``: the fail-fast open, then the streaming read: every frame as RGB with the causal
    audio window ending at its time."""
    from edgeavs.video import MediaReader

    MediaReader(path).close()
    with MediaReader(path) as reader:
        for kind, item in reader:
            if kind == "video":
                item.rgb()
                reader.window(item.time)


def _warm_artifact():
    from edgeavs.compiler.artifact import _runtime

    _runtime()
    import edgeavs.segment  # noqa: F401


def _warm_records():
    _host()
    from edgeavs.tvm_api import meta_schedule  # noqa: F401


def _warm_torch():
    import edgeavs.model.weights  # noqa: F401
    from edgeavs.model import build_model

    build_model("tiny")


def _warm_media():
    import av  # noqa: F401
    import PIL.Image  # noqa: F401
    import scipy.signal  # noqa: F401

    import edgeavs.io.audio  # noqa: F401
    import edgeavs.io.frames  # noqa: F401
    import edgeavs.video  # noqa: F401


TARGETS = {t.kind: t for t in (
    FuzzTarget("target", "target", _file_kind(m.mutate_yaml), run_target, "target YAML -> load_target", _warm_records),
    FuzzTarget("manifest", "artifact", make_manifest, run_manifest,
               "manifest.json -> ArtifactPredictor (load_artifact) + one run", _warm_artifact),
    FuzzTarget("artifact-so", "artifact", make_library, run_library,
               "model.so bytes (manifest rehashed) -> load_artifact", _warm_artifact, per_child=25),
    FuzzTarget("knobs", "records", _records_make("edgeavs_knobs.json", m.mutate_json), run_records,
               "edgeavs_knobs.json -> RecordsDir.open/read_knobs/validate, tuned_config", _warm_records),
    FuzzTarget("fingerprint", "records", _records_make("fingerprint.json", m.mutate_json), run_records,
               "fingerprint.json -> RecordsDir.open", _warm_records),
    FuzzTarget("database", "records",
               _records_make(lambda rng: rng.choice(("database_workload.json", "database_tuning_record.json")),
                             m.mutate_json_lines), run_records,
               "MetaSchedule database lines -> RecordsDir.open/validate/database + query", _warm_records),
    FuzzTarget("checkpoint", "checkpoint", make_checkpoint, run_checkpoint, "edgeavs checkpoint -> load_checkpoint",
               _warm_torch, per_child=100),
    FuzzTarget("wav", "wav", _file_kind(m.mutate_wav), run_wav, "WAV -> load_audio + split_windows", _warm_media),
    FuzzTarget("png", "png", _file_kind(m.mutate_png), run_png, "PNG -> load_frame/load_mask/normalize", _warm_media),
    FuzzTarget("mp4", "mp4", _file_kind(m.mutate_mp4), run_mp4, "MP4 -> MediaReader (every frame + audio)", _warm_media),
)}

KINDS = tuple(TARGETS)
