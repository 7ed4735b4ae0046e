"""Configuration files and numbers never crash the tool: each bad one is a one-line EdgeAVSError naming the
file or option (deep nesting, bad target values, resolutions, damaged checkpoints), and seeded mutations of
target YAMLs and records files end accepted or as EdgeAVSError, nothing else."""

from __future__ import annotations

import json
import random

import pytest
import torch
import yaml

from edgeavs.compiler.build import MAX_SIDE, check_resolution, parse_resolution
from edgeavs.errors import EdgeAVSError
from edgeavs.io.structured import MAX_DEPTH, load_json, load_yaml, loads_json
from edgeavs.targets import ALLOWED_KEYS, VECTOR_WIDTHS, load_target, targets_dir
from edgeavs.compiler.records import FINGERPRINT, RECORDS, WORKLOADS, RecordsDir

DEEP = 100_000  # far past both MAX_DEPTH and Python's recursion limit


def _one_line(exc: pytest.ExceptionInfo, *needles) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg, msg
    for n in needles:
        assert str(n) in msg, (n, msg)
    return msg


# ------------------------------------------------------------------ io.structured

@pytest.mark.parametrize("text, problem", [
    ("[" * DEEP + "]" * DEEP, f"nested more than {MAX_DEPTH} levels deep"),
    ('{"a":' * DEEP + "1" + "}" * DEEP, f"nested more than {MAX_DEPTH} levels deep"),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
    ('{"a": [1, 2', "not valid JSON at line 1"),
    ("1" * 5000, "a number with more than 4300 digits"),
], ids=["deep-list", "deep-object", "one-too-deep", "truncated", "5000-digits"])
def test_json_loaders_refuse_in_one_line(tmp_path, text, problem):
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(EdgeAVSError) as exc:
        load_json(p, "knob file")
    assert _one_line(exc, problem).startswith(f"knob file {p} is ")
    with pytest.raises(EdgeAVSError) as exc:
        load_json(p)
    assert _one_line(exc, problem).startswith(f"{p}: ")
    with pytest.raises(EdgeAVSError) as exc:
        loads_json(text, f"{p}: line 7")
    assert _one_line(exc, problem).startswith(f"{p}: line 7 is ")


