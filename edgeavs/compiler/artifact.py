"""The compiled artifact: a directory with the library and ``manifest.json``.

Layout (format ``edgeavs-artifact/1``)::

    model.so        ex.export_library(): code + weights bound as constants
    manifest.json   versions, target dict + fingerprint, variant, resolution, weights source,
                    input/output names, shapes and dtypes, sha256 of every other file,
                    fusion report

It loads with plain TVM (see :func:`load_artifact` and the README)::

    lib = tvm.runtime.load_module("artifact/model.so")
    vm = tvm.relax.VirtualMachine(lib, tvm.cpu())
    logits = vm["main"](tvm.runtime.tensor(frames), tvm.runtime.tensor(waveform)).numpy()

This module never imports torch (``edgeavs segment`` runs artifacts in torch-free processes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeavs.errors import EdgeAVSError

FORMAT = "edgeavs-artifact/1"
MANIFEST = "manifest.json"
LIBRARY = "model.so"


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- writing

@contextlib.contextmanager
def staging_dir(dest):
    """A temp directory beside ``dest``; on success it replaces ``dest`` by rename, on failure
    it is removed, so a failed compile never leaves a half-written artifact."""
    dest = Path(dest).absolute()
    if dest.exists() and not dest.is_dir():
        raise EdgeAVSError(f"{dest}: exists and is not a directory (an artifact is a directory)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old = None
    try:
        yield tmp
        if os.path.lexists(dest):  # the previous artifact (or a link to one) steps aside, unique name
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            old.rmdir()
            os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException:
        if old is not None and os.path.lexists(old) and not os.path.lexists(dest):
            os.replace(old, dest)  # the new one did not land: put the previous one back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_symlink() or not old.is_dir():
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)


def write_manifest(directory, manifest: dict) -> dict:
    """Add the sha256 of every file in ``directory`` (but the manifest) and write it."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"format": FORMAT, **manifest,
                "files": {p.relative_to(directory).as_posix(): file_sha256(p) for p in files}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


# ---------------------------------------------------------------- reading and validating

def read_manifest(directory) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise EdgeAVSError(f"artifact {directory} not found (expected a directory written by "
                           "edgeavs compile)")
    path = directory / MANIFEST
    if not path.is_file():
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is not an {FORMAT} manifest")
    return manifest


def validate_artifact(directory, require_library: bool = True) -> dict:
    """The manifest, after checking that every listed file exists and matches its sha256.

    ``require_library``: the host library must be listed (False for a device artifact, e.g. a
    snapdragon8elite build without an NDK has only the Linux AArch64 library)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    files = manifest.get("files") or {}
    if require_library and LIBRARY not in files:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} lists no {LIBRARY}")
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            raise EdgeAVSError(f"artifact {directory}: {name} is missing")
        if file_sha256(path) != digest:
            raise EdgeAVSError(f"artifact {directory}: {name} does not match its sha256 in "
                               f"{MANIFEST} (modified or corrupted)")
    return manifest


@contextlib.contextmanager
def _torch_blocked():
    """tvm_ffi imports torch eagerly when it can; make that import fail (it is optional there)
    so that a process which only runs artifacts stays torch-free (no torch/TVM OpenMP clash,
    ~1 s less start-up). Without effect when torch is already loaded."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def _runtime():
    with _torch_blocked():
        from edgeavs.tvm_api import relax, tvm
    return tvm, relax


class CompiledModel:
    """A loaded artifact: ``run(frames, waveform) -> logits`` (numpy in, numpy out).

    The library is compiled for a fixed batch (``manifest['inputs']``); ``run`` takes any
    ``N`` and runs the compiled batch repeatedly. Multi-output graphs (``--per-layer``
    verification) come back from :meth:`run_all` as a dict by output name.
    """

    def __init__(self, directory, manifest: dict, device=None):
        tvm, relax = _runtime()
        self.directory = Path(directory)
        self.manifest = manifest
        self.inputs = manifest["inputs"]
        self.outputs = manifest["outputs"]
        self._tvm = tvm
        self.device = device or tvm.cpu()
        lib = tvm.runtime.load_module(str(self.directory / LIBRARY))
        self.vm = relax.VirtualMachine(lib, self.device)
        self._main = self.vm["main"]

    @property
    def batch(self) -> int:
        return int(self.inputs[0]["shape"][0])

    def _check(self, arrays):
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
        n = arrays[0].shape[0] if arrays[0].ndim else 0
        for a, spec in zip(arrays, self.inputs):
            want = list(spec["shape"])
            if a.ndim != len(want) or list(a.shape[1:]) != want[1:] or a.shape[0] != n:
                raise EdgeAVSError(f"input {spec['name']} has shape {tuple(a.shape)}; this "
                                   f"artifact takes (N, {', '.join(map(str, want[1:]))})")
        return arrays, n

    def run_all(self, frames, waveform) -> dict:
        (frames, waveform), n = self._check([frames, waveform])
        b = self.batch
        if n % b:
            raise EdgeAVSError(f"batch of {n} is not a multiple of the compiled batch {b}")
        tensor = self._tvm.runtime.tensor
        chunks = []
        for i in range(0, n, b):
            out = self._main(tensor(frames[i:i + b], self.device), tensor(waveform[i:i + b], self.device))
            outs = [out] if hasattr(out, "numpy") else list(out)
            chunks.append([o.numpy() for o in outs])
        return {spec["name"]: np.concatenate([c[k] for c in chunks], axis=0)
                for k, spec in enumerate(self.outputs)}

    def run(self, frames, waveform) -> np.ndarray:
        """``frames (N,3,H,W)``, ``waveform (N,32000)`` float32 -> logits ``(N,1,H,W)``."""
        return self.run_all(frames, waveform)["logits"]

    __call__ = run


def load_artifact(directory, validate: bool = True) -> CompiledModel:
    """Load an artifact directory (checking every file against the manifest hashes)."""
    manifest = validate_artifact(directory) if validate else read_manifest(directory)
    return CompiledModel(directory, manifest)
