"""``edgeavs device``: the emulated AArch64 device and checks for device libraries.

Also :func:`device_options`, the ``--device/--rpc/--rpc-tracker/--rpc-key`` options that
``edgeavs verify`` (and later ``edgeavs tune``) put on their commands, and
:func:`device_from_options`, which turns them into an ``edgeavs.device.remote.DeviceSpec``.
"""

from __future__ import annotations

import functools
import json

import click

from edgeavs.commands.project import project


def device_options(func):
    """Add ``--device``, ``--rpc``, ``--rpc-tracker``, ``--rpc-key``, ``--remote-os`` to a
    command; it receives them as keyword arguments of the same names."""
    options = [
        click.option("--device", type=click.Choice(["host", "emulated"]), default=None,
                     help="Where to run: this machine (default), or an emulated AArch64 device "
                          "(qemu; see 'edgeavs device setup-emulator')."),
        click.option("--rpc", metavar="HOST:PORT",
                     help="A TVM RPC server on the device (phone or board)."),
        click.option("--rpc-tracker", metavar="HOST:PORT",
                     help="A TVM RPC tracker to request the device from (with --rpc-key)."),
        click.option("--rpc-key", metavar="KEY", help="The device key registered with the tracker."),
        click.option("--remote-os", type=click.Choice(["linux", "android"]), default=None,
                     help="Which library the remote device runs (default: linux for --rpc, "
                          "android for --rpc-tracker)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def device_from_options(device=None, rpc=None, rpc_tracker=None, rpc_key=None, remote_os=None):
    """The ``DeviceSpec`` the options name, or ``None`` for this machine."""
    from edgeavs.device.remote import device_spec

    return device_spec(device=None if device == "host" else device, rpc=rpc,
                       rpc_tracker=rpc_tracker, rpc_key=rpc_key, remote_os=remote_os)


@click.group()
def device():
    """Emulated AArch64 device (qemu) and device-library checks."""


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"emulator: {'ready' if status['ready'] else 'not set up'}")
    click.echo(f"guest:    {status['guest']}")
    click.echo(f"qemu:     {status['qemu'] or 'not installed'}")
    if status["missing_host_tools"]:
        click.echo(f"missing:  {', '.join(status['missing_host_tools'])}")
    stamp = status.get("stamp") or {}
    if stamp.get("wheels"):
        click.echo(f"runtime:  {', '.join(stamp['wheels'])}")


@device.command("setup-emulator")
@click.option("--force", is_flag=True, help="Rebuild the guest even if it is up to date.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def setup_emulator_cmd(force, as_json):
    """Install qemu-user and the AArch64 cross toolchain (apt) and build the guest: a Debian
    arm64 Python 3.11 with the TVM runtime, in $EDGEAVS_CACHE (default ~/.cache/edgeavs).
    Idempotent: does nothing when already set up."""
    from edgeavs.device.emulator import setup_emulator

    say = None if as_json else (lambda m: click.echo(f"  {m}", err=True))
    status = setup_emulator(force=force, log=say)
    if as_json:
        _print_status(status, True)
        return
    _print_status(status, False)
    click.echo(f"{'set up' if status['changed'] else 'already set up'} in {status['seconds']:.1f} s")


@device.command("emulator-status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def emulator_status_cmd(as_json):
    """Is the emulated device set up (host tools, guest, versions)? Exit 1 if not."""
    from edgeavs.device.emulator import emulator_status

    status = emulator_status()
    _print_status(status, as_json)
    if not status["ready"]:
        raise SystemExit(1)


@device.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback only unless --allow-remote.")
@click.option("--port", default=9190, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed).")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host that is not loopback. TVM RPC runs whatever library a client "
                   "uploads, without authentication: anyone who can reach the port can run code "
                   "on this machine.")
@click.option("--cpu", "qemu_cpu", default=None,
              help="qemu -cpu model (default: max,sve=off,sme=off, Oryon-like).")
@click.option("--tracker", metavar="HOST:PORT", help="Also register with this TVM RPC tracker.")
@click.option("--key", default="emulated-aarch64", show_default=True,
              help="Device key to register with the tracker.")
def serve_cmd(host, port, allow_remote, qemu_cpu, tracker, key):
    """Run the emulated device's RPC server in the foreground until Ctrl-C, SIGTERM or SIGHUP,
    which stop the emulator (qemu and its sessions) before exiting."""
    from edgeavs.device.emulator import DEFAULT_QEMU_CPU, EmulatedDevice
    from edgeavs.device.process import terminate_as_interrupt
    from edgeavs.device.remote import parse_address

    if tracker:
        parse_address(tracker, "--tracker")
    emu = EmulatedDevice(qemu_cpu or DEFAULT_QEMU_CPU, host=host, port=port, key=key,
                         tracker=tracker, allow_remote=allow_remote,
                         log=lambda m: click.echo(m, err=True))
    with terminate_as_interrupt():  # kill PID / a closed terminal: the same clean-up as Ctrl-C
        with emu:
            how = (f"--rpc-tracker {tracker} --rpc-key {key}" if tracker else f"--rpc {emu.address}")
            try:  # the line first inside: a signal right after it (a client that read it) is a clean stop
                click.echo(f"serving on {emu.address}; connect with {how}")
                emu.wait()
            except KeyboardInterrupt:
                click.echo("stopping the emulated device", err=True)


@device.command("check-target")
@click.argument("target")
def check_target_cmd(target):
    """Load TARGET (name or YAML) and check that LLVM knows its CPU and every feature."""
    from edgeavs.device.llvm_check import cpu_features
    from edgeavs.targets import load_checked_target

    tgt = load_checked_target(target)
    feats = cpu_features(tgt.mcpu, tgt.mattr, tgt.mtriple)
    simd = [f for f in ("neon", "dotprod", "i8mm", "fullfp16", "bf16", "sve", "sve2", "sme")
            if f in feats]
    click.echo(f"{tgt.name}: {tgt.mtriple or 'host triple'} {tgt.mcpu} "
               f"[{', '.join(tgt.mattr) or 'no mattr'}], {tgt.num_cores} cores, "
               f"{tgt.vector_width}-bit vectors")
    click.echo(f"LLVM features: {', '.join(simd) or 'none of the SIMD ones'}")


@device.command("check-library")
@click.argument("library", type=click.Path(dir_okay=False))
def check_library_cmd(library):
    """Fail if an AArch64 LIBRARY contains SVE/SME instructions (objdump scan)."""
    from edgeavs.device.isa import check_no_sve

    n = check_no_sve(library)
    click.echo(f"{library}: {n} instructions, no SVE/SME")


device.add_command(project)
