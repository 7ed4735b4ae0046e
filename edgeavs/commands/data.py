"""``edgeavs data``: check an AVSBench tree, write the synthetic demo dataset."""

from __future__ import annotations

import click

_TASK = click.Choice(["s4", "ms3"])


@click.group()
def data():
    """AVSBench datasets: check a tree, synthesise a demo set."""


@data.command(short_help="Check an AVSBench tree; print clips per split.")
@click.argument("root", type=click.Path(file_okay=False, path_type=str))
@click.option("--task", type=_TASK, required=True, help="AVSBench subset: s4 or ms3.")
def check(root, task):
    """Check that every file ROOT's metadata lists exists and is readable; print clips per split."""
    from edgeavs.data.avsbench import check_dataset

    counts = check_dataset(root, task, report=lambda problem: click.echo(problem, err=True))
    total = sum(counts.values())
    click.echo(f"{task}: " + ", ".join(f"{s} {n}" for s, n in counts.items()) + f" ({total} clips, all files OK)")


@data.command(short_help="Write a synthetic dataset in the AVSBench layout.")
@click.argument("out", type=click.Path(path_type=str))
@click.option("--task", type=_TASK, required=True, help="Layout to write: s4 or ms3.")
@click.option("--clips", type=click.IntRange(min=3), default=None,
              help="Number of clips (default 48 for s4, 24 for ms3), split 60/20/20.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed.")
@click.option("--size", type=click.IntRange(16, 1024), default=224, show_default=True,
              help="Frame height and width in pixels.")
def synth(out, task, clips, seed, size):
    """Write a synthetic audio-visual dataset in the AVSBench layout to the new folder OUT."""
    from edgeavs.data.synth import make_synthetic
    from edgeavs.io.atomic import check_writable

    check_writable(out, "OUT", kind="dir", make_parents=True)
    counts = make_synthetic(out, task=task, clips=clips, seed=seed, size=size)
    click.echo(f"wrote {sum(counts.values())} {task} clips to {out} ("
               + ", ".join(f"{s} {n}" for s, n in counts.items()) + ")")
