"""M_J and M_F against hand-computed cases and against an independent per-frame reference (SPEC §8)."""

import numpy as np
import pytest
import torch

from edgeavs.metrics import MeanFScore, MeanIoU, SegMetrics, frame_f_curves, frame_iou, thresholds

BIG = 30.0  # sigmoid(30) rounds to 1.0 in float32, sigmoid(-30) to ~1e-13


def frames_from(probs, gts):
    """(N,1,H,W) logits and masks from nested lists of probabilities and {0,1} ground truth."""
    p = torch.tensor(probs, dtype=torch.float64)
    lg = torch.log(p / (1 - p)).float()
    return lg[:, None], torch.tensor(gts, dtype=torch.float32)[:, None]


def f_of(p, r):
    return (1 + 0.3) * p * r / (0.3 * p + r)


def test_thresholds_are_avsbench_float32_linspace():
    th = thresholds()
    assert th.shape == (255,) and th.dtype == torch.float32
    assert th[0] == 0.0 and th[127] == 0.5 and th[-1] == 1.0  # 1 - 1e-10 rounds to 1 in float32


def test_perfect_prediction_scores_one():
    gt = torch.zeros(3, 1, 8, 8)
    gt[:, :, 2:5, 3:7] = 1
    logits = torch.where(gt > 0, BIG, -BIG)
    m = SegMetrics()
    m.update(logits, gt, clip_ids=["a"])
    r = m.compute()
    assert r["M_J"] == pytest.approx(1.0, abs=1e-6)
    assert r["M_F"] == pytest.approx(1.0, abs=1e-6)
    assert (r["frames"], r["clips"]) == (3, 1)


def test_iou_hand_computed():
    # gt 4 pixels; prediction hits 2 of them plus 2 others: inter 2, union 6
    gt = torch.zeros(1, 1, 4, 4)
    gt[0, 0, 0, :] = 1
    logits = torch.full((1, 1, 4, 4), -BIG)
    logits[0, 0, 0, :2] = BIG
    logits[0, 0, 3, :2] = BIG
    assert frame_iou(logits[:, 0], gt[:, 0]).item() == pytest.approx(2 / 6)


def test_iou_empty_ground_truth_counts_true_negatives():
    gt = torch.zeros(2, 1, 4, 4)
    logits = torch.full((2, 1, 4, 4), -BIG)
    logits[1, 0, 0, :3] = BIG  # 3 false positives on an empty frame: 13 of 16 pixels right
    iou = frame_iou(logits[:, 0], gt[:, 0])
    assert iou[0].item() == pytest.approx(16 / (16 + 1e-7))
    assert iou[1].item() == pytest.approx(13 / 16)
    m = MeanIoU()
    m.update(logits, gt)
    assert m.compute() == pytest.approx((1 + 13 / 16) / 2)


def test_iou_half_probability_is_background():
    # sigmoid(0) = 0.5 exactly and M_J uses a strict "> 0.5"
    gt = torch.zeros(1, 1, 2, 2)
    gt[0, 0, 0, 0] = 1
    logits = torch.full((1, 1, 2, 2), -BIG)
    logits[0, 0, 0, 0] = 0.0
    assert frame_iou(logits[:, 0], gt[:, 0]).item() == 0.0
    logits[0, 0, 0, 0] = 1e-6
    assert frame_iou(logits[:, 0], gt[:, 0]).item() == pytest.approx(1.0)


def test_f_curve_threshold_edge_at_half():
    # gt pixel at p = 0.5 exactly, the rest ~0: predicted at thresholds <= 0.5 (index 127), not above
    logits = torch.full((1, 2, 2), -BIG)
    logits[0, 0, 0] = 0.0
    gt = torch.zeros(1, 2, 2)
    gt[0, 0, 0] = 1
    f, nonempty = frame_f_curves(logits, gt)
    assert nonempty.tolist() == [True]
    # threshold 0: every pixel is >= 0, so precision 1/4, recall 1
    assert f[0, 0].item() == pytest.approx(f_of(0.25, 1.0), rel=1e-6)
    assert f[0, 1].item() == pytest.approx(1.0, rel=1e-6)
    assert f[0, 127].item() == pytest.approx(1.0, rel=1e-6)
    assert f[0, 128].item() == 0.0  # nothing predicted: 0/0 -> NaN -> 0
    assert f[0, 254].item() == 0.0


