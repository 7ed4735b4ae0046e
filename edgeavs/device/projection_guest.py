"""The guest half of the cycle projection: runs *inside* the emulated process (qemu user mode).

Standard library only (plus numpy and the TVM runtime for :func:`run_tvm`), never edgeavs: it
is run as a plain script by the guest's Python (AArch64 under ``qemu-aarch64``, or this
machine's Python under ``qemu-x86_64`` for the host validation).

Any guest program -- ours, or a peer's ONNX Runtime / ExecuTorch runner -- takes part in a
projection the same way:

1. load its code, then :func:`add_regions` with the host's ``regions`` (library file names and
   their code spans relative to the load base, from ``edgeavs.device.projection``): the plugin
   counts blocks in those ranges, and charges what runs elsewhere to the last block it saw in
   them (a libm call to its caller);
2. warm up, then ``marker.start()``, run the measured inferences, ``marker.stop()`` (the plugin
   writes its counts);
3. write :func:`maps` (this process's ``/proc/self/maps``) into its JSON report, so the host can
   turn guest addresses into symbols.

The marker is a system call no kernel implements (``syscall(NR, MAGIC, command, a, b)``):
ENOSYS natively and under qemu, seen only by the plugin.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

MAGIC = 0xED6EA75C0FFEE001
CMD_ADD_RANGE, CMD_START, CMD_STOP = 1, 2, 3


class Marker:
    """Talks to the blockcount plugin through its marker system call."""

    def __init__(self, nr: int):
        self.nr = int(nr)
        libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long

    def _send(self, cmd: int, a: int = 0, b: int = 0) -> None:
        u64 = ctypes.c_uint64
        self._syscall(ctypes.c_long(self.nr), u64(MAGIC), u64(cmd), u64(a), u64(b))

    def add_range(self, lo: int, hi: int) -> None:
        self._send(CMD_ADD_RANGE, lo, hi)

    def start(self) -> None:
        self._send(CMD_START)

    def stop(self) -> None:
        self._send(CMD_STOP)


def maps() -> str:
    with open("/proc/self/maps") as fh:
        return fh.read()


def load_base(path: str, maps_text: str) -> int | None:
    """Where ``path`` (a mapped ELF file, matched by its real path) starts: its mapping at file
    offset 0."""
    real = os.path.realpath(path)
    for line in maps_text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].strip() == real and int(parts[2], 16) == 0:
            return int(parts[0].split("-")[0], 16)
    return None


def add_regions(marker: Marker, regions) -> list:
    """Tell the plugin the code ranges: ``regions`` is ``[{"path", "spans": [[lo, hi], ...]}]``
    with spans relative to the file's load base. Returns the absolute ranges added."""
    text = maps()
    added = []
    for region in regions:
        base = load_base(region["path"], text)
        if base is None:
            raise SystemExit(f"projection guest: {region['path']} is not mapped in this process")
        for lo, hi in region["spans"]:
            marker.add_range(base + lo, base + hi)
            added.append([base + lo, base + hi])
    return added


def run_tvm(cfg: dict) -> dict:
    """A TVM Relax library (``cfg["library"]``): fixed inputs, one warm-up, one instrumented pass
    (calls and tensor bytes per function), then ``runs`` counted inferences."""
    import numpy as np
    import tvm
    from tvm.runtime.vm import VirtualMachine

    t0 = time.perf_counter()
    lib = tvm.runtime.load_module(cfg["library"])
    vm = VirtualMachine(lib, tvm.cpu())
    main = vm["main"]
    rng = np.random.default_rng(int(cfg.get("seed", 0)))
    arrays = [rng.standard_normal(spec["shape"]).astype(spec["dtype"]) for spec in cfg["inputs"]]
    inputs = [tvm.runtime.tensor(a) for a in arrays]
    t_load = time.perf_counter() - t0

    out = main(*inputs)  # warm-up: first-call work stays out of the counts
    calls: dict = {}
    stack: list = []

    def nbytes(value) -> int:
        shape = getattr(value, "shape", None)
        dtype = getattr(value, "dtype", None)
        if shape is None or dtype is None:
            return 0
        n = 1
        for d in shape:
            n *= int(d)
        return n * np.dtype(str(dtype)).itemsize

    def instrument(_func, symbol, before, _ret, *args):
        if before:
            entry = calls.setdefault(str(symbol), {"calls": 0, "bytes": 0})
            entry["calls"] += 1
            entry["bytes"] += sum(nbytes(a) for a in args)
        return 0

    vm.set_instrument(instrument)
    main(*inputs)
    vm.set_instrument(None)

    marker = Marker(cfg["marker_nr"])
    added = add_regions(marker, cfg["regions"])
    runs = int(cfg.get("runs", 2))
    t1 = time.perf_counter()
    marker.start()
    for _ in range(runs):
        out = main(*inputs)
    marker.stop()
    t_runs = time.perf_counter() - t1
    outs = [out] if hasattr(out, "numpy") else list(out)
    first = outs[0].numpy()
    if cfg.get("output_file"):  # the first output of the last counted run, for comparisons
        np.save(cfg["output_file"], first)
    return {"maps": maps(), "ranges": added, "runs": runs, "calls": calls,
            "output": {"shape": list(first.shape), "sum": float(np.sum(first, dtype=np.float64))},
            "seconds": {"load": round(t_load, 3), "counted_runs": round(t_runs, 3)}}


def main(argv) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: projection_guest.py CONFIG.json\n")
        return 2
    with open(argv[1]) as fh:
        cfg = json.load(fh)
    write_report(cfg["out"], run_tvm(cfg))
    return 0


def write_report(path: str, report: dict) -> None:
    """The guest run's report, as JSON, written beside ``path`` and renamed (atomic)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
