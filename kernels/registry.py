"""Every edgeavs schedule and fusion kernel, declared once (the TOPI lesson, as data).

Each module under ``kernels/`` that defines a schedule or a kernel registers one :class:`Entry` where it is
defined (``register(Entry(...))`` at the bottom of the module): its name (the ``kind`` of a tuning record), its
role (``"schedule"``: ``ApplyEdgeAVSSchedules`` gives it fused PrimFuncs of the op classes it ``serves``;
``"kernel"``: a fusion pass builds it for the chain it ``serves``), its workload and config types,
``fallback_config(workload, facts)`` and ``knob_space(workload, facts)`` (``facts``: ``kernels.defaults.CpuFacts``
or a target), the builder, and the data types it supports. Everything that used to spell the list reads it here:
the schedule pass's dispatch (:func:`schedules_for`), the fusion passes' kernel column, ``edgeavs tune``'s knob
search, the records' (de)serialisation (:func:`config_from_dict`, :func:`parse_kernel_key`) and the manifest.
Adding a schedule or a kernel is one new module with its ``register`` call (and its tests); :func:`entries` finds
it by importing every module of the package.

The compile-side lookup of tuned knobs lives here too, below the passes that use it: workload keys
(:func:`function_key`, :func:`kernel_key`, stored as the ``edgeavs.workload`` attribute), :func:`tuned_config`
and :func:`pick_kernel_config` (``configs["functions"]``: the ``edgeavs_knobs.json`` entries of a records
directory, ``edgeavs.compiler.records``), and :func:`usage` (tuned vs default functions, stale records).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from edgeavs.errors import EdgeAVSError

WORKLOAD_ATTR = "edgeavs.workload"
"""The PrimFunc attribute holding its workload key (how records find it again)."""
TUNED_ATTR = "edgeavs.knobs"
"""Set to ``"tuned"`` on a function built with a recorded config."""
ROLES = ("schedule", "kernel")
ANY_CLASS = "*"
"""``serves`` of a schedule that applies to every op class (tried after the specific ones)."""
MAX_KNOB = 2**20
"""The largest integer knob value a config may hold (the knob spaces stay below 65536): a larger one in a
records file is refused in one line instead of reaching TVM's schedule primitives."""


@dataclass(frozen=True)
class Entry:
    """One schedule or fusion kernel.

    ``build``: for a schedule ``(sch, block, config_or_None, facts) -> config used`` (raises when it does not
    apply; ``block`` is the MAC block or None); for a kernel ``(workload, config) -> PrimFunc``.
    ``workload_of``: schedules only, ``(sch, block, mac_info) -> workload`` of a fused PrimFunc (its knob space).
    ``order``: among the schedules of one op class, lower is tried first."""

    name: str
    role: str
    serves: tuple
    workload: type
    config: type
    fallback_config: Callable
    knob_space: Callable
    build: Callable
    workload_of: Callable | None = None
    order: int = 0
    choices: dict = field(default_factory=dict)
    """String knobs and their allowed values (every other knob is a positive int or a bool)."""
    dtypes: tuple = ("float32",)
    """The accumulator dtypes the entry serves (a schedule's vector lanes follow the dtype it schedules)."""
    work: Callable | None = None
    """Kernels whose blocks do not show their work (a tensorized inner product is one call, not a MAC block):
    ``(workload) -> {"macs", "flops", "int_ops"}`` of one call, counted on the workload (no padding). The
    profile's function table takes it instead of counting blocks."""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"registry entry {self.name!r}: role {self.role!r} is not one of {ROLES}")


_ENTRIES: dict[str, Entry] = {}
_LOADED = False


def register(entry: Entry) -> Entry:
    """Declare ``entry`` (called once by the module that defines it)."""
    old = _ENTRIES.get(entry.name)
    if old is not None and old.build.__module__ != entry.build.__module__:
        raise ValueError(f"registry entry {entry.name!r} declared twice ({old.build.__module__}, "
                         f"{entry.build.__module__})")
    _ENTRIES[entry.name] = entry
    return entry


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    import kernels

    for info in sorted(pkgutil.iter_modules(kernels.__path__), key=lambda m: m.name):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"kernels.{info.name}")
    _LOADED = True