def test_json_at_the_depth_limit_is_accepted(tmp_path):
    p = tmp_path / "ok.json"
    p.write_text("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    value = load_json(p)
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize("text, problem", [
    ("a: " + "[" * DEEP + "]" * DEEP + "\n", "nested more than"),
    ("a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n", "nested more than"),
    ("- " * 3000 + "x\n", "nested more than"),
    ("a: &a [*a]\n", "nested more than"),  # an alias to itself: a cyclic list
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh")), "too large"),
    ("kind: llvm\nmattr: [+neon\n", "not valid YAML at line 3"),
    ("d: 2024-13-45\n", "not valid YAML: month must be in 1..12"),
    ("n: " + "9" * 5000 + "\n", "a number with more than 4300 digits"),
    ("x: !!python/object:os.system [ls]\n", "not valid YAML"),
], ids=["deep-flow", "deep-mapping", "deep-block", "self-alias", "alias-bomb", "truncated", "bad-date",
        "5000-digits", "python-tag"])
def test_yaml_loader_refuses_in_one_line(tmp_path, text, problem):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(EdgeAVSError) as exc:
        load_yaml(p, "target file")
    assert _one_line(exc, problem).startswith(f"target file {p} is ")


def test_unreadable_too_large_and_binary_files(tmp_path):
    with pytest.raises(EdgeAVSError) as exc:
        load_yaml(tmp_path, "target file")
    _one_line(exc, f"cannot read target file {tmp_path}: ")
    with pytest.raises(EdgeAVSError) as exc:
        load_json(tmp_path / "missing.json", "knob file")
    _one_line(exc, f"cannot read knob file {tmp_path / 'missing.json'}: No such file")
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(EdgeAVSError) as exc:
        load_json(big, "", max_bytes=1024)
    _one_line(exc, f"{big}: larger than 1 KiB")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(EdgeAVSError) as exc:
        load_yaml(binary, "target file")
    _one_line(exc, f"target file {binary} is not UTF-8 text (byte 6)")


# ------------------------------------------------------------------ targets

BASE = {"name": "board", "description": "a test board", "kind": "llvm", "mtriple": "aarch64-linux-gnu",
        "mcpu": "cortex-a76", "mattr": ["+neon", "+dotprod"], "num-cores": 4, "vector_width": 128,
        "link": "cross", "cross_cc": "aarch64-linux-gnu-gcc"}


def _target_file(tmp_path, data, name="board.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_the_base_target_and_the_shipped_ones_load(tmp_path):
    t = load_target(_target_file(tmp_path, BASE))
    assert (t.num_cores, t.vector_width, t.mattr) == (4, 128, ("+neon", "+dotprod"))
    for name in ("host", "aarch64-linux", "snapdragon8elite"):
        assert load_target(name).name == name
    assert load_target(_target_file(tmp_path, {**BASE, "num-cores": 1024, "vector_width": 512})).num_cores == 1024


@pytest.mark.parametrize("key, value, needle", [
    ("num-cores", 0, "num-cores must be a positive integer (at most 1024)"),
    ("num-cores", -3, "num-cores must be a positive integer"),
    ("num-cores", 1025, "num-cores must be a positive integer (at most 1024)"),
    ("num-cores", 10**23, "num-cores must be a positive integer"),
    ("num-cores", 1e23, "num-cores must be a positive integer"),
    ("num-cores", 4.0, "num-cores must be a positive integer"),
    ("num-cores", True, "num-cores must be a positive integer"),
    ("num-cores", "1e23", "num-cores must be a positive integer"),
    ("num-cores", [4], "num-cores must be a positive integer"),
    ("num-cores", None, "num-cores must be a positive integer or 'auto', not null (leave the key out for auto)"),
    ("vector_width", 1_000_000_000_000, "vector_width must be the SIMD register width in bits"),
    ("vector_width", 96, "one of " + ", ".join(map(str, VECTOR_WIDTHS))),
    ("vector_width", 0, "vector_width must be"),
    ("vector_width", -128, "vector_width must be"),
    ("vector_width", 128.0, "vector_width must be"),
    ("vector_width", False, "vector_width must be"),
    ("vector_width", "128", "vector_width must be"),
    ("name", 7, "'name' must be a non-empty string"),
    ("name", "", "'name' must be a non-empty string"),
    ("name", "../../etc", "'name' '../../etc' must be letters, digits"),
    ("name", "a" * 65, "'name' is 65 characters long; at most 64"),
    ("description", ["a"], "'description' must be a non-empty string"),
    ("description", "two\nlines", "'description' 'two\\nlines' must be one line of text"),
    ("kind", "cuda", "kind 'cuda' is not supported"),
    ("kind", 3, "'kind' must be a non-empty string"),
    ("mtriple", 64, "'mtriple' must be a non-empty string"),
    ("mtriple", "aarch64 linux", "must be an LLVM triple"),
    ("mtriple", "x" * 200, "'mtriple' is 200 characters long; at most 128"),
    ("mcpu", {"a": 1}, "'mcpu' must be a non-empty string"),
    ("mcpu", "cortex a76", "must be an LLVM CPU name"),
    ("mattr", "+neon", "mattr must be a list"),
    ("mattr", [1], "mattr must be a list"),
    ("mattr", ["neon"], "mattr must be a list"),
    ("mattr", ["+ne on"], "mattr must be a list"),
    ("mattr", [f"+f{i}" for i in range(65)], "mattr has 65 features; at most 64"),
    ("link", "usb", "link 'usb' is not one of"),
    ("link", 1, "'link' must be a non-empty string"),
    ("cross_cc", ["gcc"], "'cross_cc' must be a non-empty string"),
    ("cross_cc", "gcc\n-x", "'cross_cc' 'gcc\\n-x' must be one line of text"),
    ("cores", 8, "unknown key(s) 'cores'; allowed: " + ", ".join(ALLOWED_KEYS)),
    (3, "x", "unknown key(s) '3'"),
    (None, "x", "unknown key(s) 'None'"),
])
def test_bad_target_values_name_the_key(tmp_path, key, value, needle):
    p = _target_file(tmp_path, {**BASE, key: value})
    with pytest.raises(EdgeAVSError) as exc:
        load_target(p)
    assert _one_line(exc, needle).startswith(f"target {p}: ")


@pytest.mark.parametrize("key", ALLOWED_KEYS)
def test_an_explicit_null_is_refused_naming_the_key(tmp_path, key):
    """``key: null`` is never read as the key's default (``mcpu: null`` reached LLVM as None: a TypeError)."""
    p = _target_file(tmp_path, {**BASE, key: None})
    with pytest.raises(EdgeAVSError) as exc:
        load_target(p)
    msg = _one_line(exc, f"target {p}: {key} must be ", ", not null (")
    assert msg.endswith("(it is required)" if key == "kind" else ")"), msg


@pytest.mark.parametrize("line", ["mcpu: null", "mcpu:", "mcpu: ~"])
def test_host_yaml_with_a_null_mcpu(tmp_path, line):
    """The fuzzer's case (target kind, seed 1, case 262): the shipped host.yaml with ``mcpu: null``."""
    from edgeavs.targets import target_from_dict

    text = (targets_dir() / "host.yaml").read_text()
    assert "\nmcpu: native" in text
    p = tmp_path / "host.yaml"
    p.write_text("\n".join(line if ln.startswith("mcpu:") else ln for ln in text.splitlines()) + "\n")
    with pytest.raises(EdgeAVSError) as exc:
        load_target(p)
    assert _one_line(exc) == (f"target {p}: mcpu must be a string, not null "
                              "(leave the key out for native, the host CPU)")
    with pytest.raises(EdgeAVSError) as exc:
        target_from_dict({"kind": "llvm", "mcpu": None})
    _one_line(exc, "target <dict>: mcpu must be a string, not null")
    p.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("mcpu:")) + "\n")
    assert load_target(p).mcpu == load_target("host").mcpu  # absent: the default (native)


