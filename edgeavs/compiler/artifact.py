"""The compiled artifact: a directory with the library and ``manifest.json``.

Layout (format ``edgeavs-artifact/1``)::

    model.so        ex.export_library(): code + the weights, bound in as read-only data
    manifest.json   versions, target dict + fingerprint, variant, resolution, weights source,
                    input/output names, shapes and dtypes, sha256 of every other file,
                    fusion report

It loads with plain TVM, and needs only TVM's runtime library (see :func:`load_artifact` and the
README)::

    # TVM_USE_RUNTIME_LIB=1 in the environment before tvm is imported: libtvm_runtime alone
    import tvm
    from tvm.runtime.vm import VirtualMachine
    vm = VirtualMachine(tvm.runtime.load_module("artifact/model.so"), tvm.cpu())
    logits = vm["main"](tvm.runtime.tensor(frames), tvm.runtime.tensor(waveform)).numpy()

The weights are inside ``model.so`` as read-only data that ``main`` views in place
(:mod:`edgeavs.compiler.linked_weights`), not VM constants copied out at load.

This module never imports torch (``edgeavs segment`` runs artifacts in torch-free processes), nor
TVM's compiler: :func:`use_runtime_only` makes a process that only runs artifacts load TVM's
runtime library alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeavs.errors import EdgeAVSError

FORMAT = "edgeavs-artifact/1"
MANIFEST = "manifest.json"
LIBRARY = "model.so"
VIA = ("export", "onnx")
PRECISIONS = ("fp32", "fp16", "int8")
"""A manifest's ``precision`` (absent: fp32); the same list as ``edgeavs.compiler.records.PRECISIONS``, spelled
here because the records module is not on the torch-free runtime path (a test holds the two equal)."""
"""How a model reaches Relax (``edgeavs compile --via``): torch.export or ONNX; the manifest records it."""


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- writing

@contextlib.contextmanager
def staging_dir(dest):
    """A temp directory beside ``dest``; on success it replaces ``dest`` by rename, on failure
    it is removed, so a failed compile never leaves a half-written artifact."""
    dest = Path(dest).absolute()
    if dest.exists() and not dest.is_dir():
        raise EdgeAVSError(f"{dest}: exists and is not a directory (an artifact is a directory)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    from edgeavs.io.atomic import make_temp_dir

    tmp = make_temp_dir(dest.parent, prefix=f".{dest.name}.", suffix=".tmp")  # the umask's mode, not 0700
    old = None
    try:
        yield tmp
        if os.path.lexists(dest):  # the previous artifact (or a link to one) steps aside, unique name
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            old.rmdir()
            os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException:
        if old is not None and os.path.lexists(old) and not os.path.lexists(dest):
            os.replace(old, dest)  # the new one did not land: put the previous one back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_symlink() or not old.is_dir():
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)


def write_manifest(directory, manifest: dict) -> dict:
    """Add the sha256 of every file in ``directory`` (but the manifest) and write it."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"format": FORMAT, **manifest,
                "files": {p.relative_to(directory).as_posix(): file_sha256(p) for p in files}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


# ---------------------------------------------------------------- reading and validating
#
# Every field the runtime path reads is checked here, once, before anything uses it: a manifest that
# a person (or a crash) damaged is one EdgeAVSError line naming manifest.json and the field, never a
# KeyError three calls later. read_manifest() checks the text and the schema; validate_artifact()
# adds the files on disk (inside the directory, sha256, libraries whole).

MAX_MANIFEST_BYTES = 16 * 2**20
"""A larger manifest.json is refused before it is parsed (edgeavs writes ~40 KiB)."""
RUNTIME_INPUTS = ("frames", "waveform")
"""The library's parameters, in the order :meth:`CompiledModel.run` passes them."""
WAVEFORM_SAMPLES = 32000
MAX_BATCH = 1024
MAX_SIDE = 8192
MAX_DIM = 2**31 - 1
DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool")
WEIGHT_SOURCES = ("random-init", "checkpoint")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Invalid(Exception):
    """One wrong manifest field: ``field`` (``inputs[0].shape[2]``) and what is wrong with it."""

    def __init__(self, field: str, problem: str):
        super().__init__(field, problem)
        self.field, self.problem = field, problem


