"""edgeavs.passes: the pattern table, pass order and the report helpers."""

from __future__ import annotations

import pytest

import edgeavs.passes as passes
from edgeavs.tvm_api import relax, tvm
from tests.passes.conftest import emit_hsig, make_module


def test_table_names_and_order():
    assert passes.PATTERN_NAMES == ("edgeavs.channel_bias", "edgeavs.audio_gate", "edgeavs.hsig_gate",
                                    "edgeavs.stft_fft")
    assert passes.FUSION_PASSES == ("FuseChannelBias", "FuseAudioGate", "FuseHsigGate", "FuseStftFft")
    made = passes.fusion_passes(names=("edgeavs.hsig_gate", "FuseChannelBias"))
    assert [p.info.name for p in made] == ["FuseChannelBias", "FuseHsigGate"]  # table order, not call order
    assert passes.FuseEdgeAVS().info.name == "FuseEdgeAVS"


def test_unknown_pattern_names_the_known_ones():
    with pytest.raises(KeyError, match="edgeavs.audio_gate"):
        passes.get_pattern("edgeavs.nope")


def test_report_counts_before_and_after(rng):
    w = rng.standard_normal((4, 4, 1, 1)).astype("float32")

    def body(bb, x, y, a):
        v = bb.emit(relax.op.add(x, a))                                   # a channel bias ...
        c = bb.emit(relax.op.nn.conv2d(v, relax.const(w)))                # ... sunk into this conv
        return bb.emit(relax.op.multiply(emit_hsig(bb, c), y))           # an h-sigmoid gate

    mod = make_module({"x": (1, 4, 4, 4), "y": (1, 4, 4, 4), "a": (1, 4, 1, 1)}, body)
    assert passes.count_chains(mod) == {"edgeavs.channel_bias": 1, "edgeavs.audio_gate": 0,
                                        "edgeavs.hsig_gate": 1, "edgeavs.stft_fft": 0}
    after, stats = passes.run_fusion_passes(mod, {"kind": "llvm"})
    assert passes.fusion_report(mod, after) == {
        "edgeavs.channel_bias": {"found": 1, "left": 0, "fused": 1},
        "edgeavs.audio_gate": {"found": 0, "left": 0, "fused": 0},
        "edgeavs.hsig_gate": {"found": 1, "left": 0, "fused": 1},
        "edgeavs.stft_fft": {"found": 0, "left": 0, "fused": 0},
    }
    assert {k: (s.found, s.fused) for k, s in stats.items()} == {
        "edgeavs.channel_bias": (1, 1), "edgeavs.audio_gate": (0, 0), "edgeavs.hsig_gate": (1, 1),
        "edgeavs.stft_fft": (0, 0)}
    assert isinstance(after, tvm.IRModule)
