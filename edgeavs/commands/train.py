"""``edgeavs train``: train LightAVSeg on AVSBench S4/MS3 (or the synthetic demo set)."""

from __future__ import annotations

import json

import click

from edgeavs.model.config import FUSIONS

_VARIANT = click.Choice(["tiny", "small", "base", "large"])


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="AVSBench root (or a folder written by `edgeavs data synth`).")
@click.option("--task", required=True, type=click.Choice(["s4", "ms3"]), help="AVSBench subset.")
@click.option("--variant", type=_VARIANT, default=None,
              help="LightAVSeg size; required for a new run.")
@click.option("--fusion", type=click.Choice(list(FUSIONS)), default=None,
              help="Audio-visual interaction: lightavseg (default) or a baseline (tpavi, avsegformer).")
@click.option("-o", "--out", "run_dir", required=True, type=click.Path(path_type=str), metavar="RUN_DIR",
              help="Run directory: last.pt, best.pt, metrics.jsonl.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Total epochs (60); on --resume, raise it to train longer.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Clips per step and process, 5 frames each (8).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="AdamW learning rate (1e-4).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None, help="AdamW weight decay (0.01).")
@click.option("--msa-weight", type=click.FloatRange(min=0), default=None,
              help="λ of the multi-scale alignment loss (0.5; 0 turns it off).")
@click.option("--size", type=click.IntRange(32, 1024), default=None, help="Frame size in pixels (224).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of init, order and drop-path (0).")
@click.option("--visual-weights", type=click.Path(path_type=str), default=None,
              help="Official SeaFormer ImageNet checkpoint for the backbone.")
@click.option("--audio-weights", type=click.Path(path_type=str), default=None,
              help="PANNs MobileNetV2 checkpoint for the (frozen) audio encoder.")
@click.option("--resume", is_flag=True, help="Continue the run in RUN_DIR from last.pt.")
@click.option("--num-workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Data-loading processes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
              show_default=True, help="auto: bf16 (or fp16) autocast on CUDA, fp32 on the CPU.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many optimizer steps in all (resumable).")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many minutes of training (resumable).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train(data, task, variant, fusion, run_dir, epochs, batch_size, lr, weight_decay, msa_weight, size, seed,
          visual_weights, audio_weights, resume, num_workers, device, precision, max_steps,
          time_budget, progress, as_json):
    """Train LightAVSeg (SPEC §5): Dice + BCE + λ·L_msa, AdamW, frozen audio encoder.

    Writes RUN_DIR/last.pt every epoch, RUN_DIR/best.pt (best val M_J) and one line per epoch
    to RUN_DIR/metrics.jsonl. Multi-GPU: torchrun --nproc-per-node K -m cli train ...
    """
    from edgeavs.train import TrainConfig
    from edgeavs.train import train as run_training

    cfg = TrainConfig(data=data, out=run_dir, task=task, variant=variant, fusion=fusion, epochs=epochs,
                      batch_size=batch_size, lr=lr, weight_decay=weight_decay, msa_weight=msa_weight,
                      size=size, seed=seed, visual_weights=visual_weights, audio_weights=audio_weights,
                      resume=resume, num_workers=num_workers, device=device, precision=precision,
                      max_steps=max_steps, time_budget_s=None if time_budget is None else time_budget * 60,
                      progress=progress)
    summary = run_training(cfg)
    if summary["rank"] != 0:
        return  # under torchrun, rank 0 reports
    if as_json:
        click.echo(json.dumps(summary))
        return
    best = summary["best_M_J"]
    click.echo(f"{summary['run_dir']}: {summary['epochs_done']} epochs, {summary['steps']} steps"
               + (f", best val M_J {best:.4f} (epoch {summary['best_epoch']})" if best is not None else ""))