def _show(value) -> str:
    """A short one-line rendering of a JSON value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _want(ok: bool, field: str, what: str, value) -> None:
    if not ok:
        raise _Invalid(field, f"must be {what}, got {_kind(value)} {_show(value)}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(value, field):
    _want(isinstance(value, str), field, "a string", value)


def _nonempty_string(value, field):
    _want(isinstance(value, str) and value.strip() != "", field, "a non-empty string", value)


def _string_or_null(value, field):
    _want(value is None or isinstance(value, str), field, "a string or null", value)


def _boolean(value, field):
    _want(isinstance(value, bool), field, "true or false", value)


def _object(value, field):
    _want(isinstance(value, dict), field, "an object", value)


def _object_or_null(value, field):
    _want(value is None or isinstance(value, dict), field, "an object or null", value)


def _hex64(value, field):
    _want(isinstance(value, str) and _HEX64.fullmatch(value) is not None, field,
          "a sha256 (64 lowercase hex digits)", value)


def _one_of(choices):
    def check(value, field):
        _want(isinstance(value, str) and value in choices, field, f"one of {', '.join(choices)}", value)
    return check


def _int_in(lo: int, hi: int):
    def check(value, field):
        _want(_is_int(value) and lo <= value <= hi, field, f"an integer in [{lo}, {hi}]", value)
    return check


def _list_of(item):
    def check(value, field):
        _want(isinstance(value, list), field, "an array", value)
        for i, v in enumerate(value):
            item(v, f"{field}[{i}]")
    return check


def _record(fields: dict, closed: bool = False):
    """An object with ``fields`` = {key: (required, check)}; ``closed``: no other keys."""
    def check(value, field):
        _object(value, field)
        for key, (required, item) in fields.items():
            if key in value:
                item(value[key], f"{field}.{key}")
            elif required:
                raise _Invalid(f"{field}.{key}", "is missing (required)")
        if closed:
            extra = [k for k in value if k not in fields]
            if extra:
                raise _Invalid(f"{field}", f"has unknown key {_show(extra[0])} (allowed: {', '.join(fields)})")
    return check


def _shape(value, field):
    _want(isinstance(value, list), field, "an array of positive integers", value)
    for i, d in enumerate(value):
        _want(_is_int(d) and 1 <= d <= MAX_DIM, f"{field}[{i}]", "a positive integer", d)


_tensor = _record({"name": (True, _nonempty_string), "shape": (True, _shape),
                   "dtype": (True, _one_of(DTYPES))})


def _tensors(value, field):
    _want(isinstance(value, list) and len(value) > 0, field, "a non-empty array", value)
    seen = set()
    for i, spec in enumerate(value):
        _tensor(spec, f"{field}[{i}]")
        if spec["name"] in seen:
            raise _Invalid(f"{field}[{i}].name", f"{_show(spec['name'])} is listed twice")
        seen.add(spec["name"])


def _resolution(value, field):
    _want(isinstance(value, list) and len(value) == 2, field, "[height, width]", value)
    for i, d in enumerate(value):
        _want(_is_int(d) and 1 <= d <= MAX_SIDE, f"{field}[{i}]", f"an integer in [1, {MAX_SIDE}]", d)


def _relative_path(name: str) -> str | None:
    """Why ``name`` is not a plain path inside the artifact directory (None when it is)."""
    if not name:
        return "is empty"
    if "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "is not a plain relative path"
    if name.startswith("/"):
        return "is an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "goes out of the artifact directory ('..')"
    if "" in parts or "." in parts:
        return "is not a normalized relative path"
    return None


def _files(value, field):
    _object(value, field)
    for name, digest in value.items():
        why = _relative_path(name)
        if why:
            raise _Invalid(field, f"lists {_show(name)}, which {why}; only files inside the artifact "
                                  "directory may be listed")
        _hex64(digest, f"{field}[{_show(name)}]")


def _weights(value, field):
    from edgeavs.model.config import FUSIONS

    _record({"source": (True, _one_of(WEIGHT_SOURCES)), "storage": (False, _string),
             "fusion": (False, _one_of(FUSIONS)), "seed": (False, _int_in(-2**63, 2**63 - 1)),
             "checkpoint_path": (False, _nonempty_string), "checkpoint_sha256": (False, _hex64)})(value, field)
    needs = ("seed",) if value["source"] == "random-init" else ("checkpoint_path", "checkpoint_sha256")
    for key in needs:
        if key not in value:
            raise _Invalid(f"{field}.{key}", f"is missing (required for {value['source']} weights)")


def _target(value, field):
    from edgeavs.targets import KINDS

    _record({"kind": (True, _one_of(KINDS)), "mtriple": (False, _nonempty_string),
             "mcpu": (False, _nonempty_string), "mattr": (False, _list_of(_nonempty_string)),
             "num-cores": (False, _int_in(1, 4096))}, closed=True)(value, field)


def _int_or_null(value, field):
    _want(value is None or (_is_int(value) and value >= 0), field, "a non-negative integer or null", value)


_library = _record({"file": (True, _nonempty_string), "os": (True, _nonempty_string),
                    "role": (False, _string), "linker": (False, _string_or_null)})
_skipped = _record({"file": (False, _string), "role": (False, _string), "reason": (False, _string)})
_function = _record({"class": (True, _nonempty_string), "schedule": (False, _string_or_null),
                     "calls": (False, _int_in(1, MAX_DIM)), "flops": (False, _int_or_null),
                     "macs": (False, _int_or_null)})


def _schedules(value, field):
    _object_or_null(value, field)
    functions = (value or {}).get("functions")
    if functions is not None:
        _object(functions, f"{field}.functions")
        for name, meta in functions.items():
            _function(meta, f"{field}.functions[{_show(name)}]")


def _manifest_fields():
    from edgeavs.model.config import VARIANTS
    from edgeavs.targets import LINKS

    return {
        # key: (required, check); other keys are allowed (nothing on the runtime path reads them)
        "variant": (True, _one_of(tuple(VARIANTS))),
        "resolution": (True, _resolution),
        "inputs": (True, _tensors),
        "outputs": (True, _tensors),
        "files": (True, _files),
        "weights": (True, _weights),
        "precision": (False, _one_of(PRECISIONS)),
        "precision_report": (False, _object_or_null),
        "target": (True, _target),
        "link": (False, _one_of(LINKS)),
        "target_name": (False, _nonempty_string),
        "target_fingerprint": (False, _hex64),
        "via": (False, _one_of(VIA)),
        "aux": (False, _boolean),
        "library": (False, _string_or_null),
        "libraries": (False, _list_of(_library)),
        "libraries_skipped": (False, _list_of(_skipped)),
        "fusion": (False, _object_or_null),
        "schedules": (False, _schedules),
        "records": (False, _object_or_null),
        "compile_seconds": (False, _object_or_null),
        "edgeavs": (False, _string), "tvm": (False, _string), "llvm": (False, _string),
        "created": (False, _string),
    }


def check_manifest(manifest: dict) -> None:
    """Raise :class:`_Invalid` for the first field the runtime would trip over: the types and
    ranges of every field read (see :func:`_manifest_fields`), then their agreement (the inputs
    the runtime passes, their shapes against ``resolution``, a ``logits`` output, the libraries
    among ``files``)."""
    from edgeavs.model.config import VARIANTS

    _record(_manifest_fields())(manifest, "manifest")
    m = manifest
    h, w = m["resolution"]
    k = VARIANTS[m["variant"]].size_multiple
    if h % k or w % k:
        raise _Invalid("resolution", f"{h}x{w} is not a multiple of {k} (LightAVSeg-{m['variant']})")
    names = [spec["name"] for spec in m["inputs"]]
    if tuple(names) != RUNTIME_INPUTS:
        raise _Invalid("inputs", f"are {_show(names)}; the runtime passes {_show(list(RUNTIME_INPUTS))}, "
                                 "in that order")
    frames, waveform = m["inputs"]
    b = frames["shape"][0] if frames["shape"] else 0
    for i, (spec, want) in enumerate([(frames, [b, 3, h, w]), (waveform, [b, WAVEFORM_SAMPLES])]):
        if spec["shape"] != want:
            raise _Invalid(f"inputs[{i}].shape", f"is {_show(spec['shape'])}; resolution {h}x{w} and batch "
                                                 f"{b} make it {_show(want)}")
        if spec["dtype"] != "float32":
            raise _Invalid(f"inputs[{i}].dtype", f"is {spec['dtype']}; the runtime passes float32")
    if b > MAX_BATCH:
        raise _Invalid("inputs[0].shape[0]", f"batch {b} is more than {MAX_BATCH}")
    logits = [i for i, spec in enumerate(m["outputs"]) if spec["name"] == "logits"]
    out_names = [spec["name"] for spec in m["outputs"]]
    if not logits:
        raise _Invalid("outputs", f"has no output named 'logits' (has {_show(out_names)})")
    if not m.get("aux") and out_names != ["logits"]:  # per-layer outputs only in an aux artifact
        raise _Invalid("outputs", f"are {_show(out_names)}; an artifact compiled without aux has one "
                                  "output, 'logits'")
    spec = m["outputs"][logits[0]]
    if spec["shape"] != [b, 1, h, w] or spec["dtype"] != "float32":
        raise _Invalid(f"outputs[{logits[0]}]", f"(logits) is {_show(spec['shape'])} {spec['dtype']}; batch {b} "
                                               f"at {h}x{w} makes it {_show([b, 1, h, w])} float32")
    libraries = [("library", m["library"])] if m.get("library") else []
    libraries += [(f"libraries[{i}].file", lib["file"]) for i, lib in enumerate(m.get("libraries", []))]
    for field, name in libraries:
        if name not in m["files"]:
            raise _Invalid(field, f"is {_show(name)}, which is not among the files (with their sha256)")


def _read_text(path: Path, directory: Path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} cannot be read "
                           f"({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is larger than "
                           f"{MAX_MANIFEST_BYTES // 2**20} MiB (not a manifest edgeavs wrote)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is not UTF-8 text (byte {exc.start})") from None


def read_manifest(directory) -> dict:
    """``manifest.json`` of the artifact ``directory``, parsed and checked against the schema
    (:func:`check_manifest`); any problem is one :class:`EdgeAVSError` line."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EdgeAVSError(f"artifact {directory} not found (expected a directory written by "
                           "edgeavs compile)")
    path = directory / MANIFEST
    if not path.is_file():
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is missing")
    text = _read_text(path, directory)
    try:
        manifest = json.loads(text)
    except RecursionError:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, and integers longer than Python converts
        problem = " ".join(str(exc).split())
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is not valid JSON ({problem})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is not an {FORMAT} manifest")
    try:
        check_manifest(manifest)
    except _Invalid as bad:
        field = bad.field.removeprefix("manifest.")
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST}: {field} {bad.problem}") from None
    except RecursionError:  # json.loads takes deeper nesting than the checks' own walks
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} is nested too deeply") from None
    return manifest


