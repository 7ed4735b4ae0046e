"""Tuning records: TVM's own MetaSchedule JSON database plus an edgeavs fingerprint.

A records directory holds::

    fingerprint.json               target dict + its fingerprint, LLVM, TVM, edgeavs versions; the
                                   precision the records are for and their cost source (see below)
    database_workload.json         MetaSchedule JSONDatabase (one JSON value per line)
    database_tuning_record.json
    edgeavs_knobs.json             per edgeavs-scheduled function / kernel (by workload key): the searched
                                   knobs' winner, or null when the default stayed (edgeavs.compiler.knobs)
    tune_log.jsonl                 one line per tuning round (what was tried, the best so far)

**Cost source.** Records are either *measured* (timed on this machine, or on a device over RPC) or *projected*
(ranked by projected cycles of the emulated AArch64 code, ``edgeavs.device.projection``: ``edgeavs tune --target
snapdragon8elite`` without a device). The fingerprint's ``"cost"`` says which (``{"source": "measured"}`` or
``{"source": "projected", "cpu": "oryon-1", "model": ...}``; a fingerprint without one is measured), a tune
refuses to add one kind to a directory of the other (:meth:`RecordsDir.create_or_resume`), and ``compile
--records`` reports it (:meth:`RecordsDir.info`). **Precision.** ``"precision"`` (``fp32`` when absent): knob
winners of an fp32 build say nothing of an int8 one, so :meth:`RecordsDir.open` refuses another precision.

Every file is replaced atomically (written beside it, then renamed), the workload file before
the record file: MetaSchedule only appends workloads and records name them by index, so an
interruption between the two leaves a consistent database. A database that does not parse
(truncated by hand, corrupted) is refused with a one-line error naming the file and line.

Before TVM reads the database (:meth:`RecordsDir.database` for compile, :meth:`RecordsDir.seed_workdir` for a
resumed tune) every line is checked against the shape MetaSchedule 0.27's JSONDatabase writes
(:func:`check_database`), because TVM's C++ reader trusts it: a null where it expects a string, a decision index
past the instructions or a module nested 100000 deep end the process (SIGSEGV), not in an exception::

    workload line   [shash, payload]        shash: the structural hash in decimal; payload: base64 of an 8-byte
                                            little-endian length and then that many bytes of JSON text: TVM's
                                            object graph {"root_index": i, "nodes": [{"type": ...}, ...], ...}
    record line     [workload_index, [trace, run_secs, target, args_info]]
        trace       [insts, decisions]
        inst        [kind_name, inputs, attrs, outputs]   outputs: the names of the values it defines
        decision    [inst_index, int | [int, ...]]          inst_index below len(insts)
        run_secs    null | [number, ...]
        target      null | {option: value}                  (TVM checks the options)
        args_info   null | [["TENSOR", dtype, [int, ...]], ...]

Inputs and attributes are strings, numbers, booleans, lists (at most :data:`MAX_TRACE_VALUE_DEPTH` deep) and
(inputs) objects; JSON ``null`` is refused in them except for the one attribute TVM writes as null
(``TransformLayout``'s ``pad_value``). A string input or attribute in braces is an object graph TVM parses again
(an index map), checked like a workload payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import shutil
import struct
from pathlib import Path

from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import atomic_copy, atomic_write_text
from edgeavs.io.structured import load_json, loads_json, size_text

FINGERPRINT = "fingerprint.json"
WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"
KNOBS = "edgeavs_knobs.json"
LOG = "tune_log.jsonl"
FORMAT = "edgeavs-records/1"


MEASURED = {"source": "measured"}
PRECISIONS = ("fp32", "fp16", "int8")


def projected_cost(cpu: str, model: str) -> dict:
    """The fingerprint's ``"cost"`` of records ranked by projection on ``cpu`` (``model``: how, in words)."""
    return {"source": "projected", "cpu": cpu, "model": model}


