"""Tuning records: TVM's own MetaSchedule JSON database plus an edgeavs fingerprint.

A records directory holds::

    fingerprint.json               target dict + its fingerprint, LLVM, TVM, edgeavs versions
    database_workload.json         MetaSchedule JSONDatabase (one JSON value per line)
    database_tuning_record.json
    edgeavs_knobs.json             per edgeavs-scheduled function / kernel (by workload key): the searched
                                   knobs' winner, or null when the default stayed (edgeavs.tune.knobs)
    tune_log.jsonl                 one line per tuning round (what was tried, the best so far)

Every file is replaced atomically (written beside it, then renamed), the workload file before
the record file: MetaSchedule only appends workloads and records name them by index, so an
interruption between the two leaves a consistent database. A database that does not parse
(truncated by hand, corrupted) is refused with a one-line error naming the file and line.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import atomic_copy, atomic_write_text
from edgeavs.io.structured import load_json, loads_json

FINGERPRINT = "fingerprint.json"
WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"
KNOBS = "edgeavs_knobs.json"
LOG = "tune_log.jsonl"
FORMAT = "edgeavs-records/1"


def make_fingerprint(target) -> dict:
    """What records are valid for: the target dict (and its hash) and the tool versions."""
    from edgeavs import __version__
    from edgeavs.tvm_api import llvm_version, tvm_version

    return {"format": FORMAT, "target": target.tvm_dict(), "target_fingerprint": target.fingerprint(),
            "llvm": llvm_version(), "tvm": tvm_version(), "edgeavs": __version__}


MAX_FINGERPRINT_BYTES = 2**20
MAX_KNOBS_BYTES = 64 * 2**20


def _check_lines(path: Path, kind: str, n_workloads: int | None = None) -> int:
    """Each line of a MetaSchedule ``kind`` file ("workload" or "record") must be a JSON array of two items: a
    workload's structural-hash string and its module, or a record's workload index (below ``n_workloads`` when
    given) and the record; nested at most ``MAX_DEPTH`` levels (TVM parses the lines again, recursively).
    Returns the line count."""
    n_fields = 2
    count = 0
    try:
        with open(path, "rb") as f:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    value = loads_json(line, f"{path}: line {i}")
                except EdgeAVSError as exc:
                    raise EdgeAVSError(f"{exc} (truncated or corrupt database); delete the records directory "
                                       "or restore it") from None
                first = value[0] if isinstance(value, list) and value else None
                if not isinstance(value, list) or len(value) != n_fields or (
                        not isinstance(first, str) if kind == "workload" else
                        isinstance(first, bool) or not isinstance(first, int) or first < 0
                        or (n_workloads is not None and first >= n_workloads)):
                    raise EdgeAVSError(f"{path}: line {i} is not a MetaSchedule {kind} entry")
                count += 1
    except OSError as exc:
        raise EdgeAVSError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return count


def _check_fingerprint(fp, path) -> dict:
    if not isinstance(fp, dict) or fp.get("format") != FORMAT:
        raise EdgeAVSError(f"{path}: not an edgeavs records fingerprint ({FORMAT})")
    if not isinstance(fp.get("target"), dict):
        raise EdgeAVSError(f"{path}: \"target\" must be a target dict (an object)")
    tf = fp.get("target_fingerprint")
    if not isinstance(tf, str) or not re.fullmatch(r"[0-9a-f]{64}", tf):
        raise EdgeAVSError(f"{path}: \"target_fingerprint\" must be a sha256 (64 hex digits)")
    for key in ("llvm", "tvm", "edgeavs"):
        v = fp.get(key)
        if not isinstance(v, str) or not v.isprintable() or len(v) > 100:
            raise EdgeAVSError(f"{path}: \"{key}\" must be a version string, got "
                               f"{json.dumps(v)[:40] if isinstance(v, str) else type(v).__name__}")
    return fp


class RecordsDir:
    """One records directory. ``open`` validates what is there; ``create`` starts a new one."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def workloads(self) -> Path:
        return self.path / WORKLOADS

    @property
    def records(self) -> Path:
        return self.path / RECORDS

    @property
    def knobs_path(self) -> Path:
        return self.path / KNOBS

    def exists(self) -> bool:
        return (self.path / FINGERPRINT).is_file()

    def fingerprint(self) -> dict:
        path = self.path / FINGERPRINT
        if not path.is_file():
            raise EdgeAVSError(f"{self.path}: not an edgeavs records directory (no {FINGERPRINT})")
        return _check_fingerprint(load_json(path, "", max_bytes=MAX_FINGERPRINT_BYTES), path)

    def check_target(self, target) -> dict:
        """Refuse records made for another target or another LLVM/TVM (one line)."""
        fp = self.fingerprint()
        want = make_fingerprint(target)
        if fp.get("target_fingerprint") != want["target_fingerprint"]:
            raise EdgeAVSError(
                f"{self.path}: records were tuned for target {json.dumps(fp.get('target'), sort_keys=True)}, "
                f"not {json.dumps(want['target'], sort_keys=True)}; tune again for this target")
        for key in ("llvm", "tvm"):
            if fp.get(key) != want[key]:
                raise EdgeAVSError(f"{self.path}: records were made with {key.upper()} {fp.get(key)}, "
                                   f"this is {want[key]}; tune again")
        return fp

    def validate(self) -> dict:
        """Parse every database line: counts, or a one-line error for a corrupt file."""
        counts = {"workloads": 0, "records": 0, "knobs": 0}
        if self.workloads.exists():
            counts["workloads"] = _check_lines(self.workloads, "workload")
        if self.records.exists():
            counts["records"] = _check_lines(self.records, "record", n_workloads=counts["workloads"])
            if counts["records"] and not counts["workloads"]:
                raise EdgeAVSError(f"{self.records}: tuning records without {WORKLOADS}")
        if self.knobs_path.exists():
            counts["knobs"] = sum(1 for e in self.read_knobs().values() if e.get("config") is not None)
        return counts

    def read_knobs(self) -> dict:
        """``{workload key: entry}`` from ``edgeavs_knobs.json`` (see ``edgeavs.tune.knobs``), every config
        checked against its kind's knobs; a file that does not parse or holds an invalid knob value is a
        one-line error naming the file."""
        if not self.knobs_path.exists():
            return {}
        from edgeavs.tune.knobs import check_entries

        return check_entries(load_json(self.knobs_path, "", max_bytes=MAX_KNOBS_BYTES), self.knobs_path)

    def write_knobs(self, functions: dict) -> None:
        """Replace ``edgeavs_knobs.json`` atomically with ``functions`` (``{workload key: entry}``)."""
        from edgeavs.tune.knobs import FORMAT as KNOBS_FORMAT

        atomic_write_text(self.knobs_path, json.dumps({"format": KNOBS_FORMAT, "functions": functions},
                                                      indent=1, sort_keys=True) + "\n")

    def open(self, target) -> "RecordsDir":
        """An existing directory, checked against ``target`` and validated."""
        if not self.path.is_dir():
            raise EdgeAVSError(f"{self.path}: records directory not found")
        self.check_target(target)
        self.validate()
        return self

    def create_or_resume(self, target) -> bool:
        """Start a directory for ``target`` or continue one; returns True when resuming."""
        if self.path.exists() and not self.path.is_dir():
            raise EdgeAVSError(f"{self.path}: exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not self.exists():
                raise EdgeAVSError(f"{self.path}: exists, is not empty and holds no edgeavs records")
            self.open(target)
            return True
        if not self.path.parent.is_dir():
            raise EdgeAVSError(f"{self.path}: parent directory {self.path.parent} does not exist")
        self.path.mkdir(exist_ok=True)
        atomic_write_text(self.path / FINGERPRINT, json.dumps(make_fingerprint(target), indent=1))
        return False

    # --- snapshots -----------------------------------------------------------------
    def seed_workdir(self, workdir: Path) -> None:
        """Copy the database into a scratch directory that MetaSchedule may append to."""
        for name in (WORKLOADS, RECORDS):
            src = self.path / name
            if src.exists():
                shutil.copyfile(src, Path(workdir) / name)
            else:
                (Path(workdir) / name).touch()

    def commit_from(self, workdir: Path, knobs: dict | None = None) -> None:
        """Atomically publish the scratch database (workloads first, then records)."""
        n_workloads = None
        for name, kind in ((WORKLOADS, "workload"), (RECORDS, "record")):
            src = Path(workdir) / name
            if src.exists():
                n = _check_lines(src, kind, n_workloads)  # never publish a half-written line
                n_workloads = n if kind == "workload" else n_workloads
                atomic_copy(src, self.path / name)
        if knobs is not None:
            self.write_knobs(knobs)

    def append_log(self, entry: dict) -> None:
        """The log is rewritten whole (atomically), so it is never left half-written."""
        path = self.path / LOG
        old = path.read_text() if path.exists() else ""
        atomic_write_text(path, old + json.dumps(entry, sort_keys=True) + "\n")

    def database(self):
        """The records as a MetaSchedule database (read-only use: compile)."""
        from edgeavs.tvm_api import meta_schedule as ms

        self.validate()
        try:
            return ms.database.JSONDatabase(path_workload=str(self.workloads),
                                            path_tuning_record=str(self.records),
                                            allow_missing=False)
        except Exception as exc:  # TVM's own parse of an entry that has the right outline but not the content
            lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            raise EdgeAVSError(f"{self.path}: MetaSchedule cannot read the tuning database "
                               f"({lines[-1][:200] if lines else type(exc).__name__}); delete the records "
                               "directory or restore it") from None
