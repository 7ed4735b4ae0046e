"""Auto-tuning with MetaSchedule: records that are reused, checked and never corrupted."""

from edgeavs.tune.records import RecordsDir
from edgeavs.tune.tuner import apply_records, parse_duration, tune

__all__ = ["RecordsDir", "apply_records", "parse_duration", "tune"]
