"""Tuning without the device: the knob search of :mod:`edgeavs.tune.in_model`, costed by projected cycles.

``edgeavs tune --target snapdragon8elite`` with no ``--rpc-tracker`` has no phone to time anything on. It runs
the same search as on the host (one whole-model build per round, every task on one candidate, a winner kept
only when it beats the default and the whole model gets faster), with another clock: each round's build is
linked for AArch64 Linux with the target's ``cross_cc``, run in the emulator's guest and projected on the
target's core by :func:`edgeavs.device.projection.project_library` (executed blocks x llvm-mca's cycles per
block; ``edgeavs device project`` is the same measurement of a finished artifact). A function's figure is its
projected compute time per inference on one core at the core's clock; the whole model's is the sum.

What follows from the clock:

- **Deterministic.** The same build projects to the same cycles, so a projection is made once per build
  (:meth:`ProjectedBench.profile` is cached per build) and the search's confirmation rounds cost nothing.
- **As far as the projection is trusted.** llvm-mca costs blocks in steady state, without cache misses or
  mispredictions (see ``edgeavs.device.projection``; ``bench/bench_arm_projection.py`` measures how far the
  same method follows the clock on this machine). The knobs it picks are those that cut executed work and
  dependency chains; it cannot see a tile that thrashes the L1. Measured timings from a phone (``--rpc-tracker``)
  are the better source whenever there is a phone.
- **Built as compile builds.** Each round's library links its weights as ``edgeavs compile`` does
  (``edgeavs.compiler.linked_weights``), not as VM constants: the same kernels then sit at the same places
  as in the artifact. It matters: a tune of LightAVSeg-L whose rounds kept VM constants projected its records'
  build at 25.70 ms while the artifact compiled from those records projected 26.65 ms, every function
  executing the same instruction counts; two 1x1 convs cost 1.9x and 2.4x more projected cycles in the
  artifact's library than in the round's (why the same instruction mix costs more there is not established:
  llvm-mca costs each executed block alone, so how the code falls into blocks matters).
- **Marked.** The records' fingerprint says ``"cost": {"source": "projected", "cpu": ...}``, every knob entry
  ``"measured": "projected"``; ``compile --records`` says so, and a records directory never holds both kinds
  (:meth:`edgeavs.compiler.records.RecordsDir.create_or_resume`).
- **Our knobs only.** MetaSchedule's tasks are not searched: its search wants a runner's timings of each
  candidate, and a guest run per MetaSchedule candidate costs more than its search could repay. The functions
  our schedules and kernels cover are most of the model (the tuner reports the rest).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from edgeavs.errors import EdgeAVSError
from edgeavs.tune.in_model import ModelBench


def projection_cpu(tgt):
    """The projection's model of ``tgt``'s core (an ``edgeavs.device.projection.CpuModel``), or None when the
    projection has none for it (only AArch64 targets whose ``mcpu`` it models)."""
    from edgeavs.device.projection import CPUS

    if not (tgt.mtriple or "").startswith("aarch64"):
        return None
    for cpu in CPUS.values():
        if cpu.arch == "aarch64" and cpu.mcpu == tgt.mcpu:
            return cpu
    return None


def require_projection(tgt):
    """The core model for tuning ``tgt`` by projection, with the emulator, llvm-mca and the plugin checked;
    a one-line error naming what is missing."""
    from edgeavs.device.projection import CPUS, require_tools
    from edgeavs.device.emulator import require_emulator

    cpu = projection_cpu(tgt)
    if cpu is None:
        known = ", ".join(f"{c.mcpu} (AArch64)" for c in CPUS.values() if c.arch == "aarch64")
        raise EdgeAVSError(f"target {tgt.name} is not this machine and the cycle projection has no model of its "
                           f"core ({tgt.mcpu}; it models {known}): measuring needs a device "
                           "(--rpc-tracker HOST:PORT --rpc-key KEY)")
    if not tgt.cross_cc:
        raise EdgeAVSError(f"target {tgt.name}: tuning by projection runs an AArch64 Linux build in the emulator "
                           "and needs the target's cross_cc")
    require_emulator()
    require_tools()
    return cpu


def records_cost(cpu) -> dict:
    """The records' fingerprint ``"cost"`` for a projection on ``cpu``."""
    from edgeavs.compiler.records import projected_cost
    from edgeavs.device.projection import LLVM_SUFFIX

    return projected_cost(cpu.name, f"qemu block counts x llvm-mca{LLVM_SUFFIX} -mcpu={cpu.mcpu}, one core at "
                                    f"{cpu.ghz:g} GHz, compute bound")


class ProjectedBench(ModelBench):
    """:class:`~edgeavs.tune.in_model.ModelBench` with projected cycles for a clock: :meth:`build` links the
    round's model for AArch64 Linux, :meth:`profile` projects it (per function, microseconds per inference at
    the core's clock), :meth:`latency` is the projected whole model. Use as a context manager: the round
    libraries live in a scratch directory until :meth:`close`."""

    measured = "projected"

    def __init__(self, folded, tgt, cpu, input_specs: list, *, log=None, precision_kw: dict | None = None):
        super().__init__(folded, tgt.to_tvm(), None, precision_kw=precision_kw)
        self.tgt, self.cpu = tgt, cpu
        self.input_specs = input_specs
        self.entry_extra = {"cpu": cpu.name}
        self.log = log
        self.scratch = Path(tempfile.mkdtemp(prefix="edgeavs-projected-"))
        self._count = 0
        self._reports: dict = {}
        self.first: dict | None = None  # the first build's projection (round 0: the defaults)

    def build(self, assign: dict):
        """The round's library, built as ``compile_artifact`` builds it, weights linked in (the same code at
        the same places: the same machine code projects differently at another address, see the module
        docstring)."""
        from edgeavs.compiler.linked_weights import weights_module
        from edgeavs.tvm_api import library_exporter, tvm

        linked: list = []
        lowered, names = self.lower(assign, linked_weights=linked)
        path = self.scratch / f"round-{self._count}.so"
        self._count += 1
        ex = tvm.compile(lowered, target=self.target, relax_pipeline=None)
        with tempfile.TemporaryDirectory(prefix="weights-", dir=self.scratch) as blob_dir:
            if linked:
                ex.mod.import_module(weights_module(linked, blob_dir))
            ex.export_library(str(path), fcompile=library_exporter("cross", self.tgt.cross_cc))
        return path, names

    def report(self, library: Path) -> dict:
        """The projection of one round's library (made once: the library is deleted after it)."""
        from edgeavs.device.projection import project_library

        if library not in self._reports:
            try:
                self._reports[library] = project_library(library, self.input_specs, self.cpu, runs=1)
            finally:
                library.unlink(missing_ok=True)
            if self.first is None:
                self.first = self._reports[library]
        return self._reports[library]

    def profile(self, library) -> dict[str, float]:
        return {f["name"]: f["ms"] * 1e3 for f in self.report(library)["functions"]}

    def latency(self, library) -> float:
        return self.report(library)["total"]["ms"] / 1e3

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "ProjectedBench":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def input_specs(h: int, w: int) -> list:
    """The model's inputs as the projection's guest makes them (seeded normal arrays of these shapes)."""
    from edgeavs.data.inputs import SAMPLES

    return [{"shape": [1, 3, h, w], "dtype": "float32"}, {"shape": [1, SAMPLES], "dtype": "float32"}]


__all__ = ["ProjectedBench", "input_specs", "projection_cpu", "records_cost", "require_projection"]
