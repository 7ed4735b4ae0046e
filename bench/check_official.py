"""Check edgeavs's backbone and audio encoder against the official implementations.

Needs local clones of the official repositories (not downloaded by this script):

    python bench/check_official.py --seaformer-repo PATH/SeaFormer --panns-repo PATH/audioset_tagging_cnn

It imports their model code from those clones (``seaformer-cls/seaformer.py`` and
``pytorch/models.py``), randomises the BN statistics so every branch matters, copies the
official modules' weights into ours through the same key mapping the checkpoint loaders
use, and prints rel-L2 per pyramid level (SeaFormer-T/S/B/L) and on A_0 (PANNs). mmcv and
timm, which the official SeaFormer file imports only for BN construction and model
registration, are replaced by minimal stand-ins. SPEC §10 asks for rel-L2 ≤ 1e-4.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch
from torch import nn


def _stub_imports():
    cnn = types.ModuleType("mmcv.cnn")
    cnn.build_norm_layer = lambda cfg, n: ("bn", nn.BatchNorm2d(n))
    cnn.ConvModule = None
    registry = types.ModuleType("timm.models.registry")
    registry.register_model = lambda f: f
    utils = types.ModuleType("pytorch_utils")
    utils.do_mixup = utils.interpolate = utils.pad_framewise_output = None
    sys.modules.update({"mmcv": types.ModuleType("mmcv"), "mmcv.cnn": cnn,
                        "timm": types.ModuleType("timm"), "timm.models": types.ModuleType("timm.models"),
                        "timm.models.registry": registry, "pytorch_utils": utils})


def _randomise_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def _rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def check_seaformer(repo: Path) -> dict:
    import edgeavs
    from edgeavs.model.weights import visual_state_dict_from_official

    sys.path.insert(0, str(repo / "seaformer-cls"))
    import seaformer as official

    out = {}
    for variant, factory in (("tiny", "SeaFormer_T"), ("small", "SeaFormer_S"),
                             ("base", "SeaFormer_B"), ("large", "SeaFormer_L")):
        ref = getattr(official, factory)().eval()
        _randomise_bn(ref)
        ours = edgeavs.build_model(variant, seed=0).eval()
        ours.visual.load_state_dict(visual_state_dict_from_official(ref.state_dict()), strict=True)
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            got = ours.visual(x)
            # The official classification model's stages, read as the segmentation pyramid:
            # the smb2 output plus each transformer stage's output (SPEC §2).
            expected, y = [], x
            n_smb, n_trans = len(ref.cfgs), len(ref.depths)
            for i in range(n_smb):
                y = getattr(ref, f"smb{i + 1}")(y)
                if i == 1:
                    expected.append(y)
                if n_trans + i >= n_smb:
                    y = getattr(ref, f"trans{i + n_trans - n_smb + 1}")(y)
                    expected.append(y)
        out[variant] = [_rel(a, b) for a, b in zip(got, expected)]
    return out


def check_panns(repo: Path) -> float:
    import edgeavs
    from edgeavs.model.weights import audio_state_dict_from_official

    sys.path.insert(0, str(repo / "pytorch"))
    import models as official

    ref = official.MobileNetV2(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                               fmin=50, fmax=14000, classes_num=527).eval()
    _randomise_bn(ref)
    ours = edgeavs.build_model("tiny", seed=0).eval()
    ours.audio.load_state_dict(audio_state_dict_from_official(ref.state_dict()), strict=True)
    wave = torch.randn(2, 32000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return _rel(ours.audio(wave), ref(wave)["embedding"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seaformer-repo", type=Path, required=True)
    ap.add_argument("--panns-repo", type=Path, required=True)
    args = ap.parse_args()
    _stub_imports()
    result = {"seaformer_rel_l2_per_level": check_seaformer(args.seaformer_repo),
              "panns_a0_rel_l2": check_panns(args.panns_repo)}
    print(json.dumps(result, indent=1))
    worst = max([max(v) for v in result["seaformer_rel_l2_per_level"].values()] + [result["panns_a0_rel_l2"]])
    print(f"worst rel-L2 {worst:.2e} ({'PASS' if worst <= 1e-4 else 'FAIL'}: SPEC §10 asks ≤ 1e-4)")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
