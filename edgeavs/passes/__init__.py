"""edgeavs fusion passes and their pattern table.

Each pass rewrites one LightAVSeg chain (after the pipeline's front half: BindParams, FoldBatchnormToConv2D,
DecomposeOpsForInference, CanonicalizeBindings, FoldConstant; before LegalizeOps):

========================  ===================  ==========================================================
pattern name              pass                 chain
========================  ===================  ==========================================================
``edgeavs.channel_bias``  ``FuseChannelBias``  ``X + B(a)``: sunk into consumers (else ``kernels.channel_bias``)
``edgeavs.audio_gate``    ``FuseAudioGate``    ``a * hsig(conv1x1(maxpool(V) [+ s]))`` -> ``kernels.audio_gate``
``edgeavs.hsig_gate``     ``FuseHsigGate``     ``y * [up](hsig(conv1x1_bn([relu6] x)))`` -> ``kernels.hsig_gate``
``edgeavs.stft_fft``      ``FuseStftFft``      ``conv1d(x, W_re)^2 + conv1d(x, W_im)^2`` (DFT basis) -> ``kernels.stft_fft``
========================  ===================  ==========================================================

``PATTERNS`` lists them **in the order they must run** (channel bias first: sinking the bias rewrites the
decoder's pool and the head's conv biases, which the two gates then absorb; the audio front end's STFT is
independent of the three). ``fusion_passes(target)`` returns the
passes in that order; ``count_chains(mod)`` counts the unfused instances of each chain and
``fusion_report(before, after)`` puts the two side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edgeavs.passes import fuse_audio_gate, fuse_channel_bias, fuse_hsig_gate, fuse_stft_fft
from edgeavs.passes._rewrite import FusionStats
from edgeavs.passes.fuse_audio_gate import FuseAudioGate
from edgeavs.passes.fuse_channel_bias import FuseChannelBias
from edgeavs.passes.fuse_hsig_gate import FuseHsigGate
from edgeavs.passes.fuse_stft_fft import FuseStftFft
from edgeavs.tvm_api import IRModule, Sequential


@dataclass(frozen=True)
class FusionPattern:
    """One row of the pattern table: the pass that rewrites a chain; the chain's kernel comes from the registry
    (``kernels.registry``: the kernel entry that serves the chain ``name``)."""

    name: str
    pass_name: str
    make_pass: Callable
    count: Callable[[IRModule], int]

    @property
    def entry(self):
        """The registry entry of the chain's kernel."""
        from kernels.registry import kernel_for_chain

        return kernel_for_chain(self.name)

    @property
    def kernel(self) -> str:
        """The module that defines the chain's kernel (e.g. ``kernels.audio_gate``)."""
        return self.entry.build.__module__


PATTERNS: tuple[FusionPattern, ...] = (
    FusionPattern(fuse_channel_bias.NAME, "FuseChannelBias", FuseChannelBias, fuse_channel_bias.count_matches),
    FusionPattern(fuse_audio_gate.NAME, "FuseAudioGate", FuseAudioGate, fuse_audio_gate.count_matches),
    FusionPattern(fuse_hsig_gate.NAME, "FuseHsigGate", FuseHsigGate, fuse_hsig_gate.count_matches),
    FusionPattern(fuse_stft_fft.NAME, "FuseStftFft", FuseStftFft, fuse_stft_fft.count_matches),
)
PATTERN_NAMES = tuple(p.name for p in PATTERNS)
FUSION_PASSES = tuple(p.pass_name for p in PATTERNS)
"""Pass names in the order they must run (read by ``edgeavs.compiler.pipeline``)."""


def get_pattern(name: str) -> FusionPattern:
    for p in PATTERNS:
        if name in (p.name, p.pass_name):
            return p
    raise KeyError(f"unknown fusion pattern {name!r}; known: {', '.join(PATTERN_NAMES)}")


def fusion_passes(target=None, names: tuple[str, ...] | None = None, configs: dict | None = None) -> list:
    """The fusion passes (``tvm.transform.Pass``) in pipeline order; ``names`` selects a subset (pattern or
    pass names); ``configs``: tuned kernel knobs (``{"functions": ...}``, see ``kernels.registry``). Each pass
    object exposes ``.stats`` (``FusionStats``) after it ran."""
    wanted = PATTERNS if names is None else tuple(get_pattern(n) for n in names)
    order = [p for p in PATTERNS if p in wanted]
    return [_make_pass(p, target, configs) for p in order]


def _make_pass(row: FusionPattern, target, configs):
    """``row``'s pass; ``configs`` only for the passes whose kernels have tunable knobs (they take it)."""
    if configs is None:
        return row.make_pass(target=target)
    try:
        return row.make_pass(target=target, configs=configs)
    except TypeError as exc:
        if "configs" not in str(exc):
            raise
        return row.make_pass(target=target)


def FuseEdgeAVS(target=None) -> Sequential:  # noqa: N802 - a pass factory, TVM style
    """All fusion passes as one ``tvm.transform.Sequential`` named "FuseEdgeAVS"."""
    return Sequential(fusion_passes(target), name="FuseEdgeAVS")


def count_chains(mod: IRModule) -> dict[str, int]:
    """Unfused instances of each chain in ``mod``, by pattern name."""
    return {p.name: p.count(mod) for p in PATTERNS}


def fusion_report(before: IRModule, after: IRModule) -> dict[str, dict[str, int]]:
    """``{pattern: {"found": n_before, "left": n_after, "fused": n_before - n_after}}``."""
    b, a = count_chains(before), count_chains(after)
    return {name: {"found": b[name], "left": a[name], "fused": b[name] - a[name]} for name in PATTERN_NAMES}


def run_fusion_passes(mod: IRModule, target=None,
                      configs: dict | None = None) -> tuple[IRModule, dict[str, FusionStats]]:
    """Apply the passes in order (kernels with ``configs``' tuned knobs where given); return the module and
    each pass's stats by pattern name."""
    stats = {}
    for row, p in zip(PATTERNS, fusion_passes(target, configs=configs)):
        mod = p(mod)
        stats[row.name] = p.stats
    return mod, stats


__all__ = ["PATTERNS", "PATTERN_NAMES", "FUSION_PASSES", "FusionPattern", "FusionStats", "FuseAudioGate", "FuseChannelBias",
           "FuseHsigGate", "FuseStftFft", "FuseEdgeAVS", "count_chains", "fusion_passes", "fusion_report", "get_pattern",
           "run_fusion_passes"]
