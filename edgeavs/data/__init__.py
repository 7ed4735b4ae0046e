"""Datasets: AVSBench S4/MS3 readers (:mod:`.avsbench`) and a synthetic demo set (:mod:`.synth`).

Attributes load lazily so that ``import edgeavs.data`` does not pull torch in.
"""

_EXPORTS = {
    "S4Dataset": "avsbench", "MS3Dataset": "avsbench", "make_dataset": "avsbench",
    "check_dataset": "avsbench", "read_meta": "avsbench", "Clip": "avsbench",
    "TASKS": "avsbench", "SPLITS": "avsbench",
    "make_synthetic": "synth", "CATEGORIES": "synth",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"edgeavs.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edgeavs.data' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
