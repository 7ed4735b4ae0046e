"""``edgeavs device project``: projected cycles of an artifact's library on a CPU model."""

from __future__ import annotations

import click


@click.command("project")
@click.argument("artifact", type=click.Path(path_type=str))
@click.option("--cpu", default="oryon-1", show_default=True,
              help="The core to project on: oryon-1 (Snapdragon 8 Elite prime core), or an "
                   "x86-64 CPU llvm-mca knows (host builds, for validation; then give --ghz).")
@click.option("--ghz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Clock to turn cycles into time (default: the CPU's; oryon-1 4.32).")
@click.option("--dram-gbps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Memory bandwidth of the memory term (default: the CPU's; oryon-1 84.8).")
@click.option("--cache-mib", type=click.FloatRange(min=0, min_open=True), default=None,
              help="A function whose tensors fit in this much cache gets no memory term "
                   "(default: the CPU's; oryon-1 12).")
@click.option("--runs", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Counted inferences after the warm-up (the figures are per inference).")
@click.option("--qemu-cpu", default=None,
              help="qemu -cpu model (default: max,sve=off,sme=off for AArch64, max for x86-64).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many functions to list, by projected cycles.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the whole report (every function) here.")
def project(artifact, cpu, ghz, dram_gbps, cache_mib, runs, qemu_cpu, top, json_out):
    """Run ARTIFACT's library under qemu with a block-counting plugin (single thread, seeded
    inputs, start-up excluded) and project every TIR function's cycles with llvm-mca: executed
    instructions by class, cycles, time on one core, fraction of fp32 peak, memory term and
    which bound won."""
    from edgeavs.device.projection import format_report, project_artifact
    from edgeavs.io.atomic import check_writable, write_json

    if json_out:
        check_writable(json_out, "--json", make_parents=True)
    report = project_artifact(artifact, cpu, ghz=ghz, dram_gbps=dram_gbps, cache_mib=cache_mib,
                              runs=runs, qemu_cpu=qemu_cpu,
                              log=lambda m: click.echo(f"  {m}", err=True))
    click.echo(format_report(report, top=top))
    if json_out:
        write_json(json_out, report)
