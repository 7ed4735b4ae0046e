"""LightAVSeg -> TVM: import (``frontend``), the Relax pipeline (``pipeline``), the compile
function (``build``) and the artifact directory (``artifact``).

Importing this package is cheap; torch and TVM are imported where they are used.
"""

from __future__ import annotations


def compile_artifact(*args, **kwargs):
    from edgeavs.compiler.build import compile_artifact as _f

    return _f(*args, **kwargs)


def load_artifact(directory, validate: bool = True):
    from edgeavs.compiler.artifact import load_artifact as _f

    return _f(directory, validate=validate)


__all__ = ["compile_artifact", "load_artifact"]