def _inside(directory: Path, name: str) -> Path:
    """``directory / name``, refused when it resolves (through symbolic links) outside ``directory``."""
    path = directory / name
    try:
        root, real = directory.resolve(), path.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise EdgeAVSError(f"artifact {directory}: {name} cannot be resolved ({' '.join(str(exc).split())})") from None
    if not real.is_relative_to(root):
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} lists {name}, which is a symbolic link "
                           f"out of the artifact directory (to {real})")
    return path


def validate_artifact(directory, require_library: bool = True) -> dict:
    """The manifest (:func:`read_manifest`), after checking that every listed file lies inside the
    directory, exists and matches its sha256, and that each library is a whole ELF shared object
    (built for this machine, for a host artifact).

    ``require_library``: the host library must be listed (False for a device artifact, e.g. a
    snapdragon8elite build without an NDK has only the Linux AArch64 library)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    files = manifest["files"]
    if require_library and LIBRARY not in files:
        raise EdgeAVSError(f"artifact {directory}: {MANIFEST} lists no {LIBRARY}")
    for name, digest in files.items():
        path = _inside(directory, name)
        if not path.is_file():
            raise EdgeAVSError(f"artifact {directory}: {name} is missing")
        if file_sha256(path) != digest:
            raise EdgeAVSError(f"artifact {directory}: {name} does not match its sha256 in "
                               f"{MANIFEST} (modified or corrupted)")
    host = manifest.get("link", "host") == "host"
    libraries = {lib["file"]: lib["os"] == "host" for lib in manifest.get("libraries", [])}
    if LIBRARY in files:
        libraries.setdefault(LIBRARY, host)
    for name, for_host in libraries.items():
        check_library(directory / name, directory, for_host)
    return manifest


# ---------------------------------------------------------------- the library file (ELF)

_EM_NAMES = {3: "x86", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390x", 40: "ARM",
             62: "x86-64", 183: "AArch64", 243: "RISC-V"}
_HOST_EM = {"x86_64": 62, "amd64": 62, "i386": 3, "i686": 3, "aarch64": 183, "arm64": 183,
            "armv7l": 40, "ppc64le": 21, "ppc64": 21, "s390x": 22, "riscv64": 243}
_ET_DYN, _PT_LOAD, _PT_DYNAMIC, _PF_X, _PF_W, _PF_R = 3, 1, 2, 1, 2, 4
_IN_MEMORY = {2: "PT_DYNAMIC", 3: "PT_INTERP", 4: "PT_NOTE", 6: "PT_PHDR", 7: "PT_TLS",
              0x6474E550: "PT_GNU_EH_FRAME", 0x6474E552: "PT_GNU_RELRO", 0x6474E553: "PT_GNU_PROPERTY"}
"""Segments the loader reads through the mapped image: they must lie inside the PT_LOAD segments."""
_DT_TABLES = {4: ("DT_HASH", None), 0x6FFFFEF5: ("DT_GNU_HASH", None), 5: ("DT_STRTAB", 10),
              6: ("DT_SYMTAB", None), 7: ("DT_RELA", 8), 17: ("DT_REL", 18), 23: ("DT_JMPREL", 2),
              36: ("DT_RELR", 35), 25: ("DT_INIT_ARRAY", 27), 26: ("DT_FINI_ARRAY", 28),
              12: ("DT_INIT", None), 13: ("DT_FINI", None), 3: ("DT_PLTGOT", None),
              0x6FFFFFF0: ("DT_VERSYM", None), 0x6FFFFFFC: ("DT_VERDEF", None),
              0x6FFFFFFE: ("DT_VERNEED", None)}
"""Dynamic entries holding an address the loader reads (or calls), with the tag of their size."""
_DT_TEXTREL, _DT_FLAGS, _DF_TEXTREL = 22, 30, 4
MAX_IMAGE_BYTES = 1 << 40


def _elf_problem(path: Path, for_host: bool) -> str | None:
    """Why ``path`` is not a whole ELF shared object (for this machine if ``for_host``), or None.

    The dynamic loader trusts what it maps: a truncated library passes dlopen's own checks and
    dies with SIGBUS when a page past the end is touched, a damaged program header or dynamic
    table makes it read or write outside the image (SIGSEGV). So: the header; the section and
    program header tables and every PT_LOAD within the file; the segments and dynamic tables the
    loader reads within the loaded image; the relocations' targets within its writable part.
    What this cannot see (damaged code or hash tables) the manifest's sha256 refuses."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            return "not an ELF file"
        cls, data = ident[4], ident[5]
        if cls not in (1, 2) or data not in (1, 2):
            return f"unknown ELF class {cls} or byte order {data}"
        end = "<" if data == 1 else ">"
        if cls == 2:
            header, ph, dyn, word, want_ph, want_sh = (f"{end}HHIQQQIHHHHHH", f"{end}IIQQQQQQ", f"{end}qQ",
                                                       8, 56, 64)
        else:
            header, ph, dyn, word, want_ph, want_sh = (f"{end}HHIIIIIHHHHHH", f"{end}IIIIIIII", f"{end}iI",
                                                       4, 32, 40)
        raw = f.read(struct.calcsize(header))
        if len(raw) < struct.calcsize(header):
            return f"truncated ELF header ({size} bytes)"
        (e_type, machine, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, _shstrndx) = struct.unpack(header, raw)
        if for_host:
            bits = struct.calcsize("P") * 8
            if (cls == 2) != (bits == 64):
                return f"a {32 if cls == 1 else 64}-bit library; this Python is {bits}-bit"
            if (data == 1) != (sys.byteorder == "little"):
                return f"{'little' if data == 1 else 'big'}-endian; this machine is {sys.byteorder}-endian"
            want = _HOST_EM.get(platform.machine().lower())
            if want is not None and machine != want:
                return (f"built for {_EM_NAMES.get(machine, f'machine {machine}')}; this machine is "
                        f"{_EM_NAMES.get(want, platform.machine())}")
        if e_type != _ET_DYN:
            return f"not a shared object (ELF type {e_type})"
        if shnum and (shentsize != want_sh or shoff + shnum * shentsize > size):
            return (f"its section headers end at byte {shoff + shnum * shentsize}, past the end of the "
                    f"file ({size} bytes): truncated")
        if phnum == 0 or phentsize != want_ph or phoff + phnum * phentsize > size:
            return (f"its program headers end at byte {phoff + phnum * phentsize}, past the end of the "
                    f"file ({size} bytes): truncated")
        f.seek(phoff)
        table = f.read(phnum * phentsize)
        segments = []  # (index, type, flags, offset, vaddr, filesz, memsz, align)
        for i in range(phnum):
            v = struct.unpack_from(ph, table, i * phentsize)
            segments.append((i, v[0], v[6], v[1], v[2], v[4], v[5], v[7]) if cls == 1 else
                            (i, v[0], v[1], v[2], v[3], v[5], v[6], v[7]))
        loads = [s for s in segments if s[1] == _PT_LOAD]
        if not loads:
            return "it has no loadable segment"
        for i, _t, flags, offset, vaddr, filesz, memsz, align in loads:
            if offset + filesz > size:
                return (f"its segment {i} (PT_LOAD) ends at byte {offset + filesz}, past the end of the "
                        f"file ({size} bytes): truncated")
            if filesz > memsz or memsz > MAX_IMAGE_BYTES or vaddr + memsz > MAX_IMAGE_BYTES:
                return f"its segment {i} (PT_LOAD) has sizes {filesz} in the file, {memsz} in memory"
            if align & (align - 1) or (align > 1 and (vaddr - offset) % align):
                return f"its segment {i} (PT_LOAD) is misaligned (align {align:#x})"
            if not flags & _PF_R:
                return f"its segment {i} (PT_LOAD) is not readable (flags {flags:#x})"
        if any(a[4] + a[6] > b[4] for a, b in itertools.pairwise(loads)):
            return "its loadable segments overlap or are out of order"

        def mapped(addr: int, n: int, flag: int = 0) -> bool:
            return any(s[4] <= addr and addr + n <= s[4] + s[6] and s[2] & flag == flag for s in loads)

        for i, p_type, _fl, offset, vaddr, filesz, memsz, _al in segments:
            name = _IN_MEMORY.get(p_type)
            # what the loader reads is the file's part (a PT_TLS memsz counts .tbss, a PT_GNU_RELRO
            # memsz may be rounded up to the page, past its PT_LOAD)
            if name and filesz and (offset + filesz > size or not mapped(vaddr, filesz)):
                return f"its segment {i} ({name}) lies outside the loaded image"
        dynamic = [s for s in segments if s[1] == _PT_DYNAMIC]
        if len(dynamic) != 1:
            return f"it has {len(dynamic)} dynamic segments (a shared object has one)"
        _i, _t, _fl, offset, vaddr, filesz, _m, _al = dynamic[0]
        f.seek(offset)
        raw = f.read(filesz)
        entries = {}
        for tag, value in struct.iter_unpack(dyn, raw[:len(raw) - len(raw) % struct.calcsize(dyn)]):
            if tag == 0:
                break
            entries.setdefault(tag, value)
        else:
            return "its dynamic table has no end (DT_NULL)"

        def file_offset(addr: int) -> int | None:
            for s in loads:
                if s[4] <= addr < s[4] + s[5]:
                    return s[3] + addr - s[4]
            return None

        for tag, (name, size_tag) in _DT_TABLES.items():
            if tag in entries:
                n = entries.get(size_tag, 0) if size_tag is not None else 1
                if not mapped(entries[tag], max(n, 1), _PF_X if name in ("DT_INIT", "DT_FINI") else 0):
                    return f"its dynamic entry {name} ({entries[tag]:#x}, {n} bytes) lies outside the loaded image"
        textrel = _DT_TEXTREL in entries or entries.get(_DT_FLAGS, 0) & _DF_TEXTREL
        for table, size_tag in ((7, 8), (23, 2)):  # DT_RELA/RELASZ, DT_JMPREL/PLTRELSZ (RELA on x86-64/AArch64)
            if table not in entries or entries.get(20, 7) != 7 and table == 23:
                continue
            start, n = file_offset(entries[table]), entries.get(size_tag, 0)
            if start is None or start + n > size:
                return f"its relocation table at {entries[table]:#x} is not in the file"
            f.seek(start)
            raw = f.read(n)
            # Elf_Rela: r_offset, r_info, r_addend (one word each); r_offset is the address written
            targets = np.frombuffer(raw, dtype=f"{end}u{word}", count=len(raw) // (3 * word) * 3)[::3]
            ok = np.zeros(len(targets), bool)
            for s in loads:
                if (textrel or s[2] & _PF_W) and s[6] >= word:
                    ok |= (targets >= s[4]) & (targets <= s[4] + s[6] - word)
            if not ok.all():
                return (f"a relocation writes to {int(targets[~ok][0]):#x}, outside the writable loaded "
                        "image")
    return None


_PROBE = """import ctypes, sys
for dep in sys.argv[2:]:
    ctypes.CDLL(dep, mode=ctypes.RTLD_GLOBAL)
ctypes.CDLL(sys.argv[1])
"""


def probe_load(path, directory=None) -> None:
    """``dlopen`` the library once in a child process before this one maps it: a library whose
    headers pass :func:`check_library` can still point the dynamic loader at the wrong bytes (the
    fuzz test moved a segment's file offset by one page), and a loader that crashes must not take
    this process with it. ~0.1 s (the child preloads only tvm-ffi, the one library a model.so
    links against). Set ``EDGEAVS_NO_LOAD_PROBE=1`` to skip it for a library you trust."""
    import importlib.util
    import signal
    import subprocess

    if os.environ.get("EDGEAVS_NO_LOAD_PROBE", "").strip() not in ("", "0") or not sys.platform.startswith("linux"):
        return
    path = Path(path)
    where = f"artifact {Path(directory) if directory is not None else path.parent}: {path.name}"
    spec = importlib.util.find_spec("tvm_ffi")
    deps = sorted(str(p) for p in (Path(spec.origin).parent / "lib").glob("libtvm_ffi.so")) \
        if spec is not None and spec.origin else []
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), *deps], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EdgeAVSError(f"{where}: loading it hangs (a damaged library?)") from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise EdgeAVSError(f"{where}: the dynamic loader crashed on it ({name}): a damaged library")
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        raise EdgeAVSError(f"{where} could not be loaded: {lines[-1] if lines else f'exit {proc.returncode}'}")


