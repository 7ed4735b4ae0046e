"""AVSBench's segmentation metrics, M_J (mean IoU) and M_F (F-measure), as it computes them (SPEC §8).

Both follow the official ``utility.py`` of AVSBench (``mask_iou`` and ``Eval_Fmeasure``) including
its corner cases, because the numbers are only comparable with the paper's if they are the same
function:

- **M_J**: ``pred = sigmoid(logit) > 0.5`` (strict: a logit of exactly 0 is background);
  ``inter = Σ pred·gt``, ``union = Σ max(pred, gt)``; a frame whose ground truth is empty scores
  ``inter = #(pred = 0 and gt = 0)``, ``union = H·W`` (predicting nothing on an empty frame is a
  perfect 1); IoU ``= inter / (union + 1e-7)``; the mean over all evaluated frames.
- **M_F**: ``p = sigmoid(logit)``; 255 thresholds ``linspace(0, 1 - 1e-10, 255)`` in float32 (the
  last one rounds to exactly 1.0, as in the official code); ``pred = p >= th``;
  precision ``tp / (Σpred + 1e-20)``, recall ``tp / (Σgt + 1e-20)``;
  ``F = (1 + β²)PR / (β²P + R)``, ``β² = 0.3``, NaN → 0. Frames with an empty ground truth are
  skipped; the F curve is averaged over a clip's remaining frames, its maximum over thresholds
  is the clip's score, and M_F is the mean over clips; a clip whose frames are all empty scores 0.

The official test loop evaluates one clip per batch; the accumulators here take any batch of
frames with a clip id per frame, so batching does not change the result. Frames whose ``valid``
flag is False (no ground-truth mask, e.g. S4 train frames 2–5) are ignored by both metrics; a
clip all of whose frames are invalid is not counted at all.

The F curve is computed exactly but without 255 passes over the pixels: each pixel's number of
thresholds ``<= p`` is found by ``searchsorted`` (the same float32 comparisons as ``p >= th``),
and a reversed cumulative histogram gives ``Σpred`` and ``tp`` at every threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

N_THRESHOLDS = 255
BETA2 = 0.3
IOU_EPS = 1e-7
PR_EPS = 1e-20


def thresholds(num: int = N_THRESHOLDS) -> torch.Tensor:
    """AVSBench's ``torch.linspace(0, 1 - 1e-10, num)`` (float32: the last value is 1.0)."""
    return torch.linspace(0, 1 - 1e-10, num, dtype=torch.float32)


def _check(logits: torch.Tensor, masks: torch.Tensor, valid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if logits.dim() == 4:
        logits = logits.flatten(0, 1) if logits.shape[1] == 1 else logits
    if masks.dim() == 4:
        masks = masks.flatten(0, 1) if masks.shape[1] == 1 else masks
    if logits.dim() != 3 or logits.shape != masks.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and masks {tuple(masks.shape)}: expected the "
                         "same shape (N,1,H,W) or (N,H,W)")
    n = logits.shape[0]
    if valid is None:
        valid = torch.ones(n, dtype=torch.bool)
    valid = torch.as_tensor(valid, dtype=torch.bool).reshape(-1).cpu()
    if valid.numel() != n:
        raise ValueError(f"valid has {valid.numel()} entries for {n} frames")
    return logits.detach().float().cpu(), masks.detach().float().cpu(), valid


