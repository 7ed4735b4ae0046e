"""The comparison arithmetic of edgeavs.verify and the weights record of compile (no compile)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.compiler.build import check_resolution, parse_resolution, resolve_weights
from edgeavs.errors import EdgeAVSError
from edgeavs.verify import TOLERANCES, compare, compare_layers


def test_compare_metrics_and_tolerance():
    tol = TOLERANCES["float32"]
    rng = np.random.default_rng(0)
    e = rng.standard_normal(1000)
    r = compare(e + 1e-7 * rng.standard_normal(1000), e)
    assert r["pass"] and r["finite"] and 0 < r["max_abs"] < 1e-6 and "failed" not in r
    assert r["rel_l2"] == pytest.approx(1e-7, rel=0.2)
    bad = compare(e * 1.01, e)
    assert not bad["pass"] and bad["rel_l2"] == pytest.approx(0.01, rel=1e-3)
    assert bad["max_rel"] == pytest.approx(0.01, rel=1e-3)
    assert "rel_l2" in bad["failed"]
    # rel-L2 just inside / outside its bound (an error spread evenly, so the worst pixel stays inside)
    spread = np.sign(e) * np.sqrt(np.mean(e ** 2))
    assert compare(e + 0.9 * tol["rel_l2"] * spread, e)["pass"]
    assert compare(e + 1.1 * tol["rel_l2"] * spread, e)["failed"] == ["rel_l2"]


def test_worst_pixel_is_measured_in_units_of_the_outputs_rms():
    """One pixel off by 2x the max-abs bound (in rms units) fails although rel-L2 hardly moves."""
    tol = TOLERANCES["float32"]
    e = np.ones(100_000) * 5.0
    a = e.copy()
    a[123] += 2 * tol["max_abs"] * 5.0
    r = compare(a, e)
    assert r["max_abs_rms"] == pytest.approx(2 * tol["max_abs"])
    assert r["rel_l2"] < tol["rel_l2"] and r["failed"] == ["max_abs"]
    a[123] = e[123] + 0.5 * tol["max_abs"] * 5.0
    assert compare(a, e)["pass"]


def test_mask_iou_rule():
    """Binarised masks: flipping the sign of 1 % of the positive pixels fails the IoU bound; an
    empty reference mask is not scored."""
    e = np.full(10_000, -1.0)
    e[:1000] = 1e-3  # a small positive region
    a = e.copy()
    a[:10] = -1e-3  # 1 % of the mask flips, a tiny change in value
    r = compare(a, e)
    assert r["mask_iou"] == pytest.approx(0.99) and "mask_iou" in r["failed"]
    assert compare(e, e)["mask_iou"] == 1.0
    neg = np.full(100, -1.0)
    assert compare(neg * (1 + 1e-6), neg)["mask_iou"] is None and compare(neg, neg)["pass"]


def test_shape_mismatch_fails():
    r = compare(np.zeros(3), np.zeros(4))
    assert not r["pass"] and r["failed"] == ["shape mismatch"]


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_always_fail(value):
    e = np.ones(4, "float32")
    a = e.copy()
    a[2] = value
    assert compare(a, e) == {"shape": [4], "finite": False, "max_abs": None, "max_rel": None,
                             "rel_l2": None, "pass": False, "reason": "NaN or Inf",
                             "failed": ["NaN or Inf"]}
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


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p, np.zeros((1, 3, 8, 8), "float32")), "a single array (.npy)"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "cannot read"),
    (lambda p: np.savez(p, frames=np.zeros((1, 3, 8, 8), "complex64"), waveform=np.zeros((1, 32000))),
     "array 'frames' has dtype complex64; expected real numbers"),
    (lambda p: np.savez(p, frames=np.full((1, 3, 8, 8), "x"), waveform=np.zeros((1, 32000))),
     "array 'frames' has dtype <U1; expected real numbers"),
    (lambda p: np.savez(p, frames=np.zeros((1, 3, 8, 8)), waveform=np.full((1, 32000), np.nan)),
     "array 'waveform' holds NaN or Inf"),
    (lambda p: np.savez(p, frames=np.zeros((0, 3, 8, 8)), waveform=np.zeros((0, 32000))),
     "frames have shape (0, 3, 8, 8)"),
    (lambda p: np.savez(p, frames=np.zeros((1, 3, 8, 8))), "missing array 'waveform'"),
])
def test_bad_inputs_file_is_one_line(tmp_path, make, message):
    from edgeavs.verify import VerifyUsageError, load_inputs

    path = tmp_path / "in.npz"
    make(path)
    if not path.exists():  # np.save appends .npy
        path = tmp_path / "in.npz.npy"
    with pytest.raises(VerifyUsageError) as info:
        load_inputs(path, 8, 8)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"--inputs {path}: ") and message in text


def test_integer_inputs_are_accepted_as_real_numbers(tmp_path):
    from edgeavs.verify import load_inputs

    path = tmp_path / "in.npz"
    np.savez(path, frames=np.ones((2, 3, 8, 8), "int16"), waveform=np.zeros((2, 32000), "int32"))
    frames, waveform = load_inputs(path, 8, 8)
    assert frames.dtype == waveform.dtype == np.float32 and frames.shape == (2, 3, 8, 8)
