"""The comparison arithmetic of edgeavs.verify and the weights record of compile (no compile)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.compiler.build import check_resolution, parse_resolution, resolve_weights
from edgeavs.errors import EdgeAVSError
from edgeavs.verify import TOLERANCES, compare, compare_layers


def test_compare_metrics_and_tolerance():
    e = np.array([1.0, -2.0, 4.0], "float32")
    r = compare(e + np.float32(1e-7), e)
    assert r["pass"] and r["finite"] and 0 < r["max_abs"] < 1e-6
    bad = compare(e * 1.01, e)
    assert not bad["pass"] and bad["rel_l2"] == pytest.approx(0.01, rel=1e-3)
    assert bad["max_rel"] == pytest.approx(0.01, rel=1e-3)
    assert TOLERANCES["float32"] == {"rel_l2": 1e-5, "max_abs": 1e-3, "noise_floor_factor": 2.0}


def _case(rel_l2, max_abs=1e-5, finite=True):
    return {"input": "seed 0", "pass": False,
            "outputs": {"logits": {"finite": finite, "max_abs": max_abs, "rel_l2": rel_l2, "pass": False}}}


def test_noise_floor_rule():
    """A case that misses rel-L2 <= 1e-5 passes only when the artifact is within 2x PyTorch fp32's
    own error against float64, and never when max abs or finiteness fails."""
    from edgeavs.verify import _within_noise_floor

    assert _within_noise_floor(_case(1.6e-5), {"pytorch_fp32_rel_l2": 1.4e-5, "artifact_rel_l2": 1.6e-5})
    assert not _within_noise_floor(_case(4e-5), {"pytorch_fp32_rel_l2": 1.4e-5, "artifact_rel_l2": 3.5e-5})
    assert not _within_noise_floor(_case(1.6e-5, max_abs=2e-3),
                                   {"pytorch_fp32_rel_l2": 1.4e-5, "artifact_rel_l2": 1.6e-5})
    assert not _within_noise_floor(_case(None, max_abs=None, finite=False),
                                   {"pytorch_fp32_rel_l2": 1.4e-5, "artifact_rel_l2": 1.6e-5})
    assert not _within_noise_floor(_case(1.6e-5), None)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_always_fail(value):
    e = np.ones(4, "float32")
    a = e.copy()
    a[2] = value
    assert compare(a, e) == {"shape": [4], "finite": False, "max_abs": None, "max_rel": None,
                             "rel_l2": None, "pass": False, "reason": "NaN or Inf"}
    assert not compare(e, a)["pass"]


def test_per_layer_names_the_first_gap():
    rng = np.random.default_rng(0)
    ref = {k: rng.standard_normal(100).astype("float32") for k in ("pyramid.0", "v_enc.0", "v_dec.0", "logits")}
    got = {k: v + 1e-7 * rng.standard_normal(100).astype("float32") for k, v in ref.items()}
    got["v_enc.0"] = ref["v_enc.0"] * 1.01  # 40 dB
    got["logits"] = ref["logits"] * 1.1
    out = compare_layers(got, ref)
    assert [s["name"] for s in out["layers"]] == list(ref)
    assert out["layers"][0]["snr_db"] > 100
    assert out["layers"][1]["snr_db"] == pytest.approx(40.0, abs=0.01)
    assert out["first_divergence"] == "v_enc.0"
    assert compare_layers(ref, ref)["first_divergence"] is None


def test_resolution_parsing():
    assert parse_resolution("224") == (224, 224)
    assert parse_resolution("224x320") == (224, 320)
    assert check_resolution("64x96", "tiny") == (64, 96)
    assert check_resolution("720x1280", "large") == (720, 1280)  # 720p: 720 = 45 * 16
    with pytest.raises(EdgeAVSError, match="multiples of 16"):
        check_resolution("100", "tiny")


def test_weights_record(tmp_path):
    from edgeavs.model import build_model, save_checkpoint

    assert resolve_weights(None) == ("large", {"storage": "bound", "source": "random-init", "seed": 0,
                                               "fusion": "lightavseg"})
    ck = tmp_path / "tiny.pt"
    save_checkpoint(build_model("tiny", seed=1), ck)
    variant, w = resolve_weights(None, ck)  # the checkpoint decides the variant
    assert variant == "tiny" and w["source"] == "checkpoint" and len(w["checkpoint_sha256"]) == 64
    assert resolve_weights("t", ck)[0] == "tiny"
    with pytest.raises(EdgeAVSError, match=r"checkpoint is LightAVSeg-tiny, not the requested variant large$"):
        resolve_weights("large", ck)
