"""Weights linked into ``model.so`` as read-only data, not copied into the VM's constant pool.

Why: a bound weight is a Relax constant, which TVM serialises into the executable blob that
``export_library`` embeds in the library; loading it maps the blob, copies it into a string,
copies that into a ``Bytes``, then copies every tensor out of it (``VMExecutable::
LoadConstantSection``) -- four times the weights at the peak (LightAVSeg-L at 224: 76 MB of
weights, +289 MiB of peak RSS for the load alone), and the blob's pages stay resident after.

What instead (``compile_artifact``, phase ``link-weights`` of the pipeline): every tensor
constant of at least :data:`MIN_BYTES` in a Relax function becomes
``R.call_pure_packed("edgeavs_weight", R.prim_value(i))``, and the weights go into the
library itself: one 64-byte aligned ``.rodata`` section (``.incbin`` of the raw bytes) and a
small C function ``__tvm_ffi_edgeavs_weight(i)`` that returns a TVM tensor *viewing* weight ``i``
in place (made once, through tvm-ffi's DLPack entry, then shared). The VM resolves the name in
the library it was loaded from, so ``vm["main"](frames, waveform)`` is unchanged, the library is
still one self-contained file (host, cross and NDK links alike: TVM compiles the C module with
the library's compiler), and the weights cost their file-backed pages once, shared between
processes that load the same file. The kernels are the same code; only ``main`` fetches its
weights through the call (322 calls per run on LightAVSeg-L at 224, each an atomic load and a
refcount increment; the same latency, measured in one process alternately: bench/bench_memory.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeavs.errors import EdgeAVSError

FUNCTION = "edgeavs_weight"
"""The packed function ``main`` calls: the library exports it as ``__tvm_ffi_edgeavs_weight``."""
MIN_BYTES = 1024
"""Smaller constants (scalars, short vectors) stay in the VM's constant pool."""
ALIGN = 64
"""Alignment of every weight in the library (TVM's allocation alignment)."""
BLOB = "weights.bin"

_DLPACK_CODES = {"int": 0, "uint": 1, "float": 2, "bool": 6}


def LinkWeights(store: list):  # noqa: N802 - a pass factory, named like TVM's
    """Module pass: replace the tensor constants of at least :data:`MIN_BYTES` in every Relax
    function by calls of :data:`FUNCTION`; ``store`` receives their numpy arrays, by index
    (one entry per constant object, however often it is used)."""
    from edgeavs.tvm_api import Constant, mutator_pass, relax

    from tvm.relax.expr_functor import PyExprMutator, mutator

    index: dict = {}

    @mutator
    class _Linker(PyExprMutator):
        def visit_generic_const_(self, op):
            ty = op.ty if hasattr(op, "ty") else op.struct_info
            if not isinstance(op, Constant) or not isinstance(ty, relax.TensorType):
                return op
            data = op.value
            shape = [int(d) for d in data.shape]
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(str(data.dtype)).itemsize
            if nbytes < MIN_BYTES:
                return op
            key = hash(op)  # tvm objects hash by address: one entry per constant object
            if key not in index:
                index[key] = len(store)
                store.append(data.numpy())
            return relax.call_pure_packed(FUNCTION, relax.prim_value(index[key]),
                                          ty_args=relax.TensorType(shape, str(data.dtype)))

    return mutator_pass("LinkWeights", _Linker)


def _dlpack_dtype(dtype: np.dtype) -> tuple[int, int]:
    kind = {"f": "float", "i": "int", "u": "uint", "b": "bool"}.get(dtype.kind)
    if kind is None:
        raise EdgeAVSError(f"link-weights: a constant of dtype {dtype} has no DLPack type code")
    return _DLPACK_CODES[kind], dtype.itemsize * 8


def _asm_path(path: Path) -> str:
    """``path`` as a C string literal holding an assembler string literal."""
    text = str(path)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise EdgeAVSError(f"link-weights: temporary path {text!r} has control characters")
    asm = text.replace("\\", "\\\\").replace('"', '\\"')
    return asm.replace("\\", "\\\\").replace('"', '\\"')


def write_blob(arrays, path) -> list[int]:
    """Write ``arrays`` back to back, each at a multiple of :data:`ALIGN`; their offsets."""
    offsets, pos = [], 0
    with open(path, "wb") as f:
        for a in arrays:
            pad = -pos % ALIGN
            f.write(b"\0" * pad)
            pos += pad
            offsets.append(pos)
            raw = np.ascontiguousarray(a)
            f.write(raw.tobytes())
            pos += raw.nbytes
    return offsets


