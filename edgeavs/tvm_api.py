"""The one place edgeavs imports Apache TVM.

TVM 0.27 renamed a lot (``tvm.tir`` -> ``tvm.tirx``, MetaSchedule and dlight under ``tvm.s_tir``, targets only
from a JSON dict, ``relax.Constant`` -> ``tvm.ir.GenericConst``, ``Var.name``, ``.ty``). Every other edgeavs
module imports the TVM names it needs from here, so the next rename touches this file only.

Re-exported: ``tvm``, ``relax``, ``tirx``, ``te``, ``s_tir``, ``topi``, ``ir``, ``runtime``, ``dpl`` (the Relax
dataflow pattern language), the TVMScript namespaces ``R``, ``T``, ``I``, ``Constant`` and the small helpers
below (target creation, SIMD facts of a target, building and running a module on the host).

Running an artifact needs none of this: :mod:`edgeavs.compiler.artifact` imports ``tvm`` and
``tvm.runtime.vm.VirtualMachine`` itself, so that a process that only runs artifacts can load TVM's
runtime library alone (``TVM_USE_RUNTIME_LIB=1``, ``artifact.use_runtime_only``). In such a process
this module refuses to load, in one line (TVM's compiler is not there to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import tvm

if getattr(tvm.base, "_RUNTIME_ONLY", False):
    from edgeavs.errors import EdgeAVSError

    raise EdgeAVSError("TVM was loaded without its compiler in this process (TVM_USE_RUNTIME_LIB=1, "
                       "or no libtvm_compiler): it can run artifacts, not compile; compile in a "
                       "process of its own")

from tvm import ir, relax, runtime, s_tir, te, tirx, topi
from tvm.relax import dpl
from tvm.relax import transform as relax_transform
from tvm.script import ir as I  # noqa: E741
from tvm.script import relax as R
from tvm.script import tirx as T
from tvm.target import codegen as _codegen

Constant = tvm.ir.GenericConst
"""Relax constant node class (``relax.Constant`` before 0.27)."""

Target = tvm.target.Target
IRModule = tvm.IRModule
PrimFunc = tirx.PrimFunc
module_pass = tvm.transform.module_pass
Sequential = tvm.transform.Sequential
PassContext = tvm.transform.PassContext
assert_structural_equal = tvm.ir.assert_structural_equal
VirtualMachine = relax.VirtualMachine
cpu = tvm.cpu


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
    """SIMD register width in bits that LLVM reports for a target dict (see ``simd_info`` for schedules)."""
    return int(_codegen.llvm_get_vector_width(Target(target_dict)))


def make_target(spec: Mapping[str, Any] | str | Target) -> Target:
    """A ``tvm.target.Target`` from a TVM target dict (``{"kind": "llvm", "mcpu": ..., "num-cores": 2}``).

    A bare kind string (``"llvm"``) is accepted as ``{"kind": "llvm"}``. ``mattr`` must be a list in 0.27.
    """
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    spec = dict(spec)
    if isinstance(spec.get("mattr"), str):
        spec["mattr"] = [a for a in spec["mattr"].split(",") if a]
    return Target(spec)


def host_target(num_cores: int | None = None) -> Target:
    """The host CPU as an llvm target (``mcpu`` from LLVM's host detection)."""
    spec: dict[str, Any] = {"kind": "llvm", "mcpu": llvm_host_cpu()}
    if num_cores:
        spec["num-cores"] = int(num_cores)
    return make_target(spec)


@dataclass(frozen=True)
class SimdInfo:
    """What a CPU kernel schedule needs to know about the target."""

    vector_bits: int
    """Width of one SIMD register in bits (128 NEON/SSE, 256 AVX2, 512 AVX-512)."""
    num_vector_registers: int
    """Architectural SIMD registers (16 on x86 up to AVX2, 32 on AVX-512 and AArch64)."""
    num_cores: int
    """Threads the schedule may assume (the target's ``num-cores``, else 1)."""

    def lanes(self, dtype_bits: int = 32) -> int:
        return max(1, self.vector_bits // dtype_bits)


def simd_info(target: Mapping[str, Any] | str | Target | None = None) -> SimdInfo:
    """SIMD width and register count of an llvm target, from its features (not from the build host).

    A target without ``mcpu``/``mattr`` is treated as the baseline of its architecture (SSE2 / NEON): LLVM only
    emits what the target names, so a wider assumption would only produce split vectors.
    """
    tgt = make_target(target if target is not None else host_target())
    cores = int(tgt.attrs.get("num-cores", 1) or 1)
    triple = str(tgt.attrs.get("mtriple", "") or "")

    def has(feature: str) -> bool:
        try:
            return bool(_codegen.llvm_cpu_has_features(feature, tgt))
        except Exception:  # noqa: BLE001 - non-llvm kinds or an LLVM without that backend
            return False

    if triple.startswith(("aarch64", "arm64")) or has("neon"):
        return SimdInfo(vector_bits=128, num_vector_registers=32, num_cores=cores)
    if has("avx512f"):
        return SimdInfo(vector_bits=512, num_vector_registers=32, num_cores=cores)
    if has("avx2") or has("avx"):
        return SimdInfo(vector_bits=256, num_vector_registers=16, num_cores=cores)
    return SimdInfo(vector_bits=128, num_vector_registers=16, num_cores=cores)


def target_has_feature(target: Mapping[str, Any] | str | Target | None, feature: str) -> bool:
    """Whether LLVM gives ``target`` (default: the host) the CPU feature ``feature`` (LLVM's spelling:
    ``avx512vnni``, ``dotprod``, ``neon``); False for non-llvm kinds or an LLVM without that backend."""
    tgt = make_target(target if target is not None else host_target())
    try:
        return bool(_codegen.llvm_cpu_has_features(feature, tgt))
    except Exception:  # noqa: BLE001
        return False


DOT_INTRINS = {"vnni": "edgeavs_dot_16x4_u8i8_vnni", "sdot": "edgeavs_dot_4x4_i8i8_sdot"}
"""Our tensor intrinsics for ``Schedule.tensorize``, by ISA (:func:`dot_intrin`). Registered here rather than
taken from ``tvm.s_tir.tensor_intrin``, whose import registers every backend's intrinsics (CUDA, ROCm, Hexagon
...) and costs ~35 s; and its ``dot_16x4_vnni`` passes ``<16 x i32>`` operands to ``vpdpbusd.512``, which LLVM
>= 21's verifier refuses (``<64 x i8>`` there)."""
PIXEL_DOT_INTRINS = {"vnni": "edgeavs_dot_px16x4_u8i8_vnni", "sdot": "edgeavs_dot_px4x4_i8i8_sdot"}
"""The same instructions with the lanes over pixels (:func:`dot_intrin` ``lanes="pixel"``): ``C[lanes] int32 +=
bytes(A[lanes]) . B[4] int8 (broadcast)``, each int32 word of ``A`` holding four input channels of one pixel."""


def _dot_desc(lanes: int, data: str):
    """``C[lanes] int32 += A[4] data (broadcast) . B[lanes, 4] int8``: what both dot intrinsics compute."""

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (4,), data, offset_factor=1)
        B = T.match_buffer(b, (lanes, 4), "int8", offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            for i, k in T.grid(lanes, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    return desc


def _dot_impl(lanes: int, data: str, intrinsic: str, operands):
    """The implementation of :func:`_dot_desc`: one call of the LLVM ``intrinsic`` on ``operands(c, a_word, b)``
    (the accumulator vector, A's four bytes as one int32, B's bytes as ``int8 x 4*lanes``)."""

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (4,), data, offset_factor=1)
        B = T.match_buffer(b, (lanes, 4), "int8", offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(intrinsic),
                *operands(C.vload([0], dtype=f"int32x{lanes}"),
                          T.reinterpret(A.vload([0], f"{data}x4"), dtype="int32"),
                          B.vload([0, 0], dtype=f"int8x{4 * lanes}")),
                dtype=f"int32x{lanes}")

    return impl


def word_byte(word, k, signed: bool):
    """Byte ``k`` (0: lowest) of the int32 ``word`` as int32: sign-extended when ``signed`` (``sdot``'s int8
    inputs), else zero-extended (``vpdpbusd``'s uint8). The pixel-lane intrinsics' descriptions and the kernels
    they tensorize both spell it with this function (tensorize matches the expression structurally)."""
    if signed:
        return tirx.shift_right(tirx.shift_left(word, 24 - k * 8), 24)
    return tirx.bitwise_and(tirx.shift_right(word, k * 8), 255)


def _pixel_dot_desc(lanes: int, signed: bool):
    """``C[lanes] int32 += sum_k byte_k(A[lanes]) * B[k]``: A int32 words of four bytes (one pixel's four input
    channels), B four int8 weights broadcast over the lanes."""

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (lanes,), "int32", offset_factor=1)
        B = T.match_buffer(b, (4,), "int8", offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:lanes], B[0:4])
            T.writes(C[0:lanes])
            for i, k in T.grid(lanes, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + word_byte(A[vi], vk, signed) * T.cast(B[vk], "int32")

    return desc


def _pixel_dot_impl(lanes: int, intrinsic: str, operands):
    """The implementation of :func:`_pixel_dot_desc`: one ``intrinsic`` call on ``operands(c, a_words, b_word)``
    (the accumulator vector, A's words as ``int32 x lanes``, B's four bytes as one int32)."""

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (lanes,), "int32", offset_factor=1)
        B = T.match_buffer(b, (4,), "int8", offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:lanes], B[0:4])
            T.writes(C[0:lanes])
            C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(intrinsic),
                *operands(C.vload([0], dtype=f"int32x{lanes}"), A.vload([0], dtype=f"int32x{lanes}"),
                          T.reinterpret(B.vload([0], "int8x4"), dtype="int32")),
                dtype=f"int32x{lanes}")

    return impl


