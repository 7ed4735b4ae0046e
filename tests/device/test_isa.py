"""The no-SVE/SME check: Snapdragon 8 Elite code has none; an SVE build is caught."""

import pytest

from edgeavs.device.isa import check_no_sve, disassemble, sve_instructions
from edgeavs.errors import EdgeAVSError

from .conftest import ORYON, cross_build, eltwise_module


def test_oryon_library_has_neon_and_no_sve(aarch64_libs):
    for name in ("matmul", "eltwise"):
        lib = aarch64_libs[name]
        insns = [text for _, text in disassemble(lib)]
        assert any(".4s" in t for t in insns), f"{name}: no NEON vector instruction at all"
        assert sve_instructions(lib) == []
        assert check_no_sve(lib) == len(insns)


def test_sve_build_is_caught(aarch64_libs):
    """Positive control: the scanner finds what LLVM emits for an SVE CPU."""
    found = sve_instructions(aarch64_libs["eltwise_sve"])
    assert any("z" in f and "." in f for f in found), found
    with pytest.raises(EdgeAVSError) as exc:
        check_no_sve(aarch64_libs["eltwise_sve"])
    assert "SVE/SME instruction" in str(exc.value) and "\n" not in str(exc.value)


def test_cortex_x4_build_has_no_sve_for_this_loop(tmp_path, emulator):
    """LLVM prefers fixed-width NEON on cortex-x4, so it would not even exercise the guard:
    the guard build uses neoverse-v1 (conftest.SVE_CPU)."""
    lib = cross_build(eltwise_module(), {**ORYON, "mtriple": "aarch64-linux-gnu",
                                         "mcpu": "cortex-x4", "mattr": ["+sve"]}, tmp_path / "x4.so")
    assert sve_instructions(lib) == []


def test_missing_library_is_one_line_error(tmp_path):
    with pytest.raises(EdgeAVSError, match="not found"):
        check_no_sve(tmp_path / "nope.so")
