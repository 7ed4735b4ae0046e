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