def test_deeply_nested_target_file(tmp_path):
    p = tmp_path / "deep.yaml"
    p.write_text("kind: llvm\nmattr: " + "[" * DEEP + "]" * DEEP + "\n")
    with pytest.raises(EdgeAVSError) as exc:
        load_target(p)
    _one_line(exc, f"target file {p} is nested more than {MAX_DEPTH} levels deep")


def test_unreasonable_target_names(tmp_path):
    with pytest.raises(EdgeAVSError) as exc:
        load_target("a" * 5000 + ".yaml")
    assert len(_one_line(exc, "cannot be looked up")) < 300
    with pytest.raises(EdgeAVSError) as exc:
        load_target("x" * 5000)
    assert len(_one_line(exc, "unknown target")) < 400
    p = tmp_path / "my board.yaml"  # no name: the file name must be one
    p.write_text(yaml.safe_dump({k: v for k, v in BASE.items() if k != "name"}))
    with pytest.raises(EdgeAVSError) as exc:
        load_target(p)
    _one_line(exc, "no 'name', and the file name 'my board' is not one")


# ------------------------------------------------------------------ resolutions

@pytest.mark.parametrize("text, size", [("224", (224, 224)), ("720x1280", (720, 1280)), (" 64 X 32 ", (64, 32)),
                                        (str(MAX_SIDE), (MAX_SIDE, MAX_SIDE)), ([64, 48], (64, 48))])
def test_resolutions_accepted(text, size):
    assert parse_resolution(text) == size


@pytest.mark.parametrize("text, needle", [
    ("100000", "resolution 100000x100000: sides above 4096 are refused (memory grows with the pixels"),
    ("4097x16", "resolution 4097x16: sides above 4096 are refused"),
    ("16x5000", "resolution 16x5000: sides above 4096 are refused"),
    ("9" * 5000, "sides above 4096 are refused"),
    ("0", "resolution 0x0: sides must be positive"),
    ("64x0", "resolution 64x0: sides must be positive"),
    ("-64", "resolution '-64' is not N or HxW"),
    ("64x-64", "is not N or HxW"),
    ("2.5e3", "is not N or HxW"),
    ("big", "resolution 'big' is not N or HxW"),
    ("", "is not N or HxW"),
    ([64], "is not a pair of integers"),
    ([64, 64.0], "is not a pair of integers"),
    ((True, 64), "is not a pair of integers"),
    ([-16, 64], "resolution -16x64: sides must be positive"),
    ([64, 10**9], "sides above 4096 are refused"),
])
def test_resolutions_refused(text, needle):
    with pytest.raises(EdgeAVSError) as exc:
        parse_resolution(text)
    _one_line(exc, needle)
    with pytest.raises(EdgeAVSError) as exc:  # compile, tune and export-onnx go through check_resolution
        check_resolution(text, "tiny")
    _one_line(exc, needle)