def _register_dot_intrins() -> None:
    try:
        s_tir.TensorIntrin.get(DOT_INTRINS["vnni"])
        return
    except Exception:  # noqa: BLE001 - not registered yet
        pass
    if int(_codegen.llvm_version_major()) >= 21:  # vpdpbusd.512 on byte vectors
        def vnni(c, word, b):
            return c, T.reinterpret(T.broadcast(word, 16), dtype="uint8x64"), b
    else:  # on int32 vectors
        def vnni(c, word, b):
            return c, T.broadcast(word, 16), T.reinterpret(b, dtype="int32x16")

    def sdot(c, word, b):  # sdot: C[i] += sum_j B[i, j] * A[j], A's word broadcast to every 32-bit lane
        return c, b, T.reinterpret(T.broadcast(word, 4), dtype="int8x16")

    if int(_codegen.llvm_version_major()) >= 21:
        def vnni_px(c, words, b_word):
            return (c, T.reinterpret(words, dtype="uint8x64"),
                    T.reinterpret(T.broadcast(b_word, 16), dtype="int8x64"))
    else:
        def vnni_px(c, words, b_word):
            return c, words, T.broadcast(b_word, 16)

    def sdot_px(c, words, b_word):
        return c, T.reinterpret(words, dtype="int8x16"), T.reinterpret(T.broadcast(b_word, 4), dtype="int8x16")

    s_tir.TensorIntrin.register(PIXEL_DOT_INTRINS["vnni"], _pixel_dot_desc(16, signed=False),
                                _pixel_dot_impl(16, "llvm.x86.avx512.vpdpbusd.512", vnni_px))
    s_tir.TensorIntrin.register(PIXEL_DOT_INTRINS["sdot"], _pixel_dot_desc(4, signed=True),
                                _pixel_dot_impl(4, "llvm.aarch64.neon.sdot.v4i32.v16i8", sdot_px))
    s_tir.TensorIntrin.register(DOT_INTRINS["vnni"], _dot_desc(16, "uint8"),
                                _dot_impl(16, "uint8", "llvm.x86.avx512.vpdpbusd.512", vnni))
    s_tir.TensorIntrin.register(DOT_INTRINS["sdot"], _dot_desc(4, "int8"),
                                _dot_impl(4, "int8", "llvm.aarch64.neon.sdot.v4i32.v16i8", sdot))


