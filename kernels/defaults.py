"""Target -> the facts every edgeavs CPU schedule derives its default config from (TOPI ``_fallback_schedule``).

``cpu_facts(target)`` reads the ISA from the target (``edgeavs.tvm_api.simd_info``: AVX-512 16 fp32 lanes and 32
registers, AVX2 8 and 16, NEON 4 and 32), the thread count from ``num-cores`` and assumes typical cache sizes
(per-core L1d 32 KiB, L2 512 KiB: both the Zen 3 / Rocket Lake hosts and Oryon have at least that much).
Nothing here looks at the build host unless the target *is* the host.

The lanes a schedule vectorises with come from the element type of what it computes: :meth:`CpuFacts.lanes_for`
(vector bits / element bits: on 128-bit NEON 4 for float32, 8 for float16), of :func:`block_dtype` (the dtype the
MAC block accumulates in: an fp16 build accumulating in fp16 runs 8-lane FMLA, one accumulating in fp32 4-lane).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from edgeavs.tvm_api import Target, make_target, simd_info

TargetLike = Mapping[str, Any] | str | Target | None


@dataclass(frozen=True)
class CpuFacts:
    isa: str
    """"avx512", "avx2", "sse" or "neon"."""
    lanes: int
    """fp32 lanes of one SIMD register."""
    vector_registers: int
    threads: int
    l1_bytes: int = 32 * 1024
    l2_bytes: int = 512 * 1024

    @property
    def vector_bits(self) -> int:
        return self.lanes * 32

    def lanes_for(self, dtype: str = "float32") -> int:
        """Elements of ``dtype`` in one SIMD register (``float32``: :attr:`lanes`; ``float16``: twice that)."""
        return max(1, self.vector_bits // dtype_bits(dtype))


def dtype_bits(dtype: str) -> int:
    """Bits of one element of ``dtype`` (a TVM/numpy dtype name such as ``float16``)."""
    from edgeavs.tvm_api import tvm

    return int(tvm.DataType(str(dtype)).bits)


def block_dtype(sch, block) -> str:
    """The dtype of the buffer ``block`` writes (of a MAC block: its accumulator, the conv's ``out_dtype``)."""
    return str(sch.get(block).writes[0].source.dtype)


def cpu_facts(target: TargetLike = None) -> CpuFacts:
    """SIMD width, register count, thread count and cache sizes of ``target`` (default: the host, 2 threads)."""
    if target is None:
        from edgeavs.tvm_api import host_target

        target = host_target(2)
    tgt = make_target(target)
    info = simd_info(tgt)
    triple = str(tgt.attrs.get("mtriple", "") or "")
    if triple.startswith(("aarch64", "arm64")) or info.vector_bits == 128 and info.num_vector_registers == 32:
        isa = "neon"
    elif info.vector_bits == 512:
        isa = "avx512"
    elif info.vector_bits == 256:
        isa = "avx2"
    else:
        isa = "sse"
    return CpuFacts(isa=isa, lanes=info.lanes(32), vector_registers=info.num_vector_registers,
                    threads=max(1, info.num_cores))


def as_facts(facts: "CpuFacts | TargetLike" = None) -> CpuFacts:
    """``facts`` itself when it is :class:`CpuFacts`, else :func:`cpu_facts` of it (a target, or None: the host):
    the second argument of every ``fallback_config(workload, facts)`` and ``knob_space(workload, facts)``."""
    return facts if isinstance(facts, CpuFacts) else cpu_facts(facts)


def ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