def entries(role: str | None = None) -> tuple[Entry, ...]:
    """Every entry (or those of ``role``), by name."""
    _load()
    return tuple(e for _, e in sorted(_ENTRIES.items()) if role is None or e.role == role)


def names(role: str | None = None) -> tuple[str, ...]:
    return tuple(e.name for e in entries(role))


def get(name: str) -> Entry:
    _load()
    if name not in _ENTRIES:
        raise KeyError(f"no schedule or kernel {name!r} (known: {', '.join(sorted(_ENTRIES))})")
    return _ENTRIES[name]


def schedules_for(cls: str) -> list[Entry]:
    """The schedules ``ApplyEdgeAVSSchedules`` tries, in order, on a function of op class ``cls``: the ones that
    name it first (by ``order``), then those serving every class."""
    own = [e for e in entries("schedule") if cls in e.serves]
    anyc = [e for e in entries("schedule") if ANY_CLASS in e.serves and e not in own]
    return sorted(own, key=lambda e: (e.order, e.name)) + sorted(anyc, key=lambda e: (e.order, e.name))


def kernel_for_chain(chain: str) -> Entry:
    """The kernel entry that serves the fusion chain ``chain`` (e.g. ``"edgeavs.hsig_gate"``)."""
    for e in entries("kernel"):
        if chain in e.serves:
            return e
    raise KeyError(f"no kernel serves chain {chain!r}")


# ------------------------------------------------------------------ keys, config (de)serialisation

def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _shown(value) -> str:
    """A knob value as one short line of JSON (a container by its type)."""
    return _cut(json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__)


