"""Knob records: workload keys, knob spaces, candidates and the ``edgeavs_knobs.json`` file of ``edgeavs tune``.

Every edgeavs schedule (``kernels/{pointwise,depthwise,conv2d,stft,elementwise}.py``) and fusion kernel
(``kernels/{hsig_gate,audio_gate,channel_bias}.py``) has a ``Config``, a target-derived ``fallback_config`` and a
``knob_space``. ``edgeavs tune`` searches those spaces here (MetaSchedule only gets what our schedules leave):

1. **Workload keys.** A function is named by what it computes, not by its (compile-dependent) symbol:
   ``<class>/<structural hash of the unscheduled PrimFunc>`` for a function ``ApplyEdgeAVSSchedules`` scheduled
   (e.g. ``conv1x1/244ab5876c5fa252``), ``<kernel>/<workload fields>`` for a fusion kernel
   (``hsig_gate/n=1,ci=64,...``). The key is the ``edgeavs.workload`` attribute of the scheduled function.
2. **Candidates.** One knob changed at a time over its ``knob_space`` values around a centre config (the values
   nearest the centre first, at most :data:`MAX_CANDIDATES`). Each candidate counts as one trial of the tune
   budget. The search itself, which times candidates inside the compiled model and keeps a config only when it
   wins there and end to end, is :mod:`edgeavs.tune.in_model`.
3. **Records.** ``edgeavs_knobs.json`` in the records directory (``records.py``): per key the kind (schedule or
   kernel name), the winning config (``null``: the default stayed), the functions and the in-model timings. A
   run that finds a key there skips it (resume) and builds that function with the recorded config.

At compile time ``configs["functions"]`` (the records' entries) overrides the default for a function whose key
matches (``ApplyEdgeAVSSchedules`` and the fusion passes call :func:`tuned_config`); such a function carries
``edgeavs.knobs = "tuned"``. Entries whose key matches no function (another model or resolution) are counted as
stale and ignored (:func:`usage`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Callable

from edgeavs.errors import EdgeAVSError

FORMAT = "edgeavs-knobs/1"
MARGIN = 0.03
"""A candidate must be this much faster than the default (re-measured) to replace it."""
MAX_CANDIDATES = 16
MAX_VALUES_PER_KNOB = 6
WORKLOAD_ATTR = "edgeavs.workload"
TUNED_ATTR = "edgeavs.knobs"

KERNELS = ("hsig_gate", "audio_gate", "channel_bias", "stft_fft")
SCHEDULES = ("gemm", "depthwise", "direct_conv", "window_dot", "generic")


# ------------------------------------------------------------------ kinds, keys, config (de)serialisation

def config_classes() -> dict[str, type]:
    """Kind (schedule name or kernel chain) -> its config dataclass."""
    from kernels.audio_gate import AudioGateConfig
    from kernels.channel_bias import ChannelBiasConfig
    from kernels.conv2d import DirectConvConfig
    from kernels.depthwise import DepthwiseConfig
    from kernels.elementwise import GenericConfig
    from kernels.hsig_gate import HsigGateConfig
    from kernels.pointwise import GemmConfig
    from kernels.stft import DotConfig
    from kernels.stft_fft import StftFftConfig

    return {"gemm": GemmConfig, "depthwise": DepthwiseConfig, "direct_conv": DirectConvConfig,
            "window_dot": DotConfig, "generic": GenericConfig, "hsig_gate": HsigGateConfig,
            "audio_gate": AudioGateConfig, "channel_bias": ChannelBiasConfig, "stft_fft": StftFftConfig}


MAX_KNOB = 2**20
"""The largest integer knob value a config may hold (the knob spaces stay below 65536): a larger one in a
records file is refused in one line instead of reaching TVM's schedule primitives."""


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _shown(value) -> str:
    """A knob value as one short line of JSON (a container by its type)."""
    return _cut(json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__)


_CHOICES = {("gemm", "parallel"): ("pixel", "channel"), ("hsig_gate", "vector_axis"): ("px", "co")}
"""The string knobs and their values (every other knob is a positive int or a bool)."""


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(kind: str, values):
    """The ``kind``'s config from a JSON object; ValueError (one line) names the bad knob."""
    classes = config_classes()
    if not isinstance(kind, str) or kind not in classes:
        raise ValueError(f"unknown kind {_cut(repr(kind))} (known: {', '.join(sorted(classes))})")
    cls = classes[kind]
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
            ok = isinstance(v, str) and v in _CHOICES.get((kind, name), (v,))
        else:
            ok = True
        if not ok:
            want = {"bool": "true or false", "int": f"a positive integer (at most {MAX_KNOB})"}.get(
                ty, "one of " + ", ".join(_CHOICES.get((kind, name), ("a string",))))
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


