"""Worker processes: ``python -m MODULE ARGS`` with this package importable, one way for everyone.

PyTorch and TVM in one process fight over OpenMP, and a timing wants a process of its own, so
the verify reference (:mod:`edgeavs.reference`), the profile worker
(:mod:`edgeavs.compiler.breakdown`) and the benchmark's timers (:mod:`edgeavs.benchmark`) each
run in a child. :func:`child_env` gives it the environment (the package root first on
``PYTHONPATH``, thread settings), :func:`run_module` runs it and turns a failure into one
:class:`WorkerError` line that carries the child's last stderr line. Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from edgeavs.errors import EdgeAVSError


RUNTIME_ONLY = {"TVM_USE_RUNTIME_LIB": "1"}
"""For :func:`child_env`'s ``set``: a child that only runs compiled artifacts loads TVM's runtime
library alone, not its compiler (``edgeavs.compiler.artifact.use_runtime_only`` in-process)."""


class WorkerError(EdgeAVSError):
    """A worker exited non-zero. ``detail``: its last non-empty stderr line (or ``exit N``)."""

    def __init__(self, what: str, detail: str, returncode: int):
        super().__init__(f"{what} failed: {detail}")
        self.detail = detail
        self.returncode = returncode


def package_root() -> str:
    """The directory holding the ``edgeavs`` package (what a child needs on ``PYTHONPATH``)."""
    return str(Path(__file__).resolve().parent.parent)  # this file is edgeavs/workers.py


def child_env(set: Mapping[str, str] | None = None, default: Mapping[str, str] | None = None) -> dict:
    """This process's environment with :func:`package_root` first on ``PYTHONPATH``; the
    variables in ``set`` replace any inherited value, those in ``default`` only fill a gap."""
    env = dict(os.environ)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([package_root()] + rest)
    for key, value in (default or {}).items():
        env.setdefault(key, str(value))
    env.update({key: str(value) for key, value in (set or {}).items()})
    return env


def run_module(module: str, args, *, what: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``python -m module *args`` (this interpreter) and return its stdout.

    ``env``: the child's whole environment (default :func:`child_env`). A non-zero exit raises
    :class:`WorkerError` ``"{what} failed: <the child's last stderr line>"``."""
    cmd = [sys.executable, "-m", module, *[str(a) for a in args]]
    proc = subprocess.run(cmd, env=dict(env) if env is not None else child_env(), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise WorkerError(what, lines[-1] if lines else f"exit {proc.returncode}", proc.returncode)
    return proc.stdout


def run_json_module(module: str, args, *, what: str, env: Mapping[str, str] | None = None) -> dict:
    """:func:`run_module` for a worker whose last stdout line is one JSON object: that object."""
    out = run_module(module, args, what=what, env=env)
    lines = out.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise EdgeAVSError(f"{what} failed: the worker printed no JSON result") from None
