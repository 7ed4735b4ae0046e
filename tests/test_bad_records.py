"""MetaSchedule database lines that TVM's own reader trusts: each damaged one is a one-line EdgeAVSError naming the
file and line before TVM sees it (a null where TVM expects a string, a decision index past the instructions, a
module nested 100000 deep ended the process with SIGSEGV), and a database as MetaSchedule writes it still loads.

The base database is real: a one-workload JSONDatabase written by TVM, whose record's trace has what tuning
writes (sampled tiles and a categorical with their decisions, a cache write, annotations, the postprocessing
marker, a layout transform with ``pad_value=None``) and args_info."""

from __future__ import annotations

import base64
import copy
import json
import struct

import pytest

from edgeavs.compiler import records as records_mod
from edgeavs.compiler.records import RecordsDir
from edgeavs.errors import EdgeAVSError
from edgeavs.targets import load_target

DEEP = 100_000


@pytest.fixture(scope="module")
def host():
    return load_target("host")


def _workload_mod():
    from edgeavs.tvm_api import IRModule, te

    a = te.placeholder((64, 32), name="A")
    b = te.compute((64, 32), lambda i, j: a[i, j] * 2.0, name="B")
    return IRModule({"main": te.create_prim_func([a, b])})


@pytest.fixture(scope="module")
def real_db(tmp_path_factory, host):
    """``(records directory, workload line, record line)``: what TVM wrote, parsed."""
    from edgeavs.tvm_api import meta_schedule as ms
    from edgeavs.tvm_api import s_tir

    rec = RecordsDir(tmp_path_factory.mktemp("real") / "rec")
    rec.create_or_resume(host)
    mod = _workload_mod()
    db = ms.database.JSONDatabase(work_dir=str(rec.path))
    workload = db.commit_workload(mod)
    sch = s_tir.Schedule(mod)
    block = sch.get_sblock("B")
    i, j = sch.get_loops(block)
    outer, _inner = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=16))
    sch.parallel(outer)
    sch.cache_write(block, 0, "global")
    sch.annotate(block, "meta_schedule.unroll_explicit", sch.sample_categorical([0, 16, 64], [0.5, 0.25, 0.25]))
    sch.annotate(block, "meta_schedule.tiling_structure", "SSR")
    sch.enter_postproc()
    sch.transform_layout(block, ("read", 0), lambda x, y: (y, x))
    sch.vectorize(j)
    args = ms.arg_info.ArgInfo.from_prim_func(mod["main"])
    db.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, run_secs=[1.5e-6, 1e10],
                                                     target=host.to_tvm(), args_info=args))
    workload_line = json.loads(rec.workloads.read_text())
    record_line = json.loads(rec.records.read_text())
    return rec, workload_line, record_line


