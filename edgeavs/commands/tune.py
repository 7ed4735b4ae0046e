"""``edgeavs tune``: auto-tune the compiled model's kernels into a records directory."""

from __future__ import annotations

import json

import click

from edgeavs.commands.options import (CHECKPOINT_HELP, VARIANT_HELP, resolution_option, resolve_resolution,
                                      target_option, variant_option)


@click.command(short_help="Auto-tune LightAVSeg for a target into records.")
@target_option("--target", "-t")
@variant_option("--variant", "-v", help=VARIANT_HELP)
@resolution_option("--resolution", "-r")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help=CHECKPOINT_HELP)
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Stop after this many measured trials (default: the time budget decides).")
@click.option("--time-budget", default="30m", show_default=True, metavar="DURATION",
              help="Wall-clock budget of the whole run, e.g. 90s, 30m, 1h30m.")
@click.option("--rpc-tracker", metavar="HOST:PORT",
              help="Measure on a device registered here (without one, a device target is tuned by projected "
                   "cycles of its emulated AArch64 build).")
@click.option("--rpc-key", metavar="KEY", help="The device key at the tracker.")
@click.option("--remote-os", type=click.Choice(["linux", "android"]), default=None,
              help="The device's OS, which decides the linker (default: what an edgeavs server "
                   "reports, else android for an NDK-linked target).")
@click.option("--seed", type=int, default=0, show_default=True, help="Search seed.")
@click.option("--only", multiple=True, metavar="NAME",
              help="Search only tasks whose function name contains NAME (repeatable).")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True,
              help="The build to search: int8 calibrates as `compile --precision int8` does and searches the "
                   "int8 kernels' knobs too; the records are marked with it (compile takes them only for it).")
@click.option("--calibration", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="int8: the AVSBench-layout tree to calibrate on (use the one you compile with).")
@click.option("--calibration-frames", type=click.IntRange(1, 100000), default=None, metavar="N",
              help="int8: train frames to calibrate on (default 200).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Records directory (created, or continued when it holds records).")
def tune(target, variant, resolution, checkpoint, trials, time_budget, rpc_tracker, rpc_key, precision, calibration,
         calibration_frames,
         remote_os, seed, only, as_json, out):
    """Auto-tune LightAVSeg for a target; records are reused by `edgeavs compile --records`.

    edgeavs's own schedules and kernels are searched through their knobs, every candidate timed
    inside the compiled model; a config is kept only when it also makes the whole model faster.
    What they leave goes to MetaSchedule, the largest share of the latency first; a task stops
    when two rounds bring less than 2 %. Records are written atomically: Ctrl-C keeps everything
    committed so far, and running the same command again continues from it.

    A device target (snapdragon8elite) without --rpc-tracker is tuned by projection: the same knob
    search, every candidate ranked by projected Oryon cycles of the AArch64 build run in the emulator
    (`edgeavs device project`); the records say they are projected, and a records directory never
    mixes projected and measured records. With a device on RPC, timings are measured there.
    """
    from edgeavs.commands.native_log import quiet_tvm
    from edgeavs.io.atomic import check_writable
    from edgeavs.tune import parse_duration, tune as run

    check_writable(out, "--output", kind="dir")
    resolution = resolve_resolution(resolution, checkpoint, say=lambda m: click.echo(m, err=True))
    with quiet_tvm():  # TVM's C++ warnings that do not concern the user (see native_log)
        summary = run(out, target=target, variant=variant, resolution=resolution, checkpoint=checkpoint,
                      trials=trials, time_budget=parse_duration(time_budget), seed=seed,
                      rpc_tracker=rpc_tracker, rpc_key=rpc_key, remote_os=remote_os, only=only,
                      log=lambda m: click.echo(m, err=True), progress=not as_json, precision=precision,
                      calibration=calibration, calibration_frames=calibration_frames)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        if summary.get("projected"):
            click.echo(f"{summary['trials']} trials ranked by projected {summary['projected']['cpu']} cycles, "
                       f"{summary['seconds']:.0f} s; records in {summary['records']}")
        else:
            click.echo(f"{summary['trials']} trials in {summary['rounds']} rounds over {summary['tasks']} tasks, "
                       f"{summary['seconds']:.0f} s; records in {summary['records']}")
        k = summary.get("knobs") or {}
        if k:
            click.echo(f"knobs: {k['functions']} edgeavs functions searched ({k['trials']} of the trials), "
                       f"{k['tuned']} kept (faster end to end); {k['resumed']} already in the records")
        proj = summary.get("projected")
        e2e = summary.get("end_to_end")
        if proj:
            if proj.get("untuned_ms") is not None:
                click.echo(f"projected on {proj['cpu']} (one core, not measured): {proj['untuned_ms']:.2f} ms "
                           f"untuned -> {proj['tuned_ms']:.2f} ms with the records")
        elif e2e:
            click.echo(f"measured end to end: {e2e['untuned_ms']:.2f} ms untuned -> {e2e['tuned_ms']:.2f} ms "
                       "with the records")
        elif summary.get("untuned_ms") is not None:
            click.echo(f"nothing kept: the records leave the build as it was ({summary['untuned_ms']:.2f} ms "
                       "instrumented)")
