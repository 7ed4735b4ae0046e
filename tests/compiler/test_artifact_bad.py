"""Damaged artifacts never crash the tool: a wrong manifest field, a file listed outside the
artifact, a truncated or foreign library, a wrong input array each end as one EdgeAVSError line
naming the artifact file and what is wrong (and, through the CLI, one ``Error:`` line, exit 1).

All on copies of the one shared tiny artifact (tests/compiler/artifacts.py); the library loads
that could die with SIGBUS run in a subprocess, so a crash fails the test instead of pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.compiler.artifact import (
    LIBRARY,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    file_sha256,
    load_artifact,
    read_manifest,
    validate_artifact,
)
from edgeavs.errors import EdgeAVSError
from edgeavs.model.config import VARIANTS
from tests.compiler.artifacts import copy_of, tiny_artifact


@pytest.fixture(scope="module")
def bad():
    """A copy of the tiny artifact whose manifest each test rewrites, and the pristine manifest."""
    art = copy_of(tiny_artifact(), "bad-manifest")
    return art, json.loads((art / MANIFEST).read_text())


def _write(art, manifest: dict):
    (art / MANIFEST).write_text(json.dumps(manifest))


def _refused(call, art, *fragments) -> str:
    """``call()`` raises one EdgeAVSError line naming the artifact's manifest and each fragment."""
    with pytest.raises(EdgeAVSError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"artifact {art}"), msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def _set(path, value):
    """A mutation: set ``manifest[path...] = value``."""
    def mutate(m):
        *parents, last = path
        for key in parents:
            m = m[key]
        m[last] = value
    return mutate


def _del(path):
    def mutate(m):
        *parents, last = path
        for key in parents:
            m = m[key]
        del m[last]
    return mutate


def _each(*mutations):
    def mutate(m):
        for f in mutations:
            f(m)
    return mutate


def _batch(n):
    return _each(_set(("inputs", 0, "shape", 0), n), _set(("inputs", 1, "shape", 0), n),
                 _set(("outputs", 0, "shape", 0), n))


def _side(s):
    return _each(_set(("resolution",), [s, s]), _set(("inputs", 0, "shape"), [1, 3, s, s]),
                 _set(("outputs", 0, "shape"), [1, 1, s, s]))


_K = VARIANTS["tiny"].size_multiple

