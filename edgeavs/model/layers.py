"""Small building blocks shared by the backbone, the interaction and the head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def h_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``ReLU6(x + 3) / 6``: the official SeaFormer form (and the one our fusion passes match)."""
    return F.relu6(x + 3.0) / 6.0


class HSigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return h_sigmoid(x)


class Conv2dBN(nn.Sequential):
    """Conv (no bias) + BatchNorm, keys ``c.weight`` / ``bn.*`` as in the official SeaFormer."""

    def __init__(self, inp: int, out: int, ks: int = 1, stride: int = 1, pad: int = 0,
                 groups: int = 1, bn_weight_init: float = 1.0):
        super().__init__()
        self.add_module("c", nn.Conv2d(inp, out, ks, stride, pad, groups=groups, bias=False))
        bn = nn.BatchNorm2d(out)
        nn.init.constant_(bn.weight, bn_weight_init)
        nn.init.constant_(bn.bias, 0.0)
        self.add_module("bn", bn)


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def global_max_pool(x: torch.Tensor) -> torch.Tensor:
    """P(·): global max pool to 1×1 (SPEC §4). Exported as ``adaptive_max_pool2d``."""
    return F.adaptive_max_pool2d(x, 1)
