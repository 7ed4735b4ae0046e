"""SeaFormer-{T,S,B,L} visual backbone (SPEC §2).

Module and parameter names follow the official SeaFormer code so that its ImageNet
checkpoints load unchanged (minus ``linear.*``); activations, BN epsilons, positional
embedding interpolation and the attention arithmetic are the official ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeavs.model.config import SeaFormerConfig
from edgeavs.model.layers import Conv2dBN, DropPath, h_sigmoid


class InvertedResidual(nn.Module):
    """MobileNetV2 block with ReLU (not ReLU6), as in SeaFormer's StackedMV2Block."""

    def __init__(self, inp: int, out: int, ks: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(inp * expand))
        self.use_res = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [Conv2dBN(inp, hidden, 1), nn.ReLU()]
        layers += [
            Conv2dBN(hidden, hidden, ks, stride, ks // 2, groups=hidden),
            nn.ReLU(),
            Conv2dBN(hidden, out, 1),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class StackedMV2Block(nn.Module):
    def __init__(self, blocks, inp: int, stem: bool):
        super().__init__()
        self.stem = stem
        if stem:
            self.stem_block = nn.Sequential(Conv2dBN(3, inp, 3, 2, 1), nn.ReLU())
        self.layer_names = []
        for i, (k, t, c, s) in enumerate(blocks):
            name = f"layer{i + 1}"
            self.add_module(name, InvertedResidual(inp, c, k, s, t))
            self.layer_names.append(name)
            inp = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem:
            x = self.stem_block(x)
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x


class SqueezeAxialPositionalEmbedding(nn.Module):
    """Learned 1-D embedding stored at length 16, linearly interpolated to the real length."""

    def __init__(self, dim: int, length: int = 16):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, dim, length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        return x + F.interpolate(self.pos_embed, size=n, mode="linear", align_corners=False)


class SeaAttention(nn.Module):
    """Squeeze-enhanced axial attention with the detail-enhancement branch."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, attn_ratio: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = key_dim ** -0.5
        self.nh_kd = key_dim * num_heads
        self.dh = int(attn_ratio * key_dim) * num_heads
        self.to_q = Conv2dBN(dim, self.nh_kd)
        self.to_k = Conv2dBN(dim, self.nh_kd)
        self.to_v = Conv2dBN(dim, self.dh)
        self.proj = nn.Sequential(nn.ReLU6(), Conv2dBN(self.dh, dim, bn_weight_init=0.0))
        self.proj_encode_row = nn.Sequential(nn.ReLU6(), Conv2dBN(self.dh, self.dh, bn_weight_init=0.0))
        self.pos_emb_rowq = SqueezeAxialPositionalEmbedding(self.nh_kd)
        self.pos_emb_rowk = SqueezeAxialPositionalEmbedding(self.nh_kd)
        self.proj_encode_column = nn.Sequential(nn.ReLU6(), Conv2dBN(self.dh, self.dh, bn_weight_init=0.0))
        self.pos_emb_columnq = SqueezeAxialPositionalEmbedding(self.nh_kd)
        self.pos_emb_columnk = SqueezeAxialPositionalEmbedding(self.nh_kd)
        qkv = 2 * self.nh_kd + self.dh
        self.dwconv = Conv2dBN(qkv, qkv, 3, 1, 1, groups=qkv)
        self.act = nn.ReLU6()
        self.pwconv = Conv2dBN(qkv, dim)

    def _axial(self, q, k, v, pos_q, pos_k, proj, b: int, n: int, as_row: bool):
        heads = self.num_heads
        q = pos_q(q).reshape(b, heads, -1, n).permute(0, 1, 3, 2)
        k = pos_k(k).reshape(b, heads, -1, n)
        v = v.reshape(b, heads, -1, n).permute(0, 1, 3, 2)
        attn = (torch.matmul(q, k) * self.scale).softmax(dim=-1)
        out = torch.matmul(attn, v).permute(0, 1, 3, 2)
        shape = (b, self.dh, n, 1) if as_row else (b, self.dh, 1, n)
        return proj(out.reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        detail = self.pwconv(self.act(self.dwconv(torch.cat([q, k, v], dim=1))))
        row = self._axial(q.mean(-1), k.mean(-1), v.mean(-1), self.pos_emb_rowq,
                          self.pos_emb_rowk, self.proj_encode_row, b, h, as_row=True)
        col = self._axial(q.mean(-2), k.mean(-2), v.mean(-2), self.pos_emb_columnq,
                          self.pos_emb_columnk, self.proj_encode_column, b, w, as_row=False)
        xx = v + (row + col)
        return h_sigmoid(self.proj(xx)) * detail


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = Conv2dBN(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, bias=True, groups=hidden)
        self.act = nn.ReLU6()
        self.fc2 = Conv2dBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class TransformerBlock(nn.Module):
    def __init__(self, dim, key_dim, num_heads, mlp_ratio, attn_ratio, drop_path):
        super().__init__()
        self.attn = SeaAttention(dim, key_dim, num_heads, attn_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x))
        return x + self.drop_path(self.mlp(x))


class BasicLayer(nn.Module):
    def __init__(self, depth, dim, key_dim, num_heads, mlp_ratio, attn_ratio, drop_path_rate):
        super().__init__()
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(dim, key_dim, num_heads, mlp_ratio, attn_ratio, rates[i])
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.transformer_blocks:
            x = blk(x)
        return x


class SeaFormer(nn.Module):
    """The segmentation backbone. ``forward`` returns the pyramid, fine → coarse.

    ``run_level`` exposes the same computation level by level so that LightAVSeg can
    replace each level's output before the next stage runs (SPEC §4).
    """

    def __init__(self, cfg: SeaFormerConfig):
        super().__init__()
        self.cfg = cfg
        inp = cfg.stem_channels
        for i, blocks in enumerate(cfg.stages):
            setattr(self, f"smb{i + 1}", StackedMV2Block(blocks, inp, stem=(i == 0)))
            inp = blocks[-1][2]
        for j, _ in enumerate(cfg.depths):
            setattr(self, f"trans{j + 1}", BasicLayer(
                cfg.depths[j], cfg.emb_dims[j], cfg.key_dims[j], cfg.num_heads,
                cfg.mlp_ratios[j], cfg.attn_ratio, cfg.drop_path_rate))
        self._plan = self._level_plan()
        self._init_weights()

    def _init_weights(self):
        # The official initialisation: He-normal convs over fan-out/groups, BN 1/0
        # (bn_weight_init=0 is kept where Conv2dBN set it).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _level_plan(self) -> list[list[str]]:
        """Names of the stages each pyramid level runs, continuing from the previous level."""
        cfg = self.cfg
        trans_of = {s: j for j, s in enumerate(cfg.transformer_stages)}
        plan, pending = [], []
        for i in range(len(cfg.stages)):
            pending.append(f"smb{i + 1}")
            if i in trans_of:
                pending.append(f"trans{trans_of[i] + 1}")
            if i in cfg.pyramid_stages:
                plan.append(pending)
                pending = []
        return plan

    @property
    def num_levels(self) -> int:
        return len(self.cfg.pyramid_stages)

    def run_level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        """Run the stages that produce pyramid ``level`` from the previous level's output
        (from the image for level 0)."""
        for name in self._plan[level]:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for level in range(self.num_levels):
            x = self.run_level(level, x)
            outs.append(x)
        return outs
