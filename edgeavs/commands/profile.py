"""``edgeavs profile``: where an artifact's latency goes, per op class and per function."""

from __future__ import annotations

import click

from edgeavs.commands.options import overwrite_option


@click.command("profile", short_help="Per-op-class latency and GFLOP/s of an artifact.")
@click.argument("artifact", type=click.Path(path_type=str))
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="TVM threads (default: the target's num-cores); the peak is single-core SGEMM x threads.")
@click.option("--repeat", type=click.IntRange(min=1), default=10, show_default=True,
              help="Instrumented passes; each function's median is reported.")
@click.option("--peak", type=click.FloatRange(min=0, min_open=True), default=None, metavar="GFLOPS",
              help="Use this all-threads GFLOP/s ceiling instead of measuring single-core SGEMM.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many of the slowest functions to list.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the report (every function) here.")
@overwrite_option("the --json report")
def profile(artifact, threads, repeat, peak, top, json_out, overwrite):
    """Time every TIR function of ARTIFACT (VM instrumentation, median of --repeat passes, in a
    worker process) and attribute it to its op class: functions, how many got edgeavs schedules,
    ms, share of latency, GFLOP/s and fraction of the measured peak; then the unscheduled
    functions with their shares and the slowest functions."""
    from edgeavs.compiler.breakdown import format_breakdown, profile_artifact
    from edgeavs.io.atomic import check_writable, write_json

    if json_out:
        check_writable(json_out, "--json", make_parents=True, overwrite=overwrite)
    report = profile_artifact(artifact, threads=threads, repeat=repeat, peak=peak, top=top)
    click.echo(format_breakdown(report))
    if json_out:
        write_json(json_out, report)