def test_f_is_max_of_clip_averaged_curve_not_mean_of_maxima():
    # frame 1: gt pixel at p 0.3 -> F 1 for th <= 0.3, 0 above
    # frame 2: gt pixel at 0.95, distractor at 0.5 -> F(0.5, 1) for th <= 0.5, 1 on (0.5, 0.95]
    # frame 3: empty ground truth -> skipped, not averaged in as 0
    logits, gt = frames_from(
        [[[0.3, 1e-9], [1e-9, 1e-9]], [[0.95, 0.5], [1e-9, 1e-9]], [[0.9, 0.9], [1e-9, 1e-9]]],
        [[[1, 0], [0, 0]], [[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    m = MeanFScore()
    m.update(logits, gt, clip_ids=["c"] * 3)
    expected = (1.0 + f_of(0.5, 1.0)) / 2  # both frames at th in (0, 0.3]
    assert m.compute() == pytest.approx(expected, rel=1e-6)
    assert m.compute() < 0.99  # the mean of per-frame maxima would be 1


def test_all_empty_clip_counts_zero_in_f_and_one_in_iou():
    gt = torch.zeros(10, 1, 4, 4)
    gt[:5, :, 1:3, 1:3] = 1  # clip "a" non-empty, clip "b" all empty
    logits = torch.where(gt > 0, BIG, -BIG)
    m = SegMetrics()
    m.update(logits, gt, clip_ids=["a", "b"])  # one id per clip of 5 frames
    r = m.compute()
    assert r["clips"] == 2 and r["frames"] == 10
    assert m.f.clip_scores() == {"a": pytest.approx(1.0, abs=1e-6), "b": 0.0}
    assert r["M_F"] == pytest.approx(0.5, abs=1e-6)
    assert r["M_J"] == pytest.approx(1.0, abs=1e-6)


def test_invalid_frames_are_ignored():
    gt = torch.zeros(5, 1, 4, 4)
    gt[0, :, :2] = 1
    logits = torch.where(gt > 0, BIG, -BIG)
    logits[1:] = BIG  # frames 2..5 are wrong but have no ground truth (S4 train)
    valid = torch.tensor([True, False, False, False, False])
    m = SegMetrics()
    m.update(logits, gt, valid, clip_ids=["x"])
    r = m.compute()
    assert r["frames"] == 1
    assert r["M_J"] == pytest.approx(1.0, abs=1e-6) and r["M_F"] == pytest.approx(1.0, abs=1e-6)


# --- an independent reference written from SPEC §8's wording, frame by frame in numpy ------

def _ref_miou(logits, gt):
    """Mean over frames of IoU; sigmoid > 0.5; an empty ground truth scores #(both 0)/(H·W)."""
    probs = 1.0 / (1.0 + np.exp(-logits.numpy().astype(np.float64)))
    gt = gt.numpy().astype(bool)
    ious = []
    for p, g in zip(probs > 0.5, gt):
        if g.any():
            inter, union = np.logical_and(p, g).sum(), np.logical_or(p, g).sum()
        else:
            inter, union = np.logical_and(~p, ~g).sum(), g.size
        ious.append(inter / (union + 1e-7))
    return float(np.mean(ious))


def _ref_fmeasure(probs, gt, n_thresholds=255):
    """Per clip: F(th) averaged over frames with a non-empty ground truth, then the max."""
    thresholds = torch.linspace(0, 1 - 1e-10, n_thresholds).numpy()  # float32, as the benchmark
    curves = []
    for p, g in zip(probs.numpy(), gt.numpy()):
        if g.sum() == 0:
            continue
        curve = np.zeros(n_thresholds, dtype=np.float64)
        for j, th in enumerate(thresholds):
            pred = p >= th
            tp = float(np.logical_and(pred, g > 0).sum())
            precision = tp / (pred.sum() + 1e-20)
            recall = tp / (g.sum() + 1e-20)
            denom = 0.3 * precision + recall
            curve[j] = 0.0 if denom == 0 else 1.3 * precision * recall / denom
        curves.append(curve)
    return float(np.mean(curves, axis=0).max()) if curves else 0.0


def test_matches_avsbench_reference_on_random_clips():
    g = torch.Generator().manual_seed(0)
    clips = 4
    logits = torch.randn(clips * 5, 1, 12, 12, generator=g) * 3
    gt = (torch.rand(clips * 5, 1, 12, 12, generator=g) > 0.6).float()
    gt[5:7] = 0          # empty frames inside clip 1
    gt[10:15] = 0        # clip 2 entirely empty
    logits[0, 0, 0, 0] = 0.0  # a pixel exactly at 0.5
    m = SegMetrics()
    # batches that cut clips in two: ids per frame
    ids = [i // 5 for i in range(clips * 5)]
    for a, b in ((0, 7), (7, 13), (13, 20)):
        m.update(logits[a:b], gt[a:b], clip_ids=ids[a:b])
    r = m.compute()
    ref_j = sum(_ref_miou(logits[c * 5:(c + 1) * 5, 0], gt[c * 5:(c + 1) * 5, 0])
                for c in range(clips)) / clips
    ref_f = sum(_ref_fmeasure(torch.sigmoid(logits[c * 5:(c + 1) * 5, 0]), gt[c * 5:(c + 1) * 5, 0])
                for c in range(clips)) / clips
    assert r["M_J"] == pytest.approx(ref_j, abs=1e-6)
    assert r["M_F"] == pytest.approx(ref_f, abs=1e-6)
    scores = m.f.clip_scores()
    for c in range(clips):
        assert scores[c] == pytest.approx(_ref_fmeasure(torch.sigmoid(logits[c * 5:(c + 1) * 5, 0]),
                                                        gt[c * 5:(c + 1) * 5, 0]), abs=1e-6)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        MeanIoU().update(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match="clip ids"):
        MeanFScore().update(torch.zeros(6, 1, 4, 4), torch.zeros(6, 1, 4, 4), clip_ids=["a"] * 4)
