"""Build a kernel for the host and run it on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.tvm_api import build_prim_func, make_target, to_tvm

HOST = make_target({"kind": "llvm", "num-cores": 2})
"""Host llvm target (no mcpu: the baseline ISA, so the same test runs on every x86 box)."""


def run_kernel(func, *inputs: np.ndarray, out_shape, target=HOST) -> np.ndarray:
    mod = build_prim_func(func, target)
    out = to_tvm(np.zeros(out_shape, "float32"))
    mod(*[to_tvm(np.ascontiguousarray(x, dtype="float32")) for x in inputs], out)
    return out.numpy()


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def assert_close(got, want, tol: float = 1e-6):
    err = rel_l2(got, want)
    diff = np.abs(np.asarray(got, np.float64) - want)
    assert err <= tol, (f"rel-L2 {err:.3g} > {tol:g}: shape {np.shape(got)}, max |diff| {diff.max():.3g}, "
                        f"mean |diff| {diff.mean():.3g}")


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
