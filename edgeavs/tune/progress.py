"""Progress bars for ``edgeavs tune`` (tqdm, on stderr, only when stderr is a terminal).

A tune spends minutes in calls that report nothing on their own (importing the model, the pipeline up to the
schedules, MetaSchedule's task extraction, a build and profile of the untuned model, the closing end-to-end
builds). :class:`Steps` shows the named step being run and its elapsed time, kept ticking by a refresh once a
second (TVM's calls release the GIL, so the refresh runs while they work); :func:`ticking` does the same for
the trial bar, whose rounds are tens of seconds each. :func:`bar_safe` wraps a log function so that its lines
are printed above a live bar instead of through it.
"""

from __future__ import annotations

import contextlib
import sys
import threading

REFRESH_S = 1.0


def enabled(progress: bool) -> bool:
    """Bars only when asked for and stderr is a terminal (a log file or a pipe gets the log lines alone)."""
    return bool(progress) and sys.stderr.isatty()


@contextlib.contextmanager
def ticking(bar):
    """Refresh ``bar`` every :data:`REFRESH_S` while the block runs (its elapsed time moves during a long call)."""
    if bar is None or getattr(bar, "disable", False):
        yield bar
        return
    stop = threading.Event()

    def run():
        while not stop.wait(REFRESH_S):
            bar.refresh()

    thread = threading.Thread(target=run, name="edgeavs-tune-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()


class Steps:
    """One bar over a stage's named steps: ``tune: <stage> 2/4: <step> [elapsed]``; a no-op when disabled."""

    def __init__(self, stage: str, steps: int, show: bool):
        from tqdm import tqdm

        self.stage, self.steps = stage, steps
        self.bar = tqdm(total=steps, desc=f"tune: {stage}", unit="step", leave=False, file=sys.stderr,
                        dynamic_ncols=True, disable=not show, bar_format="{desc} [{elapsed}]")
        self._tick = contextlib.ExitStack()
        self._tick.enter_context(ticking(self.bar))

    @contextlib.contextmanager
    def step(self, name: str):
        self.bar.set_description_str(f"tune: {self.stage} {self.bar.n + 1}/{self.steps}: {name}", refresh=True)
        yield
        self.bar.update(1)

    def close(self) -> None:
        self._tick.close()  # idempotent, as tqdm's close
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bar_safe(log):
    """``log`` printing above any live tqdm bar (tqdm's external write mode), not through it."""
    if log is None:
        return None
    from tqdm import tqdm

    def say(message):
        with tqdm.external_write_mode(file=sys.stderr):
            log(message)

    return say
