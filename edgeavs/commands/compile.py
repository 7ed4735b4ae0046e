"""``edgeavs compile``: LightAVSeg -> a TVM artifact directory."""

from __future__ import annotations

import click

from edgeavs.commands.options import (CHECKPOINT_HELP, VARIANT_HELP, fusion_option, resolution_option,
                                      resolve_resolution, target_option, variant_option)


def is_artifact_dir(path) -> bool:
    """True when ``path`` is a directory whose manifest.json says it is an edgeavs artifact (its
    ``format``), damaged or not: the one kind of existing folder ``compile -o`` replaces. A folder
    with some other manifest.json (a web app's) is not one."""
    import json
    import os

    from edgeavs.compiler.artifact import FORMAT, MANIFEST, MAX_MANIFEST_BYTES

    manifest = os.path.join(path, MANIFEST)
    if not os.path.isdir(path) or not os.path.isfile(manifest):
        return False
    try:
        with open(manifest, "rb") as f:
            data = json.loads(f.read(MAX_MANIFEST_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return False
    family = FORMAT.split("/")[0] + "/"
    return isinstance(data, dict) and isinstance(data.get("format"), str) and data["format"].startswith(family)


def check_output_dir(output, option: str) -> bool:
    """The artifact directory: its parents may be missing (they are created), but it must not be a
    file, and an existing non-empty directory must be an edgeavs artifact (compile replaces it
    whole). Returns True when an artifact is there (and will be replaced)."""
    import os

    from edgeavs.errors import EdgeAVSError
    from edgeavs.io.atomic import check_writable

    check_writable(output, option, kind="dir", make_parents=True)
    if os.path.isdir(output) and os.listdir(output):
        if not is_artifact_dir(output):
            raise EdgeAVSError(f"{option} {output}: exists and is not an edgeavs artifact (compile replaces the "
                               "whole directory; choose a new or empty one)")
        return True
    return False


@click.command("compile", short_help="Compile LightAVSeg with TVM into an artifact directory.")
@target_option()
@variant_option(help=VARIANT_HELP)
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=str), default=None, help=CHECKPOINT_HELP)
@fusion_option(note=". Default: the checkpoint's, else lightavseg. The baselines compile through the same "
                    "pipeline.")
@resolution_option()
@click.option("--via", type=click.Choice(["export", "onnx"]), default="export", show_default=True,
              help="Import route: torch.export, or ONNX (dynamo, opset 18).")
@click.option("--dump-ir", type=click.Path(file_okay=False, path_type=str), default=None, metavar="DIR",
              help="Write the Relax module after every pipeline phase into this directory (NN-<phase>.py, "
                   "earlier dumps of the same names replaced).")
@click.option("-o", "--output", "output", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="Artifact directory, new or empty, or an earlier artifact, which is replaced (default: "
                   "artifacts/<variant>-<H>x<W>-<target>).")
