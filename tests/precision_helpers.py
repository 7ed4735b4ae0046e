"""Target files the precision tests write: a Cortex-A53-class AArch64 target with only the features named."""


def cortex_a53(name: str, description: str) -> str:
    """A target YAML for a Cortex-A53 (NEON only: no +fullfp16, no +dotprod), cross-linked."""
    return f"""\
name: {name}
description: {description}
kind: llvm
mtriple: aarch64-linux-gnu
mcpu: cortex-a53
mattr: [+neon]
num-cores: 4
vector_width: 128
link: cross
cross_cc: aarch64-linux-gnu-gcc
"""


def compile_for_emulation(out, **kwargs) -> dict:
    """``compile_artifact(out, target="snapdragon8elite", **kwargs)`` with the AArch64 emulator set up (a test
    that needs it fails when it cannot be) and without the Android NDK (the Linux library is what qemu runs)."""
    import os

    import pytest

    from edgeavs.compiler import compile_artifact
    from edgeavs.device.emulator import setup_emulator
    from edgeavs.errors import EdgeAVSError

    try:
        setup_emulator(log=None)
    except EdgeAVSError as exc:
        pytest.fail(f"the AArch64 emulator cannot be set up: {exc}", pytrace=False)
    saved = {v: os.environ.pop(v) for v in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT") if v in os.environ}
    try:
        return compile_artifact(out, target="snapdragon8elite", **kwargs)
    finally:
        os.environ.update(saved)