def test_big_resolution_message_says_why():
    with pytest.raises(EdgeAVSError) as exc:
        parse_resolution("100000")
    _one_line(exc, "~6 GiB at 4096x4096", "112 GiB")
    with pytest.raises(EdgeAVSError) as exc:
        check_resolution("200", "tiny")
    _one_line(exc, "multiples of 16")


# ------------------------------------------------------------------ checkpoints

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from edgeavs.model import build_model, save_checkpoint

    path = tmp_path_factory.mktemp("ck") / "tiny.pt"
    model = build_model("tiny", seed=0)
    save_checkpoint(model, path, epoch=1)
    return path, torch.load(path, weights_only=True)


def _mutated(obj, how):
    obj = dict(obj, state_dict=dict(obj["state_dict"]))
    sd = obj["state_dict"]
    first = next(iter(sd))
    if how == "no-variant":
        del obj["variant"]
    elif how == "variant-int":
        obj["variant"] = 7
    elif how == "variant-unknown":
        obj["variant"] = "huge"
    elif how == "variant-list":
        obj["variant"] = ["tiny"]
    elif how == "fusion-unknown":
        obj["fusion"] = "magic"
    elif how == "fusion-int":
        obj["fusion"] = 0
    elif how == "no-state-dict":
        del obj["state_dict"]
    elif how == "state-dict-list":
        obj["state_dict"] = list(sd.values())
    elif how == "value-not-tensor":
        sd[first] = 1.5
    elif how == "key-not-str":
        sd[3] = sd.pop(first)
    elif how == "shape":
        sd[first] = torch.zeros(sd[first].numel() + 1)
    elif how == "dtype":
        sd[first] = sd[first].to(torch.int32)
    elif how == "complex":
        sd[first] = sd[first].to(torch.complex64)
    elif how == "missing-key":
        del sd[first]
    elif how == "extra-key":
        sd["extra.weight"] = torch.zeros(1)
    return obj


MUTATIONS = {"no-variant": 'without a "variant"', "variant-int": "checkpoint variant 7 is not one of",
             "variant-unknown": "checkpoint variant 'huge' is not one of tiny, small, base, large",
             "variant-list": "checkpoint variant ['tiny'] is not one of",
             "fusion-unknown": "checkpoint fusion 'magic' is not one of lightavseg, tpavi, avsegformer",
             "fusion-int": "checkpoint fusion 0 is not one of", "no-state-dict": 'without a "state_dict"',
             "state-dict-list": "weights are a list, expected a dict of tensors",
             "value-not-tensor": "is a float, not a tensor", "key-not-str": "have a key 3 that is not a string",
             "shape": "shape mismatch", "dtype": "wrong tensor type", "complex": "wrong tensor type",
             "missing-key": "missing keys", "extra-key": "unexpected keys ['extra.weight']"}


@pytest.mark.parametrize("how", list(MUTATIONS))
def test_damaged_checkpoint_dict_names_the_file(tmp_path, tiny, how):
    from edgeavs.model import load_checkpoint, read_checkpoint

    path = tmp_path / f"{how}.pt"
    torch.save(_mutated(tiny[1], how), path)
    with pytest.raises(EdgeAVSError) as exc:
        read_checkpoint(path)
        load_checkpoint(path)
    assert _one_line(exc, MUTATIONS[how]).startswith(f"{path}: ")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "half-zip", "tensor", "pickle"])
