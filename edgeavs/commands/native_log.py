"""TVM's C++ warnings that do not concern an edgeavs user, dropped from stderr by their exact text.

TVM's C++ code logs with ``LOG(WARNING)`` straight to file descriptor 2, with no level a caller can set (TVM
0.27 reads ``TVM_LOG_DEBUG`` for its debug messages only), so Python's ``warnings`` filters cannot reach
these lines. :func:`filtered` puts a pipe on descriptor 2 for the duration of a command's work; a thread
copies everything through to the real stderr at once (partial lines too: progress bars), except the
messages in :data:`NOISE`, each matched by its text (Python's own ``sys.stderr`` writes to the real stderr
meanwhile, so progress bars still see a terminal). ``edgeavs --debug`` (or ``EDGEAVS_DEBUG=1``) turns the
filter off, so that everything TVM prints, a crash report included, goes straight to the terminal.

The messages dropped, and why they do not concern a user:

- ``topi/transform.h: Warning: Fast mode segfaults when there are out-of-bounds indices``: printed once per
  legalization of a ``take`` in TVM's unchecked ("fast") mode. The takes LightAVSeg's import leaves are the
  audio front end's reflect padding and the backbone's positional-embedding interpolation: their indices
  are computed from the fixed input shape at compile time and are in range by construction (``verify``
  checks the outputs).
- ``apply_custom_rule.cc: Warning: Unknown schedule rule "meta_schedule.pool_avg"`` (with its list of the
  functions TVM looked for): printed by ``edgeavs tune`` for each pooling task. MetaSchedule's CPU defaults
  name a custom average-pool rule that TVM 0.27 does not register; the task is searched with the generic
  rules instead, as intended.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

_PREFIX = rb"\[[0-9:]+\] \S+:[0-9]+: Warning: "  # TVM's log line: [hh:mm:ss] file:line: Warning: ...

NOISE = [
    # (the message's first line, a regex of the lines that continue it)
    (re.compile(_PREFIX + rb"Fast mode segfaults when there are out-of-bounds indices\. "), None),
    (re.compile(_PREFIX + rb'Unknown schedule rule "meta_schedule\.pool_avg" for target keys '),
     re.compile(rb"\s+\S*meta_schedule\S*pool_avg\s*$")),
]


def _pump(read_fd: int, out_fd: int, noise) -> None:
    pending = b""
    continuation = None

    def write(data: bytes) -> None:
        while data:
            try:
                n = os.write(out_fd, data)
            except InterruptedError:
                continue
            except OSError:
                return  # the terminal went away: nothing to show it to
            data = data[n:]

    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if continuation is not None and continuation.match(line):
                continue
            continuation = None
            hit = next((cont for first, cont in noise if first.match(line)), False)
            if hit is not False:
                continuation = hit
                continue
            write(line + b"\n")
        # a partial line goes through at once (a progress bar's \r update), unless it may be a TVM log
        # line still being written (they start with "[")
        if pending and not pending.startswith(b"["):
            write(pending)
            pending = b""
    if pending:
        write(pending)
    os.close(read_fd)


def _on_fd_2(stream) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return False


@contextlib.contextmanager
def filtered(enabled: bool = True, noise=None):
    """While the block runs, descriptor 2 goes through a filter that drops :data:`NOISE` (``noise``).

    Python's own ``sys.stderr`` (when it is descriptor 2) is pointed at the real stderr meanwhile: its
    lines need no filter (Python warnings have theirs), come out in order, and ``isatty()``, the terminal
    width and so the progress bars of training, segmenting and tuning stay as they were."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no usable descriptor 2: nothing to filter
        return
    python_stderr = sys.stderr if _on_fd_2(sys.stderr) else None
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, saved, NOISE if noise is None else noise),
                              name="edgeavs-native-stderr", daemon=True)
    thread.start()
    if python_stderr is not None:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding,
                          errors=python_stderr.errors, closefd=True)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        if python_stderr is not None:
            direct, sys.stderr = sys.stderr, python_stderr
            with contextlib.suppress(OSError, ValueError):
                direct.close()
        os.dup2(saved, 2)  # the pipe's last writer here: the pump sees its end (children may hold it longer)
        thread.join(timeout=1.0)
        if not thread.is_alive():  # else a child still holds the pipe: the pump keeps writing to saved
            os.close(saved)


def debug_requested() -> bool:
    """``edgeavs --debug`` or ``EDGEAVS_DEBUG=1``: show everything."""
    import click

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and root.params.get("debug"):
        return True
    return os.environ.get("EDGEAVS_DEBUG", "").strip() not in ("", "0")


def quiet_tvm():
    """The filter for a command's work: on, unless debugging."""
    return filtered(enabled=not debug_requested())