# (id, mutation of the pristine manifest, fragments the one-line message must contain)
MUTATIONS = [
    ("no-inputs", _del(("inputs",)), "manifest.json: inputs is missing (required)"),
    ("no-outputs", _del(("outputs",)), "manifest.json: outputs is missing (required)"),
    ("inputs-object", _set(("inputs",), {"frames": [1, 3, 64, 64]}), "inputs must be a non-empty array, got object"),
    ("inputs-empty", _set(("inputs",), []), "inputs must be a non-empty array, got array []"),
    ("input-not-object", _set(("inputs", 0), "frames"), "inputs[0] must be an object, got string"),
    ("input-no-shape", _del(("inputs", 0, "shape")), "inputs[0].shape is missing (required)"),
    ("input-shape-string", _set(("inputs", 0, "shape"), "1x3x64x64"), "inputs[0].shape must be an array"),
    ("dim-string", _set(("inputs", 0, "shape", 2), "64"), 'inputs[0].shape[2] must be a positive integer, got string "64"'),
    ("dim-float", _set(("inputs", 0, "shape", 2), 64.0), "inputs[0].shape[2] must be a positive integer, got number 64.0"),
    ("dim-bool", _set(("inputs", 0, "shape", 1), True), "inputs[0].shape[1] must be a positive integer, got boolean true"),
    ("dim-negative", _set(("inputs", 1, "shape", 1), -32000), "inputs[1].shape[1] must be a positive integer"),
    ("batch-0", _batch(0), "inputs[0].shape[0] must be a positive integer, got integer 0"),
    ("batch-huge", _batch(100000), "inputs[0].shape[0] batch 100000 is more than 1024"),
    ("input-renamed", _set(("inputs", 1, "name"), "audio"), 'inputs are ["frames", "audio"]; the runtime passes'),
    ("inputs-swapped", lambda m: m["inputs"].reverse(), 'inputs are ["waveform", "frames"]'),
    ("input-extra", lambda m: m["inputs"].append({"name": "x", "shape": [1], "dtype": "float32"}),
     'inputs are ["frames", "waveform", "x"]'),
    ("input-dup", _set(("inputs", 1, "name"), "frames"), 'inputs[1].name "frames" is listed twice'),
    ("input-name-int", _set(("inputs", 0, "name"), 7), "inputs[0].name must be a non-empty string, got integer 7"),
    ("dtype-unknown", _set(("inputs", 0, "dtype"), "float33"), "inputs[0].dtype must be one of float16"),
    ("dtype-not-float32", _set(("inputs", 0, "dtype"), "float16"), "inputs[0].dtype is float16; the runtime passes float32"),
    ("frames-shape-changed", _set(("inputs", 0, "shape"), [1, 3, 32, 32]),
     "inputs[0].shape is [1, 3, 32, 32]; resolution 64x64 and batch 1 make it [1, 3, 64, 64]"),
    ("frames-rank", _set(("inputs", 0, "shape"), [1, 3, 64]), "inputs[0].shape is [1, 3, 64]"),
    ("waveform-length", _set(("inputs", 1, "shape"), [1, 16000]), "inputs[1].shape is [1, 16000]"),
    ("batch-disagrees", _set(("inputs", 1, "shape", 0), 2), "inputs[1].shape is [2, 32000]; resolution 64x64 and batch 1"),
    ("output-renamed", _set(("outputs", 0, "name"), "mask"), "outputs has no output named 'logits' (has [\"mask\"])"),
    ("output-shape", _set(("outputs", 0, "shape"), [1, 1, 32, 32]), "outputs[0] (logits) is [1, 1, 32, 32] float32; batch 1 at 64x64 makes it [1, 1, 64, 64]"),
    ("output-no-dtype", _del(("outputs", 0, "dtype")), "outputs[0].dtype is missing (required)"),
    ("outputs-dup", lambda m: m["outputs"].append(dict(m["outputs"][0])), 'outputs[1].name "logits" is listed twice'),
    ("outputs-extra", lambda m: m["outputs"].append({"name": "extra", "shape": [1], "dtype": "float32"}),
     """outputs are ["logits", "extra"]; an artifact compiled without aux has one output, 'logits'"""),
    ("resolution-string", _set(("resolution",), "64x64"), 'resolution must be [height, width], got string "64x64"'),
    ("resolution-one", _set(("resolution",), [64]), "resolution must be [height, width]"),
    ("resolution-zero", _set(("resolution",), [0, 64]), "resolution[0] must be an integer in [1, 8192], got integer 0"),
    ("resolution-float", _set(("resolution",), [64, 64.5]), "resolution[1] must be an integer in [1, 8192]"),
    ("resolution-vs-inputs", _set(("resolution",), [96, 96]), "inputs[0].shape is [1, 3, 64, 64]; resolution 96x96"),
    ("resolution-multiple", _side(64 + _K // 2), f"is not a multiple of {_K} (LightAVSeg-tiny)"),
    ("no-resolution", _del(("resolution",)), "resolution is missing (required)"),
    ("variant-unknown", _set(("variant",), "huge"), 'variant must be one of tiny, small, base, large, got string "huge"'),
    ("variant-int", _set(("variant",), 3), "variant must be one of"),
    ("no-variant", _del(("variant",)), "variant is missing (required)"),
    ("files-list", _set(("files",), ["model.so"]), "files must be an object, got array"),
    ("files-bad-hash", _set(("files", LIBRARY), "abc"), 'files["model.so"] must be a sha256 (64 lowercase hex digits)'),
    ("files-hash-int", _set(("files", LIBRARY), 1), 'files["model.so"] must be a sha256'),
    ("files-empty-name", _set(("files", ""), "0" * 64), 'files lists "", which is empty'),
    ("files-newline", _set(("files", "a\nb.so"), "0" * 64), 'files lists "a\\nb.so", which is not a plain relative path'),
    ("files-nul", _set(("files", "model.so\u0000.txt"), "0" * 64), "which is not a plain relative path"),
    ("files-dot", _set(("files", "./model.so"), "0" * 64), "which is not a normalized relative path"),
    ("no-files", _del(("files",)), "files is missing (required)"),
    ("link-int", _set(("link",), 5), "link must be one of host, cross, ndk, got integer 5"),
    ("link-unknown", _set(("link",), "usb"), "link must be one of host, cross, ndk"),
    ("weights-string", _set(("weights",), "random"), "weights must be an object, got string"),
    ("weights-no-source", _del(("weights", "source")), "weights.source is missing (required)"),
    ("weights-source", _set(("weights", "source"), "hub"), "weights.source must be one of random-init, checkpoint"),
    ("weights-seed-string", _set(("weights", "seed"), "0"), 'weights.seed must be an integer in'),
    ("weights-no-seed", _del(("weights", "seed")), "weights.seed is missing (required for random-init weights)"),
    ("weights-fusion", _set(("weights", "fusion"), "magic"), "weights.fusion must be one of lightavseg"),
    ("weights-checkpoint", _set(("weights", "source"), "checkpoint"),
     "weights.checkpoint_path is missing (required for checkpoint weights)"),
    ("no-weights", _del(("weights",)), "weights is missing (required)"),
    ("target-list", _set(("target",), ["llvm"]), "target must be an object, got array"),
    ("target-kind", _set(("target", "kind"), "cuda"), "target.kind must be one of llvm"),
    ("target-cores-0", _set(("target", "num-cores"), 0), "target.num-cores must be an integer in [1, 4096], got integer 0"),
    ("target-cores-string", _set(("target", "num-cores"), "2"), "target.num-cores must be an integer"),
    ("target-unknown-key", _set(("target", "gpu"), True), 'target has unknown key "gpu"'),
    ("no-target", _del(("target",)), "target is missing (required)"),
    ("target-name-int", _set(("target_name",), 1), "target_name must be a non-empty string, got integer 1"),
    ("target-name-null", _set(("target_name",), None), "target_name must be a non-empty string, got null"),
    ("fingerprint", _set(("target_fingerprint",), "zz"), "target_fingerprint must be a sha256"),
    ("via", _set(("via",), "tflite"), "via must be one of export, onnx"),
    ("aux", _set(("aux",), "no"), "aux must be true or false"),
    ("libraries-object", _set(("libraries",), {"model.so": "host"}), "libraries must be an array, got object"),
    ("library-entry", _set(("libraries", 0), "model.so"), "libraries[0] must be an object, got string"),
    ("library-os", _del(("libraries", 0, "os")), "libraries[0].os is missing (required)"),
    ("library-unlisted", _set(("libraries", 0, "file"), "other.so"),
     'libraries[0].file is "other.so", which is not among the files'),
    ("library-field", _set(("library",), "other.so"), 'library is "other.so", which is not among the files'),
    ("schedules-list", _set(("schedules",), []), "schedules must be an object or null, got array"),
    ("schedule-function", lambda m: m["schedules"]["functions"].update(f={"calls": 1}),
     'schedules.functions["f"].class is missing (required)'),
    ("schedule-calls", lambda m: m["schedules"]["functions"].update(f={"class": "conv", "calls": "2"}),
     'schedules.functions["f"].calls must be an integer'),
    ("format", _set(("format",), "edgeavs-artifact/0"), "manifest.json is not an edgeavs-artifact/1 manifest"),
]


@pytest.mark.parametrize("mutate,fragment", [pytest.param(m, f, id=i) for i, m, f in MUTATIONS])
def test_manifest_mutation_is_one_line(bad, mutate, fragment):
    art, pristine = bad
    m = json.loads(json.dumps(pristine))
    mutate(m)
    _write(art, m)
    msg = _refused(lambda: load_artifact(art), art, fragment)
    assert MANIFEST in msg
    # the same one line for every reader: the schema check is in read_manifest
    with pytest.raises(EdgeAVSError) as e:
        read_manifest(art)
    assert str(e.value) == msg


def test_the_pristine_manifest_passes(bad):
    art, pristine = bad
    _write(art, pristine)
    assert validate_artifact(art) == pristine


RAW = [
    ("not-json", b"{", "manifest.json is not valid JSON (Expecting property name"),
    ("not-utf8", b'{"format": "\xff\xfe"}', "manifest.json is not UTF-8 text (byte 12)"),
    ("binary", bytes(range(256)) * 4, "manifest.json is not UTF-8 text"),
    ("array", b"[1, 2]", "manifest.json is not an edgeavs-artifact/1 manifest"),
    ("nested-list", b"[" * 200_000 + b"]" * 200_000, "manifest.json is nested too deeply"),
    ("nested-in-object", b'{"format": "edgeavs-artifact/1", "x": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
     "manifest.json is nested too deeply"),
    ("long-int", b'{"format": "edgeavs-artifact/1", "resolution": [' + b"9" * 5000 + b", 64]}",
     "manifest.json is not valid JSON (Exceeds the limit"),
    ("empty", b"", "manifest.json is not valid JSON (Expecting value: line 1 column 1 (char 0))"),
]


@pytest.mark.parametrize("data,fragment", [pytest.param(d, f, id=i) for i, d, f in RAW])
def test_damaged_manifest_text_is_one_line(bad, data, fragment):
    art, _ = bad
    (art / MANIFEST).write_bytes(data)
    _refused(lambda: validate_artifact(art), art, fragment)


def test_nan_and_huge_manifests(bad):
    art, pristine = bad
    text = json.dumps(pristine).replace('"resolution": [64, 64]', '"resolution": [NaN, 64]')
    (art / MANIFEST).write_text(text)
    _refused(lambda: read_manifest(art), art, "resolution[0] must be an integer in [1, 8192], got number NaN")
    with open(art / MANIFEST, "wb") as f:  # valid JSON, padded past the bound: refused unparsed
        f.write(json.dumps(pristine).encode())
        f.write(b" " * MAX_MANIFEST_BYTES)
    _refused(lambda: read_manifest(art), art, "manifest.json is larger than 16 MiB")


# ---------------------------------------------------------------- files outside the artifact

def _listing(art, name, path):
    m = json.loads((art / MANIFEST).read_text())
    m["files"][name] = file_sha256(path)
    _write(art, m)


@pytest.mark.parametrize("name_of", [
    pytest.param(lambda outside: "../outside.txt", id="dotdot"),
    pytest.param(lambda outside: "sub/../../outside.txt", id="inner-dotdot"),
    pytest.param(lambda outside: str(outside), id="absolute"),
])
def test_listed_paths_outside_are_refused(name_of, tmp_path):
    art = copy_of(tiny_artifact(), "escape")
    outside = art.parent / "outside.txt"
    outside.write_text("not part of the artifact\n")
    name = name_of(outside)
    _listing(art, name, outside)  # the hash matches: only confinement can refuse it
    _refused(lambda: validate_artifact(art), art, f"manifest.json: files lists {json.dumps(name)}",
             "only files inside the artifact directory may be listed")


def test_symlinks_out_are_refused_in_ok(tmp_path):
    art = copy_of(tiny_artifact(), "escape-link")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    (art / "link.txt").symlink_to(outside)
    _listing(art, "link.txt", outside)
    _refused(lambda: validate_artifact(art), art, "manifest.json lists link.txt, which is a symbolic link out "
                                                  "of the artifact directory")
    (art / "link.txt").unlink()
    m = json.loads((art / MANIFEST).read_text())
    del m["files"]["link.txt"]
    _write(art, m)
    (art / "sub").symlink_to(tmp_path, target_is_directory=True)  # a directory link out
    _listing(art, "sub/secret.txt", outside)
    _refused(lambda: validate_artifact(art), art, "lists sub/secret.txt, which is a symbolic link out")
    (art / "sub").unlink()
    (art / "sub").mkdir()
    (art / "sub" / "notes.txt").write_text("inside\n")
    (art / "inner.txt").symlink_to("sub/notes.txt")  # a link that stays inside is fine
    m = json.loads((art / MANIFEST).read_text())
    del m["files"]["sub/secret.txt"]
    _write(art, m)
    _listing(art, "inner.txt", art / "sub" / "notes.txt")
    assert "inner.txt" in validate_artifact(art)["files"]


# ---------------------------------------------------------------- the library file

_LOADER = textwrap.dedent("""
    import sys
    from edgeavs.compiler.artifact import load_artifact
    from edgeavs.errors import EdgeAVSError
    for art in sys.argv[1:]:
        for validate in (True, False):
            try:
                load_artifact(art, validate=validate)
                print("LOADED", art, flush=True)
            except EdgeAVSError as exc:
                print("REFUSED", str(exc), flush=True)
""")


def _rehash(art):
    m = json.loads((art / MANIFEST).read_text())
    m["files"][LIBRARY] = file_sha256(art / LIBRARY)
    _write(art, m)


def _patch(path, offset, data: bytes):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_truncated_garbage_and_foreign_libraries_are_refused():
    """Each library is refused before dlopen, with or without hash validation; the loads run
    in a subprocess, so a SIGBUS (what a truncated library did) fails here, not pytest."""
    src = tiny_artifact()
    size = os.path.getsize(src / LIBRARY)
    with open(src / LIBRARY, "rb") as f:
        header = f.read(64)
    assert header[:4] == b"\x7fELF" and header[4] == 2  # a 64-bit ELF, as compiled on this host
    host_machine = int.from_bytes(header[18:20], sys.byteorder)

    half = copy_of(src, "lib-half")
    os.truncate(half / LIBRARY, size // 2)
    _rehash(half)
    no_sections = copy_of(src, "lib-half-noshdr")  # without section headers: the PT_LOAD check
    _patch(no_sections / LIBRARY, 60, (0).to_bytes(2, sys.byteorder))  # e_shnum = 0
    os.truncate(no_sections / LIBRARY, size // 2)
    _rehash(no_sections)
    garbage = copy_of(src, "lib-garbage")
    (garbage / LIBRARY).write_bytes(os.urandom(4096))
    _rehash(garbage)
    foreign = copy_of(src, "lib-foreign")
    other = 62 if host_machine == 183 else 183  # x86-64 <-> AArch64
    _patch(foreign / LIBRARY, 18, other.to_bytes(2, sys.byteorder))
    _rehash(foreign)
    tiny_header = copy_of(src, "lib-header")
    os.truncate(tiny_header / LIBRARY, 20)
    _rehash(tiny_header)

    # program header damage the loader does not survive (SIGSEGV): the first PT_LOAD made another
    # type (the dynamic tables it held are then outside the image), a PT_LOAD made unreadable
    phoff = int.from_bytes(header[0x20:0x28], sys.byteorder)
    not_load = copy_of(src, "lib-phdr-type")
    _patch(not_load / LIBRARY, phoff, (0x7FFFFFFF).to_bytes(4, sys.byteorder))
    _rehash(not_load)
    no_read = copy_of(src, "lib-phdr-flags")
    _patch(no_read / LIBRARY, phoff + 4, (0).to_bytes(4, sys.byteorder))
    _rehash(no_read)

    cases = [half, no_sections, garbage, foreign, tiny_header, not_load, no_read]
    proc = subprocess.run([sys.executable, "-c", _LOADER, *map(str, cases)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, f"the loader died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 * len(cases), proc.stdout
    assert all(ln.startswith("REFUSED ") for ln in lines), proc.stdout
    want = [f"artifact {half}: model.so is not a library the runtime can load: its section headers end",
            f"artifact {no_sections}: model.so is not a library the runtime can load: its segment",
            f"artifact {garbage}: model.so is not a library the runtime can load: not an ELF file",
            f"artifact {foreign}: model.so is not a library the runtime can load: built for ",
            f"artifact {tiny_header}: model.so is not a library the runtime can load: truncated ELF header",
            f"artifact {not_load}: model.so is not a library the runtime can load: its ",
            (f"artifact {no_read}: model.so is not a library the runtime can load: its segment 0 (PT_LOAD) is "
             "not readable (flags 0x0)")]
    for i, prefix in enumerate(want):
        for line in lines[2 * i:2 * i + 2]:  # validate=True and validate=False alike
            assert line[len("REFUSED "):].startswith(prefix), line
    assert "(PT_LOAD)" in lines[2] and "past the end of the file" in lines[2]
    assert "this machine is" in lines[6]
    assert "lies outside the loaded image" in lines[10], lines[10]


# ---------------------------------------------------------------- inputs the user passes

@pytest.fixture(scope="module")
def model():
    return load_artifact(tiny_artifact())


F, W = np.zeros((1, 3, 64, 64), "float32"), np.zeros((1, 32000), "float32")


@pytest.mark.parametrize("frames,waveform,fragment", [
    pytest.param(F.astype(complex), W, "input frames has dtype complex128; this artifact takes real numbers", id="complex"),
    pytest.param(F, W.astype("U8"), "input waveform has dtype <U8; this artifact takes real numbers", id="string"),
    pytest.param(F.astype(bool), W, "input frames has dtype bool", id="bool"),
    pytest.param(F.astype(object), W, "input frames has dtype object", id="object"),
    pytest.param([[1.0], [1.0, 2.0]], W, "input frames is not an array", id="ragged"),
    pytest.param(F[0], W, "input frames has shape (3, 64, 64); this artifact takes (N, 3, 64, 64)", id="ndim"),
    pytest.param(F, W[:, :16000], "input waveform has shape (1, 16000); this artifact takes (N, 32000)", id="shape"),
    pytest.param(F, np.zeros((2, 32000)), "input waveform has 2 rows and frames 1; they must match", id="rows"),
    pytest.param(F[:0], W[:0], "input frames is empty (N = 0); nothing to run", id="empty"),
])
def test_wrong_input_arrays(model, frames, waveform, fragment):
    with pytest.raises(EdgeAVSError) as e:
        model.run(frames, waveform)
    assert str(e.value).startswith(fragment) and "\n" not in str(e.value), str(e.value)


def test_float64_and_integer_inputs_run(model):
    a = model.run(F, W)
    np.testing.assert_array_equal(model.run(F.astype("float64"), W.astype("float64")), a)
    np.testing.assert_array_equal(model.run(F.astype("int32"), W.astype("int16")), a)


def test_the_library_rejecting_the_manifest_inputs_is_one_line(bad):
    """Manifests that pass the schema but not the library (a batch or resolution it was not
    compiled for, an output it does not have): TVM's errors become one line."""
    art, pristine = bad
    for mutate, n, side, fragment in [
            (_batch(2), 2, 64, "the library rejected the inputs: Check failed"),
            (_side(96), 1, 96, "the library rejected the inputs: Check failed"),
            (lambda m: m.update(aux=True, outputs=m["outputs"] + [{"name": "extra", "shape": [1], "dtype": "float32"}]),
             1, 64,
             "the library returned 1 output(s); manifest.json lists 2")]:
        m = json.loads(json.dumps(pristine))
        mutate(m)
        _write(art, m)
        compiled = load_artifact(art)
        frames, waveform = np.zeros((n, 3, side, side), "float32"), np.zeros((n, 32000), "float32")
        msg = _refused(lambda c=compiled, f=frames, w=waveform: c.run(f, w), art, fragment)
        assert "match_cast" in msg or "output(s)" in msg, msg
    _write(art, pristine)


def test_artifact_predictor_reads_checked_fields(bad):
    from edgeavs.segment import ArtifactPredictor

    art, pristine = bad
    _write(art, pristine)
    pred = ArtifactPredictor(art)
    assert pred.input_size == (64, 64) and pred.variant == "tiny"
    assert pred.details["weights"] == pristine["weights"]
    m = json.loads(json.dumps(pristine))
    del m["inputs"]  # was: StopIteration/KeyError in the predictor
    _write(art, m)
    _refused(lambda: ArtifactPredictor(art), art, "manifest.json: inputs is missing")
    _write(art, pristine)


# ---------------------------------------------------------------- through the CLI

def test_cli_verify_bench_profile_give_one_error_line(bad):
    art, pristine = bad
    m = json.loads(json.dumps(pristine))
    m["outputs"][0]["name"] = "mask"
    _write(art, m)
    want = f"Error: artifact {art}: manifest.json: outputs has no output named 'logits'"
    for args in (["verify", str(art), "--seeds", "1"], ["bench", str(art), "--repeat", "30"],
                 ["profile", str(art)]):
        r = CliRunner().invoke(main, args)
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert r.exit_code == (2 if args[0] == "verify" else 1), (args, r.output)  # verify: 1 is numeric
        assert len(errors) == 1 and errors[0].startswith(want), (args, r.output)
        assert "Traceback" not in r.output
    # the real entry point, in its own process: one stderr line, exit 2 (verify's Error:), no traceback
    proc = subprocess.run([sys.executable, "-m", "cli", "verify", str(art), "--seeds", "1"],
                          capture_output=True, text=True, check=False, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [errors[0]], proc.stderr
    _write(art, pristine)


def test_a_library_that_crashes_the_loader_is_one_line(tmp_path):
    """Headers can be whole and the loader still die (the fuzz test moved a segment's file offset by
    one page): the library is opened once in a child first. Here a well-formed library whose
    constructor segfaults stands in for it; the load runs in a subprocess, so a crash fails here."""
    src = tmp_path / "boom.c"
    src.write_text("#include <signal.h>\n__attribute__((constructor)) static void boom(void) { raise(SIGSEGV); }\n")
    art = copy_of(tiny_artifact(), "lib-loader-crash")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(art / LIBRARY), str(src)], check=True)
    _rehash(art)
    proc = subprocess.run([sys.executable, "-c", _LOADER, str(art)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"the loader died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.strip().splitlines() == [
        f"REFUSED artifact {art}: model.so: the dynamic loader crashed on it (SIGSEGV): a damaged library"] * 2
