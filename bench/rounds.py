"""Rotating rounds: the one timing loop of the side-by-side benches (``bench_peers.py``,
``bench_precision_host.py``).

On a shared, noisy machine a runtime timed once, or every runtime timed in a fixed order, picks up whatever
else the machine was doing at that moment. Each round times every kind once (each ``run(kind)`` is its own
process, warm-up then a median), the order rotated by one per round so no kind always runs first or last; a
kind's figure is the median of its rounds' medians.
"""

from __future__ import annotations

import statistics
from typing import Callable


def rotations(kinds: list[str], rounds: int) -> list[list[str]]:
    """The order of each round: round ``r`` starts at ``kinds[r % len(kinds)]``."""
    return [kinds[r % len(kinds):] + kinds[:r % len(kinds)] for r in range(rounds)] if kinds else []


def rotating_rounds(kinds: list[str], rounds: int, run: Callable[[str], dict], log: Callable[[str], None],
                    label: str, stop_on_error: bool = False) -> tuple[dict, dict, dict]:
    """Time ``kinds`` over ``rounds`` rotating rounds. ``run(kind)`` returns ``{"median_ms": ...}`` or
    ``{"error": ...}``; a kind that errs is not run again (``stop_on_error``: raise SystemExit instead).
    Returns ``(rounds_ms, medians, errors)``: the per-round medians of each kind that ran, the median over
    its rounds, and the first error of each kind that failed."""
    times: dict = {k: [] for k in kinds}
    errors: dict = {}
    for r, order in enumerate(rotations(kinds, rounds), start=1):
        for kind in order:
            if kind in errors:
                continue
            got = run(kind)
            if "error" in got:
                if stop_on_error:
                    raise SystemExit(f"{label} {kind}: {got['error']}")
                errors[kind] = got["error"]
                log(f"{label} round {r} {kind}: error {got['error']}")
                continue
            times[kind].append(round(got["median_ms"], 3))
            log(f"{label} round {r} {kind:<14} {got['median_ms']:8.2f} ms")
    times = {k: v for k, v in times.items() if v}
    medians = {k: round(statistics.median(v), 3) for k, v in times.items()}
    return times, medians, errors