def _workload_classes() -> dict[str, tuple]:
    from kernels import audio_gate, channel_bias, hsig_gate, stft_fft

    return {"hsig_gate": (hsig_gate.HsigGateWorkload, hsig_gate),
            "audio_gate": (audio_gate.AudioGateWorkload, audio_gate),
            "channel_bias": (channel_bias.ChannelBiasWorkload, channel_bias),
            "stft_fft": (stft_fft.StftFftWorkload, stft_fft)}


def parse_kernel_key(key: str):
    """``(kind, workload, kernel module)`` of a kernel key; ValueError when it is not one."""
    kind, _, rest = key.partition("/")
    table = _workload_classes()
    if kind not in table:
        raise ValueError(f"{key!r} is not a kernel key")
    cls, module = table[kind]
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    values = {}
    for part in rest.split(","):
        name, _, text = part.partition("=")
        if name not in types:
            raise ValueError(f"{key!r}: unknown workload field {name!r}")
        values[name] = bool(int(text)) if types[name] == "bool" else int(text) if types[name] == "int" else text
    return kind, cls(**values), module


# ------------------------------------------------------------------ the records file

def check_entries(data, path) -> dict:
    """Validate the parsed ``edgeavs_knobs.json``; returns ``{key: entry}`` or raises a one-line EdgeAVSError
    naming ``path``."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("functions"), dict):
        raise EdgeAVSError(f"{path}: not an edgeavs knob file ({FORMAT}: an object with \"functions\")")
    for key, entry in data["functions"].items():
        shown = _cut(repr(key), 80)
        if not key or not key.isprintable():
            raise EdgeAVSError(f"{path}: entry {shown} is not a workload key (one line of text)")
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise EdgeAVSError(f"{path}: entry {shown} has no \"kind\"")
        if entry.get("config") is None:
            continue
        try:
            config_from_dict(entry["kind"], entry["config"])
        except ValueError as exc:
            raise EdgeAVSError(f"{path}: entry {shown}: {exc}") from None
    return data["functions"]


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

    tuned, default, seen, names = 0, 0, set(), []
    for gv, func in mod.functions_items():
        if not isinstance(func, PrimFunc) or func.attrs is None or WORKLOAD_ATTR not in func.attrs:
            continue
        seen.add(str(func.attrs[WORKLOAD_ATTR]))
        if TUNED_ATTR in func.attrs:
            tuned += 1
            names.append(gv.name_hint)
        else:
            default += 1
    functions = (configs or {}).get("functions") or {}
    with_config = {k for k, e in functions.items()
                   if dataclasses.is_dataclass(e) or (isinstance(e, dict) and e.get("config") is not None)}
    return {"tuned": tuned, "default": default, "records": len(with_config),
            "stale": len(with_config - seen), "tuned_functions": sorted(names)}


# ------------------------------------------------------------------ tasks and candidates

@dataclass(eq=False)  # identity: tasks are dict keys of the search
class KnobTask:
    key: str
    kind: str
    names: list  # the functions (symbols) that share this key
    default: object
    space: dict
    build: Callable  # config -> scheduled PrimFunc (raises when the config does not apply)
    profiled_us: float = 0.0
    candidates: list = field(default_factory=list)


def _near(values: list, default, limit: int) -> list:
    """Up to ``limit`` values other than ``default``, the nearest first (by ratio for numbers)."""
    others = [v for v in values if v != default]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in others + [default]) and default:
        others.sort(key=lambda v: (abs(math.log(max(v, 1e-9) / default)), v))
    return others[:limit]


def candidates(default, space: dict, limit: int = MAX_CANDIDATES) -> list:
    """One knob changed at a time, interleaved over the knobs (each gets its nearest values first)."""
    names = [f.name for f in dataclasses.fields(default)]
    per_knob = [[(k, v) for v in _near(list(space[k]), getattr(default, k), MAX_VALUES_PER_KNOB)]
                for k in names if k in space]
    out, seen = [], {default}
    for i in range(max((len(p) for p in per_knob), default=0)):
        for p in per_knob:
            if i < len(p):
                cand = dataclasses.replace(default, **{p[i][0]: p[i][1]})
                if cand not in seen:
                    seen.add(cand)
                    out.append(cand)
    return out[:limit]


def _scheduled_space(kind: str, func, target) -> dict:
    from edgeavs.passes.schedule_ops import classify
    from edgeavs.tvm_api import s_tir
    from kernels import conv2d, depthwise, elementwise, pointwise, stft
    from kernels.blocks import analyze_mac

    if kind == "generic":
        return elementwise.knob_space(target)
    sch = s_tir.Schedule(func)
    _, block = classify(sch)
    info = analyze_mac(sch, block) if block is not None else None
    if info is None:
        return {}
    if kind == "gemm":
        return pointwise.knob_space(pointwise.GemmWorkload.from_info(info), target)
    if kind == "depthwise":
        ky = [r for r in info.reduce if info.extents[r] > 1]
        yy, xx = info.pixel
        wl = depthwise.DepthwiseWorkload(channels=info.extents[info.shared[0]], out_h=info.extents[yy],
                                         out_w=info.extents[xx], k=info.extents[ky[0]] if ky else 1,
                                         stride=depthwise.column_stride(info, xx) or 1)
        return depthwise.knob_space(wl, target)
    if kind == "direct_conv":
        return conv2d.knob_space(info.extents[info.register[0]], info.extents[info.pixel[-1]], target)
    if kind == "window_dot":
        return stft.knob_space(info.extents[info.register[0]], target)
    return {}


def knob_tasks(pre, scheduled, target, profile: dict, only=()) -> list[KnobTask]:
    """One task per workload key among the functions of ``scheduled`` that carry one (``pre``: the same module
    before ``ApplyEdgeAVSSchedules``), hottest first by ``profile`` (microseconds per inference by symbol)."""
    from edgeavs.passes.schedule_ops import schedule_prim_func
    from edgeavs.tvm_api import PrimFunc

    by_key: dict[str, KnobTask] = {}
    for gv, func in scheduled.functions_items():
        name = gv.name_hint
        if not isinstance(func, PrimFunc) or func.attrs is None or WORKLOAD_ATTR not in func.attrs:
            continue
        if only and not any(o in name for o in only):
            continue
        key = str(func.attrs[WORKLOAD_ATTR])
        if key in by_key:
            by_key[key].names.append(name)
            by_key[key].profiled_us += profile.get(name, 0.0)
            continue
        if "edgeavs.kernel" in func.attrs:
            try:
                kind, wl, module = parse_kernel_key(key)
            except ValueError:
                continue
            default = module.fallback_config(wl, target)
            space = module.knob_space(wl, target)
            build = (lambda m, w: (lambda cfg: m.schedule(w, cfg)))(module, wl)
        else:
            kind = str(func.attrs.get("edgeavs.schedule", ""))
            if kind not in SCHEDULES or gv not in pre.functions:
                continue
            src = pre[gv]
            _, _, sname, default, _ = schedule_prim_func(src, target, None, check_lowering=False)
            if sname != kind or default is None:
                continue
            space = _scheduled_space(kind, src, target)

            def build(cfg, src=src, kind=kind):
                new, _, got, _, err = schedule_prim_func(src, target, {kind: cfg}, check_lowering=False)
                if got != kind:
                    raise ValueError(err or f"{kind} does not apply")
                return new

        task = KnobTask(key=key, kind=kind, names=[name], default=default, space=space, build=build,
                        profiled_us=profile.get(name, 0.0))
        task.candidates = candidates(default, space)
        by_key[key] = task
    return sorted(by_key.values(), key=lambda t: (-t.profiled_us, t.key))


# ------------------------------------------------------------------ the search's summary

@dataclass
class KnobSummary:
    functions: int = 0  # searched in this run
    resumed: int = 0  # skipped: already in the records
    tuned: int = 0  # searched in this run and a candidate kept
    trials: int = 0
    rounds: int = 0  # whole-model builds timed (edgeavs.tune.in_model)
    seconds: float = 0.0
    gain_us: float = 0.0  # saving per inference: in-model default minus tuned time of the kept functions
    end_to_end: dict = field(default_factory=dict)  # {"default_ms", "tuned_ms"[, "rejected"]}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_pipeline(mod, tvm_target, params):
    """``(folded, pre, scheduled)``: the pipeline up to ``fold-constants`` (where a whole-model build for the
    in-model search starts), then up to ``fuse-ops`` (what candidates are scheduled from), and the same module
    after ``edgeavs-schedules`` with the default knobs (what tasks and the profile come from)."""
    from edgeavs.compiler.pipeline import PIPELINE, run_pipeline
    from edgeavs.tvm_api import IRModule

    names = [p.name for p in PIPELINE]
    folded = run_pipeline(mod, tvm_target, params, phases=names[:names.index("fold-constants") + 1])[0]
    copy = IRModule(dict(folded.functions_items()), attrs=folded.attrs, global_infos=folded.global_infos)
    pre = run_pipeline(copy, tvm_target, None,
                       phases=names[names.index("fold-constants") + 1:names.index("edgeavs-schedules")])[0]
    # the schedule pass replaces functions in the module it is given: give it a copy
    copy = IRModule(dict(pre.functions_items()), attrs=pre.attrs, global_infos=pre.global_infos)
    scheduled = run_pipeline(copy, tvm_target, None, phases=["edgeavs-schedules"])[0]
    return folded, pre, scheduled


__all__ = ["FORMAT", "MARGIN", "KnobTask", "KnobSummary", "candidates", "check_entries", "config_from_dict",
           "config_to_dict", "function_key", "kernel_key", "knob_tasks", "parse_kernel_key", "pick_kernel_config",
           "split_pipeline", "tuned_config", "usage"]
