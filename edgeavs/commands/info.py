"""``edgeavs info``: parameters per part and MACs at 224 for a LightAVSeg variant."""

from __future__ import annotations

import json

import click

from edgeavs.commands.options import fusion_option, variant_option


def _fmt(n: int) -> str:
    return f"{n:,} ({n / 1e6:.2f}M)"


@click.command(short_help="Parameters per part and MACs of a LightAVSeg variant.")
@variant_option("--variant", "-v", default="large", show_default=True, help="Model size.")
@fusion_option(default="lightavseg", show_default=True, note=".")
@click.option("--visual-weights", type=click.Path(dir_okay=False),
              help="Official SeaFormer ImageNet checkpoint to load (strictly).")
@click.option("--audio-weights", type=click.Path(dir_okay=False),
              help="Official PANNs MobileNetV2_mAP=0.383.pth to load (strictly).")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="An edgeavs checkpoint (its variant must match --variant).")
@click.option("--embedded", is_flag=True,
              help="Instead: how the checkpoint embedded in edgeavs (the demo's) was made and what it scores.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(variant, fusion, visual_weights, audio_weights, checkpoint, embedded, as_json):
    """Parameter counts per part and MACs at 224×224 (torch's flop counter)."""
    if embedded:
        return _embedded(as_json)
    from edgeavs.model import build_model, load_audio_weights, load_checkpoint, load_visual_weights
    from edgeavs.model.summary import summary

    if checkpoint:
        model = load_checkpoint(checkpoint, variant=variant)
    else:
        model = build_model(variant, fusion=fusion, seed=0)
    if visual_weights:
        load_visual_weights(model, visual_weights)
    if audio_weights:
        load_audio_weights(model, audio_weights)
    s = summary(model)
    if as_json:
        click.echo(json.dumps(s))
        return
    p = s["params"]
    click.echo(f"LightAVSeg-{s['variant']} (fusion: {s['fusion']})")
    click.echo(f"  visual backbone (SeaFormer)   {_fmt(p['visual'])}")
    click.echo(f"  audio encoder (PANNs MNetV2)  {_fmt(p['audio'])}")
    click.echo(f"    learned weights             {_fmt(p['audio_learned'])}")
    click.echo(f"    conv-STFT + mel (fixed)     {_fmt(p['audio_stft_mel'])}")
    click.echo(f"  interaction (enc + dec)       {_fmt(p['interaction'])}")
    click.echo(f"  head                          {_fmt(p['head'])}")
    click.echo(f"  total                         {_fmt(p['total'])}")
    click.echo(f"  trainable                     {_fmt(p['trainable'])}")
    click.echo(f"MACs at 224x224: {s['macs_224'] / 1e9:.3f} G "
               f"(visual {s['macs']['visual'] / 1e9:.3f}, audio {s['macs']['audio'] / 1e9:.3f}, "
               f"interaction {s['macs']['interaction'] / 1e6:.2f} M, head {s['macs']['head'] / 1e9:.3f})")


def _embedded(as_json: bool) -> None:
    from edgeavs.model import default

    rec = default.recipe()
    npz = default.DEFAULT_DIR / f"{rec['name']}.npz"
    if as_json:
        click.echo(json.dumps({**rec, "npz_bytes": npz.stat().st_size}))
        return
    t, test, val = rec["training"], rec["scores"]["test"], rec["scores"]["val"]
    click.echo(f"embedded checkpoint {rec['name']}: LightAVSeg-{rec['variant']} ({rec['fusion']}), "
               f"{rec['stored_parameters']:,} trained parameters stored as float16 "
               f"({npz.stat().st_size / 1e6:.2f} MB); the frozen audio encoder is the seed-{rec['seed']} "
               f"random init, rebuilt and checked against its sha256")
    click.echo(f"  trained on synthetic {t['task'].upper()} clips at {t['size']}x{t['size']}, "
               f"{t['steps']} steps (best epoch {t['best_epoch']}), from random weights, on {t['cpu']}:")
    for cmd in t["commands"]:
        click.echo(f"    {cmd}")
    if t.get("note"):
        click.echo(f"  note: {t['note']}")
    click.echo(f"  stored weights: test M_J {test['M_J']:.4f}  M_F {test['M_F']:.4f} "
               f"({test['frames']} frames); val M_J {val['M_J']:.4f}  M_F {val['M_F']:.4f}")
