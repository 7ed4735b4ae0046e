"""The ``edgeavs`` command line: parses options and reports; the work lives in ``edgeavs``.

Each sub-command is a click command in ``edgeavs/commands/<name>.py``; this file only
assembles them and turns library errors (:class:`edgeavs.errors.EdgeAVSError`) into the
one-line ``Error: ...`` message with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib

import click

from edgeavs import __version__
from edgeavs.errors import EdgeAVSError

# (module under edgeavs.commands, attribute): one row per sub-command or sub-group.
COMMANDS = [
    ("info", "info"),
    ("data", "data"),
    ("train", "train"),
    ("evaluate", "evaluate"),
    ("compile", "compile_cmd"),
    ("export_onnx", "export_onnx"),
    ("verify", "verify"),
    ("tune", "tune"),
    ("bench", "bench"),
    ("profile", "profile"),
    ("segment", "segment"),
    ("demo", "demo"),
    ("device", "device"),
]


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeAVSError as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except KeyboardInterrupt:
            click.echo("Aborted.", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeavs")
def main():
    """edgeavs: LightAVSeg audio-visual segmentation, compiled with Apache TVM for phone CPUs."""


def _register():
    for module, attr in COMMANDS:
        try:
            mod = importlib.import_module(f"edgeavs.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edgeavs.commands.{module}":
                continue  # that command has not landed yet
            raise
        main.add_command(getattr(mod, attr))


_register()

if __name__ == "__main__":
    main()
