"""Per-function latency of a compiled Relax module, through the VM's call instrumentation.

TVM 0.27's Relax VM has no profiler of its own; ``set_instrument`` calls back before and
after every VM call instruction, which is enough to attribute wall time to each TIR function
(the callback costs a few microseconds per call: fine for shares, not for absolute timing
of microsecond kernels — use ``time_evaluator`` for those).
"""

from __future__ import annotations

import time


def profile_functions(vm, args, repeat: int = 3, func: str = "main") -> dict[str, float]:
    """Mean microseconds per inference spent in each called function, by symbol name."""
    totals: dict[str, float] = {}
    stack: list[float] = []

    def instrument(_f, symbol, before_run, _ret, *_args):
        if before_run:
            stack.append(time.perf_counter())
        else:
            t0 = stack.pop()
            totals[symbol] = totals.get(symbol, 0.0) + (time.perf_counter() - t0) * 1e6
        return 0  # VMInstrumentReturnKind.NO_OP: run the call as usual

    vm[func](*args)  # warm-up, uninstrumented
    vm.set_instrument(instrument)
    try:
        for _ in range(repeat):
            vm[func](*args)
    finally:
        vm.set_instrument(None)
    return {k: v / repeat for k, v in totals.items()}
