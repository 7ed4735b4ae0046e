"""``edgeavs train``: train LightAVSeg on AVSBench S4/MS3 (or the synthetic demo set)."""

from __future__ import annotations

import json

import click

from edgeavs.commands.options import SIZE_MULTIPLE, fusion_option, variant_option

DEFAULTS = {"epochs": 60, "batch_size": 8, "lr": 1e-4, "weight_decay": 0.01, "msa_weight": 0.5, "size": 224,
            "seed": 0}
"""edgeavs.train.RUN_DEFAULTS's values, shown by --help (that module imports torch; a test keeps them equal).
An option left at its default reaches TrainConfig as None, "not given": a new run takes the default,
--resume the run's own value."""


def _given(ctx, name: str, value):
    from click.core import ParameterSource

    return None if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None) else value


@click.command(short_help="Train LightAVSeg on AVSBench or a synthetic set.")
@click.option("--data", required=True, type=click.Path(path_type=str), metavar="DIR",
              help="AVSBench root (or a folder written by `edgeavs data synth`).")
@click.option("--task", required=True, type=click.Choice(["s4", "ms3"]), help="AVSBench subset.")
@variant_option(help="Model size; required for a new run (--resume: the run's).")
@fusion_option(note=". Default: lightavseg (--resume: the run's).")
@click.option("-o", "--out", "run_dir", required=True, type=click.Path(path_type=str), metavar="RUN_DIR",
              help="Run directory: last.pt, best.pt, metrics.jsonl (an existing run needs --resume).")
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULTS["epochs"], show_default=True,
              help="Total epochs; on --resume, raise it to train longer.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULTS["batch_size"], show_default=True,
              help="Clips per step and process, 5 frames each.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS["lr"], show_default=True,
              help="AdamW learning rate.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=DEFAULTS["weight_decay"], show_default=True,
              help="AdamW weight decay.")
@click.option("--msa-weight", type=click.FloatRange(min=0), default=DEFAULTS["msa_weight"], show_default=True,
              help="λ of the multi-scale alignment loss (0 turns it off).")
@click.option("--size", type=click.IntRange(32, 1024), default=DEFAULTS["size"], show_default=True,
              help=f"Frame size in pixels (edgeavs compile needs a multiple of {SIZE_MULTIPLE}).")
@click.option("--seed", type=click.IntRange(min=0), default=DEFAULTS["seed"], show_default=True,
              help="Seed of init, order and drop-path.")
@click.option("--visual-weights", type=click.Path(path_type=str), default=None, metavar="FILE",
              help="Official SeaFormer ImageNet checkpoint for the backbone.")
@click.option("--audio-weights", type=click.Path(path_type=str), default=None, metavar="FILE",
              help="PANNs MobileNetV2 checkpoint for the (frozen) audio encoder.")
@click.option("--resume", is_flag=True,
              help="Continue the run in RUN_DIR from last.pt, with its own settings (options not given keep "
                   "the run's values; --epochs may be raised).")
@click.option("--num-workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Data-loading processes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when there is a GPU, else the CPU.")
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
    """Train LightAVSeg with the LightAVSeg paper's recipe: Dice + BCE + λ·L_msa (the multi-scale
    alignment loss), AdamW, the audio encoder frozen.

    Writes RUN_DIR/last.pt every epoch, RUN_DIR/best.pt (best val M_J) and one line per epoch
    to RUN_DIR/metrics.jsonl. Multi-GPU: torchrun --nproc-per-node K -m cli train ...
    """
    from edgeavs.train import TrainConfig
    from edgeavs.train import train as run_training

    ctx = click.get_current_context()
    epochs, batch_size, lr, weight_decay, msa_weight, size, seed = (
        _given(ctx, name, value) for name, value in (
            ("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("weight_decay", weight_decay),
            ("msa_weight", msa_weight), ("size", size), ("seed", seed)))

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
