"""Fixtures for the AArch64 device tests.

``emulator`` (session): runs ``setup_emulator()`` -- idempotent, a no-op once the stamp in
``$EDGEAVS_CACHE`` (default ``~/.cache/edgeavs``) matches -- and *fails* the tests that need it
when it cannot be set up: the emulated verification is part of CI, not optional.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.errors import EdgeAVSError

ORYON = {"kind": "llvm", "mtriple": "aarch64-linux-android", "mcpu": "oryon-1",
         "mattr": ["+neon", "+dotprod", "+i8mm", "+fullfp16"], "num-cores": 8}
# An SVE CPU for the guard. LLVM vectorises the test's loop with SVE for neoverse-v1; for
# cortex-x4 it prefers fixed-width NEON (no SVE instruction, so no guard), see test_isa.py.
SVE_CPU = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "neoverse-v1",
           "mattr": ["+neon", "+sve"], "num-cores": 1}
CROSS_CC = "aarch64-linux-gnu-gcc"


@pytest.fixture(scope="session")
def emulator():
    from edgeavs.device.emulator import setup_emulator

    try:
        return setup_emulator(log=None)
    except EdgeAVSError as exc:
        pytest.fail(f"the AArch64 emulator cannot be set up: {exc}", pytrace=False)


def matmul_module():
    """main(x (4, 64), w (64, 32)) -> (relu(x @ w) + 1, sum over the last axis)."""
    from edgeavs.tvm_api import I, R

    @I.ir_module
    class Module:
        @R.function
        def main(x: R.Tensor((4, 64), "float32"), w: R.Tensor((64, 32), "float32")):
            with R.dataflow():
                y = R.add(R.nn.relu(R.matmul(x, w)), R.const(1.0, "float32"))
                s = R.sum(y, axis=[1])
                out = (y, s)
                R.output(out)
            return out

    return Module


def matmul_reference(x, w):
    y = np.maximum(x @ w, 0) + 1
    return y, y.sum(axis=1)


def eltwise_module(n: int = 10007):
    """main(x, y (n,)) -> relu(x + y): a long loop LLVM vectorises (with SVE if allowed)."""
    from edgeavs.tvm_api import I, R

    @I.ir_module
    class Module:
        @R.function
        def main(x: R.Tensor((n,), "float32"), y: R.Tensor((n,), "float32")):
            with R.dataflow():
                z = R.nn.relu(R.add(x, y))
                R.output(z)
            return z

    return Module


def cross_build(mod, target: dict, path):
    """``tvm.compile`` for an AArch64 target, linked for Linux with Debian's cross gcc."""
    from edgeavs.tvm_api import library_exporter, make_target, tvm

    ex = tvm.compile(mod, target=make_target(target))
    ex.export_library(str(path), fcompile=library_exporter("cross", CROSS_CC))
    return path


@pytest.fixture(scope="session")
def aarch64_libs(tmp_path_factory, emulator):
    """Small cross-compiled libraries: Oryon matmul, Oryon eltwise, SVE eltwise."""
    d = tmp_path_factory.mktemp("aarch64")
    return {
        "matmul": cross_build(matmul_module(), ORYON, d / "matmul.so"),
        "eltwise": cross_build(eltwise_module(), ORYON, d / "eltwise.so"),
        "eltwise_sve": cross_build(eltwise_module(), SVE_CPU, d / "eltwise_sve.so"),
    }
