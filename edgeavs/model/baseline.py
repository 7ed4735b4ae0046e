"""The comparison models of SPEC §9: LightAVSeg's backbone, audio encoder and head around
another audio-visual interaction.

Only the interaction differs from :class:`~edgeavs.model.lightavseg.LightAVSeg`:
``visual`` (SeaFormer), ``audio`` (PANNs, frozen) and ``head`` (LightHead, built for the
channels the interaction outputs) are the same modules. The interaction is a pluggable
module (``FUSION_MODULES``) called as ``interaction(pyramid, a0, t) -> (v_enc, a_enc, v_dec,
a_hat)``, the tuple :meth:`LightAVSeg.run_interaction` returns; ``a_hat`` is ``None`` (the
baselines have no per-level audio state, so L_msa does not apply to them). Unlike LightAVSeg,
the baselines read the plain backbone pyramid: nothing is injected into the backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeavs.model.config import VariantConfig
from edgeavs.model.fusion_avsegformer import AVSegFormerFusion
from edgeavs.model.fusion_tpavi import TPAVIFusion
from edgeavs.model.lightavseg import AVSegBase, LightHead

FUSION_MODULES = {"tpavi": TPAVIFusion, "avsegformer": AVSegFormerFusion}


class BaselineAVSeg(AVSegBase):
    """``(frames (N,3,H,W), waveform (N,32000)) -> mask logits (N,1,H,W)``.

    ``frames_per_clip`` (T, default 1) is how many consecutive frames of the batch form one
    clip. TPAVI's affinity spans all T·H·W positions of a clip, so set it to 5 when training
    or evaluating on AVSBench clips laid out ``(B·T, ...)``; the batch must then be a multiple
    of T. At 1 (single-frame inference, the deployed graph) every frame is its own clip.
    AVSegFormer processes frames independently and ignores it.

    ``return_aux=True`` returns the same dict keys as LightAVSeg (``logits, pyramid, v_enc,
    a_enc, v_dec, a_hat``), with ``a_hat`` ``None``.
    """

    interaction_parts = ("interaction",)

    def __init__(self, cfg: VariantConfig, fusion: str):
        super().__init__(cfg)
        self.frames_per_clip = 1
        self.interaction = FUSION_MODULES[fusion](cfg.audio.embed_dim, cfg.visual.pyramid_channels)
        self.head = LightHead(self.interaction.out_channels, cfg.head)

    def run_interaction(self, pyramid: list[torch.Tensor], a0: torch.Tensor):
        """The interaction alone on given backbone outputs: ``(v_enc, a_enc, v_dec, a_hat)``."""
        t = int(self.frames_per_clip)
        if t < 1 or pyramid[0].shape[0] % t:
            from edgeavs.errors import EdgeAVSError

            raise EdgeAVSError(f"batch of {pyramid[0].shape[0]} frames is not a whole number of "
                               f"clips of frames_per_clip={t}")
        return self.interaction(pyramid, a0, t)

    def forward(self, frames: torch.Tensor, waveform: torch.Tensor, return_aux: bool = False):
        a0 = self.audio(waveform)[:, :, None, None]
        pyramid = self.visual(frames)
        v_enc, a_enc, v_dec, a_hat = self.run_interaction(pyramid, a0)
        logits = self.head(v_dec)
        logits = F.interpolate(logits, size=frames.shape[2:], mode="bilinear", align_corners=False)
        if not return_aux:
            return logits
        return {"logits": logits, "pyramid": pyramid, "v_enc": v_enc, "a_enc": a_enc,
                "v_dec": v_dec, "a_hat": a_hat}
