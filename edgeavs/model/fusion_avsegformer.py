"""An AVSegFormer-style fusion on our pyramid (SPEC §9): audio queries, a transformer over
the pyramid tokens, and the cross-modal mixer's channel gate.

Facts taken from AVSegFormer (vvvb-github/AVSegFormer, ``AVSegHead``, ``AVSTransformer``,
``CrossModalMixer``, config ``AVSegFormer_*_ms3``); the code is ours:

- each level → 256 channels by a 1×1 conv + GroupNorm(32) (``in_proj``);
- the finest level is the mask-feature level; the coarser levels are flattened into one
  token sequence with a 2-D sine positional encoding (128 features per axis) plus a learned
  per-level embedding;
- queries: the audio embedding projected to 256 and repeated 300 times, plus 300 learned
  query embeddings;
- transformer: 6 encoder layers (self-attention over the tokens, FFN 2048, post-norm),
  6 decoder layers (query self-attention, query→token cross-attention, FFN 2048, post-norm),
  8 heads, GELU;
- mask feature: ``out_conv(lateral(finest) + up(first token level))`` (3×3 conv + GN + ReLU),
  then ``mask + MLP(einsum('bqc,bchw->bqhw', last queries, mask))`` with a 1×1-conv MLP
  300→2048→2048→256;
- cross-modal mixer: one audio query attends over the mask-feature tokens (8 heads); the
  result, projected and passed through a sigmoid, gates the mask feature's channels.

Where we differ, and why:

- AVSegFormer's encoder uses multi-scale *deformable* attention (a custom CUDA op). We use
  dense self-attention over all tokens: SPEC §9's "dense attention" baseline, O(N²) in the
  number of tokens, and deployable with ordinary matmuls.
- AVSegFormer's released head computes the mixer's output and then does not use it; its
  paper applies the mixer to the visual feature. We gate the mask feature with it.
- The outputs (mask feature, then the encoder's token maps) feed the head shared by every
  fusion (LightHead) instead of AVSegFormer's ``fc`` stack, so only the interaction differs.
- Frames are processed independently (as AVSegFormer does): ``t`` is accepted and unused.

``flop_scope`` attributes tell the MAC counter which submodules work on pixel tokens
(``tokens``: linear in N) and which build token×token matrices (``pairwise``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AttentionCore(nn.Module):
    """``softmax(q kᵀ / √d) v`` per head; ``q (B, Lq, C)``, ``k, v (B, Lk, C)``."""

    def __init__(self, heads: int, scope: str):
        super().__init__()
        self.heads = heads
        self.flop_scope = scope

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, lq, c = q.shape
        lk, d = k.shape[1], c // self.heads
        q = q.reshape(b, lq, self.heads, d).transpose(1, 2)
        k = k.reshape(b, lk, self.heads, d).transpose(1, 2)
        v = v.reshape(b, lk, self.heads, d).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * (d ** -0.5), dim=-1)
        return torch.matmul(attn, v).transpose(1, 2).reshape(b, lq, c)


class Attention(nn.Module):
    """Multi-head attention with explicit projections (no fused SDPA: every op is countable
    and exports as plain matmuls). ``query_tokens`` / ``key_tokens`` say whether each side is
    a sequence of pixel tokens; they only label the work for the MAC counter."""

    def __init__(self, dim: int, heads: int, query_tokens: bool, key_tokens: bool,
                 qkv_bias: bool = True):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.out = nn.Linear(dim, dim)
        for lin, tok in ((self.q, query_tokens), (self.out, query_tokens),
                         (self.k, key_tokens), (self.v, key_tokens)):
            if tok:
                lin.flop_scope = "tokens"
        scope = ("pairwise" if query_tokens and key_tokens
                 else "tokens" if query_tokens or key_tokens else "global")
        self.core = AttentionCore(heads, scope)

    def forward(self, q_in: torch.Tensor, k_in: torch.Tensor, v_in: torch.Tensor) -> torch.Tensor:
        return self.out(self.core(self.q(q_in), self.k(k_in), self.v(v_in)))


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.gelu(self.linear1(x)))


class EncoderLayer(nn.Module):
    """Post-norm: ``x = LN(x + SA(x + pos))``, ``x = LN(x + FFN(x))`` over pixel tokens."""

    flop_scope = "tokens"

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = Attention(dim, heads, query_tokens=True, key_tokens=True)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        qk = x + pos
        x = self.norm1(x + self.drop(self.self_attn(qk, qk, x)))
        return self.norm2(x + self.drop(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Query self-attention, query→token cross-attention, FFN; post-norm."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = Attention(dim, heads, query_tokens=False, key_tokens=False)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, query_tokens=False, key_tokens=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn)
        self.norm3 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q = self.norm1(q + self.drop(self.self_attn(q, q, q)))
        q = self.norm2(q + self.drop(self.cross_attn(q, memory, memory)))
        return self.norm3(q + self.drop(self.ffn(q)))


class CrossModalMixer(nn.Module):
    """One audio query attends over the map's tokens; ``sigmoid(proj(·))`` gates channels."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = Attention(dim, heads, query_tokens=False, key_tokens=True, qkv_bias=False)

    def forward(self, x: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        gate = torch.sigmoid(self.attn(audio[:, None, :], tokens, tokens))  # (B, 1, C)
        return x * gate.transpose(1, 2)[:, :, :, None]


def sine_position(h: int, w: int, feats: int, ref: torch.Tensor) -> torch.Tensor:
    """DETR's normalised 2-D sine encoding: ``(1, h·w, 2·feats)``, y features then x."""
    scale, eps = 2 * math.pi, 1e-6
    y = torch.arange(1, h + 1, dtype=ref.dtype, device=ref.device)
    x = torch.arange(1, w + 1, dtype=ref.dtype, device=ref.device)
    y = (y - 0.5) / (h + eps) * scale  # AVSegFormer's mmdet encoding uses offset -0.5
    x = (x - 0.5) / (w + eps) * scale
    # the frequencies depend on ``feats`` alone: a constant (a traced ``arange // 2`` does not
    # import into TVM 0.27, whose floor_divide importer types the 2 as int32 against any dtype)
    dim_t = torch.tensor([10000.0 ** (2 * (i // 2) / feats) for i in range(feats)],
                         dtype=ref.dtype, device=ref.device)

    def enc(v):
        p = v[:, None] / dim_t
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(1)

    py = enc(y)[:, None, :].expand(h, w, feats)
    px = enc(x)[None, :, :].expand(h, w, feats)
    return torch.cat((py, px), dim=2).reshape(1, h * w, 2 * feats)


class TokenPositions(nn.Module):
    """Sine encoding plus a learned per-level embedding, for the concatenated token levels."""

    flop_scope = "tokens"

    def __init__(self, levels: int, dim: int):
        super().__init__()
        self.dim = dim
        self.level_embed = nn.Parameter(torch.randn(levels, dim))

    def forward(self, shapes, ref: torch.Tensor) -> torch.Tensor:
        return torch.cat([sine_position(h, w, self.dim // 2, ref) + self.level_embed[i]
                          for i, (h, w) in enumerate(shapes)], dim=1)


class QueryResponse(nn.Module):
    """``einsum('bqc,bchw->bqhw')``: each query's response at every pixel (linear in N)."""

    flop_scope = "tokens"

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bqc,bchw->bqhw", q, x)


def conv_gn(inp: int, out: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, k, padding=k // 2), nn.GroupNorm(32, out))


class AVSegFormerFusion(nn.Module):
    """Outputs a 256-channel pyramid: the gated mask feature, then the encoder's token maps."""

    def __init__(self, audio_dim: int, channels: tuple[int, ...], dim: int = 256, heads: int = 8,
                 queries: int = 300, enc_layers: int = 6, dec_layers: int = 6, ffn: int = 2048,
                 mlp_hidden: int = 2048, dropout: float = 0.1):
        super().__init__()
        if len(channels) < 2:
            raise ValueError("AVSegFormer fusion needs at least two pyramid levels")
        self.dim = dim
        self.in_proj = nn.ModuleList(conv_gn(c, dim) for c in channels)
        for proj in self.in_proj:
            proj.flop_scope = "neck"  # the channel adapter: counted apart (see flops.py)
        self.pos = TokenPositions(len(channels) - 1, dim)
        self.audio_proj = nn.Linear(audio_dim, dim)
        self.learnable_query = nn.Embedding(queries, dim)
        self.encoder = nn.ModuleList(EncoderLayer(dim, heads, ffn, dropout) for _ in range(enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(dim, heads, ffn, dropout) for _ in range(dec_layers))
        self.lateral_conv = conv_gn(dim, dim)
        self.out_conv = nn.Sequential(conv_gn(dim, dim, 3), nn.ReLU())
        self.mask_mlp = nn.Sequential(nn.Conv2d(queries, mlp_hidden, 1), nn.ReLU(),
                                      nn.Conv2d(mlp_hidden, mlp_hidden, 1), nn.ReLU(),
                                      nn.Conv2d(mlp_hidden, dim, 1))
        self.response = QueryResponse()
        self.mixer = CrossModalMixer(dim, heads)
        self.out_channels = (dim,) * len(channels)
        for p in self.parameters():
            if p.dim() > 1 and p is not self.pos.level_embed:
                nn.init.xavier_uniform_(p)

    def forward(self, pyramid: list[torch.Tensor], a0: torch.Tensor, t: int = 1):
        """``(v_enc, a_enc, v_dec, a_hat)``: the projected levels, ``[audio]`` (the projected
        audio), the output pyramid and ``None`` (no per-level audio state)."""
        v_enc = [proj(v) for proj, v in zip(self.in_proj, pyramid)]
        coarse = v_enc[1:]
        shapes = [v.shape[2:] for v in coarse]
        tokens = torch.cat([v.flatten(2).transpose(1, 2) for v in coarse], dim=1)
        pos = self.pos(shapes, tokens)
        memory = tokens
        for layer in self.encoder:
            memory = layer(memory, pos)

        audio = self.audio_proj(a0.flatten(1))
        q = audio[:, None, :] + self.learnable_query.weight[None]
        for layer in self.decoder:
            q = layer(q, memory)

        maps, start = [], 0
        for h, w in shapes:
            n = h * w
            maps.append(memory[:, start:start + n].transpose(1, 2).reshape(-1, self.dim, h, w))
            start += n
        fine = v_enc[0]
        mask = self.lateral_conv(fine) + F.interpolate(maps[0], size=fine.shape[2:], mode="bilinear",
                                                       align_corners=False)
        mask = self.out_conv(mask)
        mask = mask + self.mask_mlp(self.response(q, mask))
        mask = self.mixer(mask, audio)
        return v_enc, [audio[:, :, None, None]], [mask] + maps, None