def dot_intrin(isa: str, lanes: str = "channel") -> str:
    """The tensor intrinsic (registered once) of ``isa``. ``lanes="channel"`` (:data:`DOT_INTRINS`): ``"vnni"``:
    ``C[16] int32 += A[4] uint8 (broadcast) . B[16, 4] int8`` (``vpdpbusd``); ``"sdot"``: ``C[4] int32 += A[4] int8
    (broadcast) . B[4, 4] int8`` (AArch64 ``sdot``). ``lanes="pixel"`` (:data:`PIXEL_DOT_INTRINS`): the lanes are
    pixels, ``C[L] += bytes(A[L]) . B[4]`` with ``A`` int32 words (:func:`word_byte`) and ``B`` broadcast."""
    _register_dot_intrins()
    return (PIXEL_DOT_INTRINS if lanes == "pixel" else DOT_INTRINS)[isa]


def build_prim_func(func: PrimFunc, target: Mapping[str, Any] | str | Target | None = None):
    """Compile one PrimFunc for ``target`` (default: the host) and return the runtime module."""
    tgt = make_target(target if target is not None else host_target())
    if func.attrs is None or "global_symbol" not in func.attrs:
        func = func.with_attr("global_symbol", "main")
    return tvm.compile(func, target=tgt)


def mutator_pass(name: str, make_mutator):
    """A module pass that rewrites every Relax function of the module with ``make_mutator(mod)``
    (a ``relax.PyExprMutator``, one per run, its block builder collecting the result)."""

    @tvm.transform.module_pass(opt_level=0, name=name)
    def _pass(mod, _ctx):
        mutator = make_mutator(mod)
        for gv, func in mod.functions_items():
            if isinstance(func, relax.Function):
                mutator.builder_.update_func(gv, mutator.visit_expr(func))
        return mutator.builder_.get()

    return _pass