def make_fingerprint(target, cost: dict | None = None, precision: str = "fp32") -> dict:
    """What records are valid for: the target dict (and its hash), the tool versions, the precision and the
    cost source (``cost``: :data:`MEASURED` by default, or :func:`projected_cost`)."""
    from edgeavs import __version__
    from edgeavs.tvm_api import llvm_version, tvm_version

    return {"format": FORMAT, "target": target.tvm_dict(), "target_fingerprint": target.fingerprint(),
            "llvm": llvm_version(), "tvm": tvm_version(), "edgeavs": __version__,
            "precision": precision, "cost": dict(cost or MEASURED)}


def cost_of(fp: dict) -> dict:
    """A fingerprint's cost source (records from before there was one were measured)."""
    return fp.get("cost") or dict(MEASURED)


def describe_cost(cost: dict) -> str:
    """``measured`` or ``projected oryon-1 cycles, not measured``: what a user reads."""
    if cost.get("source") == "projected":
        return f"projected {cost.get('cpu')} cycles, not measured"
    return "measured"


MAX_FINGERPRINT_BYTES = 2**20
MAX_KNOBS_BYTES = 64 * 2**20


def _check_lines(path: Path, kind: str, n_workloads: int | None = None, check=None) -> int:
    """Each line of a MetaSchedule ``kind`` file ("workload" or "record") must be a JSON array of two items: a
    workload's structural-hash string and its module, or a record's workload index (below ``n_workloads`` when
    given) and the record; nested at most ``MAX_DEPTH`` levels (TVM parses the lines again, recursively).
    ``check(value)``, when given, looks inside each line (raising :class:`_Bad`). Returns the line count."""
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
                if check is not None:
                    try:
                        check(value)
                    except _Bad as exc:
                        raise EdgeAVSError(" ".join(f"{path}: line {i} is not a MetaSchedule {kind} entry "
                                                    f"as TVM writes it: {exc}".split())) from None
                count += 1
    except OSError as exc:
        raise EdgeAVSError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return count


