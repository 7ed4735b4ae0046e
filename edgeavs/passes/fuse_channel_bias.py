"""FuseChannelBias: make the broadcast channel bias ``X + B(a)`` (X (N,C,H,W), a (N,C,1,1)) cost no pass.

LightAVSeg adds an audio vector to a feature map twice per pyramid level (SPEC §4): ``Ṽ_enc = V + B(A)`` and
``Ṽ_dec = Ṽ_enc + B(Conv1x1(Â))``. ``V`` must be materialised anyway (the audio gate's max pool reads all of it
before ``A`` exists), so folding the add into V's producer cannot save the pass; instead the pass **sinks** the
bias into the consumers of the sum, where it is linear algebra on 1x1 maps:

* ``conv1x1(X + B(a), W)``            -> ``conv1x1(X, W) + B(conv1x1(a, W))``  (any stride/groups, padding 0)
* ``max_{H,W}(X + B(a))``             -> ``max_{H,W}(X) + a``                  (exact: rounding is monotonic)
* ``(X + B(a)) + B(c)``               -> ``X + B(a + c)``                      (then sunk further)
* ``(X + B(a)) + R``  (R full size)   -> ``(X + R) + B(a)``                    (then sunk further)

It sinks only when *every* user of the sum can absorb it, repeating until nothing changes. The remaining
``conv(X) + B(vec)`` adds sit directly on a conv, where FuseOps puts them in the conv's epilogue; in LightAVSeg
(next backbone stage = 1x1 expand conv, decoder = max pool + bias add, head = 1x1 Conv_BN) every instance sinks
and neither Ṽ_enc nor Ṽ_dec is ever written to memory.

An instance whose consumers cannot absorb it becomes ``R.call_tir`` of ``kernels.channel_bias`` (one vectorised
pass, fused with a producing residual add when that add has no other user).

An *instance* (``count_matches``) is an ``add`` of a full 4-D fp32 tensor not produced by a conv (an add on a conv
output is that conv's epilogue) and a non-constant (N or 1, C, 1, 1) tensor, with H x W > 1.
"""

from __future__ import annotations

from edgeavs.passes._rewrite import (FusionPass, FusionStats, MatchContext, dtype_of, op_name, run_fusion,
                                     static_shape)
from edgeavs.tvm_api import Constant, IRModule, dpl, module_pass, relax
from kernels.channel_bias import CHAIN as NAME, ENTRY as KERNEL, ChannelBiasWorkload, channel_bias_kernel
from kernels.registry import pick_kernel_config
_MAX_ROUNDS = 32


def _split(call, ctx: MatchContext):
    """``(X, a)`` if ``call`` is an instance of the chain (see the module docstring), else None."""
    if not isinstance(call, relax.Call) or op_name(call) != "relax.add" or len(call.args) != 2:
        return None
    out = static_shape(call)
    if out is None or len(out) != 4 or out[2] * out[3] <= 1 or dtype_of(call) != "float32":
        return None
    for x, a in (call.args, call.args[::-1]):
        if _is_const(a, ctx) or static_shape(x) != out:
            continue
        ashape = static_shape(a)
        if ashape is None or ashape[1:] != (out[1], 1, 1) or ashape[0] not in (1, out[0]):
            continue
        if dtype_of(a) != "float32":
            continue
        if op_name(ctx.resolve(x)) == "relax.nn.conv2d":
            return None  # the conv's epilogue: FuseOps fuses it
        return x, a
    return None


def _is_const(expr, ctx: MatchContext) -> bool:
    """A constant, inline or bound to a variable (the ONNX route binds some)."""
    return isinstance(expr, Constant) or isinstance(ctx.resolve(expr), Constant)


def _full(expr, shape) -> bool:
    return static_shape(expr) == shape


def _vec(expr, channels: int, batch: int) -> bool:
    s = static_shape(expr)
    return s is not None and s[1:] == (channels, 1, 1) and s[0] in (1, batch)


