"""A compiled artifact served from a torch-free child process, for callers that hold torch.

``edgeavs evaluate --artifact`` loads its data with torch (the AVSBench dataset, the metrics), and
PyTorch and TVM in one process fight over OpenMP; the artifact therefore runs in a child,
``python -m edgeavs.artifact_worker ARTIFACT``, which loads TVM's runtime library alone
(:func:`edgeavs.compiler.artifact.use_runtime_only`) and never imports torch (an import-linter
contract holds it to that), i.e. the same path as ``edgeavs segment --artifact``.

The protocol is numpy's ``.npy`` format over the pipes: the child writes one JSON line (the
artifact's resolution, variant, precision, ...) when the library is loaded, then for every
``frames`` and ``waveform`` array it reads from stdin it writes the ``logits`` array to stdout;
end of input ends it. A child that fails writes ``Error: ...`` on stderr and exits 1; the parent
raises that line as an :class:`~edgeavs.errors.EdgeAVSError`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from edgeavs.errors import EdgeAVSError

MODULE = "edgeavs.artifact_worker"


class _Pipe:
    """A pipe as numpy's ``.npy`` reader/writer sees a plain stream: with a real file object numpy
    takes the file position (``fromfile``/``tofile``), which a pipe does not have."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def write(self, data) -> int:
        return self._stream.write(data)

    def flush(self) -> None:
        self._stream.flush()


def _read(stream) -> np.ndarray:
    return np.lib.format.read_array(_Pipe(stream), allow_pickle=False)


def _write(stream, array) -> None:
    np.lib.format.write_array(_Pipe(stream), np.ascontiguousarray(array), allow_pickle=False)
    stream.flush()


# ---------------------------------------------------------------- the child

def _serve(directory, threads: int | None, stdin, stdout) -> None:
    from edgeavs.compiler.artifact import load_artifact, use_runtime_only

    use_runtime_only()
    if threads:
        os.environ["TVM_NUM_THREADS"] = str(int(threads))  # read when TVM's pool starts
    model = load_artifact(directory)
    m = model.manifest
    header = {"resolution": list(model.resolution), "variant": m["variant"],
              "precision": m.get("precision", "fp32"), "target": m.get("target_name"),
              "weights": m.get("weights"), "torch_loaded": "torch" in sys.modules}
    stdout.write((json.dumps(header) + "\n").encode())
    stdout.flush()
    while True:
        try:
            frames = _read(stdin)
        except (EOFError, ValueError):  # end of input (numpy: "EOF: reading magic string")
            return
        waveform = _read(stdin)
        _write(stdout, model.run(frames, waveform))


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    ap.add_argument("artifact")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        _serve(args.artifact, args.threads, sys.stdin.buffer, sys.stdout.buffer)
    except EdgeAVSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    return 0


# ---------------------------------------------------------------- the parent's handle

class ArtifactProcess:
    """``predict(frames, waveform) -> logits`` (numpy) run by the artifact in a child process.

    ``with ArtifactProcess(dir) as predict: ...``; ``input_size`` (H, W) and ``details`` (what
    the child reported of the artifact) are known once it has started."""

    kind = "artifact"

    def __init__(self, directory, threads: int | None = None):
        from edgeavs.workers import RUNTIME_ONLY, child_env

        self.directory = str(directory)
        threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                              else (os.cpu_count() or 1))
        self._stderr = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", MODULE, self.directory, "--threads", str(int(threads))]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env=child_env(set=RUNTIME_ONLY))
        line = self._proc.stdout.readline()
        if not line:
            self._fail()
        self.details = json.loads(line)
        self.details["artifact"] = self.directory
        self.input_size = tuple(self.details["resolution"])
        self.precision = self.details.get("precision", "fp32")

    def _fail(self):
        code = self._proc.wait()
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        self.close()
        last = lines[-1] if lines else f"exit {code}"
        raise EdgeAVSError(last[len("Error: "):] if last.startswith("Error: ") else
                           f"the artifact process for {self.directory} failed: {last}")

    def __call__(self, frames, waveform) -> np.ndarray:
        try:
            _write(self._proc.stdin, np.asarray(frames, dtype=np.float32))
            _write(self._proc.stdin, np.asarray(waveform, dtype=np.float32))
            return _read(self._proc.stdout)
        except (BrokenPipeError, EOFError, ValueError, OSError):
            self._fail()

    def close(self) -> None:
        proc = self._proc
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    sys.exit(main())
