"""Click commands, one module each; assembled by the top-level cli.py.

Options several commands share are defined once here, so that their names, types and help
read the same everywhere."""

from __future__ import annotations

import click


def overwrite_option(what: str = "the output file"):
    """``--overwrite``: without it, an output that already exists is an error (one line, before
    any work); ``what`` names the outputs it lets the command replace."""
    return click.option("--overwrite", is_flag=True,
                        help=f"Replace {what} if it exists (without it, an existing output is an error).")


DEFAULT_RESOLUTION = 224
"""Input side without --resolution and without a checkpoint that records its training size."""

RESOLUTION_HELP = ("Input size, N or HxW; sides multiples of 16 (default: the size --checkpoint was "
                   f"trained at, else {DEFAULT_RESOLUTION}).")


def resolution_option(*names, help: str = RESOLUTION_HELP):
    """``--resolution N|HxW`` with no fixed default: :func:`resolve_resolution` picks it."""
    return click.option(*(names or ("--resolution",)), default=None, metavar="N|HxW", help=help)


def resolve_resolution(resolution, checkpoint, say=None) -> str:
    """``--resolution`` as given; else the frame size ``checkpoint`` was trained at (its ``config``,
    as ``edgeavs evaluate`` reads it); else :data:`DEFAULT_RESOLUTION`. ``say`` is told which size
    was used when it came from the checkpoint or the checkpoint did not record one."""
    if resolution is not None:
        return str(resolution)
    if checkpoint is None:
        return str(DEFAULT_RESOLUTION)
    from edgeavs.model.weights import read_checkpoint

    config = read_checkpoint(checkpoint).get("config")
    size = config.get("size") if isinstance(config, dict) else None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        if say:
            say(f"resolution {size}x{size}: the size {checkpoint} was trained at (--resolution to change it)")
        return str(size)
    if say:
        say(f"resolution {DEFAULT_RESOLUTION}x{DEFAULT_RESOLUTION}: {checkpoint} does not record the size it "
            "was trained at (--resolution to change it)")
    return str(DEFAULT_RESOLUTION)