def structural_hash(node) -> int:
    """Structural hash of an IR node (``tvm.ir.structural_hash`` before 0.27; apache-tvm-ffi's now): the same
    for structurally equal nodes, in every process."""
    import tvm_ffi

    return int(tvm_ffi.structural_hash(node))


def to_tvm(array) -> runtime.Tensor:
    """A numpy array as a TVM runtime tensor on the host CPU."""
    return runtime.tensor(array, device=tvm.cpu())


__all__ = [
    "tvm", "ir", "relax", "relax_transform", "runtime", "s_tir", "te", "tirx", "topi", "dpl", "I", "R", "T",
    "Constant", "Target", "IRModule", "PrimFunc", "module_pass", "Sequential", "PassContext",
    "assert_structural_equal", "VirtualMachine", "cpu",
    "tvm_version", "llvm_version", "llvm_host_cpu", "llvm_host_triple", "llvm_is_valid_cpu",
    "llvm_vector_width", "make_target", "host_target", "SimdInfo", "simd_info", "build_prim_func", "to_tvm",
    "target_has_feature", "dot_intrin", "DOT_INTRINS", "PIXEL_DOT_INTRINS", "word_byte",
    "structural_hash",
]


# ---- used by edgeavs.compiler (importers are lazy: the torch one imports torch)

def from_exported_program(*args, **kwargs):
    """``tvm.relax.frontend.torch.from_exported_program``."""
    from tvm.relax.frontend.torch import from_exported_program as _f

    return _f(*args, **kwargs)


def from_onnx(*args, **kwargs):
    """``tvm.relax.frontend.onnx.from_onnx``."""
    from tvm.relax.frontend.onnx import from_onnx as _f

    return _f(*args, **kwargs)


def library_exporter(link: str, cross_cc: str | None = None):
    """The ``fcompile`` for ``Executable.export_library``: None (host cc), a cross compiler, or
    the Android NDK (``TVM_NDK_CC``)."""
    if link == "host":
        return None
    if link == "cross":
        from tvm.support import cc

        return cc.cross_compiler(cross_cc)
    if link == "ndk":
        from tvm.support import ndk

        return ndk.create_shared
    raise ValueError(f"unknown link mode {link!r}")


def __getattr__(name: str):
    # Lazy: MetaSchedule pulls in xgboost and friends, which only tuning needs.
    if name == "meta_schedule":
        from tvm.s_tir import meta_schedule as _ms

        return _ms
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