def _absorbs(user, var, shape, ctx: MatchContext) -> bool:
    """Can ``user`` (a bound value reading ``var`` = X + B(a)) absorb the bias?"""
    if not isinstance(user, relax.Call):
        return False
    name = op_name(user)
    args = list(user.args)
    if name == "relax.nn.conv2d":
        if not args[0].same_as(var) or args[1].same_as(var):
            return False
        w = static_shape(args[1])
        attrs = user.attrs
        return (w is not None and w[2:] == (1, 1) and [int(p) for p in attrs.padding] == [0, 0, 0, 0]
                and str(attrs.data_layout) == "NCHW" and str(attrs.kernel_layout) == "OIHW")
    if name == "relax.max":
        axes = sorted(int(a) % 4 for a in (user.attrs.axis or []))
        return args[0].same_as(var) and axes == [2, 3] and bool(user.attrs.keepdims)
    if name == "relax.add":
        if args[0].same_as(var) and args[1].same_as(var):
            return False
        other = args[1] if args[0].same_as(var) else args[0]
        if static_shape(user) != shape:
            return False
        return _full(other, shape) or (_vec(other, shape[1], shape[0]) and not _is_const(other, ctx))
    return False


def _vec_parts(add, ctx: MatchContext):
    """``(P, v)`` if ``add`` is ``P + B(v)`` with P full size and v a (N or 1, C, 1, 1) vector, else None."""
    if not isinstance(add, relax.Call) or op_name(add) != "relax.add":
        return None
    shape = static_shape(add)
    if shape is None or len(shape) != 4:
        return None
    for p, v in (add.args, add.args[::-1]):
        if _full(p, shape) and _vec(v, shape[1], shape[0]):
            return p, v
    return None


def _reassociable(outer, inner, ctx: MatchContext) -> bool:
    """``(P + B(v1)) + B(v2)`` with the inner sum used once and a non-constant vector: ``P + B(v1 + v2)``.

    This keeps a conv's epilogue one add after the bias was sunk into it (and merges a sunk bias into the
    folded-BN bias).
    """
    pv = _vec_parts(inner, ctx)
    ov = _vec_parts(outer, ctx)
    if pv is None or ov is None or not ctx.single_use(inner):
        return False
    var = ctx.var_of(inner)
    if not (ov[0].same_as(var) or ov[0].same_as(inner)):
        return False
    return not (_is_const(pv[1], ctx) and _is_const(ov[1], ctx))


def _pattern():
    """Sink patterns (a consumer of an instance), their annotations and the check.

    The check accepts a match when the inner add is an instance and all of its users can absorb the bias.
    """
    alts = {}
    for kind in ("conv", "max", "add"):
        x, a = dpl.wildcard(), dpl.wildcard()
        inner = dpl.is_op("relax.add")(x, a)
        if kind == "conv":
            outer = dpl.is_op("relax.nn.conv2d")(inner, dpl.wildcard())
        elif kind == "max":
            outer = dpl.is_op("relax.max")(inner)
        else:
            outer = dpl.is_op("relax.add")(inner, dpl.wildcard())
        alts[kind] = (outer, inner)
    root = alts["conv"][0] | alts["max"][0] | alts["add"][0]

    def which(m: dict):
        for kind, (outer, inner) in alts.items():
            if outer in m:
                return kind, m[inner]
        return None, None

    def check(m: dict, ctx: MatchContext) -> str | None:
        kind, inner = which(m)
        if kind == "add" and _reassociable(m[alts["add"][0]], inner, ctx):
            return "reassoc"
        if kind is None or _split(inner, ctx) is None:
            return None
        var = ctx.var_of(inner)
        if var is None or not isinstance(var, relax.DataflowVar):
            return None
        shape = static_shape(inner)
        users = ctx.users_of(inner)
        if not users or len(users) != ctx.users(inner):
            return None
        if not all(_absorbs(u, var, shape, ctx) for u in users):
            return None
        return "sink_" + kind

    return root, {"alts": alts, "which": which}, check


def _sink_rewrite(ann: dict):
    which = ann["which"]

    def rewrite(orig, m, ctx: MatchContext, kernels):
        kind, inner = which(m)
        if kind == "add" and _reassociable(orig, inner, ctx):
            p, v1 = _vec_parts(inner, ctx)
            v2 = _vec_parts(orig, ctx)[1]
            return relax.op.add(p, relax.op.add(v1, v2))
        x, a = _split(inner, ctx)
        args = list(orig.args)
        if kind == "conv":
            conv_x = relax.Call(orig.op, [x, args[1]], orig.attrs)
            conv_a = relax.Call(orig.op, [a, args[1]], orig.attrs)
            return relax.op.add(conv_x, conv_a)
        if kind == "max":
            return relax.op.add(relax.Call(orig.op, [x], orig.attrs), a)
        var = ctx.var_of(inner)
        other = args[1] if (args[0].same_as(var) or args[0].same_as(inner)) else args[0]
        shape = static_shape(inner)
        if _full(other, shape):
            return relax.op.add(relax.op.add(x, other), a)
        return relax.op.add(x, relax.op.add(a, other))

    return rewrite