@click.option("--records", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="Tuning records from `edgeavs tune` (must have been tuned for this target).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="fp16: the convs and matmuls in half precision (the log-mel front end, the first and the "
                   "last conv stay fp32); for AArch64 targets with +fullfp16; on x86 hosts a build for "
                   "checking only (no native fp16 arithmetic). int8: the 1x1 convs in int8 with int32 "
                   "accumulation (VNNI on x86, sdot on AArch64 +dotprod), calibrated on --calibration; the "
                   "least robust stay fp32. Recorded in the manifest; verify picks its rule.")
@click.option("--calibration", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="int8 builds: an AVSBench-layout tree (e.g. `edgeavs data synth` output) whose train frames "
                   "calibrate the activations' scales.")
@click.option("--calibration-frames", type=click.IntRange(1, 100000), default=None, metavar="N",
              help="int8 builds: how many train frames to calibrate on (default 200; five per clip).")
@click.option("--accumulate", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp16 builds: the MAC layers' accumulator. fp16: native fp16 FMLA, 8 lanes per vector (2x "
                   "fp32's rate on AArch64) at fp16 rounding of the partial sums; fp32: fp16 operands widened "
                   "to fp32 FMA (half the weight bytes, fp32's arithmetic rate).")
@click.option("--no-schedules", is_flag=True,
              help="Skip edgeavs's CPU schedules: TVM's default lowering (for comparison).")
@click.option("--profile", is_flag=True,
              help="Host targets: then time every function (as `edgeavs profile`) and record each unscheduled "
                   "function's share of latency in the manifest and the log.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the artifact path.")
def compile_cmd(target, variant, checkpoint, fusion, resolution, via, dump_ir, records, precision, calibration,
                calibration_frames, accumulate, no_schedules, output, quiet, profile):
    """Compile LightAVSeg for --target into an artifact directory: model.so (weights bound in)
    and manifest.json (versions, target fingerprint, shapes, file hashes, fusion report)."""
    from edgeavs.compiler.build import check_precision, compile_artifact, parse_resolution, resolve_weights
    from edgeavs.io.atomic import check_writable
    from edgeavs.targets import load_target

    replaces = check_output_dir(output, "--output") if output is not None else False
    if dump_ir is not None:
        check_writable(dump_ir, "--dump-ir", kind="dir", make_parents=True)
    tgt = load_target(target)
    check_precision(precision, tgt, accumulate)
    from edgeavs.compiler.calibrate import check_arguments, find_task

    check_arguments(precision, calibration, calibration_frames)
    if calibration is not None:
        find_task(calibration)  # a bad tree is one line before the import and the build
    if profile and (tgt.link != "host" or no_schedules):
        from edgeavs.errors import EdgeAVSError

        raise EdgeAVSError(f"--profile times the artifact on this machine: it needs a host-linked target with "
                           f"edgeavs schedules (target {tgt.name} links with {tgt.link})" if tgt.link != "host"
                           else "--profile needs edgeavs schedules (drop --no-schedules)")
    resolved, weights = resolve_weights(variant, checkpoint, interaction=fusion)
    log = None if quiet else (lambda m: click.echo(m, err=True))
    resolution = resolve_resolution(resolution, checkpoint, say=log)
    if output is None:
        h, w = parse_resolution(resolution)
        kind = "" if weights["fusion"] == "lightavseg" else f"-{weights['fusion']}"
        prec = "" if precision == "fp32" else f"-{precision}"
        output = f"artifacts/{resolved}{kind}-{h}x{w}-{tgt.name}{prec}"
        replaces = check_output_dir(output, "output")
    if replaces and log:
        log(f"{output} holds an edgeavs artifact: it is replaced when the new one is complete")
    from edgeavs.commands.native_log import quiet_tvm

    with quiet_tvm():  # TVM's C++ warnings that do not concern the user (see native_log)
        manifest = compile_artifact(output, target=tgt, variant=variant, checkpoint=checkpoint,
                                    resolution=resolution, via=via, dump_ir=dump_ir, log=log,
                                    records=records, schedules=not no_schedules, interaction=fusion,
                                    precision=precision, accumulate=accumulate, calibration=calibration,
                                    calibration_frames=calibration_frames)
    if not quiet:
        chains = (manifest.get("fusion") or {}).get("chains") or {}
        fused = ", ".join(f"{k} {v.get('fused', 0)}" for k, v in chains.items()) or "none"
        click.echo(f"compiled LightAVSeg-{manifest['variant']} {manifest['resolution'][0]}x"
                   f"{manifest['resolution'][1]} for {tgt.name} in "
                   f"{manifest['compile_seconds']['total']:.1f} s (fused chains: {fused})", err=True)
        prep = manifest.get("precision_report") or {}
        if manifest.get("precision") == "int8":
            cal = prep.get("calibration") or {}
            kept = ", ".join(f"{k} {v}" for k, v in (prep.get("kept") or {}).items()) or "none"
            macs = cal.get("site_macs_int8", 0) + cal.get("site_macs_fp32", 0)
            click.echo(f"int8: {prep.get('converted', 0)} of {prep.get('sites', 0)} 1x1 convs in int8 "
                       f"({prep.get('isa')} kernels; {cal.get('site_macs_int8', 0) / max(macs, 1):.0%} of their "
                       f"MACs), calibrated on {(cal.get('calibration') or {}).get('frames')} frames; kept fp32: "
                       f"{kept}", err=True)
        elif manifest.get("precision", "fp32") != "fp32":
            kept = ", ".join(f"{k} {v}" for k, v in (prep.get("kept") or {}).items()) or "none"
            click.echo(f"{manifest['precision']}: {prep.get('converted', 0)} MAC layers in half precision, accumulate "
                       f"{prep.get('accumulate')}; kept fp32: {kept}"
                       + ("; x86 has no fp16 arithmetic: a build for checking, not for speed" if tgt.link == "host"
                          and not (tgt.mtriple or "").startswith("aarch64") else ""), err=True)
        sched = manifest.get("schedules") or {}
        if sched.get("enabled"):
            done = sum(c["scheduled"] for c in sched["classes"].values())
            total = sum(c["functions"] for c in sched["classes"].values())
            per_class = ", ".join(f"{k} {v['scheduled']}/{v['functions']}" for k, v in sched["classes"].items())
            click.echo(f"edgeavs schedules: {done}/{total} functions ({per_class})", err=True)
            knobs = sched.get("knobs") or {}
            if records and knobs:
                stale = f"; {knobs['stale']} knob records match no function (ignored)" if knobs.get("stale") else ""
                from edgeavs.compiler.records import describe_cost

                cost = describe_cost((manifest.get("records") or {}).get("cost") or {})
                click.echo(f"tuned knobs ({cost}): {knobs['tuned']} functions, target defaults: "
                           f"{knobs['default']}{stale}", err=True)
            if sched.get("unmatched"):
                click.echo(f"  left to TVM's default lowering: {', '.join(sched['unmatched'])}", err=True)
    if profile:
        from edgeavs.compiler.breakdown import profile_into_manifest

        report = profile_into_manifest(output)
        if not quiet:
            shares = ", ".join(f"{r['name']} {r['share']:.2%}" for r in report["unscheduled"])
            click.echo(f"  unscheduled: {len(report['unscheduled'])} functions, {report['unscheduled_share']:.1%} "
                       f"of latency at {report['threads']} threads ({shares}); `edgeavs profile {output}` for "
                       "the per-class breakdown", err=True)
    if replaces and not quiet:
        click.echo(f"replaced the earlier artifact in {output}", err=True)
    click.echo(output)