def c_source(arrays, offsets, blob: Path) -> str:
    """The C module: the ``.incbin`` of ``blob``, one static DLPack tensor per weight pointing into
    it, and ``__tvm_ffi_edgeavs_weight(i)``, which wraps tensor ``i`` once (tvm-ffi's
    ``TVMFFITensorFromDLPack``, no deleter: the library owns the data) and returns it."""
    shapes, managed = [], []
    for i, (a, off) in enumerate(zip(arrays, offsets)):
        code, bits = _dlpack_dtype(a.dtype)
        dims = ", ".join(str(int(d)) for d in a.shape)
        shapes.append(f"static int64_t edgeavs_shape_{i}[] = {{{dims}}};")
        # DLManagedTensor {DLTensor {data, device, ndim, dtype, shape, strides, byte_offset}, ctx, deleter}
        managed.append(f"  {{{{(void*)(edgeavs_weight_data + {off}), {{kDLCPU, 0}}, {a.ndim}, "
                       f"{{{code}, {bits}, 1}}, edgeavs_shape_{i}, NULL, 0}}, NULL, NULL}},")
    n = len(arrays)
    nl = "\n"
    return f"""// Generated by edgeavs.compiler.linked_weights: the model's weights, viewed in place.
#include <stdint.h>
#include <tvm/ffi/c_api.h>

#ifdef __cplusplus  /* TVM's host compiler is g++: keep the exported name unmangled */
extern "C" {{
#endif

__asm__(".section .rodata.edgeavs_weights,\\"a\\"\\n"
        ".balign {ALIGN}\\n"
        ".hidden edgeavs_weight_data\\n"
        ".globl edgeavs_weight_data\\n"
        "edgeavs_weight_data:\\n"
        ".incbin \\"{_asm_path(blob)}\\"\\n"
        ".previous\\n");
extern const unsigned char edgeavs_weight_data[] __attribute__((visibility("hidden")));

{nl.join(shapes)}
static DLManagedTensor edgeavs_managed[{n}] = {{
{nl.join(managed)}
}};
static TVMFFIObjectHandle edgeavs_cache[{n}];

static TVMFFIObjectHandle edgeavs_view(int64_t i) {{
  TVMFFIObjectHandle h = __atomic_load_n(&edgeavs_cache[i], __ATOMIC_ACQUIRE);
  if (h != NULL) return h;
  if (TVMFFITensorFromDLPack(&edgeavs_managed[i], {ALIGN}, 1, &h) != 0) return NULL;
  TVMFFIObjectHandle expected = NULL;
  if (!__atomic_compare_exchange_n(&edgeavs_cache[i], &expected, h, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {{
    TVMFFIObjectDecRef(h);  /* another thread wrapped it first */
    h = expected;
  }}
  return h;
}}

TVM_FFI_DLL_EXPORT int __tvm_ffi_{FUNCTION}(void* self, const TVMFFIAny* args, int32_t num_args,
                                        TVMFFIAny* result) {{
  (void)self;
  if (num_args != 1 || args[0].type_index != kTVMFFIInt || args[0].v_int64 < 0 ||
      args[0].v_int64 >= {n}) {{
    TVMFFIErrorSetRaisedFromCStr("IndexError", "{FUNCTION}: expects one weight index in [0, {n})");
    return -1;
  }}
  TVMFFIObjectHandle h = edgeavs_view(args[0].v_int64);
  if (h == NULL) return -1;  /* TVMFFITensorFromDLPack has set the error */
  TVMFFIObjectIncRef(h);  /* the caller's reference; the cache keeps its own */
  result->type_index = kTVMFFITensor;
  result->zero_padding = 0;
  result->v_obj = (TVMFFIObject*)h;
  return 0;
}}

#ifdef __cplusplus
}}
#endif
"""


def weights_module(arrays, workdir):
    """The C source module to import into the executable before ``export_library`` (which
    compiles it with the library's compiler and TVM's include paths). ``workdir`` must hold the
    blob until the library is linked."""
    from edgeavs.tvm_api import tvm

    blob = Path(workdir).absolute() / BLOB
    offsets = write_blob(arrays, blob)
    create = tvm.get_global_func("runtime.CSourceModuleCreate")
    return create(c_source(arrays, offsets, blob), "c", [FUNCTION], [])


def weights_bytes(arrays) -> int:
    return int(sum(a.nbytes for a in arrays))
