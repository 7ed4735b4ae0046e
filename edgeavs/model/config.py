"""LightAVSeg variants as data: one table, one builder (see ``edgeavs.model.build_model``).

Numbers are SPEC §2 (SeaFormer stage and transformer tables), §3 (PANNs MobileNetV2) and
§4 (LightHead channels). A variant is a frozen dataclass; nothing else in the model code
branches on the variant name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Block = tuple[int, int, int, int]  # (kernel, expand, out_channels, stride)


@dataclass(frozen=True)
class SeaFormerConfig:
    """SeaFormer backbone: inverted-residual stages + squeeze-enhanced axial transformers."""

    stages: tuple[tuple[Block, ...], ...]
    num_heads: int
    depths: tuple[int, ...]
    emb_dims: tuple[int, ...]
    key_dims: tuple[int, ...]
    mlp_ratios: tuple[int, ...]
    attn_ratio: int = 2
    drop_path_rate: float = 0.1

    @property
    def stem_channels(self) -> int:
        return self.stages[0][0][2]

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of smb1..smbN."""
        return tuple(stage[-1][2] for stage in self.stages)

    @property
    def transformer_stages(self) -> tuple[int, ...]:
        """0-based indices of the smb stages followed by a transformer stage."""
        n, t = len(self.stages), len(self.depths)
        return tuple(range(n - t, n))

    @property
    def pyramid_stages(self) -> tuple[int, ...]:
        """0-based smb stage indices whose (post-transformer) output is a pyramid level."""
        return (1,) + self.transformer_stages

    @property
    def pyramid_channels(self) -> tuple[int, ...]:
        ch = self.stage_channels
        return tuple(ch[i] for i in self.pyramid_stages)


@dataclass(frozen=True)
class HeadConfig:
    """SeaFormer LightHead (top-down h-sigmoid fusion) with a 1-channel classifier."""

    channels: int
    embed_dims: tuple[int, ...]
    dropout: float = 0.1


@dataclass(frozen=True)
class AudioConfig:
    """PANNs MobileNetV2 (AudioSet) and its conv-STFT log-mel front end (SPEC §3)."""

    sample_rate: int = 32000
    n_fft: int = 1024
    hop: int = 320
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    # [t, c, n, s] inverted-residual settings.
    blocks: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
        (6, 96, 3, 2), (6, 160, 3, 1), (6, 320, 1, 1),
    )
    first_channels: int = 32
    last_channels: int = 1280
    embed_dim: int = 1024  # C_a: A_0 is the fc1 embedding (SPEC §3, ours)


@dataclass(frozen=True)
class VariantConfig:
    name: str
    visual: SeaFormerConfig
    head: HeadConfig
    audio: AudioConfig = field(default_factory=AudioConfig)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this.

        16 admits 720p (720 x 1280). At multiples of 32 the stride-8/16/32 levels are exact
        (224 -> 28, 14, 7); otherwise the stride-32 level rounds up (720 -> 45 -> 23) the way
        every later stride-2 stage already does (7 -> 4 at 224), identically in PyTorch and in
        the compiled graph (verified at 80 x 112 in the tests).
        """
        return 16


_T = SeaFormerConfig(
    stages=(
        ((3, 1, 16, 1), (3, 4, 16, 2), (3, 3, 16, 1)),
        ((5, 3, 32, 2), (5, 3, 32, 1)),
        ((3, 3, 64, 2), (3, 3, 64, 1)),
        ((5, 3, 128, 2),),
        ((3, 6, 160, 2),),
    ),
    num_heads=4, depths=(2, 2), emb_dims=(128, 160), key_dims=(16, 24), mlp_ratios=(2, 4),
)
_S = SeaFormerConfig(
    stages=(
        ((3, 1, 16, 1), (3, 4, 24, 2), (3, 3, 24, 1)),
        ((5, 3, 48, 2), (5, 3, 48, 1)),
        ((3, 3, 96, 2), (3, 3, 96, 1)),
        ((5, 4, 160, 2),),
        ((3, 6, 192, 2),),
    ),
    num_heads=6, depths=(3, 3), emb_dims=(160, 192), key_dims=(16, 24), mlp_ratios=(2, 4),
)
_B = SeaFormerConfig(
    stages=(
        ((3, 1, 16, 1), (3, 4, 32, 2), (3, 3, 32, 1)),
        ((5, 3, 64, 2), (5, 3, 64, 1)),
        ((3, 3, 128, 2), (3, 3, 128, 1)),
        ((5, 4, 192, 2),),
        ((3, 6, 256, 2),),
    ),
    num_heads=8, depths=(4, 4), emb_dims=(192, 256), key_dims=(16, 24), mlp_ratios=(2, 4),
)
_L = SeaFormerConfig(
    stages=(
        ((3, 3, 32, 1), (3, 4, 64, 2), (3, 4, 64, 1)),
        ((5, 4, 128, 2), (5, 4, 128, 1)),
        ((3, 4, 192, 2), (3, 4, 192, 1)),
        ((5, 4, 256, 2),),
        ((3, 6, 320, 2),),
    ),
    num_heads=8, depths=(3, 3, 3), emb_dims=(192, 256, 320), key_dims=(16, 20, 24),
    mlp_ratios=(2, 4, 6),
)

VARIANTS: dict[str, VariantConfig] = {
    "tiny": VariantConfig("tiny", _T, HeadConfig(96, (64, 96))),
    "small": VariantConfig("small", _S, HeadConfig(128, (96, 128))),
    "base": VariantConfig("base", _B, HeadConfig(160, (128, 160))),
    "large": VariantConfig("large", _L, HeadConfig(192, (128, 160, 192))),
}

# Audio-visual interactions build_model accepts: ours (SPEC §4) and the SPEC §9 baselines.
FUSIONS = ("lightavseg", "tpavi", "avsegformer")

# Short names accepted everywhere a variant is named.
ALIASES = {"t": "tiny", "s": "small", "b": "base", "l": "large"}


def get_variant(name: str) -> VariantConfig:
    from edgeavs.errors import EdgeAVSError

    key = ALIASES.get(name.lower(), name.lower())
    if key not in VARIANTS:
        raise EdgeAVSError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return VARIANTS[key]
