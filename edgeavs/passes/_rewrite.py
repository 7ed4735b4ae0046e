"""The small driver the three fusion passes share: match a dpl pattern in every Relax function, check that the
chain may be fused (constants right, intermediates used once), replace it, count what was found and fused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from edgeavs.tvm_api import Constant, IRModule, PrimFunc, Target as _Target, dpl, relax, tvm


@dataclass
class FusionStats:
    """What one run of a fusion pass saw: chains found (``count_matches`` before), chains fused (found minus
    ``count_matches`` after); ``variants``/``skipped`` tally rewrite attempts by variant (a chain may be
    visited more than once while TVM's rewriter iterates, so they are diagnostics, not counts)."""

    found: int = 0
    fused: int = 0
    variants: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"found": self.found, "fused": self.fused, "variants": dict(self.variants),
                "skipped": dict(self.skipped)}


class MatchContext:
    """Facts about the function being rewritten that a check needs (users of each bound value, the module)."""

    def __init__(self, mod: IRModule, func: relax.Function):
        self.mod = mod
        self.func = func
        self.var2val = relax.analysis.get_var2val(func)
        self._var_of = {val.__hash__(): var for var, val in self.var2val.items()}
        self.uses: Counter = Counter()
        self._outputs: set = set()
        for binding in bindings(func):
            for var in relax.analysis.free_vars(binding.value):
                self.uses[var] += 1
            if not isinstance(binding.var, relax.DataflowVar):
                self._outputs.add(binding.var)
        for var in relax.analysis.free_vars(func.body.body):
            self.uses[var] += 1
        self._new_kernels: dict = {}

    def var_of(self, expr) -> relax.Var | None:
        if isinstance(expr, relax.Var):
            return expr
        return self._var_of.get(expr.__hash__())

    def users(self, expr) -> int:
        var = self.var_of(expr)
        return -1 if var is None else self.uses[var]

    def single_use(self, expr) -> bool:
        """True if ``expr`` is a bound dataflow value used exactly once (fusing it removes it)."""
        var = self.var_of(expr)
        return var is not None and self.uses[var] == 1 and var not in self._outputs

    def resolve(self, expr):
        """Follow a variable to the value it is bound to (one step)."""
        if isinstance(expr, relax.Var) and expr in self.var2val:
            return self.var2val[expr]
        return expr

    def users_of(self, expr) -> list:
        """The bound values that use ``expr`` (by variable)."""
        var = self.var_of(expr)
        if var is None:
            return []
        return [b.value for b in bindings(self.func)
                if any(v.same_as(var) for v in relax.analysis.free_vars(b.value))]


def interior_single_use(ctx: MatchContext, matchings: dict, root, inputs: Iterable[dpl.DFPattern]) -> bool:
    """Every matched call other than the root and the chain's inputs has one use."""
    skip = {ctx.var_of(matchings[p]) for p in inputs if p in matchings} - {None}
    seen = set()
    for pat, expr in matchings.items():
        if not isinstance(expr, relax.Call) or expr.same_as(root):
            continue
        h = expr.__hash__()
        if h in seen:
            continue
        seen.add(h)
        var = ctx.var_of(expr)
        if var is not None and var in skip:
            continue
        if not ctx.single_use(expr):
            return False
    return True


def op_name(expr) -> str:
    """The operator name of a relax call (``"relax.nn.conv2d"``), ``""`` for anything else."""
    return str(getattr(getattr(expr, "op", None), "name", "")) if isinstance(expr, relax.Call) else ""


def bindings(func) -> list:
    """Every binding of ``func``'s body, block after block, in order."""
    return [b for block in func.body.blocks for b in block.bindings]


def const_array(expr) -> np.ndarray | None:
    value = getattr(expr, "value", None)
    return value.numpy() if isinstance(expr, Constant) and hasattr(value, "numpy") else None


def static_shape(expr) -> tuple[int, ...] | None:
    """The static shape of a tensor-typed relax expression, else None."""
    ty = expr.ty if hasattr(expr, "ty") else None
    shape = getattr(ty, "shape", None)
    if shape is None or not isinstance(shape, relax.ShapeExpr):
        return None
    dims = []
    for d in shape.values:
        if not isinstance(d, tvm.tirx.IntImm):
            return None
        dims.append(int(d.value))
    return tuple(dims)


def dtype_of(expr) -> str | None:
    ty = getattr(expr, "ty", None)
    return str(ty.dtype) if ty is not None and hasattr(ty, "dtype") else None


class KernelTable:
    """New PrimFuncs added by a pass, deduplicated by (chain, workload, config), named by a BlockBuilder."""

    def __init__(self, mod: IRModule):
        # BlockBuilder adds to (mutates) the module it is given: give it a copy.
        self._bb = relax.BlockBuilder(IRModule(dict(mod.functions_items()), attrs=mod.attrs,
                                               global_infos=mod.global_infos))
        self._by_key: dict = {}
        self.added = 0

    def get(self, key, name: str, make: Callable[[], PrimFunc]) -> tvm.ir.GlobalVar:
        if key not in self._by_key:
            self._by_key[key] = self._bb.add_func(make(), name)
            self.added += 1
        return self._by_key[key]

    def module(self) -> IRModule:
        return self._bb.get()