def _copy(real_db, tmp_path, workload=None, record=None):
    """A copy of the real directory with the workload and/or record line replaced (a value or raw text)."""
    import shutil

    rec = RecordsDir(tmp_path / "rec")
    shutil.copytree(real_db[0].path, rec.path)
    for path, line in ((rec.workloads, workload), (rec.records, record)):
        if line is not None:
            path.write_text((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return rec


def _insts(record_line):
    return record_line[1][0][0]


def _index(record_line, kind):
    return next(k for k, inst in enumerate(_insts(record_line)) if inst[0] == kind)


def _refused(rec, path, needle):
    """rec.database() refuses in one line naming ``path`` line 1; returns the message."""
    with pytest.raises(EdgeAVSError) as exc:
        rec.database()
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: line 1 is not a MetaSchedule "), msg
    assert needle in msg, (needle, msg)
    return msg


def _payload(body: bytes, length: int | None = None) -> str:
    return base64.b64encode(struct.pack("<Q", len(body) if length is None else length) + body).decode()


# ------------------------------------------------------------------ what TVM writes loads

def test_a_real_database_loads_and_applies(real_db, host):
    rec, _, record_line = real_db
    kinds = [inst[0] for inst in _insts(record_line)]
    for kind in ("SamplePerfectTile", "SampleCategorical", "CacheWrite", "EnterPostproc", "TransformLayout"):
        assert kind in kinds
    assert len(record_line[1][0][1]) == 2  # two decisions
    assert _insts(record_line)[_index(record_line, "TransformLayout")][2][2] is None  # pad_value=None
    assert record_line[1][3] and record_line[1][3][0][0] == "TENSOR"
    assert RecordsDir(rec.path).open(host).check_database() == {"workloads": 1, "records": 1}
    db = rec.database()
    (r,) = db.get_all_tuning_records()
    assert db.query_ir_module(_workload_mod(), host.to_tvm(), "main") is not None
    assert "transform_layout" in str(r.trace)


def test_the_fuzz_seed_database_loads(tmp_path, host):
    """The one-workload database the fuzzer starts from (tests/fuzz/seeds.py: target null args_info)."""
    from tests.fuzz.seeds import build_records

    build_records(tmp_path)
    rec = RecordsDir(tmp_path).open(host)
    assert rec.check_database() == {"workloads": 1, "records": 1}
    assert len(rec.database().get_all_tuning_records()) == 1


# ------------------------------------------------------------------ workload payloads

@pytest.mark.parametrize("make, needle", [
    # the fuzzer's case (database kind, seed 1, case 99): a payload of lists nested 100000 deep
    (lambda w: _payload(("[" * DEEP + "]" * DEEP).encode()), "the workload's module is nested more than 16 levels"),
    (lambda w: _payload(json.dumps({"root_index": 0, "nodes": [{"type": "ffi.Array", "data": [[[[[[[[[[[[[[[[[[
        0]]]]]]]]]]]]]]]]]]}]}).encode()), "the workload's module is nested more than 16 levels"),
    (lambda w: "@@@@" + w[1][4:], "the workload's module is not valid base64"),
    (lambda w: w[1][:10] + "\n" + w[1][10:], "the workload's module is not valid base64"),
    (lambda w: base64.b64encode(base64.b64decode(w[1])[8:]).decode(), "the workload's module says it is "),
    (lambda w: _payload(base64.b64decode(w[1])[8:], length=2 ** 62), "says it is 4611686018427387904 bytes long"),
    (lambda w: base64.b64encode(b"abcd").decode(), "is 4 bytes, shorter than its 8-byte length"),
    (lambda w: _payload(b'{"root_index": 0, "nodes": [{"type": "x"}'), "the workload's module is not valid JSON"),
    (lambda w: _payload(b"\xff\xfe"), "the workload's module is not UTF-8 text"),
    (lambda w: _payload(b'{"root_index": 3, "nodes": [{"type": "None"}]}'), "is not a TVM object graph"),
    (lambda w: _payload(b'{"root_index": 0, "nodes": [{"data": 1}]}'), "node 0 is not an object with a \"type\""),
    (lambda w: 7, "the workload's module is a number, not a base64 string"),
], ids=["deep-100000", "deep-18", "not-base64", "newline", "no-length-header", "length-header-huge", "short",
        "truncated-json", "not-utf8", "root-outside", "node-without-type", "not-a-string"])
def test_bad_workload_payloads(real_db, tmp_path, make, needle):
    w = list(real_db[1])
    w[1] = make(w)
    rec = _copy(real_db, tmp_path, workload=w)
    msg = _refused(rec, rec.workloads, needle)
    assert "workload entry as TVM writes it: " in msg and len(msg) < 400


def test_workload_payload_size_and_hash(real_db, tmp_path, monkeypatch):
    w = list(real_db[1])
    rec = _copy(real_db, tmp_path, workload=["0x1", w[1]])
    _refused(rec, rec.workloads, 'structural hash "0x1" is not a decimal number')
    rec.workloads.write_text(json.dumps(w) + "\n")
    assert rec.check_database() == {"workloads": 1, "records": 1}
    monkeypatch.setattr(records_mod, "PAYLOAD_MAX_BYTES", 1024)  # the real one holds ~20 KiB
    _refused(rec, rec.workloads, "the workload's module is larger than 1 KiB")


def test_a_refused_database_is_not_copied_for_a_tune(real_db, tmp_path):
    """The tune's resume path (seed_workdir, then MetaSchedule's own reader) checks it too."""
    r = copy.deepcopy(real_db[2])
    _insts(r)[0][2][0] = None  # GetSBlock's block name
    rec = _copy(real_db, tmp_path, record=r)
    work = tmp_path / "scratch"
    work.mkdir()
    with pytest.raises(EdgeAVSError, match=r"line 1 is not a MetaSchedule record entry as TVM writes it: trace "
                                           r"instruction 0 \(GetSBlock\)'s attribute 0 is null"):
        rec.seed_workdir(work)
    assert not list(work.iterdir())


# ------------------------------------------------------------------ record lines

def _case_118(r):
    """The fuzzer's case (database kind, seed 1, case 118): GetSBlock's block name replaced by a copy of the
    whole record body."""
    _insts(r)[0][2][0] = copy.deepcopy(r[1])


def _set(path, value):
    def mutate(r):
        node = r
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    return mutate


def _inst(kind, part, index, value):
    def mutate(r):
        _insts(r)[_index(r, kind)][part][index] = value

    return mutate


def _decision(k, value=None, index=None):
    def mutate(r):
        entry = r[1][0][1][k]
        if index is not None:
            entry[0] = index
        else:
            entry[1] = value

    return mutate


@pytest.mark.parametrize("mutate, needle", [
    (_case_118, "trace instruction 0 (GetSBlock)'s attribute 0"),
    (_inst("GetSBlock", 2, 0, None), "trace instruction 0 (GetSBlock)'s attribute 0 is null"),
    (_inst("GetSBlock", 2, 1, [None]), "(GetSBlock)'s attribute 1[0] is null"),
    (_inst("SampleCategorical", 2, 1, [None, None, None]), "(SampleCategorical)'s attribute 1[0] is null"),
    (_inst("SampleCategorical", 2, 0, [[[[1]]]]), "(SampleCategorical)'s attribute 0[0][0][0] is nested more than 4"),
    (_inst("Annotate", 2, 0, None), "(Annotate)'s attribute 0 is null"),
    (_inst("Annotate", 2, 0, {"k": 1}), "(Annotate)'s attribute 0 is an object"),
    (_inst("Annotate", 1, 1, None), "(Annotate)'s input 1 is null"),
    (_inst("CacheWrite", 1, 1, [None]), "(CacheWrite)'s input 1[0] is null"),
    (_inst("TransformLayout", 1, 1, "{" + "[" * DEEP + "]" * DEEP + "}"), "(TransformLayout)'s input 1 is not valid"),
    (_inst("TransformLayout", 1, 1, json.dumps({"root_index": 0, "nodes": [[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]})),
     "(TransformLayout)'s input 1 is nested more than 16 levels deep"),
    (_inst("TransformLayout", 2, 0, None), "(TransformLayout)'s attribute 0 is null"),
    (_inst("Split", 3, 0, None), "(Split)'s output 0 is null, not a variable name"),
    (_inst("Split", 3, 0, 5), "(Split)'s output 0 is a number, not a variable name"),
    (_set([1, 0, 0, 0, 0], None), "trace instruction 0's kind null is not an instruction name"),
    (_set([1, 0, 0, 0, 1], None), "trace instruction 0 (GetSBlock)'s inputs are null, not a list"),
    (_set([1, 0, 0, 0], ["GetSBlock", [], ["B", "main"]]), "trace instruction 0 is not [kind, inputs, attributes"),
    (_decision(0, index=99), "trace decision 0 names instruction 99; the trace has "),
    (_decision(0, index=-1), "trace decision 0 names instruction -1"),
    (_decision(0, index=True), "trace decision 0 names instruction true"),
    (_decision(0, value=None), "trace decision 0 is null, not an integer or a list of integers"),
    (_decision(0, value=[None, 1]), "trace decision 0 is a list, not an integer or a list of integers"),
    (_decision(1, value=1.5), "trace decision 1 is a number, not an integer"),
    (_set([1, 0, 1, 0], [4]), "trace decision 0 is not [instruction index, decision]"),
    (_set([1, 0], [[], [], []]), "the record's trace is a list, not [instructions, decisions]"),
    (_set([1, 0], None), "the record's trace is null, not [instructions, decisions]"),
    (_set([1, 1], [None]), "the record's run_secs is not null or a list of numbers"),
    (_set([1, 1], ["1e-5"]), "the record's run_secs is not null or a list of numbers"),
    (_set([1, 2], 5), "the record's target is a number, not an object"),
    (_set([1, 2, "mcpu"], None), "the record's target option \"mcpu\" is null"),
    (_set([1, 3], [["TENSOR", "float32", [None, 32]]]), "the record's args_info 0 is not [\"TENSOR\", dtype"),
    (_set([1, 3], [None]), "the record's args_info 0 is not"),
    (_set([1, 3], {"a": 1}), "the record's args_info is an object, not a list"),
    (lambda r: r[1].append(None), "the record is not [trace, run_secs, target, args_info]"),
    (lambda r: r[1].pop(), "the record is not [trace, run_secs, target, args_info]"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_record_lines(real_db, tmp_path, mutate, needle):
    r = copy.deepcopy(real_db[2])
    mutate(r)
    rec = _copy(real_db, tmp_path, record=r)
    msg = _refused(rec, rec.records, needle)
    assert "record entry as TVM writes it: " in msg and len(msg) < 400


@pytest.mark.parametrize("mutate", [_set([1, 1], None), _set([1, 2], None), _set([1, 3], None), _set([1, 3], []),
                                    _set([1, 1], [1e10])], ids=["no-run-secs", "no-target", "no-args-info",
                                                                "empty-args-info", "run-secs-int"])
def test_record_variants_tvm_writes_are_accepted(real_db, tmp_path, mutate):
    """Optional parts left out (TVM writes null), and the stub time of a failed run (an integer)."""
    r = copy.deepcopy(real_db[2])
    mutate(r)
    rec = _copy(real_db, tmp_path, record=r)
    assert rec.check_database() == {"workloads": 1, "records": 1}
    assert len(rec.database().get_all_tuning_records()) == 1
