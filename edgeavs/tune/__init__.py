"""Auto-tuning: edgeavs's knob search and MetaSchedule, written into a records directory.

The records' format, their fingerprint check and how a compile applies them live with their reader,
``edgeavs.compiler.records`` (``RecordsDir``, ``apply_records``); tune writes them.
"""

from edgeavs.tune.tuner import parse_duration, tune

__all__ = ["parse_duration", "tune"]
