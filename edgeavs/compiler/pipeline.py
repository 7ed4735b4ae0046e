"""The Relax pipeline: ONE ordered list of phases, from an imported module to VM-ready code.

    bind-weights         BindParams: weights become constants (bound into the .so)
    fold-batchnorm       FoldBatchnormToConv2D (needs the weights bound)
    decompose            DecomposeOpsForInference (remaining BN -> mul/add, dropout away)
    canonicalize         CanonicalizeBindings, DeadCodeElimination
    fold-constants       FoldConstantsNumpy (the weight arithmetic, in numpy), then TVM's
                         FoldConstant only for what numpy had no rule for; DCE
    edgeavs-fusion       our pattern passes (edgeavs.passes, in the order of its PATTERNS table:
                         FuseChannelBias, FuseAudioGate, FuseHsigGate, FuseStftFft), when importable; their
                         FusionStats (found/fused per chain) form the manifest's fusion report
    precision            fp16 builds: ToFloat16 (edgeavs.passes.to_fp16) puts the convs and matmuls in
                         half precision (the log-mel front end, the first and the last conv stay fp32);
                         int8 builds: ToInt8Conv (edgeavs.passes.int8_conv) puts the calibrated 1x1 convs
                         in kernels.int8_conv (the plan comes from edgeavs.compiler.calibrate); its
                         report is the manifest's ``precision_report``
    legalize             library dispatch + LegalizeOps (ops -> TIR PrimFuncs)
    fuse-ops             AnnotateTIROpPattern, FoldConstant, FuseOps, FuseTIR
    edgeavs-schedules    ApplyEdgeAVSSchedules: our CPU schedule for every fused PrimFunc by its
                         block structure, with the target-derived default knobs or the tuned
                         knobs from a records directory; its report names what nothing matched
    weight-prepack       SplitLayoutRewritePreproc, FoldConstant, DCE: the weight re-layouts our
                         schedules mark (``meta_schedule.layout_rewrite_preproc``, kernels/conv2d.py)
                         become PrimFuncs of their own, evaluated here on the constant weights; the
                         scheduled function (same name) reads the re-laid-out weight
    apply-records        MetaScheduleApplyDatabase for the functions still unscheduled, when
                         compiled with tuning records (``edgeavs compile --records``)
    link-weights         (``compile_artifact`` only) the weight constants become calls that view
                         them inside the library (edgeavs.compiler.linked_weights), not VM constants
    lower                TVM's CPU dataflow-lowering and finalisation passes (memory planning,
                         VM shape lowering)

The result goes to ``tvm.compile(mod, target, relax_pipeline=None)`` for code generation. With
``dump_dir`` the module is written as TVMScript after every phase (``NN-<phase>.py``). ``run_pipeline(...,
start=, stop=)`` runs a stretch of it (``edgeavs tune`` stops after ``fold-constants`` for its whole-model
builds, and :func:`split_for_tuning` gives it the module before and after ``edgeavs-schedules``).
This is TVM's default CPU pipeline with the front half of TVM-NOTES ("Host pipeline") and our
fusion slot in front of legalisation; dlight CPU rules are deliberately absent (10x slower).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgeavs.compiler.fold_constants import FoldConstants
from edgeavs.errors import EdgeAVSError


@dataclass
class PipelineContext:
    target: object  # tvm.target.Target
    params: dict = field(default_factory=dict)
    fusion: bool = True
    fusion_report: dict = field(default_factory=dict)
    schedules: bool = True
    schedule_configs: dict | None = None  # knob overrides (tuned): ApplyEdgeAVSSchedules and the fusion kernels
    schedule_report: dict = field(default_factory=dict)
    records: object = None  # a tuning records directory (edgeavs.compiler.records.RecordsDir path)
    linked_weights: list | None = None  # link-weights collects the weights here (None: phase off)
    precision: str = "fp32"  # fp32 | fp16 | int8 (the precision phase)
    int8_plan: object = None  # int8 builds: edgeavs.compiler.calibrate.Plan
    accumulate: str = "float32"  # fp16 builds: the MAC layers' accumulator type
    precision_report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Phase:
    name: str
    passes: Callable[[PipelineContext], list]  # -> passes (or mod -> mod callables), in order


def _t():
    from edgeavs.tvm_api import relax, relax_transform

    return relax, relax_transform


def _bind(ctx):
    _, T = _t()
    return [T.BindParams("main", ctx.params)] if ctx.params else []


def _fusion(ctx):
    """The slot for edgeavs.passes: run its fusion passes in their order and record, per chain,
    how many were found and fused (``FusionStats``)."""
    if not ctx.fusion:
        ctx.fusion_report = {"enabled": False}
        return []
    try:
        import edgeavs.passes as fusion
    except ModuleNotFoundError as exc:
        if exc.name != "edgeavs.passes":
            raise
        ctx.fusion_report = {"enabled": True, "available": False}
        return []
    ctx.fusion_report = {"enabled": True, "available": True, "chains": {}}

    def run(mod):
        mod, stats = fusion.run_fusion_passes(mod, ctx.target, ctx.schedule_configs)
        ctx.fusion_report["chains"] = {name: st.as_dict() for name, st in stats.items()}
        return _unique_symbols(mod)

    return [run]


def _unique_symbols(mod):
    """Give every PrimFunc the global symbol of its GlobalVar: kernels built with
    ``T.prim_func`` carry ``global_symbol="main"``, which would clash with Relax ``main``."""
    from edgeavs.tvm_api import PrimFunc

    for gv, func in list(mod.functions_items()):
        if isinstance(func, PrimFunc) and func.attrs is not None \
                and func.attrs.get("global_symbol", gv.name_hint) != gv.name_hint:
            mod[gv] = func.with_attr("global_symbol", gv.name_hint)
    return mod


def _precision(ctx):
    if ctx.precision == "fp32":
        ctx.precision_report = {"precision": "fp32"}
        return []
    if ctx.precision == "int8":
        if ctx.int8_plan is None:
            raise EdgeAVSError("precision int8: the pipeline needs a calibration plan (edgeavs.compiler.calibrate)")
        from edgeavs.passes.int8_conv import ToInt8Conv

        plan = ctx.int8_plan
        q = ToInt8Conv(plan.entries, target=ctx.target, configs=ctx.schedule_configs, reasons=plan.reasons)

        def run_int8(mod):
            mod = q(mod)
            ctx.precision_report = {"precision": "int8", **q.report, "calibration": plan.report}
            return _unique_symbols(mod)

        return [run_int8]
    if ctx.precision != "fp16":
        raise EdgeAVSError(f"precision {ctx.precision!r}: this pipeline builds fp32, fp16 and int8")
    from edgeavs.passes.to_fp16 import ToFloat16

    p = ToFloat16(accumulate=ctx.accumulate)

    def run(mod):
        mod = p(mod)
        ctx.precision_report = {"precision": "fp16", **p.report}
        return mod

    return [run]


def _legalize(ctx):
    relax, T = _t()
    return list(relax.pipeline.library_dispatch_passes(ctx.target)) + [T.LegalizeOps()]


def _fuse_ops(ctx):
    _, T = _t()
    return [T.AnnotateTIROpPattern(), T.FoldConstant(), T.FuseOps(), T.FuseTIR()]


def _schedules(ctx):
    if not ctx.schedules:
        ctx.schedule_report = {"enabled": False}
        return []
    from edgeavs.passes.schedule_ops import ApplyEdgeAVSSchedules

    p = ApplyEdgeAVSSchedules(ctx.target, configs=ctx.schedule_configs)

    def run(mod):
        mod = p(mod)
        ctx.schedule_report = p.report
        return mod

    return [run]


def _weight_prepack(ctx):
    if not ctx.schedules:
        return []
    _, T = _t()
    return [_split_layout_rewrites, T.FoldConstant(), T.DeadCodeElimination()]


def _split_layout_rewrites(mod):
    """SplitLayoutRewritePreproc on every function but the PrimFuncs without a root block (the hand-written
    ``T.prim_func`` kernels, e.g. the FFT), which it cannot read and which carry no layout rewrite; the split
    compute functions get their names back (``X_prepacked`` -> ``X``: profiles and tuning records name them)."""
    from edgeavs.tvm_api import IRModule, PrimFunc, relax, s_tir

    _, T = _t()
    plain = {gv: f for gv, f in mod.functions_items()
             if isinstance(f, PrimFunc) and not isinstance(f.body, s_tir.SBlockRealize)}
    view = IRModule({gv: f for gv, f in mod.functions_items() if gv not in plain}, attrs=mod.attrs,
                    global_infos=mod.global_infos)
    out = T.SplitLayoutRewritePreproc()(view)
    for gv, f in plain.items():
        out[gv] = f
    suffix = "_prepacked"
    split = {gv.name_hint: (gv, f) for gv, f in out.functions_items()
             if isinstance(f, PrimFunc) and gv.name_hint.endswith(suffix)}
    if not split:
        return out
    names = {gv.name_hint: gv for gv in out.functions.keys()}
    funcs = {}
    for name, (gv, f) in split.items():
        base = name[: -len(suffix)]
        del out[gv]  # else add_func returns the structurally equal function under its old name
        if base in names:
            # the unsplit original, called nowhere now: the split's DCE kept it because the view's
            # functions call kernels outside the view (``plain``), and then DCE removes nothing
            del out[names[base]]
        if f.attrs is not None and "global_symbol" in f.attrs:
            f = f.with_attr("global_symbol", base)
        funcs[name] = (base, f)
    bb = relax.BlockBuilder(out)
    renamed = {name: bb.add_func(f, base) for name, (base, f) in funcs.items()}

    @relax.expr_functor.mutator
    class Rename(relax.PyExprMutator):
        def visit_global_var_(self, op):
            return renamed.get(op.name_hint, op)

    for gv, f in list(out.functions_items()):
        if isinstance(f, relax.Function):
            bb.update_func(gv, Rename(out).visit_expr(f))
    return bb.get()


def _apply_records(ctx):
    if ctx.records is None:
        return []
    from edgeavs.compiler.records import apply_records

    return [lambda mod: apply_records(mod, ctx.target, ctx.records)]


def _link_weights(ctx):
    if ctx.linked_weights is None:
        return []
    from edgeavs.compiler.linked_weights import LinkWeights

    return [LinkWeights(ctx.linked_weights)]


def _lower(ctx):
    """TVM's CPU dataflow lowering and finalisation, spelled out (0.27's cpu_generic)."""
    _, T = _t()
    return [T.RewriteDataflowReshape(), T.ToNonDataflow(), T.RemovePurityChecking(),
            T.CallTIRRewrite(), T.StaticPlanBlockMemory(), T.LowerAllocTensor(),
            T.KillAfterLastUse(), T.LowerRuntimeBuiltin(), T.ComputePrimValue(),
            T.VMShapeLower(), T.AttachGlobalSymbol()]


PIPELINE: list[Phase] = [
    Phase("bind-weights", _bind),
    Phase("fold-batchnorm", lambda c: [_t()[1].FoldBatchnormToConv2D()]),
    Phase("decompose", lambda c: [_t()[1].DecomposeOpsForInference()]),
    Phase("canonicalize", lambda c: [_t()[1].CanonicalizeBindings(), _t()[1].DeadCodeElimination()]),
    Phase("fold-constants", lambda c: [FoldConstants(), _t()[1].DeadCodeElimination()]),
    Phase("edgeavs-fusion", _fusion),
    Phase("precision", _precision),
    Phase("legalize", _legalize),
    Phase("fuse-ops", _fuse_ops),
    Phase("edgeavs-schedules", _schedules),
    Phase("weight-prepack", _weight_prepack),
    Phase("apply-records", _apply_records),
    Phase("link-weights", _link_weights),
    Phase("lower", _lower),
]


PHASES: tuple[str, ...] = tuple(p.name for p in PIPELINE)


def phase_after(name: str) -> str | None:
    """The phase that follows ``name`` (None after the last)."""
    i = _index(name)
    return PHASES[i + 1] if i + 1 < len(PHASES) else None


def phase_before(name: str) -> str | None:
    """The phase that precedes ``name`` (None before the first)."""
    i = _index(name)
    return PHASES[i - 1] if i > 0 else None


def _index(name: str) -> int:
    if name not in PHASES:
        raise ValueError(f"no pipeline phase {name!r} (phases: {', '.join(PHASES)})")
    return PHASES.index(name)


def _selected(start: str | None, stop: str | None, phases) -> list[str]:
    first = _index(start) if start is not None else 0
    last = _index(stop) if stop is not None else len(PHASES) - 1
    picked = PHASES[first:last + 1]
    return [n for n in picked if phases is None or n in phases]


def run_pipeline(mod, target, params: dict | None = None, dump_dir=None, fusion: bool = True,
                 log=None, schedules: bool = True, schedule_configs: dict | None = None,
                 records=None, phases=None, start: str | None = None, stop: str | None = None,
                 linked_weights: list | None = None, precision: str = "fp32", accumulate: str = "float32",
                 int8_plan=None):
    """Run :data:`PIPELINE` on ``mod`` under ``target``. Returns ``(mod, report)`` where the
    report has the fusion counts, the schedule report and the seconds spent per phase.

    ``start`` / ``stop``: the first and the last phase to run (default: the whole pipeline), e.g.
    ``stop="weight-prepack"`` for the fused, scheduled module before lowering, or ``start=...`` to go on
    from a module that ran up to the phase before. ``phases``: of those, only the phases with these names.
    ``linked_weights``: a list to turn ``link-weights`` on (it receives the weights, see
    :mod:`edgeavs.compiler.linked_weights`); None leaves the weights as VM constants.
    ``precision``: ``fp32``, ``fp16`` or ``int8`` (the ``precision`` phase), ``accumulate`` the fp16 MAC layers'
    accumulator (``float32`` or ``float16``), ``int8_plan`` an int8 build's calibration
    (:func:`edgeavs.compiler.calibrate.plan`).
    """
    selected = _selected(start, stop, phases)
    ctx = PipelineContext(target=target, params=dict(params or {}), fusion=fusion,
                          schedules=schedules, schedule_configs=schedule_configs, records=records,
                          linked_weights=linked_weights, precision=precision, accumulate=accumulate,
                          int8_plan=int8_plan)
    if dump_dir is not None:
        dump_dir = Path(dump_dir)
        dump_dir.mkdir(parents=True, exist_ok=True)
        if start is None:  # a run that goes on from a later phase (an int8 build's second half) keeps it
            _dump(mod, dump_dir / "00-imported.py")
    seconds = {}
    with target:
        for i, phase in enumerate(PIPELINE, start=1):
            if phase.name not in selected:
                continue
            t0 = time.perf_counter()
            for p in phase.passes(ctx):
                try:
                    mod = p(mod)
                except EdgeAVSError:
                    raise
                except Exception as exc:  # TVM errors are long; keep the first line
                    first = str(exc).strip().splitlines()
                    raise EdgeAVSError(f"pipeline phase {phase.name} failed: "
                                       f"{first[-1] if first else type(exc).__name__}") from exc
            seconds[phase.name] = round(time.perf_counter() - t0, 3)
            if log:
                log(f"  {phase.name:<16} {seconds[phase.name]:7.2f} s")
            if dump_dir is not None:
                _dump(mod, dump_dir / f"{i:02d}-{phase.name}.py")
    return mod, {"fusion": ctx.fusion_report, "schedules": ctx.schedule_report,
                 "precision": ctx.precision_report, "phase_seconds": seconds}


def _copy(mod):
    from edgeavs.tvm_api import IRModule

    return IRModule(dict(mod.functions_items()), attrs=mod.attrs, global_infos=mod.global_infos)


def split_for_tuning(mod, target, params, **precision_kw):
    """``(folded, pre, scheduled)`` for ``edgeavs tune``: the pipeline up to ``fold-constants`` (where its
    whole-model builds start), then up to the phase before ``edgeavs-schedules`` (what knob candidates are
    scheduled from), and the same module after ``edgeavs-schedules`` with the default knobs (what the tasks and
    the profile come from). Each stage works on a copy: the schedule pass replaces functions in its module.
    ``precision_kw``: ``precision`` / ``accumulate`` / ``int8_plan`` of the ``precision`` phase (:func:`run_pipeline`)."""
    folded = run_pipeline(mod, target, params, stop="fold-constants")[0]
    pre = run_pipeline(_copy(folded), target, None, start=phase_after("fold-constants"),
                       stop=phase_before("edgeavs-schedules"), **precision_kw)[0]
    scheduled = run_pipeline(_copy(pre), target, None, start="edgeavs-schedules", stop="edgeavs-schedules")[0]
    return folded, pre, scheduled


def _dump(mod, path: Path):
    try:
        text = mod.script(show_meta=False)
    except TypeError:
        text = mod.script()
    path.write_text(text)