def check_library(path, directory=None, for_host: bool = True) -> None:
    """Refuse, in one line, a library file the runtime must not map (see :func:`_elf_problem`).

    ``for_host``: the library is loaded in this process, so it must also be built for this
    machine (checked on Linux, where edgeavs builds ELF; elsewhere only a device library is)."""
    path = Path(path)
    directory = Path(directory) if directory is not None else path.parent
    if for_host and not sys.platform.startswith("linux"):
        return
    try:
        problem = _elf_problem(path, for_host)
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
    if problem:
        raise EdgeAVSError(f"artifact {directory}: {path.name} is not a library the runtime can load: "
                           f"{problem}")


# ---------------------------------------------------------------- running

@contextlib.contextmanager
def _torch_blocked():
    """tvm_ffi imports torch eagerly when it can; make that import fail (it is optional there)
    so that a process which only runs artifacts stays torch-free (no torch/TVM OpenMP clash,
    ~1 s less start-up). Without effect when torch is already loaded."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


RUNTIME_ONLY_ENV = "TVM_USE_RUNTIME_LIB"
"""Set to ``1`` before ``import tvm``, TVM loads ``libtvm_runtime`` and not its compiler library."""


def use_runtime_only() -> bool:
    """For a process that only runs artifacts (``edgeavs segment --artifact``, the benchmark's
    TVM worker): load TVM's runtime library alone (``TVM_USE_RUNTIME_LIB=1``), not the ~250 MB
    compiler library. Takes effect only if TVM is not imported yet (TVM reads the variable once,
    when it loads); returns whether this process runs (or will run) TVM without its compiler. A
    process that also compiles must not call it: :mod:`edgeavs.tvm_api` then refuses, in one
    line. Child processes inherit the variable. ``TVM_USE_RUNTIME_LIB=0`` already set keeps the
    whole library (for comparison: ``bench/bench_memory.py``)."""
    if "tvm" not in sys.modules:
        if os.environ.get(RUNTIME_ONLY_ENV, "").strip() == "0":
            return False
        os.environ[RUNTIME_ONLY_ENV] = "1"
        return True
    base = sys.modules.get("tvm.base")
    return bool(getattr(base, "_RUNTIME_ONLY", False))


def tvm_libraries() -> list[str]:
    """The file names of TVM's shared libraries mapped in this process (``/proc/self/maps``;
    empty where there is none): ``libtvm_runtime.so`` alone after :func:`use_runtime_only`,
    ``libtvm_compiler.so`` too otherwise."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    names = {Path(line.split(None, 5)[5]).name for line in text.splitlines()
             if len(line.split(None, 5)) == 6 and "/libtvm" in line}
    return sorted(n for n in names if n.startswith("libtvm") and ".so" in n)