def config_classes() -> dict[str, type]:
    """Kind (schedule name or kernel name) -> its config dataclass."""
    return {e.name: e.config for e in entries()}


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(kind: str, values):
    """The ``kind``'s config from a JSON object; ValueError (one line) names the bad knob."""
    classes = config_classes()
    if not isinstance(kind, str) or kind not in classes:
        raise ValueError(f"unknown kind {_cut(repr(kind))} (known: {', '.join(sorted(classes))})")
    cls = classes[kind]
    choices = get(kind).choices
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ValueError(f"{kind}: config must be a JSON object, not {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(values) - set(fields))
    if unknown:
        raise ValueError(f"{kind}: unknown knob {_cut(repr(unknown[0]))} (knobs: {', '.join(fields)})")
    for name, f in fields.items():
        if name not in values:
            if f.default is dataclasses.MISSING:
                raise ValueError(f"{kind}: knob {name!r} missing")
            continue
        v, ty = values[name], str(f.type)
        if ty == "bool":
            ok = isinstance(v, bool)
        elif ty == "int":
            ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_KNOB
        elif ty == "str":
            ok = isinstance(v, str) and v in choices.get(name, (v,))
        else:
            ok = True
        if not ok:
            want = {"bool": "true or false", "int": f"a positive integer (at most {MAX_KNOB})"}.get(
                ty, "one of " + ", ".join(choices.get(name, ("a string",))))
            raise ValueError(f"{kind}: knob {name}={_shown(v)} is not {want}")
    return cls(**values)


def function_key(func, cls: str) -> str:
    """Key of a PrimFunc that ``ApplyEdgeAVSSchedules`` schedules: its class and the structural hash of the
    unscheduled function (without its symbol name), the same in every compile of the same model and target."""
    from edgeavs.tvm_api import structural_hash

    if func.attrs is not None and "global_symbol" in func.attrs:
        func = func.without_attr("global_symbol")
    return f"{cls}/{structural_hash(func) & (2**64 - 1):016x}"


def kernel_key(kind: str, wl) -> str:
    """Key of a fusion kernel: its kind and its workload's fields (``hsig_gate/n=1,ci=64,...``)."""
    parts = []
    for f in dataclasses.fields(wl):
        v = getattr(wl, f.name)
        parts.append(f"{f.name}={int(v) if isinstance(v, bool) else v}")
    return f"{kind}/{','.join(parts)}"


def parse_kernel_key(key: str) -> tuple[str, object, Entry]:
    """``(kind, workload, registry entry)`` of a kernel key; ValueError when it is not one."""
    kind, _, rest = key.partition("/")
    kernels = {e.name: e for e in entries("kernel")}
    if kind not in kernels:
        raise ValueError(f"{key!r} is not a kernel key")
    entry = kernels[kind]
    cls = entry.workload
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    values = {}
    for part in rest.split(","):
        name, _, text = part.partition("=")
        if name not in types:
            raise ValueError(f"{key!r}: unknown workload field {name!r}")
        values[name] = bool(int(text)) if types[name] == "bool" else int(text) if types[name] == "int" else text
    return kind, cls(**values), entry


# ------------------------------------------------------------------ tuned knobs at compile time

def tuned_config(configs: dict | None, key: str, kinds=None):
    """``(kind, config)`` that ``configs["functions"]`` sets for ``key``, or None (use the default). An invalid
    entry (a Python caller's; records were checked when read) is a one-line EdgeAVSError."""
    functions = (configs or {}).get("functions") or {}
    entry = functions.get(key)
    if entry is None:
        return None
    if dataclasses.is_dataclass(entry):
        kind = next((k for k, c in config_classes().items() if isinstance(entry, c)), None)
        return (kind, entry) if kind and (kinds is None or kind in kinds) else None
    if not isinstance(entry, dict) or entry.get("config") is None:
        return None
    if kinds is not None and entry.get("kind") not in kinds:
        return None
    try:
        return entry["kind"], config_from_dict(entry["kind"], entry["config"])
    except ValueError as exc:
        raise EdgeAVSError(f"knob configuration for {key}: {exc}") from None


def pick_kernel_config(configs: dict | None, kind: str, wl, default, build: Callable):
    """For a fusion pass: ``(config, make, tuned)`` — the tuned config when the records have one for ``wl`` and it
    builds, else ``default``; ``make()`` returns the kernel PrimFunc (marked ``edgeavs.knobs="tuned"`` if so)."""
    found = tuned_config(configs, kernel_key(kind, wl), kinds=(kind,))
    if found is not None:
        try:
            func = build(found[1]).with_attr(TUNED_ATTR, "tuned")
            return found[1], (lambda: func), True
        except (ValueError, RuntimeError):
            pass  # a config that does not fit this workload: the default (counted as not tuned)
    return default, (lambda: build(default)), False


def usage(mod, configs: dict | None) -> dict:
    """How many PrimFuncs of ``mod`` run tuned knobs vs their defaults, and how many knob entries matched no
    function (stale: tuned for another model or resolution; ignored)."""
    from edgeavs.tvm_api import PrimFunc

    tuned, default, seen, names_ = 0, 0, set(), []
    for gv, func in mod.functions_items():
        if not isinstance(func, PrimFunc) or func.attrs is None or WORKLOAD_ATTR not in func.attrs:
            continue
        seen.add(str(func.attrs[WORKLOAD_ATTR]))
        if TUNED_ATTR in func.attrs:
            tuned += 1
            names_.append(gv.name_hint)
        else:
            default += 1
    functions = (configs or {}).get("functions") or {}
    with_config = {k for k, e in functions.items()
                   if dataclasses.is_dataclass(e) or (isinstance(e, dict) and e.get("config") is not None)}
    return {"tuned": tuned, "default": default, "records": len(with_config),
            "stale": len(with_config - seen), "tuned_functions": sorted(names_)}


__all__ = ["ANY_CLASS", "Entry", "MAX_KNOB", "TUNED_ATTR", "WORKLOAD_ATTR", "config_classes", "config_from_dict",
           "config_to_dict", "entries", "function_key", "get", "kernel_for_chain", "kernel_key", "names",
           "parse_kernel_key", "pick_kernel_config", "register", "schedules_for", "tuned_config", "usage"]
