"""``edgeavs verify``: an artifact against its PyTorch model.

Exit 0 pass, 1 a numeric failure and nothing else; any ``Error:`` line (the check could not be
made: a missing artifact, a wrong checkpoint, bad inputs) is 2, as cli.py's ``ERROR_EXIT`` says."""

from __future__ import annotations

import json

import click

from edgeavs.commands.options import overwrite_option
from edgeavs.commands.device import device_from_options, device_options


@click.command("verify", short_help="Compare a compiled artifact with its PyTorch model.")
@click.argument("artifact", type=click.Path(path_type=str))
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The checkpoint the artifact was compiled from (default: the path in its manifest).")
@click.option("--seeds", type=click.IntRange(min=0), default=20, show_default=True,
              help="Number of random input cases.")
@click.option("--inputs", type=click.Path(dir_okay=False, exists=True, path_type=str), default=None,
              help="An .npz of real inputs: frames (N,3,H,W), waveform (N,32000).")
@click.option("--per-layer", is_flag=True,
              help="Also compare every backbone/encoder/decoder level by MSE and SNR.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the JSON report here.")
@overwrite_option("the --report file")
@device_options
@click.pass_context
def verify(ctx, artifact, checkpoint, seeds, inputs, per_layer, report, overwrite, device, rpc, rpc_tracker,
           rpc_key, remote_os):
    """Run ARTIFACT and the PyTorch reference (separate process) on the same inputs; compare
    every output (max abs, max rel, rel-L2) against the tolerance table in edgeavs.verify.
    On this machine by default; an AArch64 artifact on an emulated device or over RPC.

    Exit 0: pass; 1: a numeric failure, and nothing else; 2: the check could not be made (any
    `Error:` line: a missing or damaged artifact, a wrong checkpoint, bad inputs or options)."""
    from edgeavs.io.atomic import atomic_write_text, check_writable
    from edgeavs.verify import format_report, verify_artifact

    if report:
        check_writable(report, "--report", overwrite=overwrite)
    spec = device_from_options(device, rpc, rpc_tracker, rpc_key, remote_os)
    import contextlib

    from edgeavs.commands.native_log import quiet_tvm

    # --per-layer compiles: TVM's C++ warnings that do not concern the user (see native_log)
    with quiet_tvm() if per_layer else contextlib.nullcontext():
        result = verify_artifact(artifact, checkpoint=checkpoint, seeds=seeds, inputs=inputs,
                                 per_layer=per_layer, device=spec, log=lambda m: click.echo(m, err=True))
    click.echo(format_report(result))
    if report:
        atomic_write_text(report, json.dumps(result, indent=2) + "\n")
    if not result["passed"]:
        ctx.exit(1)