def _instance_pattern():
    x, a = dpl.wildcard(), dpl.wildcard()
    root = dpl.is_op("relax.add")(x, a)

    def check(m: dict, ctx: MatchContext) -> str | None:
        return "instance" if _split(m[root], ctx) is not None else None

    return root, check


def _kernel_rewrite(root, target, configs=None):
    def rewrite(orig, m, ctx: MatchContext, kernels):
        x, a = _split(orig, ctx)
        n, c, h, w = static_shape(orig)
        producer = ctx.resolve(x)
        residual = (op_name(producer) == "relax.add" and ctx.single_use(producer)
                    and all(_full(p, (n, c, h, w)) for p in producer.args))
        wl = ChannelBiasWorkload(n=n, c=c, h=h, w=w, a_batch=static_shape(a)[0], residual=residual)
        cfg, make, _ = pick_kernel_config(configs, KERNEL.name, wl, KERNEL.fallback_config(wl, target),
                                          lambda c: channel_bias_kernel(wl, target, config=c))
        gv = kernels.get((KERNEL.name, wl, cfg), f"edgeavs_{KERNEL.name}", make)
        args = [producer.args[0], producer.args[1], a] if residual else [x, a]
        return relax.call_tir(gv, args, out_ty=relax.TensorType((n, c, h, w), "float32"))

    return rewrite


@module_pass(opt_level=0, name="FuseChannelBias")
class FuseChannelBias(FusionPass):
    """Sink every broadcast channel bias ``X + B(a)`` into its consumers; put the rest in ``kernels.channel_bias``.

    Preconditions: after the front half (BindParams, FoldBatchnormToConv2D, DecomposeOpsForInference,
    CanonicalizeBindings, FoldConstant) so conv biases are constants (and are not taken for audio vectors);
    static shapes; fp32. Place it before LegalizeOps and before FuseAudioGate: sinking moves the decoder's
    ``max(Ṽ_enc)`` onto ``max(V) + A`` — the audio gate's pattern then sees ``max(V)`` (order matters only for
    which tensor the gate's pool reads; both orders are correct).

    Parameters
    ----------
    target : dict | str | tvm.target.Target, optional
        Target the fallback kernel's schedule is derived from; default the current target, else the host.
    fallback_kernel : bool
        Replace instances that cannot be sunk by ``kernels.channel_bias`` (default True).
    configs : dict, optional
        ``{"functions": {workload key: knob entry}}`` (``edgeavs tune`` records): a fallback kernel whose workload
        has an entry is built with its tuned config (``kernels.registry.pick_kernel_config``).

    After running, ``self.stats`` (``FusionStats``): ``found`` instances, ``fused`` = found minus those left,
    ``variants``: sink steps by consumer kind and fallback kernels (``kernel``).
    """

    def __init__(self, target=None, fallback_kernel: bool = True, configs=None):
        super().__init__(target, configs)
        self.fallback_kernel = fallback_kernel

    def transform_module(self, mod: IRModule, _ctx) -> IRModule:
        self.stats = FusionStats()
        found = count_matches(mod)
        root, ann, check = _pattern()
        for _ in range(_MAX_ROUNDS):
            round_stats = FusionStats()
            mod, _ = run_fusion(mod, root, check, _sink_rewrite(ann), round_stats)
            self.stats.variants.update(round_stats.variants)
            if round_stats.fused == 0:
                break
        if self.fallback_kernel:
            iroot, icheck = _instance_pattern()
            kstats = FusionStats()
            rewrite = _kernel_rewrite(iroot, self.resolved_target, self.configs)
            mod, _ = run_fusion(mod, iroot, icheck, rewrite, kstats)
            if kstats.fused:
                self.stats.variants["kernel"] += kstats.fused
        left = count_matches(mod)
        self.stats.found = found
        self.stats.fused = max(0, found - left)
        return mod

def count_matches(mod: IRModule) -> int:
    """Broadcast channel-bias instances present (unfused) in ``mod``."""
    root, check = _instance_pattern()
    return run_fusion(mod, root, check, None)[1].found


__all__ = ["NAME", "FuseChannelBias", "count_matches"]
