"""The tuned-knob file of a records directory (``edgeavs_knobs.json``), as the compiler reads it.

``{"format": "edgeavs-knobs/1", "functions": {workload key: {"kind", "config", ...}}}``: per workload key (see
``kernels.registry.function_key`` / ``kernel_key``) the schedule or kernel name (a ``kernels.registry`` entry) and
its winning config (``null``: the default stayed). ``edgeavs tune`` writes it (``edgeavs.compiler.records``);
``edgeavs compile --records`` checks it here and hands the entries to the passes as ``configs["functions"]``
(``kernels.registry.tuned_config``).
"""

from __future__ import annotations

from edgeavs.errors import EdgeAVSError
from kernels.registry import config_from_dict

FORMAT = "edgeavs-knobs/1"


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


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


__all__ = ["FORMAT", "check_entries"]
