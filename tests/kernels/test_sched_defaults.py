"""Target -> default configs: host (as detected), a Snapdragon 8 Elite-like target and generic AArch64."""

from __future__ import annotations

from edgeavs.tvm_api import simd_info
from kernels.defaults import cpu_facts
from kernels.elementwise import GenericWorkload, fallback_config as generic_default
from kernels.pointwise import GemmWorkload, fallback_config as gemm_default

ORYON = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "oryon-1",
         "mattr": ["+neon", "+dotprod", "+i8mm", "+fullfp16"], "num-cores": 8}
AARCH64 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4}


def test_host_facts_match_isa():
    from edgeavs.tvm_api import host_target

    f = cpu_facts(host_target(2))
    info = simd_info(host_target(2))
    assert f.lanes == info.vector_bits // 32 and f.threads == 2
    assert f.isa in ("avx512", "avx2", "sse")
    assert (f.isa == "avx512") == (f.lanes == 16)


def test_x86_isas():
    assert cpu_facts({"kind": "llvm", "mcpu": "skylake-avx512"}) .lanes == 16
    h = cpu_facts({"kind": "llvm", "mcpu": "haswell", "num-cores": 2})
    assert (h.isa, h.lanes, h.vector_registers, h.threads) == ("avx2", 8, 16, 2)


def test_snapdragon_and_generic_aarch64():
    o = cpu_facts(ORYON)
    assert (o.isa, o.lanes, o.vector_registers, o.threads) == ("neon", 4, 32, 8)
    g = cpu_facts(AARCH64)
    assert (g.isa, g.lanes, g.threads) == ("neon", 4, 4)
    c = gemm_default(GemmWorkload(m=256, n=3136, k=64), ORYON)
    assert c.lanes == 4 and c.co_tile * c.pixel_vectors + c.pixel_vectors + 1 <= 32
    assert c.co_tile * c.pixel_vectors >= 12  # uses the 32 NEON registers, not an x86-sized tile
    assert generic_default(GenericWorkload(), ORYON).lanes == 4


def test_thread_split_is_even():
    # 14x14 at 16 lanes x 1 vector = 13 tiles: odd over 2 threads -> threads over channels instead
    c = gemm_default(GemmWorkload(m=768, n=196, k=192), {"kind": "llvm", "mcpu": "skylake-avx512",
                                                         "num-cores": 2})
    tiles = -(-196 // c.pixel_tile)
    assert c.parallel == "channel" or tiles % 2 == 0
