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

``mcpu`` is checked against LLVM (TVM only warns on an unknown CPU and silently falls back to a
generic one). Every problem is one :class:`~edgeavs.errors.EdgeAVSError` line.
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
    path = Path(text)
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text
    if looks_like_path:
        if not path.is_file():
            raise EdgeAVSError(f"target file {text} not found")
        return path
    if re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        candidate = targets_dir() / f"{text}.yaml"
        if candidate.is_file():
            return candidate
    raise EdgeAVSError(
        f"unknown target {text!r}; choose one of: {', '.join(available_targets())} "
        "(or give the path to a target .yaml)")


def _read(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise EdgeAVSError(f"target file {path} is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeAVSError(f"cannot read target file {path}: {exc}") from None
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
    """Validate and resolve a target mapping (the parsed YAML)."""
    unknown = [str(k) for k in data if k not in ALLOWED_KEYS]
    if unknown:
        raise EdgeAVSError(f"target {source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                           f"allowed: {', '.join(ALLOWED_KEYS)}")

    def text(key, default=None, required=False):
        value = data.get(key, default)
        if value is None:
            if required:
                raise EdgeAVSError(f"target {source}: {key!r} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise EdgeAVSError(f"target {source}: {key!r} must be a non-empty string, got {value!r}")
        return value.strip()

    name = text("name", default=Path(source).stem if source != "<dict>" else None, required=True)
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

    mattr = data.get("mattr") or []
    if not isinstance(mattr, list) or not all(isinstance(a, str) and a[:1] in "+-" and len(a) > 1
                                              for a in mattr):
        raise EdgeAVSError(f"target {source}: mattr must be a list of '+feature'/'-feature' "
                           f"strings, got {mattr!r}")

    cores = data.get("num-cores", "auto")
    if cores == "auto":
        cores = _host_cores()
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise EdgeAVSError(f"target {source}: num-cores must be a positive integer or 'auto', "
                           f"got {data.get('num-cores')!r}")

    vw = data.get("vector_width")
    if vw is not None and (isinstance(vw, bool) or not isinstance(vw, int) or vw <= 0 or vw % 8):
        raise EdgeAVSError(f"target {source}: vector_width must be a positive number of bits "
                           f"(a multiple of 8), got {vw!r}")

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
                    description=str(data.get("description") or "").strip(),
                    link=link, cross_cc=cross_cc, source=source)
    if vw is None:
        vw = tvm_api.llvm_vector_width(target.tvm_dict())
    return Target(**{**target.__dict__, "vector_width": int(vw)})


def load_target(name_or_path: str | os.PathLike) -> Target:
    """A target by name (``targets/<name>.yaml``) or by path to a YAML file."""
    path = _find(name_or_path)
    return target_from_dict(_read(path), source=str(name_or_path) if path.parent != targets_dir()
                            else path.stem)
