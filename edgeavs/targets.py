"""Targets as data: ``targets/<name>.yaml`` loaded into a frozen :class:`Target`.

The YAML mirrors TVM's target dict, using TVM's own key names verbatim (``kind``, ``mtriple``,
``mcpu``, ``mattr``, ``num-cores``) so that :meth:`Target.tvm_dict` is a plain copy, plus a few
edgeavs keys (snake_case) that say how to link and describe the machine::

    name: snapdragon8elite
    description: Snapdragon 8 Elite (Oryon-1 cores), Android
    kind: llvm
    mtriple: aarch64-linux-android      # absent: LLVM's host triple
    mcpu: oryon-1                       # "native": the host CPU as LLVM names it
    mattr: [+neon, +dotprod, +i8mm, +fullfp16]
    num-cores: 8                        # "auto": the cores this process may use
    vector_width: 128                   # bits; absent: what LLVM reports for mcpu/mattr
    link: ndk                           # host | cross | ndk
    cross_cc: aarch64-linux-gnu-gcc     # the compiler used to link with link: cross

A key left out takes its default (shown above); a key present with no value (``mcpu:``, ``mcpu: null``,
``mcpu: ~``) is refused, naming the key, never read as the default. ``mcpu`` is checked against LLVM (TVM
only warns on an unknown CPU and silently falls back to a generic one). Every problem is one
:class:`~edgeavs.errors.EdgeAVSError` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgeavs.errors import EdgeAVSError

TVM_KEYS = ("kind", "mtriple", "mcpu", "mattr", "num-cores")
EDGEAVS_KEYS = ("name", "description", "vector_width", "link", "cross_cc")
ALLOWED_KEYS = EDGEAVS_KEYS[:2] + TVM_KEYS + EDGEAVS_KEYS[2:]
KINDS = ("llvm",)
LINKS = ("host", "cross", "ndk")
LIMITS = {"num-cores": (1, 1024)}
"""Inclusive ranges of the integer keys ("auto" aside)."""
VECTOR_WIDTHS = (64, 128, 256, 512, 1024, 2048)
"""SIMD register widths (bits) a ``vector_width`` may state."""
MAX_MATTR = 64
_FEATURE = r"[+-][A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_STRINGS = {  # key: (pattern or None for any printable one-line text, max length, what it must be)
    "name": (r"[A-Za-z0-9][A-Za-z0-9_.-]*", 64, "letters, digits, '_', '.', '-'"),
    "kind": (None, 64, "one line of text"),
    "mtriple": (r"[A-Za-z0-9_.-]+", 128, "an LLVM triple (letters, digits, '_', '.', '-')"),
    "mcpu": (r"[A-Za-z0-9_.+-]+", 64, "an LLVM CPU name (letters, digits, '_', '.', '+', '-')"),
    "link": (None, 64, "one line of text"),
    "cross_cc": (None, 4096, "one line of text (a compiler command or path)"),
    "description": (None, 500, "one line of text"),
}


_NULL_WHAT = {"name": "a string", "description": "a string", "kind": "a string", "mtriple": "a string",
              "mcpu": "a string", "mattr": "a list of '+feature'/'-feature' strings",
              "num-cores": "a positive integer or 'auto'", "vector_width": "the SIMD register width in bits",
              "link": "a string", "cross_cc": "a string"}
"""What each key's value must be, for the message that refuses an explicit null."""
_ABSENT = {"name": "the file name", "description": "no description", "mtriple": "LLVM's host triple",
           "mcpu": "native, the host CPU", "mattr": "no features", "num-cores": "auto",
           "vector_width": "what LLVM reports", "link": "host", "cross_cc": "no cross compiler"}
"""What an absent key means (``kind`` has no default: it is required)."""


