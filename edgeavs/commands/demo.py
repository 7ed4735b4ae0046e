"""``edgeavs demo``: the README's main job on an embedded clip, no downloads.

Parses the options, checks them and the output directory before any work, and prints the
progress lines of :func:`edgeavs.demo.run_demo` (clip, training, artifact, overlay video).
"""

from __future__ import annotations

from pathlib import Path

import click

from edgeavs.commands.options import SIZE_MULTIPLE
from edgeavs.demo import DEMO_RESOLUTION, DEMO_VARIANT


@click.command("demo", short_help="Synthesise a clip, compile the tiny model, segment the clip.")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("edgeavs-demo"),
              show_default=True, metavar="OUT_DIR", help="Directory for the clip, the artifact and the overlay video.")
@click.option("--resolution", type=click.IntRange(min=32), default=None,
              help=f"Model input side in pixels (a multiple of {SIZE_MULTIPLE}); default: the size the "
                   f"checkpoint was trained at (128 for the embedded one; {DEMO_RESOLUTION} for random weights).")
@click.option("--seconds", type=click.FloatRange(min=1.0, max=60.0), default=6.0, show_default=True,
              help="Length of the synthesised clip.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the model.")
@click.option("--train-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="First train the tiny model from random weights for N steps on synthetic data (CPU) "
                   "and write OUT_DIR/tiny.pt.")
@click.option("--random-weights", is_flag=True,
              help="Compile random-init weights (seed 0) instead of a trained checkpoint: the masks "
                   "are then meaningless (a baseline to compare with).")
def demo(out_dir, resolution, seconds, threads, train_steps, random_weights):
    """Run the whole job on an embedded example, no downloads: synthesise a clip with sound
    (shapes of the synthetic categories, one sounding at a time), compile LightAVSeg-tiny for
    this machine (or reuse the artifact already in OUT_DIR), segment the clip, print the M_J of
    its masks against the sounding shape and where the overlay video is.

    Weights: OUT_DIR/tiny.pt if present (yours, or --train-steps'), else the checkpoint embedded
    in edgeavs (LightAVSeg-tiny trained on synthetic S4 clips; `edgeavs info --embedded` tells how),
    written once to OUT_DIR/default-tiny-s4.pt."""
    if train_steps and random_weights:
        raise click.UsageError("--train-steps and --random-weights exclude each other")
    from edgeavs.compiler.build import check_resolution
    from edgeavs.io.atomic import check_writable

    if resolution is not None:
        check_resolution(resolution, DEMO_VARIANT)  # the size bound, before any clip or training

    check_writable(out_dir, "-o", kind="dir")
    from edgeavs.commands.native_log import quiet_tvm
    from edgeavs.demo import run_demo

    with quiet_tvm():  # TVM's C++ warnings that do not concern the user (see native_log)
        run_demo(out_dir, resolution=resolution, seconds=seconds, threads=threads,
                 train_steps=train_steps, random_weights=random_weights, say=lambda m: click.echo(m))
