"""The ``edgeavs`` command line: parses options and reports; the work lives in ``edgeavs``.

Each sub-command is a click command in ``edgeavs/commands/<name>.py``; this file only
assembles them and turns library errors (:class:`edgeavs.errors.EdgeAVSError`) into the
one-line ``Error: ...`` message with a non-zero exit, never a traceback.

Exit codes: 0 success; 1 an ``Error:`` line (bad input, a failed check); 2 a usage error
(click's own); 3 an internal error (an unexpected exception: a bug, reported in one line;
``--debug`` or ``EDGEAVS_DEBUG=1`` shows its traceback); 130 interrupted (Ctrl-C).
``verify`` is the CI gate, so its 1 means one thing only, a numeric failure (the artifact
computes something else): every ``Error:`` line of ``verify`` (a missing artifact, a wrong
checkpoint, a bad report path, a device that cannot be reached) exits 2 (:data:`ERROR_EXIT`).
"""

from __future__ import annotations

import errno
import importlib
import os
import traceback

import click

import edgeavs as _package

if getattr(_package, "__file__", None) is None:  # a namespace package: some folder named edgeavs/ came first
    raise SystemExit(
        f"Error: {', '.join(map(str, _package.__path__))}: a folder named edgeavs without __init__.py (a clone of "
        "the repository?) hides the installed edgeavs package: Python imports it first, from the current "
        "directory or sys.path; run from another directory, or reinstall the clone with `pip install -e .` "
        "(a plain path entry, which the real package wins over)")

from edgeavs import __version__  # noqa: E402
from edgeavs.errors import EdgeAVSError  # noqa: E402

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
    ("package", "package"),
]


INTERNAL_ERROR_EXIT = 3

ERROR_EXIT = {"verify": 2}
"""Exit code of an ``Error:`` line (an :class:`EdgeAVSError`) per sub-command; 1 for the others.
``verify`` keeps 1 for a numeric failure alone (the CI gate): it could not check is 2."""


class CommandError(click.ClickException):
    """An :class:`EdgeAVSError`, shown as one ``Error:`` line with the command's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class InternalError(click.ClickException):
    """An unexpected exception, shown as one ``Error:`` line with exit code 3."""

    exit_code = INTERNAL_ERROR_EXIT


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _debug(ctx) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("EDGEAVS_DEBUG", "").strip() not in ("", "0")


def _command_path(ctx, exc: BaseException) -> str:
    """``edgeavs data synth``: the innermost click command the traceback went through."""
    names = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is click.Command.invoke.__code__:
            inner = tb.tb_frame.f_locals.get("ctx")
            if isinstance(inner, click.Context):
                chain = []
                while inner is not None and inner.parent is not None:
                    chain.append(inner.info_name)
                    inner = inner.parent
                names = list(reversed(chain)) or names
        tb = tb.tb_next
    if not names:
        names = [ctx.invoked_subcommand] if ctx.invoked_subcommand else []
    return " ".join(["edgeavs", *[n for n in names if n]])


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors (exit 2), ctx.exit(n), Abort
        except EdgeAVSError as exc:
            if _debug(ctx):
                click.echo(traceback.format_exc().rstrip(), err=True)
            raise CommandError(_first_line(exc) or type(exc).__name__,
                               ERROR_EXIT.get(ctx.invoked_subcommand, 1)) from None
        except KeyboardInterrupt:
            click.echo("Aborted.", err=True)
            ctx.exit(130)
        except Exception as exc:  # a bug: one line and exit 3, the traceback only on request
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # `edgeavs ... | head`: click's main exits quietly
            if _debug(ctx):
                click.echo(traceback.format_exc().rstrip(), err=True)
            detail = _first_line(exc)
            raise InternalError(
                f"{_command_path(ctx, exc)}: internal error: {type(exc).__name__}"
                f"{': ' + detail if detail else ''} (please report it; rerun with --debug or "
                "EDGEAVS_DEBUG=1 for the traceback)") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Exit codes: 0 success, 1 error (one `Error:` line), 2 usage error, 3 internal error "
                    "(a bug; --debug or EDGEAVS_DEBUG=1 shows the traceback), 130 interrupted. verify: 1 "
                    "only for a numeric failure, 2 for any other error.")
@click.version_option(__version__, prog_name="edgeavs")
@click.option("--debug", is_flag=True,
              help="On an error, also print the Python traceback; and let TVM's own C++ warnings through "
                   "(as EDGEAVS_DEBUG=1).")
def main(debug):
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
    main(prog_name="edgeavs")
