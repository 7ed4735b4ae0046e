"""Output shapes for every variant (224 and non-square) and the pyramid of SPEC §2."""

import pytest
import torch

from edgeavs import build_model
from edgeavs.model.config import VARIANTS

PYRAMID_224 = {
    "tiny": [(32, 28), (128, 7), (160, 4)],
    "small": [(48, 28), (160, 7), (192, 4)],
    "base": [(64, 28), (192, 7), (256, 4)],
    "large": [(128, 28), (192, 14), (256, 7), (320, 4)],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_logits_at_input_resolution(variant, size):
    model = build_model(variant, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size), torch.randn(2, 32000))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_visual_pyramid_matches_official_shapes(variant):
    model = build_model(variant, seed=0).eval()
    with torch.no_grad():
        pyramid = model.visual(torch.randn(1, 3, 224, 224))
    assert [(p.shape[1], p.shape[2]) for p in pyramid] == PYRAMID_224[variant]


def test_audio_shapes_for_one_second():
    model = build_model("tiny", seed=0).eval()
    wave = torch.randn(2, 32000)
    with torch.no_grad():
        spec = model.audio.spectrogram_extractor(wave)
        logmel = model.audio.logmel(wave)
        feats = model.audio.features(logmel)
        a0 = model.audio(wave)
    assert spec.shape == (2, 1, 101, 513)
    assert logmel.shape == (2, 1, 101, 64)
    assert feats.shape == (2, 1280, 3, 2)
    assert a0.shape == (2, 1024)


def test_aux_output_levels_and_channels():
    model = build_model("tiny", seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96), torch.randn(1, 32000), return_aux=True)
    chans = [c for c, _ in PYRAMID_224["tiny"]]
    for key in ("pyramid", "v_enc", "v_dec"):
        assert [t.shape[1] for t in out[key]] == chans
    for key in ("a_enc", "a_hat"):
        assert [tuple(t.shape) for t in out[key]] == [(1, c, 1, 1) for c in chans]


def test_plain_forward_equals_aux_logits():
    model = build_model("tiny", seed=0).eval()
    frames, wave = torch.randn(1, 3, 64, 64), torch.randn(1, 32000)
    with torch.no_grad():
        a = model(frames, wave)
        b = model(frames, wave, return_aux=True)["logits"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