PAYLOAD_MAX_BYTES = 16 * 2**20
"""Decoded size of one workload's module (the JSON text): a fused LightAVSeg-L function is well under 1 MiB."""
PAYLOAD_MAX_DEPTH = 16
"""Nesting of a module's JSON (an object graph: every node in one flat list, referenced by index; TVM 0.27 writes
4 levels, and so do the index maps inside a trace)."""
MAX_TRACE_VALUE_DEPTH = 4
"""Nesting of one instruction input or attribute (TVM writes at most 2: a list of blocks, a list of candidates)."""
_NULL_ATTRS = {("TransformLayout", 2)}
"""(instruction kind, attribute index) that MetaSchedule writes as null: ``pad_value=None``."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DTYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class _Bad(Exception):
    """One problem found inside a database line (its text completes ``LINE: ...``)."""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _kind(v) -> str:
    return "null" if v is None else {bool: "a boolean", int: "a number", float: "a number", str: "a string",
                                     list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _check_graph(text: str, what: str) -> None:
    """A TVM object graph in JSON text (a workload's module, an index map): valid JSON, at most
    PAYLOAD_MAX_DEPTH deep, ``{"root_index": i, "nodes": [{"type": "...", ...}, ...]}`` with i a node."""
    try:
        graph = loads_json(text, what, max_depth=PAYLOAD_MAX_DEPTH)
    except EdgeAVSError as exc:
        raise _Bad(str(exc)) from None
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    root = graph.get("root_index") if isinstance(graph, dict) else None
    if not isinstance(nodes, list) or not nodes or not _is_int(root) or not 0 <= root < len(nodes):
        raise _Bad(f"{what} is not a TVM object graph (\"nodes\" and a \"root_index\" among them)")
    for k, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("type"), str) or not node["type"]:
            raise _Bad(f"{what}: node {k} is not an object with a \"type\"")


def _check_workload_line(value) -> None:
    shash, payload = value
    if not re.fullmatch(r"[0-9]{1,20}", shash):
        raise _Bad(f"the workload's structural hash {json.dumps(shash)[:40]} is not a decimal number")
    if not isinstance(payload, str):
        raise _Bad(f"the workload's module is {_kind(payload)}, not a base64 string")
    too_large = _Bad(f"the workload's module is larger than {size_text(PAYLOAD_MAX_BYTES)}")
    if len(payload) > (PAYLOAD_MAX_BYTES + 8 + 2) // 3 * 4:  # before decoding it
        raise too_large
    try:
        blob = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad("the workload's module is not valid base64") from None
    if len(blob) < 8:
        raise _Bad(f"the workload's module is {len(blob)} bytes, shorter than its 8-byte length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n != len(blob) - 8:
        raise _Bad(f"the workload's module says it is {n} bytes long but holds {len(blob) - 8}")
    if n > PAYLOAD_MAX_BYTES:
        raise too_large
    _check_graph(blob[8:], "the workload's module")


def _check_value(v, what: str, depth: int = 1, null_ok: bool = False, objects: bool = False) -> None:
    """An instruction input or attribute: string, number, boolean, list of those (``objects``: or an object
    of them), nested at most MAX_TRACE_VALUE_DEPTH; null only where ``null_ok``."""
    if v is None:
        if not null_ok:
            raise _Bad(f"{what} is null")
        return
    if isinstance(v, str):
        if len(v) >= 2 and v[0] == "{" and v[-1] == "}":  # TVM parses it as an object graph (an index map)
            _check_graph(v, what)
        return
    if isinstance(v, bool) or _is_int(v):
        return
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _Bad(f"{what} is not a finite number")
        return
    if isinstance(v, (list, dict)):
        if isinstance(v, dict) and not objects:
            raise _Bad(f"{what} is an object")
        if depth >= MAX_TRACE_VALUE_DEPTH:
            raise _Bad(f"{what} is nested more than {MAX_TRACE_VALUE_DEPTH} levels deep")
        for k, item in (v.items() if isinstance(v, dict) else enumerate(v)):
            _check_value(item, f"{what}[{json.dumps(k)[:20] if isinstance(k, str) else k}]", depth + 1,
                         objects=objects)
        return
    raise _Bad(f"{what} is {_kind(v)}")


def _check_trace(trace) -> None:
    if not (isinstance(trace, list) and len(trace) == 2 and all(isinstance(t, list) for t in trace)):
        raise _Bad(f"the record's trace is {_kind(trace)}, not [instructions, decisions]")
    insts, decisions = trace
    for k, inst in enumerate(insts):
        what = f"trace instruction {k}"
        if not (isinstance(inst, list) and len(inst) == 4):
            raise _Bad(f"{what} is not [kind, inputs, attributes, outputs]")
        kind, inputs, attrs, outputs = inst
        if not isinstance(kind, str) or not _NAME.fullmatch(kind):
            raise _Bad(f"{what}'s kind {json.dumps(kind)[:40]} is not an instruction name")
        what = f"{what} ({kind})"
        for part, name in ((inputs, "inputs"), (attrs, "attributes"), (outputs, "outputs")):
            if not isinstance(part, list):
                raise _Bad(f"{what}'s {name} are {_kind(part)}, not a list")
        for j, v in enumerate(inputs):
            _check_value(v, f"{what}'s input {j}", objects=True)
        for j, v in enumerate(attrs):
            _check_value(v, f"{what}'s attribute {j}", null_ok=(kind, j) in _NULL_ATTRS)
        for j, v in enumerate(outputs):
            if not isinstance(v, str) or not _NAME.fullmatch(v):
                raise _Bad(f"{what}'s output {j} is {_kind(v)}, not a variable name")
    for k, entry in enumerate(decisions):
        what = f"trace decision {k}"
        if not (isinstance(entry, list) and len(entry) == 2):
            raise _Bad(f"{what} is not [instruction index, decision]")
        index, decision = entry
        if not _is_int(index) or not 0 <= index < len(insts):
            raise _Bad(f"{what} names instruction {json.dumps(index)[:40]}; the trace has {len(insts)}")
        if not (_is_int(decision) or isinstance(decision, list) and all(_is_int(d) for d in decision)):
            raise _Bad(f"{what} is {_kind(decision)}, not an integer or a list of integers")


def _check_record_line(value) -> None:
    body = value[1]
    if not (isinstance(body, list) and len(body) == 4):
        raise _Bad("the record is not [trace, run_secs, target, args_info]")
    trace, run_secs, target, args_info = body
    _check_trace(trace)
    if run_secs is not None and not (isinstance(run_secs, list) and all(_is_number(t) for t in run_secs)):
        raise _Bad("the record's run_secs is not null or a list of numbers")
    if target is not None:
        if not isinstance(target, dict):
            raise _Bad(f"the record's target is {_kind(target)}, not an object")
        for key, v in target.items():
            _check_value(v, f"the record's target option {json.dumps(key)[:40]}", depth=2, objects=True)
    if args_info is not None:
        if not isinstance(args_info, list):
            raise _Bad(f"the record's args_info is {_kind(args_info)}, not a list")
        for k, arg in enumerate(args_info):
            if not (isinstance(arg, list) and len(arg) == 3 and arg[0] == "TENSOR" and isinstance(arg[1], str)
                    and _DTYPE.fullmatch(arg[1]) and isinstance(arg[2], list)
                    and all(_is_int(d) and d >= 0 for d in arg[2])):
                raise _Bad(f"the record's args_info {k} is not [\"TENSOR\", dtype, [dimension, ...]]")


def check_database(workloads: Path, records: Path) -> dict:
    """Every line of a MetaSchedule JSON database checked against the shape TVM 0.27 writes (see the module
    docstring) before TVM's own reader, which trusts it, sees it: ``{"workloads": n, "records": m}``, or a
    one-line EdgeAVSError naming the file, the line and what is wrong."""
    counts = {"workloads": 0, "records": 0}
    for path, kind, check in ((workloads, "workload", _check_workload_line),
                              (records, "record", _check_record_line)):
        if not path.exists():
            continue
        n = _check_lines(path, kind, counts["workloads"] if kind == "record" else None, check=check)
        counts["workloads" if kind == "workload" else "records"] = n
    return counts


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
    if fp.get("precision", "fp32") not in PRECISIONS:
        raise EdgeAVSError(f"{path}: \"precision\" must be one of {', '.join(PRECISIONS)}")
    cost = fp.get("cost", MEASURED)
    if not isinstance(cost, dict) or cost.get("source") not in ("measured", "projected") or (
            cost["source"] == "projected" and not all(isinstance(cost.get(k), str) and cost[k].isprintable()
                                                       and len(cost[k]) <= 200 for k in ("cpu", "model"))):
        raise EdgeAVSError(f"{path}: \"cost\" must be {{\"source\": \"measured\"}} or {{\"source\": "
                           "\"projected\", \"cpu\": ..., \"model\": ...}")
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

    def check_target(self, target, precision: str = "fp32") -> dict:
        """Refuse records made for another target, another LLVM/TVM or another precision (one line)."""
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
        have = fp.get("precision", "fp32")
        if have != precision:
            raise EdgeAVSError(f"{self.path}: records were tuned for a {have} build, this is {precision}; tune "
                               f"the {precision} build into its own records directory")
        return fp

    def info(self) -> dict:
        """What the manifest and ``compile --records`` say of these records: counts, target, precision, cost."""
        fp = self.fingerprint()
        return {"path": str(self.path), **self.validate(), "target_fingerprint": fp["target_fingerprint"],
                "precision": fp.get("precision", "fp32"), "cost": cost_of(fp)}

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
        """``{workload key: entry}`` from ``edgeavs_knobs.json`` (see ``edgeavs.compiler.knobs``), every config
        checked against its kind's knobs; a file that does not parse or holds an invalid knob value is a
        one-line error naming the file."""
        if not self.knobs_path.exists():
            return {}
        from edgeavs.compiler.knobs import check_entries

        return check_entries(load_json(self.knobs_path, "", max_bytes=MAX_KNOBS_BYTES), self.knobs_path)

    def write_knobs(self, functions: dict) -> None:
        """Replace ``edgeavs_knobs.json`` atomically with ``functions`` (``{workload key: entry}``)."""
        from edgeavs.compiler.knobs import FORMAT as KNOBS_FORMAT

        atomic_write_text(self.knobs_path, json.dumps({"format": KNOBS_FORMAT, "functions": functions},
                                                      indent=1, sort_keys=True) + "\n")

    def open(self, target, precision: str = "fp32") -> "RecordsDir":
        """An existing directory, checked against ``target`` and ``precision`` and validated."""
        if not self.path.is_dir():
            raise EdgeAVSError(f"{self.path}: records directory not found")
        self.check_target(target, precision)
        self.validate()
        return self

    def create_or_resume(self, target, cost: dict | None = None, precision: str = "fp32") -> bool:
        """Start a directory for ``target`` or continue one; returns True when resuming. ``cost``: this run's
        cost source (:data:`MEASURED` by default, or :func:`projected_cost`); a directory of the other kind, or
        projected on another CPU, is refused: measured and projected records are never mixed."""
        cost = dict(cost or MEASURED)
        if self.path.exists() and not self.path.is_dir():
            raise EdgeAVSError(f"{self.path}: exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not self.exists():
                raise EdgeAVSError(f"{self.path}: exists, is not empty and holds no edgeavs records")
            self.open(target, precision)
            have = cost_of(self.fingerprint())
            if (have.get("source"), have.get("cpu")) != (cost.get("source"), cost.get("cpu")):
                raise EdgeAVSError(f"{self.path}: holds {describe_cost(have)} records; this run's are "
                                   f"{describe_cost(cost)}: the two are not mixed, tune into another directory")
            return True
        if not self.path.parent.is_dir():
            raise EdgeAVSError(f"{self.path}: parent directory {self.path.parent} does not exist")
        self.path.mkdir(exist_ok=True)
        atomic_write_text(self.path / FINGERPRINT,
                          json.dumps(make_fingerprint(target, cost, precision), indent=1))
        return False

    # --- snapshots -----------------------------------------------------------------
    def check_database(self) -> dict:
        """Every database line checked for what TVM's reader trusts (:func:`check_database`)."""
        return check_database(self.workloads, self.records)

    def seed_workdir(self, workdir: Path) -> None:
        """Copy the database (checked first: MetaSchedule reads it there) into a scratch directory that
        MetaSchedule may append to."""
        self.check_database()
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
        self.check_database()
        try:
            return ms.database.JSONDatabase(path_workload=str(self.workloads),
                                            path_tuning_record=str(self.records),
                                            allow_missing=False)
        except Exception as exc:  # TVM's own parse of an entry that has the right outline but not the content
            lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            raise EdgeAVSError(f"{self.path}: MetaSchedule cannot read the tuning database "
                               f"({lines[-1][:200] if lines else type(exc).__name__}); delete the records "
                               "directory or restore it") from None


def apply_records(mod, tvm_target, records_dir):
    """Replace the fused TIR functions that have records with their best schedules (the pipeline's
    ``apply-records`` phase)."""
    from edgeavs.tvm_api import relax_transform

    rec = RecordsDir(records_dir)
    if not rec.workloads.exists():
        return mod  # knob records only (no MetaSchedule round ran): nothing for MetaSchedule to apply
    db = rec.database()
    with tvm_target, db:
        return relax_transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)

