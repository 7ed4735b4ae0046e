"""AVSBench's TPAVI fusion on our pyramid (SPEC §9): the O(N²) baseline.

Facts taken from AVSBench (OpenNLPLab/AVSBench, ``TPAVI.py`` / ``PVT_AVSModel.py``); the code
is ours. Per pyramid level:

- **neck**: the level is projected to 256 channels by AVSBench's ``Classifier_Module``, the
  sum of four 3×3 convs with dilations 3, 6, 12, 18 (padding = dilation, with bias);
- **TPAVI** (``mode='dot'``): the audio embedding is projected to 256 channels (AVSBench's
  ``align_channel``, a Linear) and broadcast over T×H×W; ``θ`` and ``g`` are 1×1 convs
  256→128 on the visual map, ``φ`` a 1×1 conv 256→128 on the broadcast audio map;
  ``f = θᵀφ / N`` over all N = T·H·W positions of a clip; ``y = f·g``; ``z = W_z(y) + x``
  with ``W_z`` = 1×1 conv 128→256 + BN whose weight and bias start at 0 (so TPAVI starts as
  the identity); then a LayerNorm over channels.

``φ`` acts on a map that is constant over H×W, so we apply it to the 1×1 audio map and
expand: the same values as AVSBench's conv over the repeated map. The T·H·W × T·H·W
affinity itself is computed as AVSBench computes it (a dense matmul): that is the cost this
baseline exists to show.

Where AVSBench differs and we do not follow it: its decoder (``FeatureFusionBlock`` ×4 and
``output_conv``) is replaced by the head shared by every fusion (LightHead), so that only
the interaction differs; its audio input is VGGish's 128-d embedding, ours PANNs' 1024-d A₀.

Frames arrive as ``(B·T, C, H, W)`` with a clip's T frames consecutive; ``t`` (the model's
``frames_per_clip``) tells TPAVI how many frames share one affinity.
"""

from __future__ import annotations

import torch
from torch import nn

NECK_DILATIONS = (3, 6, 12, 18)


class DilatedNeck(nn.Module):
    """AVSBench's ``Classifier_Module``: Σ_d Conv3x3_dilation=d(x), ``in → out`` channels.

    A channel adapter that runs before TPAVI (AVSBench's ``conv1..4``); the MAC counter
    reports it as ``neck``, apart from the interaction proper."""

    flop_scope = "neck"

    def __init__(self, inp: int, out: int, dilations=NECK_DILATIONS):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(inp, out, 3, padding=d, dilation=d) for d in dilations)
        for conv in self.convs:
            nn.init.normal_(conv.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class Affinity(nn.Module):
    """``y = (θᵀφ / N)·g`` over the N = T·H·W positions of each clip.

    Inputs are ``(B, C', N)``; the (B, N, N) matrix is materialised. ``flop_scope`` tells the
    MAC counter (``edgeavs.model.flops``) that this work is pairwise in positions.
    """

    flop_scope = "pairwise"

    @staticmethod
    def matrix(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``f[b, i, j] = θ_i · φ_j / N``: ``(B, N, N)``."""
        return torch.matmul(theta.transpose(1, 2), phi) / theta.shape[-1]

    def forward(self, theta: torch.Tensor, phi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        f = self.matrix(theta, phi)
        return torch.matmul(f, g.transpose(1, 2)).transpose(1, 2)  # (B, C', N)


def to_clips(x: torch.Tensor, t: int) -> torch.Tensor:
    """``(B·T, C, H, W) -> (B, C, T·H·W)``, positions ordered (t, h, w)."""
    bt, c, h, w = x.shape
    return x.reshape(bt // t, t, c, h * w).permute(0, 2, 1, 3).reshape(bt // t, c, t * h * w)


def from_clips(y: torch.Tensor, t: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`to_clips`."""
    b, c, _ = y.shape
    return y.reshape(b, c, t, h * w).permute(0, 2, 1, 3).reshape(b * t, c, h, w)


class TPAVIBlock(nn.Module):
    """One TPAVI block on a 256-channel level (``mode='dot'``, BN in ``W_z``, LayerNorm)."""

    def __init__(self, audio_dim: int, channels: int = 256, inter: int = 128):
        super().__init__()
        self.align_channel = nn.Linear(audio_dim, channels)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.W_z = nn.Sequential(nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W_z[1].weight)
        nn.init.zeros_(self.W_z[1].bias)
        self.norm = nn.LayerNorm(channels)
        self.affinity = Affinity()

    def embed(self, x: torch.Tensor, a0: torch.Tensor, t: int):
        """``θ(x)``, ``φ(audio)`` broadcast to every position, ``g(x)``, each ``(B, C', T·H·W)``,
        and the projected audio ``(B·T, 256)``."""
        h, w = x.shape[2:]
        audio = self.align_channel(a0.flatten(1))
        phi = self.phi(audio[:, :, None, None]).expand(-1, -1, h, w)
        return (to_clips(self.theta(x), t), to_clips(phi, t), to_clips(self.g(x), t), audio)

    def forward(self, x: torch.Tensor, a0: torch.Tensor, t: int = 1):
        h, w = x.shape[2:]
        theta, phi, g, audio = self.embed(x, a0, t)
        y = from_clips(self.affinity(theta, phi, g), t, h, w)
        z = self.W_z(y) + x
        z = self.norm(z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return z, audio


class TPAVIFusion(nn.Module):
    """Neck to 256 channels, then TPAVI at every level. Outputs a 256-channel pyramid."""

    def __init__(self, audio_dim: int, channels: tuple[int, ...], width: int = 256, inter: int = 128):
        super().__init__()
        self.neck = nn.ModuleList(DilatedNeck(c, width) for c in channels)
        self.tpavi = nn.ModuleList(TPAVIBlock(audio_dim, width, inter) for _ in channels)
        self.out_channels = (width,) * len(channels)

    def forward(self, pyramid: list[torch.Tensor], a0: torch.Tensor, t: int = 1):
        """``(v_enc, a_enc, v_dec, a_hat)``: the neck outputs, the projected audio per level,
        the TPAVI outputs (what the head reads) and ``None`` (TPAVI has no audio path back)."""
        v_enc = [neck(v) for neck, v in zip(self.neck, pyramid)]
        v_dec, a_enc = [], []
        for block, v in zip(self.tpavi, v_enc):
            z, audio = block(v, a0, t)
            v_dec.append(z)
            a_enc.append(audio[:, :, None, None])
        return v_enc, a_enc, v_dec, None
