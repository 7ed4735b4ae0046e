"""What a legalised (and fused) PrimFunc computes, read from its blocks — no names involved.

``LegalizeOps`` + ``FuseOps`` + ``FuseTIR`` give PrimFuncs whose blocks come from TOPI computes
(``pad_temp``, ``conv2d_nchw``, ``group_conv2d_nchw``, ``matmul``, ``T_add`` ...). Block names change with
TVM versions and fusion; the *structure* does not: a multiply-accumulate block
``out[...] = out[...] + a[...] * b[...]`` whose iteration variables play the roles below. ``analyze_mac``
reads those roles; the schedules in ``kernels/`` work from them.

Roles of the spatial iteration variables of a MAC block (extent-1 variables are ignored):

- ``vector`` var: indexes the output's last dimension (the contiguous one).
- ``data`` operand: the input indexed by the vector var; the other one is the ``weight``.
- ``register`` vars: in the weight but not in the data (conv output channels, matmul rows).
- ``pixel`` vars: in the data but not in the weight (output rows/columns, matmul columns).
- ``shared`` vars: in both (depthwise channels, matmul batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tvm.sym.analyzer import Analyzer  # tvm.arith in older TVM

from edgeavs.tvm_api import s_tir, tirx, tvm

DATA_PAR = 0
_LOAD = tvm.ir.TensorLoad
"""``tirx.BufferLoad`` is a constructor function in 0.27; the node class is ``ir.TensorLoad``."""
COMM_REDUCE = 2


def _int(x) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _vars_of(expr) -> set[str]:
    return {v.name for v in tirx.analysis.undefined_vars(expr)}


def _simplified(exprs, unit_vars) -> list:
    """``exprs`` with the extent-1 iteration variables set to 0."""
    ana = Analyzer()
    for v in unit_vars:
        ana.bind(v, tirx.const(0, str(v.ty.dtype)))
    return [ana.simplify(e) for e in exprs]


@dataclass(frozen=True)
class MacInfo:
    """The roles of one multiply-accumulate block (see the module docstring)."""

    block: str
    iters: tuple[str, ...]
    """Block iteration variables in loop order (legalised blocks bind loop i to iter i)."""
    extents: dict = field(hash=False)
    reduce: tuple[str, ...]
    out: str
    data: str
    weight: str
    data_index: tuple = field(hash=False)
    """The data operand's indices with extent-1 variables set to 0."""
    out_vars: tuple
    """Per output dimension: the plain iteration variable that indexes it, or None."""
    vector: str | None
    register: tuple[str, ...]
    pixel: tuple[str, ...]
    shared: tuple[str, ...]

    @property
    def macs(self) -> int:
        n = 1
        for v in self.iters:
            n *= self.extents[v]
        return n

    def extent(self, names) -> int:
        n = 1
        for v in names:
            n *= self.extents[v]
        return n

    @property
    def pixels_contiguous(self) -> bool:
        """The pixel vars are the trailing dims of both output and data, plain and in order: they can be fused
        into one contiguous pixel axis (a 1x1 stride-1 conv, a matmul's columns)."""
        k = len(self.pixel)
        if k == 0 or len(self.out_vars) < k or len(self.data_index) < k:
            return False
        if tuple(self.out_vars[-k:]) != self.pixel:
            return False
        tail = self.data_index[-k:]
        return all(isinstance(e, tirx.Var) and e.name == v for e, v in zip(tail, self.pixel))


def _load_of(expr):
    if isinstance(expr, _LOAD):
        return expr
    if isinstance(expr, tirx.Cast) and isinstance(expr.value, _LOAD):
        return expr.value
    return None


def _buf(load):
    return load.source


def analyze_mac(sch: s_tir.Schedule, block) -> MacInfo | None:
    """Roles of ``block`` if it is a multiply-accumulate reduction with one-to-one loop bindings, else None."""
    blk = sch.get(block)
    store = blk.body
    if not isinstance(store, tirx.BufferStore) or blk.init is None:
        return None
    iters = list(blk.iter_vars)
    if not any(int(iv.iter_type) == COMM_REDUCE for iv in iters):
        return None
    if any(int(iv.iter_type) not in (DATA_PAR, COMM_REDUCE) for iv in iters):
        return None
    loops = sch.get_loops(block)
    if len(loops) != len(iters):
        return None
    extents = {}
    for iv, lp in zip(iters, loops):
        e, le = _int(iv.dom.extent), _int(sch.get(lp).extent)
        if e is None or e != le or _int(iv.dom.min) != 0:
            return None
        extents[iv.var.name] = e
    val = store.value
    if not isinstance(val, tirx.Add):
        return None
    acc, prod = val.a, val.b
    if not isinstance(prod, tirx.Mul):
        acc, prod = prod, acc
    acc = _load_of(acc)
    if not isinstance(prod, tirx.Mul) or acc is None or not _buf(acc).same_as(store.buffer):
        return None
    a, b = _load_of(prod.a), _load_of(prod.b)
    if a is None or b is None:
        return None
    names = [iv.var.name for iv in iters]
    unit = [iv.var for iv in iters if extents[iv.var.name] == 1]
    out_idx = _simplified(store.indices, unit)
    a_idx = _simplified(a.indices, unit)
    b_idx = _simplified(b.indices, unit)
    out_vars = tuple(e.name if isinstance(e, tirx.Var) else None for e in out_idx)
    spatial = [n for n, iv in zip(names, iters) if int(iv.iter_type) == DATA_PAR and extents[n] > 1]
    reduce = tuple(n for n, iv in zip(names, iters) if int(iv.iter_type) == COMM_REDUCE)
    a_vars = set().union(*[_vars_of(e) for e in a_idx]) if a_idx else set()
    b_vars = set().union(*[_vars_of(e) for e in b_idx]) if b_idx else set()
    vector = next((v for v in reversed(out_vars) if v is not None and extents.get(v, 1) > 1), None)
    if vector is None:
        return None
    in_a, in_b = vector in a_vars, vector in b_vars
    if in_a == in_b:
        return None
    data, data_idx, d_vars, weight, w_vars = ((a, a_idx, a_vars, b, b_vars) if in_a
                                              else (b, b_idx, b_vars, a, a_vars))
    return MacInfo(
        block=blk.name_hint,
        iters=tuple(names),
        extents=extents,
        reduce=reduce,
        out=store.buffer.name,
        data=_buf(data).name,
        weight=_buf(weight).name,
        data_index=tuple(data_idx),
        out_vars=out_vars,
        vector=vector,
        register=tuple(v for v in spatial if v in w_vars and v not in d_vars),
        pixel=tuple(v for v in spatial if v in d_vars and v not in w_vars),
        shared=tuple(v for v in spatial if v in d_vars and v in w_vars),
    )


def root_blocks(sch: s_tir.Schedule) -> list:
    """The blocks directly under the root block, in program order."""
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def is_spatial(sch: s_tir.Schedule, block) -> bool:
    return all(int(iv.iter_type) == DATA_PAR for iv in sch.get(block).iter_vars)


def inline_into_consumers(sch: s_tir.Schedule, blocks) -> int:
    """``compute_inline`` every block of ``blocks`` that allows it (spatial, not writing an output); returns how
    many were inlined."""
    n = 0
    for b in blocks:
        try:
            sch.compute_inline(b)
            n += 1
        except Exception:  # noqa: BLE001 - not inlinable (output buffer, reduction, non-injective read)
            pass
    return n
