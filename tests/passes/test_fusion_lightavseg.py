"""Every instance of the fusion chains in the imported tiny LightAVSeg is fused (counts before/after)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # torch.export of the whole model: ~25 s on 2 cores

SIZE = 128  # the coarsest pyramid level (stride 64) is then 2x2: a 1x1 map has no pass over memory to save


@pytest.fixture(scope="module")
def tiny():
    """``(model, mod)``: tiny LightAVSeg and its Relax module after the pipeline's front half."""
    import torch

    import edgeavs
    from edgeavs.compiler import frontend, pipeline
    from edgeavs.tvm_api import make_target

    torch.manual_seed(0)
    model = edgeavs.build_model("tiny").eval()
    mod, params = frontend.import_export(frontend.inference_graph(model), frontend.example_inputs(SIZE, SIZE))
    ctx = pipeline.PipelineContext(target=make_target({"kind": "llvm", "num-cores": 2}), params=params)
    with ctx.target:
        for phase in pipeline.PIPELINE:
            if phase.name == "edgeavs-fusion":
                break
            for p in phase.passes(ctx):
                mod = p(mod)
    return model, mod


def _expected_counts(model) -> dict[str, int]:
    levels = len(model.cfg.visual.pyramid_stages)
    sea_blocks = sum(model.cfg.visual.depths)
    fusion_blocks = levels - 1
    return {"edgeavs.channel_bias": 2 * levels, "edgeavs.audio_gate": 2 * levels,
            "edgeavs.hsig_gate": sea_blocks + fusion_blocks, "edgeavs.stft_fft": 1}


def test_every_chain_is_fused(tiny):
    from edgeavs.passes import FUSION_PASSES, count_chains, fusion_report, run_fusion_passes

    model, mod = tiny
    expected = _expected_counts(model)
    assert expected == {"edgeavs.channel_bias": 6, "edgeavs.audio_gate": 6, "edgeavs.hsig_gate": 6,
                        "edgeavs.stft_fft": 1}
    assert count_chains(mod) == expected
    after, stats = run_fusion_passes(mod)
    assert count_chains(after) == {name: 0 for name in expected}
    assert {name: (s.found, s.fused) for name, s in stats.items()} == {
        name: (n, n) for name, n in expected.items()}
    assert fusion_report(mod, after) == {name: {"found": n, "left": 0, "fused": n} for name, n in expected.items()}
    assert FUSION_PASSES == ("FuseChannelBias", "FuseAudioGate", "FuseHsigGate", "FuseStftFft")
    kernels = [f.attrs["edgeavs.kernel"] for _, f in after.functions_items()
               if f.attrs is not None and "edgeavs.kernel" in f.attrs]
    assert sorted(set(kernels)) == ["edgeavs.audio_gate", "edgeavs.hsig_gate", "edgeavs.stft_fft"]
