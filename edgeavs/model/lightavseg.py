"""LightAVSeg: the reciprocal audio-visual encoder, the fusion decoder with its recursive
audio path, and the LightHead-style head (SPEC §4). Every interaction op is a 1×1 conv on
a 1×1 map, an h-sigmoid gate or a broadcast add: O(N) in pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeavs.model.config import HeadConfig, VariantConfig
from edgeavs.model.layers import global_max_pool, h_sigmoid
from edgeavs.model.panns import PANNsMobileNetV2
from edgeavs.model.seaformer import SeaFormer


def conv1x1(inp: int, out: int) -> nn.Conv2d:
    return nn.Conv2d(inp, out, 1, bias=True)


class AudioGate(nn.Module):
    """``audio ⊙ σ_h(Conv1x1(P(V)))``: the gate shared by the encoder and the decoder."""

    def __init__(self, channels: int):
        super().__init__()
        self.gate = conv1x1(channels, channels)

    def forward(self, audio: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return audio * h_sigmoid(self.gate(global_max_pool(v)))


class EncoderLevel(nn.Module):
    """``A_i = Conv1x1(A_{i-1}) ⊙ σ_h(Conv1x1(P(V_i)))``, ``Ṽ_i = V_i + B(A_i)``."""

    def __init__(self, in_audio: int, channels: int):
        super().__init__()
        self.audio_proj = conv1x1(in_audio, channels)
        self.gate = AudioGate(channels)

    def forward(self, v: torch.Tensor, a_prev: torch.Tensor):
        a = self.gate(self.audio_proj(a_prev), v)
        return v + a, a


class DecoderLevel(nn.Module):
    """``A* = ReLU(Conv1x1([Â_{i+1}; A_i]))``, ``Â_i = A* ⊙ σ_h(Conv1x1(P(Ṽ_i)))``,
    ``Ṽ_i^dec = Ṽ_i^enc + B(Conv1x1(Â_i))``."""

    def __init__(self, in_audio: int, channels: int):
        super().__init__()
        self.audio_fuse = conv1x1(in_audio + channels, channels)
        self.gate = AudioGate(channels)
        self.inject = conv1x1(channels, channels)

    def forward(self, v_enc: torch.Tensor, a_hat_next: torch.Tensor, a_enc: torch.Tensor):
        a_star = F.relu(self.audio_fuse(torch.cat([a_hat_next, a_enc], dim=1)))
        a_hat = self.gate(a_star, v_enc)
        return v_enc + self.inject(a_hat), a_hat


class ReciprocalEncoder(nn.Module):
    def __init__(self, audio_dim: int, channels: tuple[int, ...]):
        super().__init__()
        ins = (audio_dim,) + tuple(channels[:-1])
        self.levels = nn.ModuleList(EncoderLevel(i, c) for i, c in zip(ins, channels))


class FusionDecoder(nn.Module):
    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        # Level i receives Â_{i+1} (channels[i+1]); the coarsest receives A_S itself.
        ins = tuple(channels[1:]) + (channels[-1],)
        self.levels = nn.ModuleList(DecoderLevel(i, c) for i, c in zip(ins, channels))

    def forward(self, v_enc: list[torch.Tensor], a_enc: list[torch.Tensor]):
        n = len(v_enc)
        v_dec, a_hat = [None] * n, [None] * n
        a_next = a_enc[-1]
        for i in reversed(range(n)):
            v_dec[i], a_hat[i] = self.levels[i](v_enc[i], a_next, a_enc[i])
            a_next = a_hat[i]
        return v_dec, a_hat


class ConvBN(nn.Module):
    """1×1 conv (no bias) + BN, as the LightHead's ConvModule without activation."""

    def __init__(self, inp: int, out: int, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, 1, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class FusionBlock(nn.Module):
    """``ConvBN(x_fine) × up(σ_h(ConvBN(x_coarse)))``: SeaFormer's LightHead fusion."""

    def __init__(self, fine: int, coarse: int, embed: int):
        super().__init__()
        self.local_embedding = ConvBN(fine, embed)
        self.global_act = ConvBN(coarse, embed)

    def forward(self, x_fine: torch.Tensor, x_coarse: torch.Tensor) -> torch.Tensor:
        local = self.local_embedding(x_fine)
        act = F.interpolate(h_sigmoid(self.global_act(x_coarse)), size=x_fine.shape[2:],
                            mode="bilinear", align_corners=False)
        return local * act


class LightHead(nn.Module):
    """Top-down fusion over the pyramid, depthwise 1×1 ConvBN + ReLU, 1×1 conv to 1 channel."""

    def __init__(self, in_channels: tuple[int, ...], cfg: HeadConfig):
        super().__init__()
        self.fuse = nn.ModuleList()
        prev = in_channels[0]
        for i, embed in enumerate(cfg.embed_dims):
            self.fuse.append(FusionBlock(prev, in_channels[i + 1], embed))
            prev = embed
        self.linear_fuse = ConvBN(cfg.channels, cfg.channels, groups=cfg.channels)
        self.dropout = nn.Dropout2d(cfg.dropout)
        self.cls_seg = nn.Conv2d(cfg.channels, 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[0]
        for i, block in enumerate(self.fuse):
            x = block(x, feats[i + 1])
        x = F.relu(self.linear_fuse(x))
        return self.cls_seg(self.dropout(x))


class AVSegBase(nn.Module):
    """What every fusion shares: the SeaFormer backbone and the frozen PANNs audio encoder
    (``requires_grad=False``, kept in eval mode by :meth:`train` so BN statistics stay fixed)."""

    def __init__(self, cfg: VariantConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = SeaFormer(cfg.visual)
        self.audio = PANNsMobileNetV2(cfg.audio)
        self.audio.requires_grad_(False)
        self.audio.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.audio.eval()  # frozen: BN statistics stay fixed
        return self


class LightAVSeg(AVSegBase):
    """``(frames (N,3,H,W), waveform (N,32000)) -> mask logits (N,1,H,W)``.

    ``return_aux=True`` (training, verification) returns a dict with the logits and the
    per-level tensors: ``pyramid`` (backbone outputs V_i, before injection), ``v_enc``,
    ``a_enc``, ``v_dec`` and ``a_hat`` (what L_msa needs). The plain call returns only the
    logits, so an exported inference graph has no alignment-loss branch.
    """

    # Frame-wise: clip length T changes nothing here (the TPAVI baseline reads it).
    frames_per_clip = 1
    # The modules that make up the interaction (parameter and MAC counts per part).
    interaction_parts = ("encoder", "decoder")

    def __init__(self, cfg: VariantConfig):
        super().__init__(cfg)
        channels = cfg.visual.pyramid_channels
        self.encoder = ReciprocalEncoder(cfg.audio.embed_dim, channels)
        self.decoder = FusionDecoder(channels)
        self.head = LightHead(channels, cfg.head)

    def run_interaction(self, pyramid: list[torch.Tensor], a0: torch.Tensor):
        """The interaction alone on given backbone outputs: ``(v_enc, a_enc, v_dec, a_hat)``.

        Equals what :meth:`forward` computes when ``pyramid`` holds the backbone outputs
        that forward saw (used to count the interaction's cost in isolation).
        """
        v_enc, a_enc, a = [], [], a0
        for v, level in zip(pyramid, self.encoder.levels):
            v, a = level(v, a)
            v_enc.append(v)
            a_enc.append(a)
        v_dec, a_hat = self.decoder(v_enc, a_enc)
        return v_enc, a_enc, v_dec, a_hat

    def forward(self, frames: torch.Tensor, waveform: torch.Tensor, return_aux: bool = False):
        a = self.audio(waveform)[:, :, None, None]
        x = frames
        pyramid, v_enc, a_enc = [], [], []
        for i, level in enumerate(self.encoder.levels):
            v = self.visual.run_level(i, x)
            x, a = level(v, a)
            pyramid.append(v)
            v_enc.append(x)
            a_enc.append(a)
        v_dec, a_hat = self.decoder(v_enc, a_enc)
        logits = self.head(v_dec)
        logits = F.interpolate(logits, size=frames.shape[2:], mode="bilinear", align_corners=False)
        if not return_aux:
            return logits
        return {"logits": logits, "pyramid": pyramid, "v_enc": v_enc, "a_enc": a_enc,
                "v_dec": v_dec, "a_hat": a_hat}