def _short(value, limit: int = 60) -> str:
    """``repr(value)`` as it may appear in a one-line message (a long one cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Target:
    """A resolved compilation target ("native"/"auto" already replaced by what was detected)."""

    name: str
    kind: str
    mcpu: str
    num_cores: int
    vector_width: int
    mtriple: str | None = None
    mattr: tuple[str, ...] = ()
    description: str = ""
    link: str = "host"
    cross_cc: str | None = None
    source: str = field(default="", compare=False)

    def tvm_dict(self) -> dict:
        """The dict ``tvm.target.Target`` takes (TVM 0.27 builds targets only from dicts)."""
        d: dict = {"kind": self.kind}
        if self.mtriple:
            d["mtriple"] = self.mtriple
        d["mcpu"] = self.mcpu
        if self.mattr:
            d["mattr"] = list(self.mattr)
        d["num-cores"] = self.num_cores
        return d

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of :meth:`tvm_dict` (sorted keys, no spaces)."""
        return fingerprint(self.tvm_dict())

    def to_tvm(self):
        from edgeavs.tvm_api import Target as TVMTarget

        return TVMTarget(self.tvm_dict())

    @property
    def is_host(self) -> bool:
        return self.link == "host"


def fingerprint(tvm_dict: dict) -> str:
    canon = json.dumps(tvm_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def targets_dir() -> Path:
    """Where the shipped target YAMLs live (package data of the top-level ``targets`` package)."""
    from importlib.resources import files

    return Path(str(files("targets")))


def available_targets() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.yaml"))


def _find(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    try:
        return _locate(text)
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise EdgeAVSError(f"target {shown!r}: cannot be looked up "
                           f"({getattr(exc, 'strerror', None) or exc})") from None


def _locate(text: str) -> Path:
    path = Path(text)
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text
    if looks_like_path:
        if not path.is_file():
            raise EdgeAVSError(f"target file {text} not found")
        return path
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        candidate = targets_dir() / f"{text}.yaml"
        if candidate.is_file():
            return candidate
    raise EdgeAVSError(
        f"unknown target {_short(text)}; choose one of: {', '.join(available_targets())} "
        "(or give the path to a target .yaml)")


MAX_FILE_BYTES = 2**20
"""A target file is a dozen lines; anything above 1 MiB is not one."""


def _read(path: Path) -> dict:
    from edgeavs.io.structured import load_yaml

    data = load_yaml(path, "target file", max_bytes=MAX_FILE_BYTES)
    if not isinstance(data, dict):
        raise EdgeAVSError(f"target file {path} must be a YAML mapping of keys "
                           f"({', '.join(ALLOWED_KEYS)})")
    return data


def _host_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def target_from_dict(data: dict, source: str = "<dict>") -> Target:
    """Validate and resolve a target mapping (the parsed YAML): every key known, every value of its type and
    in its range (:data:`LIMITS`), each problem one EdgeAVSError line naming the key."""
    if not isinstance(data, dict):
        raise EdgeAVSError(f"target {source}: must be a mapping of keys ({', '.join(ALLOWED_KEYS)}), "
                           f"got {type(data).__name__}")
    unknown = [_short(str(k)) for k in data if not isinstance(k, str) or k not in ALLOWED_KEYS]
    if unknown:
        raise EdgeAVSError(f"target {source}: unknown key(s) {', '.join(unknown)}; "
                           f"allowed: {', '.join(ALLOWED_KEYS)}")
    nulls = [k for k in ALLOWED_KEYS if k in data and data[k] is None]
    if nulls:  # ``mcpu: null`` / ``mcpu:`` / ``mcpu: ~``: a default is had by leaving the key out, never by null
        key = nulls[0]
        raise EdgeAVSError(f"target {source}: {key} must be {_NULL_WHAT[key]}, not null ("
                           + (f"leave the key out for {_ABSENT[key]})" if key in _ABSENT else "it is required)"))

    def text(key, default=None, required=False):
        value = data.get(key, default)
        if value is None:
            if required:
                raise EdgeAVSError(f"target {source}: {key!r} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise EdgeAVSError(f"target {source}: {key!r} must be a non-empty string, got {_short(value)}")
        value = value.strip()
        pattern, limit, what = _STRINGS[key]
        if len(value) > limit:
            raise EdgeAVSError(f"target {source}: {key!r} is {len(value)} characters long; at most {limit}")
        if not (re.fullmatch(pattern, value) if pattern else value.isprintable()):
            raise EdgeAVSError(f"target {source}: {key!r} {_short(value)} must be {what}")
        return value

    name = data.get("name")
    if name is None and source != "<dict>":
        name = Path(source).stem
        if not re.fullmatch(_STRINGS["name"][0], name):
            raise EdgeAVSError(f"target {source}: no 'name', and the file name {name!r} is not one "
                               f"({_STRINGS['name'][2]}); add a name: line")
    name = text("name", default=name, required=True)
    kind = text("kind", required=True)
    if kind not in KINDS:
        raise EdgeAVSError(f"target {source}: kind {kind!r} is not supported; allowed: {', '.join(KINDS)}")
    mtriple = text("mtriple")
    mcpu = text("mcpu", default="native")
    link = text("link", default="host")
    if link not in LINKS:
        raise EdgeAVSError(f"target {source}: link {link!r} is not one of: {', '.join(LINKS)}")
    cross_cc = text("cross_cc")
    if link == "cross" and not cross_cc:
        raise EdgeAVSError(f"target {source}: link: cross needs cross_cc (the cross compiler to link with)")
    description = data.get("description")
    description = "" if description is None or description == "" else text("description")

    mattr = data.get("mattr")
    mattr = [] if mattr is None else mattr
    if not isinstance(mattr, list) or not all(isinstance(a, str) and re.fullmatch(_FEATURE, a) for a in mattr):
        raise EdgeAVSError(f"target {source}: mattr must be a list of '+feature'/'-feature' "
                           f"strings, got {_short(mattr)}")
    if len(mattr) > MAX_MATTR:
        raise EdgeAVSError(f"target {source}: mattr has {len(mattr)} features; at most {MAX_MATTR}")

    cores = data.get("num-cores", "auto")
    if cores == "auto":
        cores = _host_cores()
    else:
        lo, hi = LIMITS["num-cores"]
        if isinstance(cores, bool) or not isinstance(cores, int) or not lo <= cores <= hi:
            raise EdgeAVSError(f"target {source}: num-cores must be a positive integer (at most {hi}) or "
                               f"'auto', got {_short(cores)}")

    vw = data.get("vector_width")
    if vw is not None and (isinstance(vw, bool) or not isinstance(vw, int) or vw not in VECTOR_WIDTHS):
        raise EdgeAVSError(f"target {source}: vector_width must be the SIMD register width in bits, one of "
                           f"{', '.join(map(str, VECTOR_WIDTHS))} (NEON/SSE 128, AVX2 256, AVX-512 512, "
                           f"SVE up to 2048), got {_short(vw)}")

    from edgeavs import tvm_api

    if mcpu == "native":
        mcpu = tvm_api.llvm_host_cpu()
    triple = mtriple or tvm_api.llvm_host_triple()
    if not tvm_api.llvm_is_valid_cpu(mcpu, triple):
        raise EdgeAVSError(f"target {source}: LLVM {tvm_api.llvm_version()} does not know mcpu "
                           f"{mcpu!r} for triple {triple!r}")
    if mattr:
        from edgeavs.device.llvm_check import check_llvm_features

        check_llvm_features(mcpu, mattr, triple, source=f"target {source}")
    target = Target(name=name, kind=kind, mcpu=mcpu, num_cores=cores, vector_width=0,
                    mtriple=mtriple, mattr=tuple(mattr),
                    description=description,
                    link=link, cross_cc=cross_cc, source=source)
    if vw is None:
        vw = tvm_api.llvm_vector_width(target.tvm_dict())
    return Target(**{**target.__dict__, "vector_width": int(vw)})


def load_target(name_or_path: str | os.PathLike) -> Target:
    """A target by name (``targets/<name>.yaml``) or by path to a YAML file."""
    path = _find(name_or_path)
    return target_from_dict(_read(path), source=str(name_or_path) if path.parent != targets_dir()
                            else path.stem)


def load_checked_target(name_or_path):
    """:func:`load_target`, then LLVM must know the CPU and every ``mattr`` feature, each ``+name``
    ending up enabled (``edgeavs device check-target``); one-line errors."""
    from edgeavs.device.llvm_check import check_llvm_target, quiet_stderr

    with quiet_stderr():  # loading already asks LLVM (vector width): keep its warnings
        target = load_target(name_or_path)
    if target.kind == "llvm":
        check_llvm_target(target.mcpu, target.mattr, target.mtriple, source=f"target {target.name}")
    return target
