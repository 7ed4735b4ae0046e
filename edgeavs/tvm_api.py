"""The one module through which edgeavs imports Apache TVM (0.27).

TVM renames things between releases (0.27: tir -> tirx, MetaSchedule under tvm.s_tir, targets only
from dicts, ``Var.name``, ``.ty``); keeping every import here means the next rename touches one
file. Importing this module imports TVM (not torch).
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax import transform as relax_transform
from tvm.target import Target
from tvm.target import codegen as _codegen

__all__ = ["tvm", "relax", "relax_transform", "Target", "tvm_version", "llvm_version",
           "llvm_host_cpu", "llvm_host_triple", "llvm_is_valid_cpu", "llvm_vector_width"]


def tvm_version() -> str:
    return tvm.__version__


def llvm_version() -> str:
    """LLVM's major version as TVM was built against it (TVM exposes only the major)."""
    return str(_codegen.llvm_version_major())


def llvm_host_cpu() -> str:
    """The host CPU name as LLVM knows it (what ``-mcpu=native`` means)."""
    return str(_codegen.llvm_get_system_cpu())


def llvm_host_triple() -> str:
    return str(_codegen.llvm_get_system_triple())


def llvm_is_valid_cpu(cpu: str, triple: str) -> bool:
    return bool(_codegen.llvm_is_valid_cpu(cpu, triple))


def llvm_vector_width(target_dict: dict) -> int:
    """SIMD register width in bits that LLVM reports for a target dict."""
    return int(_codegen.llvm_get_vector_width(Target(target_dict)))
