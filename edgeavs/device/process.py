"""Child processes that do not outlive edgeavs.

- :func:`terminate_as_interrupt`: inside the block, SIGTERM and SIGHUP act like Ctrl-C (they
  raise :class:`KeyboardInterrupt` in the main thread), so the ``with``/``finally`` clean-up that
  stops the children runs for ``kill PID`` and a closed terminal too, not only for Ctrl-C.
- :func:`die_with_parent`: a ``preexec_fn`` for :class:`subprocess.Popen` that asks Linux to
  SIGKILL the child when the thread that started it dies (``prctl(PR_SET_PDEATHSIG)``), so a
  parent killed with SIGKILL (no clean-up possible) leaves no server listening. Elsewhere it
  does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def terminate_as_interrupt(signals=TERMINATION_SIGNALS):
    """``with terminate_as_interrupt():`` SIGTERM/SIGHUP raise ``KeyboardInterrupt`` once.

    Only the first such signal raises; later ones are ignored until the block ends, so they do
    not cut the clean-up short. The previous handlers come back when the block ends. Outside the
    main thread (where Python cannot install handlers) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum, _frame):
        nonlocal fired
        if fired:
            return
        fired = True
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent():
    """A ``preexec_fn``: the child gets SIGKILL when the calling thread of the parent dies.

    Resolved before the fork (no ``dlopen`` in the child). ``None`` off Linux or outside the main
    thread (Linux sends the signal when the *thread* that forked exits, and a worker thread may
    end long before the process)."""
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
