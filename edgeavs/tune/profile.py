"""Moved to :mod:`edgeavs.compiler.profile` (the compiler's own timing); this name stays only until
``edgeavs/compiler/breakdown.py`` imports it from there."""

from edgeavs.compiler.profile import profile_functions

__all__ = ["profile_functions"]
