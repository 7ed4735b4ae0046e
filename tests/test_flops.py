"""MAC counts from torch's flop counter: LightAVSeg's interaction is linear in pixels, TPAVI's
is quadratic. Counts, not timings: doubling the pixel count (256×256 -> 256×512) doubles every
pyramid level exactly, so the ratios below are exact where they say so. The counts run on
fake tensors (shapes only, fast); ``test_fake_tensors_count_the_same`` checks that this
changes nothing."""

import pytest
import torch
from torch import nn

from edgeavs.model import build_model
from edgeavs.model.flops import _Tally, interaction_macs, model_macs
from torch.utils.flop_counter import FlopCounterMode

SMALL, DOUBLE = (256, 256), (256, 512)
_COUNTS = {}


def _counts(fusion, fake=True):
    if fusion not in _COUNTS:
        model = build_model("tiny", fusion=fusion, seed=0)
        _COUNTS[fusion] = (interaction_macs(model, SMALL, fake=fake),
                           interaction_macs(model, DOUBLE, fake=fake))
    return _COUNTS[fusion]


def test_lightavseg_spatial_doubles_exactly_and_global_is_constant():
    a, b = _counts("lightavseg")
    assert a["spatial"] > 0 and a["global"] > 0
    assert b["spatial"] == 2 * a["spatial"]
    assert b["global"] == a["global"]
    assert a["pairwise"] == b["pairwise"] == 0 and a["neck"] == 0
    assert a["total"] == a["spatial"] + a["global"]


def test_tpavi_spatial_grows_about_fourfold():
    a, b = _counts("tpavi")
    assert b["pairwise"] == 4 * a["pairwise"] > 0          # the T·H·W × T·H·W affinity
    assert b["global"] == a["global"]
    assert b["neck"] == 2 * a["neck"]                       # dilated convs: linear, counted apart
    # θ, g, W_z and the LayerNorm are linear, so the whole spatial part grows a bit under 4×
    # at this size (3.42×) and tends to 4× as the affinity dominates.
    assert 3.3 < b["spatial"] / a["spatial"] < 4.0


def test_avsegformer_token_attention_is_quadratic_and_queries_constant():
    a, b = _counts("avsegformer")
    assert b["pairwise"] == 4 * a["pairwise"] > 0          # encoder self-attention over tokens
    assert b["global"] == a["global"] > 0                   # 300 queries: independent of pixels
    assert b["spatial"] / a["spatial"] >= 2.0


def test_fake_tensors_count_the_same():
    model = build_model("tiny", fusion="tpavi", seed=0)
    assert interaction_macs(model, (128, 160), fake=True) == interaction_macs(model, (128, 160))
    assert model_macs(model, (128, 160), fake=True) == model_macs(model, (128, 160))


def test_model_macs_has_the_interaction_part_for_every_fusion():
    for fusion in ("lightavseg", "tpavi"):
        m = model_macs(build_model("tiny", fusion=fusion, seed=0), (128, 128))
        assert m["interaction"] > 0
        assert m["total"] >= m["visual"] + m["audio"] + m["interaction"] + m["head"]


class _Toy(nn.Module):
    """A token Linear outside any label (global by shape) and one labelled ``tokens``."""

    def __init__(self):
        super().__init__()
        self.plain = nn.Linear(4, 4)
        self.tok = nn.Linear(4, 4)
        self.tok.flop_scope = "tokens"

    def forward(self, x):
        return self.plain(x) + self.tok(x)


@pytest.mark.parametrize("labelled", [True, False])
def test_flop_scope_labels_decide_for_token_layouts(labelled):
    toy = _Toy()
    if not labelled:
        del toy.tok.flop_scope
    tally = _Tally()
    handles = tally.attach(toy)
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=tally.mapping()):
        toy(torch.randn(1, 10, 4))
    for h in handles:
        h.remove()
    linear = 2 * 10 * 4 * 4  # FLOPs of one Linear over 10 tokens (bias add folded in addmm)
    assert tally.spatial == (linear if labelled else 0)
    assert tally.global_ + tally.spatial >= 2 * linear
