"""Datasets: AVSBench S4/MS3 readers (:mod:`.avsbench`) and a synthetic demo set (:mod:`.synth`).

Attributes load lazily so that ``import edgeavs.data`` does not pull torch in.
"""

TASKS = ("s4", "ms3")
SPLITS = ("train", "val", "test")
N_FRAMES = 5  # AVSBench clips: five frames, one per second

_EXPORTS = {
    "S4Dataset": "avsbench", "MS3Dataset": "avsbench", "make_dataset": "avsbench",
    "check_dataset": "avsbench", "read_meta": "avsbench", "Clip": "avsbench", "ClipError": "avsbench",
    "make_synthetic": "synth", "CATEGORIES": "synth",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"edgeavs.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edgeavs.data' has no attribute {name!r}")


__all__ = sorted(_EXPORTS) + ["N_FRAMES", "SPLITS", "TASKS"]