Rewriter = Callable[[relax.Call, dict, MatchContext, KernelTable], "relax.Expr | None"]
"""Returns the replacement, or None to leave the chain (then it counts as found, not fused)."""
Check = Callable[[dict, MatchContext], "str | None"]
"""Returns the variant name when ``matchings`` is an instance of the chain, else None."""


def run_fusion(mod: IRModule, pattern: dpl.DFPattern, check: Check, rewrite: Rewriter | None,
               stats: FusionStats | None = None) -> tuple[IRModule, FusionStats]:
    """Apply ``rewrite`` to every instance of ``pattern`` (``rewrite=None``: count only) in every Relax function."""
    stats = stats if stats is not None else FusionStats()
    kernels = KernelTable(mod)
    updates = {}
    for gv, func in mod.functions_items():
        if not isinstance(func, relax.Function):
            continue
        if func.attrs is not None and ("Primitive" in func.attrs or "Codegen" in func.attrs):
            continue
        ctx = MatchContext(mod, func)
        decided: dict[int, bool] = {}

        def rewriter(orig, matchings, ctx=ctx, decided=decided):
            if not isinstance(orig, relax.Call):
                return orig  # ``y = x`` aliases are matched through to x's value: count x's binding only
            key = orig.__hash__()
            if key in decided:
                return orig
            variant = check(matchings, ctx)
            if variant is None:
                return orig
            decided[key] = True
            stats.found += 1
            stats.variants[variant] += 1
            if rewrite is None:
                return orig
            new = rewrite(orig, matchings, ctx, kernels)
            if new is None:
                stats.skipped[variant] += 1
                return orig
            stats.fused += 1
            return new

        new_func = dpl.rewrite_call(pattern, rewriter, func)
        if rewrite is not None and not new_func.same_as(func):
            updates[gv] = new_func
    if rewrite is None:
        return mod, stats
    if not updates and not kernels.added:
        return mod, stats
    new_mod = kernels.module()
    for gv, func in updates.items():
        new_mod[gv] = func
    return _drop_orphans(new_mod, mod, updates), stats


def run_counted_fusion(mod: IRModule, pattern: dpl.DFPattern, check: Check, rewrite: Rewriter,
                       stats: FusionStats) -> IRModule:
    """``run_fusion`` with ``stats.found``/``stats.fused`` counted on the module itself: the chains present before
    the rewrite, and how many of them are gone after it (the single-pattern fusion passes' report)."""
    found = run_fusion(mod, pattern, check, None)[1].found
    mod, _ = run_fusion(mod, pattern, check, rewrite, stats)
    stats.found = found
    stats.fused = found - run_fusion(mod, pattern, check, None)[1].found
    return mod


def _drop_orphans(new_mod: IRModule, old_mod: IRModule, updates: dict) -> IRModule:
    """Remove PrimFuncs that only the rewritten chains called (e.g. ONNX's ``maximum``/``minimum``)."""
    before = set()
    for gv in updates:
        before |= {g.name_hint for g in relax.analysis.all_global_vars(old_mod[gv])}
    after = set()
    for _, func in new_mod.functions_items():
        if isinstance(func, relax.Function):
            after |= {g.name_hint for g in relax.analysis.all_global_vars(func)}
    for gv in list(new_mod.get_global_vars()):
        name = gv.name_hint
        if name in before and name not in after and isinstance(new_mod[gv], PrimFunc):
            del new_mod[gv]
    return new_mod


def conv1x1_ok(call, weight_shape) -> bool:
    """A plain fp32 NCHW/OIHW 1x1 conv (groups 1, no padding or dilation): what the gate kernels compute."""
    attrs = call.attrs
    return (len(weight_shape) == 4 and weight_shape[2:] == (1, 1) and int(attrs.groups) == 1
            and [int(p) for p in attrs.padding] == [0, 0, 0, 0]
            and [int(d) for d in attrs.dilation] == [1, 1]
            and str(attrs.data_layout) == "NCHW" and str(attrs.kernel_layout) == "OIHW"
            and str(attrs.out_layout) == "NCHW" and str(attrs.out_dtype) in ("", "float32", "void", "None"))


def resolve_target(target):
    """``target``, else the current one (None: the kernels derive their defaults from the host)."""
    if target is not None:
        return target
    return _Target.current(allow_none=True)


class FusionPass:
    """What every fusion pass class shares (decorate the subclass with ``module_pass``): the target its kernels'
    defaults come from (:func:`resolve_target` when it runs), the tuned kernel knobs (``configs``: ``{"functions":
    {workload key: knob entry}}``), and ``stats`` (a fresh ``STATS`` per run; ``num_matches`` = ``stats.found``)."""

    STATS = FusionStats

    def __init__(self, target=None, configs=None):
        self.target = target
        self.configs = configs
        self.stats = self.STATS()

    @property
    def resolved_target(self):
        return resolve_target(self.target)

    @property
    def num_matches(self) -> int:
        """Chains found in the module the pass last ran on (``stats.found``)."""
        return self.stats.found

