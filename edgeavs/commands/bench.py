"""``edgeavs bench``: latency of a compiled artifact vs PyTorch eager vs ONNX Runtime.

Parses the options and prints; the timing (one worker process per runtime) is
:func:`edgeavs.benchmark.run_bench`.
"""

from __future__ import annotations

import json

import click

from edgeavs.benchmark import RUNTIMES
from edgeavs.commands.options import overwrite_option


# ---------------------------------------------------------------- the command

@click.command("bench", short_help="Time an artifact vs PyTorch eager vs ONNX Runtime.")
@click.argument("artifact", type=click.Path(path_type=str))
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for every runtime (default: the target's num-cores).")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="Untimed runs first, per runtime.")
@click.option("--repeat", type=click.IntRange(min=30), default=30, show_default=True,
              help="Timed runs; the median is reported.")
@click.option("--only", type=click.Choice(RUNTIMES), multiple=True,
              help="Time only these runtimes (repeatable).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the report (every timing) here.")
@overwrite_option("the --json report")
def bench(artifact, threads, warmup, repeat, only, json_out, overwrite):
    """Median latency of ARTIFACT, PyTorch eager and ONNX Runtime on the same input, each in its
    own process with the same thread count."""
    from edgeavs.benchmark import format_table, run_bench
    from edgeavs.io.atomic import atomic_write_text, check_writable

    if json_out:
        check_writable(json_out, "--json", overwrite=overwrite)
    report = run_bench(artifact, threads, warmup, repeat, runtimes=only or RUNTIMES,
                       log=lambda m: click.echo(m, err=True))
    click.echo(format_table(report))
    if json_out:
        atomic_write_text(json_out, json.dumps(report, indent=2) + "\n")
