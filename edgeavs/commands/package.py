"""``edgeavs package``: an artifact as a Python-free bundle for the device (edgeavs.device.bundle)."""

from __future__ import annotations

import click

from edgeavs.commands.options import overwrite_option


@click.command("package", short_help="Bundle an artifact with the TVM runtime and a C++ runner.")
@click.argument("artifact", type=click.Path(path_type=str))
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=str),
              help="The bundle folder to write (new, or an earlier bundle with --overwrite).")
@click.option("--os", "os_name", type=click.Choice(["linux", "android", "host"]), default=None,
              help="Device OS (default: android when the artifact has an Android library and an "
                   "NDK is set, else linux; host: a bundle of a host artifact for this machine).")
@click.option("--jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Compiler processes for the (cached) runtime build.")
@overwrite_option("an earlier bundle at -o")
def package(artifact, output, os_name, jobs, overwrite):
    """Write a folder to copy to the device (scp / adb push): ARTIFACT's library, the TVM
    runtime and tvm-ffi built for the device from the installed wheels' sources (cached),
    bin/edgeavs-run, the C header, an example, the manifest and a README with the commands.
    Check it with `edgeavs verify BUNDLE --device emulated`."""
    from edgeavs.device.bundle import package as make_bundle

    record = make_bundle(artifact, output, os_name=os_name, overwrite=overwrite, jobs=jobs,
                         log=lambda m: click.echo(m, err=True))
    build = record["runtime_build"]
    click.echo(f"bundle {output} ({record['os']}, {record['triple']}): "
               f"{len(record['files'])} files, {record['total_bytes'] / 2**20:.1f} MiB; runtime "
               + ("from the cache" if build["cached"] else f"built in {build['build_seconds']:.0f} s"))
    for rel, meta in sorted(record["files"].items(), key=lambda kv: -kv[1]["bytes"]):
        click.echo(f"  {meta['bytes'] / 2**10:10.1f} KiB  {rel}")
    click.echo(f"next: see {output}/README.md; check it here with "
               f"`edgeavs verify {output}" + (" --device emulated`" if record["os"] == "linux" else "`"))