def frame_iou(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-frame IoU ``(N,)`` of AVSBench's ``mask_iou`` (before its mean); ``(N,H,W)`` inputs."""
    pred = (torch.sigmoid(logits) > 0.5).float()
    gt = masks
    inter = (pred * gt).sum((1, 2))
    union = torch.maximum(pred, gt).sum((1, 2))
    empty = gt.sum((1, 2)) == 0
    inter = torch.where(empty, ((1 - gt) * (1 - pred)).sum((1, 2)), inter)
    union = torch.where(empty, torch.full_like(union, gt.shape[1] * gt.shape[2]), union)
    return inter / (union + IOU_EPS)


def frame_f_curves(logits: torch.Tensor, masks: torch.Tensor,
                   num: int = N_THRESHOLDS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame F curves ``(N, num)`` (float32, NaN → 0) and which frames have a non-empty
    ground truth ``(N,)``; the curve of an empty frame is all zeros (AVSBench skips it)."""
    th = thresholds(num)
    p = torch.sigmoid(logits).flatten(1)
    gt = masks.flatten(1)
    n = p.shape[0]
    # k = number of thresholds <= p; pixel counts as predicted at threshold i  <=>  i < k
    k = torch.searchsorted(th, p.contiguous(), right=True)
    offs = (torch.arange(n) * (num + 1))[:, None]
    idx = (k + offs).reshape(-1)
    hist = torch.zeros(n * (num + 1), dtype=torch.float64)
    hist.index_add_(0, idx, torch.ones_like(idx, dtype=torch.float64))
    hist_tp = torch.zeros(n * (num + 1), dtype=torch.float64)
    hist_tp.index_add_(0, idx, gt.reshape(-1).double())
    # count at threshold i = #pixels with k > i = reversed cumsum over bins i+1..num
    cnt = hist.view(n, num + 1).flip(1).cumsum(1).flip(1)[:, 1:]
    tp = hist_tp.view(n, num + 1).flip(1).cumsum(1).flip(1)[:, 1:]
    cnt, tp = cnt.float(), tp.float()
    gsum = gt.sum(1, keepdim=True)
    prec = tp / (cnt + PR_EPS)
    rec = tp / (gsum + PR_EPS)
    f = (1 + BETA2) * prec * rec / (BETA2 * prec + rec)
    f = torch.nan_to_num(f, nan=0.0)
    nonempty = masks.flatten(1).mean(1) != 0
    f[~nonempty] = 0.0
    return f, nonempty


def _expand_ids(clip_ids, n: int) -> list:
    if clip_ids is None:
        raise ValueError("clip_ids are required (one per frame, or one per clip of N/len frames)")
    ids = list(clip_ids)
    if len(ids) == n:
        return ids
    if ids and n % len(ids) == 0:
        t = n // len(ids)
        return [c for c in ids for _ in range(t)]
    raise ValueError(f"{len(ids)} clip ids for {n} frames: give one per frame or one per clip")


class MeanIoU:
    """M_J accumulator: ``update(logits, masks, valid)`` per batch, ``compute()`` → mean IoU."""

    def __init__(self):
        self.total = 0.0
        self.frames = 0

    def update(self, logits, masks, valid=None) -> None:
        logits, masks, valid = _check(logits, masks, valid)
        if valid.any():
            self.total += float(frame_iou(logits[valid], masks[valid]).double().sum())
            self.frames += int(valid.sum())

    def compute(self) -> float:
        return self.total / self.frames if self.frames else 0.0


class MeanFScore:
    """M_F accumulator: ``update(logits, masks, valid, clip_ids)`` per batch, ``compute()`` →
    the mean over clips of each clip's best frame-averaged F. Frames of one clip may arrive in
    several batches."""

    def __init__(self, num: int = N_THRESHOLDS):
        self.num = num
        self._sum: dict = {}      # clip id -> summed F curve over its non-empty frames (float32)
        self._count: dict = {}    # clip id -> number of non-empty frames

    def update(self, logits, masks, valid=None, clip_ids: Sequence | None = None) -> None:
        logits, masks, valid = _check(logits, masks, valid)
        ids = _expand_ids(clip_ids, logits.shape[0])
        f, nonempty = frame_f_curves(logits, masks, self.num)
        for i, cid in enumerate(ids):
            if not valid[i]:
                continue
            if cid not in self._sum:
                self._sum[cid] = torch.zeros(self.num, dtype=torch.float32)
                self._count[cid] = 0
            if nonempty[i]:
                self._sum[cid] += f[i]
                self._count[cid] += 1

    @property
    def clips(self) -> int:
        return len(self._sum)

    def clip_scores(self) -> dict:
        """Each clip's score: ``max_th(mean F over its non-empty frames)``, 0 if it has none."""
        return {cid: (float((s / self._count[cid]).max()) if self._count[cid] else 0.0)
                for cid, s in self._sum.items()}

    def compute(self) -> float:
        scores = self.clip_scores()
        return sum(scores.values()) / len(scores) if scores else 0.0


class SegMetrics:
    """Both metrics at once: ``update(logits, masks, valid, clip_ids)``; ``compute()`` →
    ``{"M_J", "M_F", "frames", "clips"}``."""

    def __init__(self):
        self.iou = MeanIoU()
        self.f = MeanFScore()

    def update(self, logits, masks, valid=None, clip_ids: Sequence | None = None) -> None:
        self.iou.update(logits, masks, valid)
        self.f.update(logits, masks, valid, clip_ids)

    def compute(self) -> dict:
        return {"M_J": self.iou.compute(), "M_F": self.f.compute(),
                "frames": self.iou.frames, "clips": self.f.clips}
