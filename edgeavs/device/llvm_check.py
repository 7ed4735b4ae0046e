"""Does LLVM (as built into TVM) know a target's CPU and every feature it names?

TVM only *warns* on an unknown ``mcpu`` ("not a recognized processor") or ``mattr`` feature
("not a recognized feature ... ignoring") and quietly generates code for a generic CPU: a typo
in a target file would ship a slower (or, for ``-feature``, a different) library with no error.
:func:`check_llvm_target` turns each of those into one :class:`~edgeavs.errors.EdgeAVSError`
line, and :func:`cpu_features` gives the resolved feature set (e.g. to show that a target has
no SVE).
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from edgeavs.errors import EdgeAVSError


@contextlib.contextmanager
def quiet_stderr():
    """LLVM prints its warnings straight to fd 2; the one-line error says it better."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(fd, 2)
            os.close(fd)


def _tvm_target(triple: str, mcpu: str, mattr=()):
    from edgeavs.tvm_api import Target

    spec = {"kind": "llvm", "mtriple": triple, "mcpu": mcpu}
    if mattr:
        spec["mattr"] = list(mattr)
    return Target(spec)


def cpu_features(mcpu: str, mattr=(), triple: str | None = None) -> frozenset[str]:
    """The features LLVM enables for ``mcpu`` with ``mattr`` applied (names without +/-)."""
    from edgeavs.tvm_api import _codegen, llvm_host_triple

    triple = triple or llvm_host_triple()
    with quiet_stderr():
        return frozenset(str(f) for f in _codegen.llvm_get_cpu_features(_tvm_target(triple, mcpu, mattr)))


def unknown_features(mcpu: str, mattr, triple: str) -> list[str]:
    """The ``mattr`` entries LLVM does not recognise for ``triple`` (each tried as ``+name``)."""
    bad = []
    for attr in mattr:
        name = attr[1:]
        if name not in cpu_features(mcpu, [f"+{name}"], triple):
            bad.append(attr)
    return bad


def check_llvm_target(mcpu: str, mattr=(), triple: str | None = None, source: str = "target") -> None:
    """Raise a one-line error unless LLVM knows ``mcpu`` for ``triple`` and every ``mattr``
    feature (``+name``/``-name``); for ``+name`` also that it ends up enabled."""
    from edgeavs.tvm_api import llvm_host_triple, llvm_is_valid_cpu, llvm_version

    triple = triple or llvm_host_triple()
    arch = triple.split("-", 1)[0]
    with quiet_stderr():
        valid = llvm_is_valid_cpu(mcpu, triple)
    if not valid:
        raise EdgeAVSError(f"{source}: LLVM {llvm_version()} does not know mcpu {mcpu!r} for "
                           f"{arch} ({triple}); see 'llc -march={arch} -mcpu=help'")
    check_llvm_features(mcpu, mattr, triple, source)


def check_llvm_features(mcpu: str, mattr, triple: str, source: str = "target") -> None:
    """The ``mattr`` half of :func:`check_llvm_target` (``mcpu`` already known to be valid)."""
    from edgeavs.tvm_api import llvm_version

    arch = triple.split("-", 1)[0]
    bad = unknown_features(mcpu, mattr, triple)
    if bad:
        hint = " (AArch64 spells them e.g. +neon, +dotprod, +i8mm, +fullfp16)" \
            if arch.startswith(("aarch64", "arm64")) else ""
        raise EdgeAVSError(f"{source}: LLVM {llvm_version()} does not know the {arch} feature(s) "
                           f"{', '.join(bad)} in mattr{hint}")
    enabled = cpu_features(mcpu, mattr, triple)
    off = [a for a in mattr if a.startswith("+") and a[1:] not in enabled]
    if off:
        raise EdgeAVSError(f"{source}: {', '.join(off)} requested but not enabled by LLVM for "
                           f"{mcpu} ({triple})")