def test_unloadable_files_name_the_file(tmp_path, tiny, damage):
    from edgeavs.model import build_model, load_audio_weights, load_checkpoint, load_visual_weights

    good = tiny[0].read_bytes()
    path = tmp_path / f"{damage}.pt"
    if damage == "tensor":
        torch.save(torch.zeros(3), path)
    elif damage == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"format": "edgeavs-checkpoint/1", "x": object}, protocol=2))
    else:
        path.write_bytes({"garbage": b"\x80\x02not a checkpoint" * 10, "truncated": good[:len(good) // 2],
                          "empty": b"", "half-zip": good[:200]}[damage])
    model = build_model("tiny", seed=0) if damage == "garbage" else None
    loaders = [load_checkpoint] + ([lambda p: load_visual_weights(model, p), lambda p: load_audio_weights(model, p)]
                                   if model is not None else [])
    for load in loaders:
        with pytest.raises(EdgeAVSError) as exc:
            load(path)
        assert _one_line(exc).startswith(f"{path}: ")


def test_official_loaders_on_non_tensor_entries(tmp_path):
    from edgeavs.model import build_model, load_audio_weights, load_visual_weights

    model = build_model("tiny", seed=0)
    cases = {"ints.pth": {"model": {1: torch.zeros(1)}}, "values.pth": {"state_dict": {"a": [1, 2]}},
             "flat.pth": {"epoch": 600, "note": "x"}}
    for name, obj in cases.items():
        path = tmp_path / name
        torch.save(obj, path)
        for load in (load_visual_weights, load_audio_weights):
            with pytest.raises(EdgeAVSError) as exc:
                load(model, path)
            assert _one_line(exc).startswith(f"{path}: ")


# ------------------------------------------------------------------ records and knob files

@pytest.fixture(scope="module")
def host():
    return load_target("host")


def _records(tmp_path, host):
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(host)
    (rec.path / WORKLOADS).write_text(json.dumps(["0x1", {"root": 1}]) + "\n")
    (rec.path / RECORDS).write_text(json.dumps([0, [[], [1e-5], None, None]]) + "\n")
    rec.write_knobs({"conv1x1/0123456789abcdef": {"kind": "gemm", "config": GOOD_GEMM}})
    return rec


GOOD_GEMM = {"co_tile": 4, "pixel_vectors": 2, "lanes": 16, "parallel": "pixel", "pack": True}


@pytest.mark.parametrize("name", [FINGERPRINT, "knobs", WORKLOADS, RECORDS])
def test_deeply_nested_records_files(tmp_path, host, name):
    rec = _records(tmp_path, host)
    path = rec.knobs_path if name == "knobs" else rec.path / name
    path.write_text("[" * DEEP + "]" * DEEP + "\n")
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(host)
        rec.read_knobs()
    assert _one_line(exc, f"nested more than {MAX_DEPTH} levels deep").startswith(f"{path}")


@pytest.mark.parametrize("damage, needle", [
    ({"target_fingerprint": "abc"}, '"target_fingerprint" must be a sha256'),
    ({"target": [1]}, '"target" must be a target dict'),
    ({"llvm": "17\n18"}, '"llvm" must be a version string'),
    ({"tvm": 27}, '"tvm" must be a version string'),
])
def test_fingerprint_fields(tmp_path, host, damage, needle):
    rec = _records(tmp_path, host)
    path = rec.path / FINGERPRINT
    path.write_text(json.dumps({**json.loads(path.read_text()), **damage}))
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(host)
    assert _one_line(exc, needle).startswith(f"{path}: ")


@pytest.mark.parametrize("line, needle", [
    ([5, []], "line 1 is not a MetaSchedule record entry"),  # workload index out of range
    (["0", []], "line 1 is not a MetaSchedule record entry"),
    ([True, []], "line 1 is not a MetaSchedule record entry"),
])
def test_record_lines_point_at_a_workload(tmp_path, host, line, needle):
    rec = _records(tmp_path, host)
    (rec.path / RECORDS).write_text(json.dumps(line) + "\n")
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(host)
    _one_line(exc, needle)


@pytest.mark.parametrize("config, needle", [
    ({**GOOD_GEMM, "co_tile": 10**30}, "knob co_tile=1000000000000000000000000000000 is not a positive integer"),
    ({**GOOD_GEMM, "co_tile": 2**20 + 1}, "at most 1048576"),
    ({**GOOD_GEMM, "lanes": 1.5}, "knob lanes=1.5 is not a positive integer"),
    ({**GOOD_GEMM, "pack": 1}, "knob pack=1 is not true or false"),
    ({**GOOD_GEMM, "parallel": ["pixel"]}, "knob parallel=list is not one of pixel, channel"),
])
def test_knob_values_are_bounded(tmp_path, host, config, needle):
    rec = _records(tmp_path, host)
    rec.write_knobs({"conv1x1/0123456789abcdef": {"kind": "gemm", "config": config}})
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(host)
    assert _one_line(exc, needle).startswith(f"{rec.knobs_path}: ")


def test_database_tvm_cannot_parse(tmp_path, host):
    import base64
    import struct

    rec = _records(tmp_path, host)
    with pytest.raises(EdgeAVSError) as exc:  # the lines' outline is right, not what TVM writes inside them
        rec.database()
    assert _one_line(exc, "line 1 is not a MetaSchedule workload entry as TVM writes it: the workload's "
                          'structural hash "0x1" is not a decimal number').startswith(f"{rec.path / WORKLOADS}: ")
    (rec.path / WORKLOADS).write_text(json.dumps(["1", {"root": 1}]) + "\n")
    with pytest.raises(EdgeAVSError) as exc:
        rec.database()
    _one_line(exc, f"{rec.path / WORKLOADS}: line 1 is not a MetaSchedule workload entry as TVM writes it: the "
                   "workload's module is an object, not a base64 string")
    # a module in TVM's shape (an object graph) that TVM cannot build: TVM's own error, one line
    graph = json.dumps({"root_index": 0, "nodes": [{"type": "NoSuchType"}]}).encode()
    payload = base64.b64encode(struct.pack("<Q", len(graph)) + graph).decode()
    (rec.path / WORKLOADS).write_text(json.dumps(["1", payload]) + "\n")
    (rec.path / RECORDS).write_text("")
    with pytest.raises(EdgeAVSError) as exc:
        rec.database()
    assert _one_line(exc, "MetaSchedule cannot read the tuning database").startswith(f"{rec.path}: ")


def test_cli_refuses_a_huge_resolution_before_any_work(tmp_path):
    from click.testing import CliRunner

    from cli import main

    for command in (["compile", "-o", str(tmp_path / "a")], ["export-onnx", "-o", str(tmp_path / "m.onnx")]):
        r = CliRunner().invoke(main, command + ["--variant", "tiny", "--resolution", "100000"])
        assert r.exit_code == 1, r.output
        assert r.output.strip().splitlines()[-1].startswith(
            "Error: resolution 100000x100000: sides above 4096 are refused (memory grows with the pixels")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ seeded mutation loops

POOL = [0, -1, 1, 3, 64, 128, 1024, 1025, 2**31, 2**64, 10**23, 1e23, -0.5, float("nan"), float("inf"), True,
        False, None, "", " ", "auto", "native", "llvm", "x86_64", "+neon", "-sve", "a\nb", "\x00", "é" * 3,
        "x" * 300, "../..", [], [1], ["+neon"], ["neon"], [[["deep"]]], {}, {"a": 1}, {"kind": "llvm"}]


def _mutate_value(rng: random.Random, value):
    choice = rng.random()
    if choice < 0.7:
        return rng.choice(POOL)
    if choice < 0.85 and isinstance(value, int) and not isinstance(value, bool):
        return value * rng.choice([-1, 2, 1000, 10**12])
    nested = rng.choice(POOL)
    for _ in range(rng.choice([2, 70, 500])):
        nested = [nested]
    return nested


def _mutate_text(rng: random.Random, text: str) -> str:
    op = rng.randrange(5)
    i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
    if op == 0:
        return text[:i]  # truncated
    if op == 1:
        return text[:i] + text[j:]  # a span deleted
    if op == 2:
        return text[:i] + rng.choice(["[", "{", "&a ", "*a", "!!", ":", "- ", "\t", "'", '"', "\\u00", "\xff",
                                      "[" * 200, "1e999", "99999999999999999999999"]) + text[i:]
    if op == 3:
        return text[:i] + text[i:j][::-1] + text[j:]
    return text.replace(rng.choice([":", "[", "]", ",", "\n", "+", "-"]), rng.choice(["", ": ", "[[", " "]), 1)


def _check(seed: int, call) -> bool:
    """True when accepted, False for an EdgeAVSError (one line); anything else fails the test with the seed."""
    try:
        call()
        return True
    except EdgeAVSError as exc:
        assert "\n" not in str(exc), f"seed {seed}: multi-line error {str(exc)!r}"
        return False
    except BaseException as exc:  # noqa: BLE001 -- the point of the test
        pytest.fail(f"seed {seed}: {type(exc).__name__}: {exc}"[:500])


def test_mutated_target_yamls(tmp_path):
    shipped = sorted(targets_dir().glob("*.yaml"))
    outcomes = []
    for seed in range(120):
        rng = random.Random(seed)
        src = rng.choice(shipped)
        p = tmp_path / f"m{seed}.yaml"
        if seed % 3:
            data = yaml.safe_load(src.read_text())
            for _ in range(rng.randint(1, 3)):
                key = rng.choice(list(ALLOWED_KEYS) + ["cores", 7])
                if rng.random() < 0.15:
                    data.pop(key, None)
                else:
                    data[key] = _mutate_value(rng, data.get(key))
            try:
                p.write_text(yaml.safe_dump(data))
            except (ValueError, RecursionError, yaml.YAMLError):  # what yaml cannot write ("\x00", 500 levels)
                p.write_text(json.dumps(data, default=str))  # JSON is YAML too
        else:
            p.write_text(_mutate_text(rng, src.read_text()))
        outcomes.append(_check(seed, lambda: load_target(p)))
    assert 0 < sum(outcomes) < len(outcomes)  # both outcomes occur: the loop explores both sides


def test_mutated_records_files(tmp_path, host):
    base = _records(tmp_path, host)
    files = {name: (base.path / name).read_text() for name in (FINGERPRINT, WORKLOADS, RECORDS)}
    files["knobs"] = base.knobs_path.read_text()
    outcomes = []
    for seed in range(120):
        rng = random.Random(1000 + seed)
        rec = RecordsDir(tmp_path / f"r{seed}")
        rec.path.mkdir()
        for name, text in files.items():
            (rec.knobs_path if name == "knobs" else rec.path / name).write_text(text)
        name = rng.choice(list(files))
        path = rec.knobs_path if name == "knobs" else rec.path / name
        if seed % 2:
            path.write_text(_mutate_text(rng, files[name]))
        else:  # a JSON-level mutation: some value somewhere replaced
            value = json.loads(files[name].splitlines()[0] if name in (WORKLOADS, RECORDS) else files[name])
            container, key = _pick_slot(rng, value)
            if container is None:
                value = _mutate_value(rng, value)
            else:
                container[key] = _mutate_value(rng, container[key])
            path.write_text(json.dumps(value, allow_nan=True) + "\n")

        def use(rec=rec):
            rec.open(host)
            rec.read_knobs()

        outcomes.append(_check(1000 + seed, use))
    assert 0 < sum(outcomes) < len(outcomes)


def _pick_slot(rng: random.Random, value):
    """A random (container, key) inside ``value`` (None, None: the value itself)."""
    slots = []
    stack = [value]
    while stack:
        v = stack.pop()
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, child in items:
            slots.append((v, k))
            stack.append(child)
    return rng.choice(slots) if slots and rng.random() < 0.9 else (None, None)


def test_checkpoint_bytes_mutated(tmp_path, tiny):
    """Flipped or cut bytes of a real checkpoint: it loads (a flipped weight byte) or fails in one line."""
    from edgeavs.model import read_checkpoint

    good = tiny[0].read_bytes()
    for seed in range(25):
        rng = random.Random(2000 + seed)
        data = bytearray(good)
        if seed % 2:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        p = tmp_path / f"c{seed}.pt"
        p.write_bytes(bytes(data))
        _check(2000 + seed, lambda: read_checkpoint(p))