def _runtime():
    """``(tvm, VirtualMachine)``: TVM as this process loaded it (full or runtime-only, see
    :func:`use_runtime_only`); the VM class from ``tvm.runtime``, which needs no compiler."""
    with _torch_blocked():
        import tvm
        from tvm.runtime.vm import VirtualMachine
    return tvm, VirtualMachine


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not ln.startswith(("Traceback", "File ", "at "))]
    return (meaningful or lines or [type(exc).__name__])[0]


class CompiledModel:
    """A loaded artifact: ``run(frames, waveform) -> logits`` (numpy in, numpy out).

    The library is compiled for a fixed batch (``manifest['inputs']``); ``run`` takes any
    ``N`` and runs the compiled batch repeatedly. Multi-output graphs (``--per-layer``
    verification) come back from :meth:`run_all` as a dict by output name.

    ``manifest`` must come from :func:`read_manifest` (checked); the library is checked to be a
    whole ELF shared object for this machine before it is mapped.
    """

    def __init__(self, directory, manifest: dict, device=None):
        tvm, VirtualMachine = _runtime()
        self.directory = Path(directory)
        self.manifest = manifest
        self.inputs = manifest["inputs"]
        self.outputs = manifest["outputs"]
        self._tvm = tvm
        self.device = device or tvm.cpu()
        path = self.directory / LIBRARY
        check_library(path, self.directory, for_host=True)
        probe_load(path, self.directory)
        try:
            lib = tvm.runtime.load_module(str(path))
            self.vm = VirtualMachine(lib, self.device)  # the pooled allocator: reuses its blocks
            self._main = self.vm["main"]
        except Exception as exc:  # noqa: BLE001 - TVM raises RuntimeError/TVMError/AttributeError
            raise EdgeAVSError(f"artifact {self.directory}: {LIBRARY} could not be loaded: "
                               f"{_first_line(exc)}") from None

    @property
    def batch(self) -> int:
        return int(self.inputs[0]["shape"][0])

    @property
    def resolution(self) -> tuple[int, int]:
        h, w = self.manifest["resolution"]
        return int(h), int(w)

    def _check(self, arrays):
        """The user's arrays as contiguous float32, refused in one line unless each has the rank
        and per-sample shape of its input, a real numeric dtype, and all share one ``N > 0``."""
        checked = []
        for a, spec in zip(arrays, self.inputs):
            name, want = spec["name"], list(spec["shape"])
            try:
                a = np.asarray(a)
            except (TypeError, ValueError) as exc:
                raise EdgeAVSError(f"input {name} is not an array ({_first_line(exc)})") from None
            if a.dtype.kind not in "fiu":
                raise EdgeAVSError(f"input {name} has dtype {a.dtype}; this artifact takes real "
                                   "numbers (float32)")
            if a.ndim != len(want) or list(a.shape[1:]) != want[1:]:
                raise EdgeAVSError(f"input {name} has shape {tuple(a.shape)}; this "
                                   f"artifact takes (N, {', '.join(map(str, want[1:]))})")
            checked.append(np.ascontiguousarray(a, dtype=np.float32))
        n = checked[0].shape[0]
        for a, spec in zip(checked[1:], self.inputs[1:]):
            if a.shape[0] != n:
                raise EdgeAVSError(f"input {spec['name']} has {a.shape[0]} rows and "
                                   f"{self.inputs[0]['name']} {n}; they must match")
        if n == 0:
            raise EdgeAVSError(f"input {self.inputs[0]['name']} is empty (N = 0); nothing to run")
        return checked, n

    def run_all(self, frames, waveform) -> dict:
        (frames, waveform), n = self._check([frames, waveform])
        b = self.batch
        if n % b:
            raise EdgeAVSError(f"batch of {n} is not a multiple of the compiled batch {b}")
        tensor = self._tvm.runtime.tensor
        chunks = []
        for i in range(0, n, b):
            try:
                out = self._main(tensor(frames[i:i + b], self.device),
                                 tensor(waveform[i:i + b], self.device))
                outs = [out] if hasattr(out, "numpy") else list(out)
                outs = [o.numpy() for o in outs]
            except Exception as exc:  # noqa: BLE001 - TVM's match_cast and other checks
                raise EdgeAVSError(f"artifact {self.directory}: the library rejected the inputs: "
                                   f"{_first_line(exc)}") from None
            if len(outs) != len(self.outputs):
                raise EdgeAVSError(f"artifact {self.directory}: the library returned {len(outs)} "
                                   f"output(s); {MANIFEST} lists {len(self.outputs)}")
            chunks.append(outs)
        return {spec["name"]: np.concatenate([c[k] for c in chunks], axis=0)
                for k, spec in enumerate(self.outputs)}

    def run(self, frames, waveform) -> np.ndarray:
        """``frames (N,3,H,W)``, ``waveform (N,32000)`` float32 -> logits ``(N,1,H,W)``."""
        return self.run_all(frames, waveform)["logits"]

    __call__ = run


def load_artifact(directory, validate: bool = True) -> CompiledModel:
    """Load an artifact directory (checking every file against the manifest hashes)."""
    manifest = validate_artifact(directory) if validate else read_manifest(directory)
    return CompiledModel(directory, manifest)
