"""``edgeavs evaluate``: AVSBench M_J and M_F of a checkpoint (PyTorch) or of a compiled artifact on a
split."""

from __future__ import annotations

import json

import click

from edgeavs.commands.options import overwrite_option


@click.command(short_help="M_J and M_F of a checkpoint or a compiled artifact on an AVSBench split.")
@click.option("--data", required=True, type=click.Path(path_type=str), metavar="DIR",
              help="AVSBench root (or a folder written by `edgeavs data synth`).")
@click.option("--task", required=True, type=click.Choice(["s4", "ms3"]), help="AVSBench subset.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="The split to evaluate.")
@click.option("--checkpoint", type=click.Path(path_type=str), metavar="FILE", default=None,
              help="An edgeavs checkpoint (train's best.pt or last.pt), run in PyTorch.")
@click.option("--artifact", type=click.Path(path_type=str), metavar="DIR", default=None,
              help="A compiled artifact (`edgeavs compile`, host-linked, any precision) instead of "
                   "--checkpoint: the metrics of what you ship, run in a torch-free process.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="--artifact: TVM threads (default: the CPUs this process may use).")
@click.option("--shuffle-audio", is_flag=True,
              help="Give every clip another clip's audio (fixed-seed derangement): the no-sound control.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the --shuffle-audio derangement.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Clips per batch.")
@click.option("--size", type=click.IntRange(32, 1024), default=None,
              help="Frame size in pixels (default: the size the checkpoint was trained at, else 224).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N clips.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when there is a GPU, else the CPU.")
@click.option("--num-workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Data-loading processes.")
@click.option("--dump-inputs", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Also write the first --dump-clips clips' model inputs (frames, waveform) to this "
                   ".npz, for `edgeavs verify --inputs`.")
@click.option("--dump-clips", type=click.IntRange(min=1), default=1, show_default=True,
              help="Clips (5 frames each) for --dump-inputs.")
@overwrite_option("the --dump-inputs file")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def evaluate(data, task, split, checkpoint, artifact, threads, shuffle_audio, seed, batch_size, size, limit,
             device, num_workers, dump_inputs, dump_clips, overwrite, as_json):
    """Evaluate --checkpoint (PyTorch) or --artifact (the compiled build) on a --split: M_J (mean
    IoU) and M_F (F-measure, β² = 0.3) as AVSBench computes them."""
    from edgeavs.io.atomic import check_writable

    if (checkpoint is None) == (artifact is None):
        raise click.UsageError("give one of --checkpoint (PyTorch) or --artifact (a compiled build)")
    if artifact is None and threads is not None:
        raise click.UsageError("--threads applies to --artifact")
    if artifact is not None and device != "auto":
        raise click.UsageError("--device applies to --checkpoint (an artifact runs on its target's CPU)")
    if dump_inputs is not None:
        check_writable(dump_inputs, "--dump-inputs", overwrite=overwrite)
    common = dict(split=split, shuffle_audio=shuffle_audio, seed=seed, batch_size=batch_size, size=size,
                  num_workers=num_workers, limit=limit, dump_path=dump_inputs, dump_clips=dump_clips,
                  progress=not as_json)
    if artifact is not None:
        from edgeavs.artifact_worker import ArtifactProcess
        from edgeavs.evaluate import evaluate_compiled

        with ArtifactProcess(artifact, threads=threads) as predictor:
            result = evaluate_compiled(data, task, predictor, **common)
    else:
        from edgeavs.evaluate import evaluate as run_evaluation

        result = run_evaluation(data, task, checkpoint, device=device, **common)
    if as_json:
        click.echo(json.dumps(result))
        return
    what = f" ({result['precision']} artifact)" if artifact is not None else ""
    click.echo(f"{task} {split}{what}: M_J {result['M_J']:.4f}  M_F {result['M_F']:.4f}  "
               f"({result['clips']} clips, {result['frames']} frames"
               f"{', audio shuffled' if shuffle_audio else ''})")
    if "inputs" in result:
        click.echo(f"wrote {result['inputs']['frames']} frames of inputs to {result['inputs']['path']}")
