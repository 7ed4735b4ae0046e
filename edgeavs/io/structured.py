"""Reading JSON and YAML files that people (or a crash) may have damaged: one-line errors, never a traceback.

``load_json`` / ``load_yaml`` read at most ``max_bytes`` (a larger file is refused before it is parsed), decode
UTF-8, parse (``yaml.safe_load`` for YAML) and then walk the result without recursion: nesting deeper than
:data:`MAX_DEPTH` levels, or (for YAML aliases, which share one object many times) more than
:data:`MAX_VALUES` values, is refused, so the code that later walks the value recursively (``json.dumps``, a
schema check, TVM's own JSON reader) cannot overflow its stack. Every failure is one
:class:`~edgeavs.errors.EdgeAVSError` line naming the file: unreadable, too large, not UTF-8, not valid JSON/YAML
(with the line), nested too deeply (the parsers' own ``RecursionError`` included).

``what`` says what the file is (``"target file"``): the message then reads ``target file PATH is not valid
YAML ...``; with ``what=""`` it reads ``PATH: not valid JSON ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeavs.errors import EdgeAVSError

MAX_DEPTH = 64
"""Nesting levels a configuration file may have (edgeavs's own files use fewer than 10)."""
MAX_VALUES = 2_000_000
"""Values (containers and scalars, counted along every path) a parsed file may have."""
DEFAULT_MAX_BYTES = 64 * 2**20


def _subject(what: str, path) -> str:
    return f"{what} {path}" if what else f"{path}"


def _fail(what: str, path, problem: str) -> EdgeAVSError:
    """``target file X is <problem>`` or ``X: <problem>``; always one line."""
    problem = " ".join(str(problem).split())
    return EdgeAVSError(f"{what} {path} is {problem}" if what else f"{path}: {problem}")


def size_text(n: int) -> str:
    """``n`` bytes as a message shows a limit: "16 MiB", "1 KiB", "100 bytes"."""
    return f"{n // 2**20} MiB" if n >= 2**20 and n % 2**20 == 0 else \
        f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} bytes"


def read_bytes(path, what: str = "", max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, at most ``max_bytes`` of them (a larger file is a one-line error)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise EdgeAVSError(f"cannot read {_subject(what, path)}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > max_bytes:
        raise _fail(what, path, f"larger than {size_text(max_bytes)}")
    return data


def _decode(data: bytes, what: str, path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(what, path, f"not UTF-8 text (byte {exc.start})") from None


def check_depth(value, what: str = "", path="<value>", max_depth: int = MAX_DEPTH,
                max_values: int = MAX_VALUES) -> None:
    """Refuse a value nested deeper than ``max_depth`` or holding more than ``max_values`` values (iterative: no
    recursion; a self-referencing YAML alias is refused by depth)."""
    _walk(value, lambda problem: _fail(what, path, problem), max_depth, max_values)


def _walk(value, fail, max_depth: int, max_values: int = MAX_VALUES) -> None:
    containers = (dict, list, tuple, set, frozenset)
    stack = [(value, 1)] if isinstance(value, containers) else []
    seen = 1
    while stack:
        v, depth = stack.pop()
        if depth > max_depth:
            raise fail(f"nested more than {max_depth} levels deep")
        children = (*v.keys(), *v.values()) if isinstance(v, dict) else v
        seen += len(children)
        if seen > max_values:
            raise fail(f"too large: more than {max_values} values (YAML aliases expanding?)")
        stack.extend((c, depth + 1) for c in children if isinstance(c, containers))


def _json_problem(exc: Exception, max_depth: int) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
    if isinstance(exc, RecursionError):
        return f"nested more than {max_depth} levels deep"
    return f"not valid JSON ({_value_problem(exc)})"


def _value_problem(exc: Exception) -> str:
    text = str(exc)
    if "integer string conversion" in text:  # Python's 4300-digit limit on int("...")
        return "a number with more than 4300 digits"
    return text


def loads_json(text, what: str, max_depth: int = MAX_DEPTH):
    """Parse JSON text (``str`` or UTF-8 ``bytes``) that came from ``what`` (e.g. ``"FILE: line 3"``); a
    problem is one EdgeAVSError line ``<what> is not valid JSON ...`` (or ``... is nested more than ...``)."""

    def fail(problem: str) -> EdgeAVSError:
        return EdgeAVSError(" ".join(f"{what} is {problem}".split()))

    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except (RecursionError, ValueError) as exc:  # ValueError: JSONDecodeError and int-digit limits
        raise fail(_json_problem(exc, max_depth)) from None
    _walk(value, fail, max_depth)
    return value


def load_json(path, what: str = "", max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = MAX_DEPTH):
    """The parsed JSON file at ``path``; any problem is one EdgeAVSError line naming it."""
    text = _decode(read_bytes(path, what, max_bytes), what, path)
    try:
        value = json.loads(text)
    except (RecursionError, ValueError) as exc:
        raise _fail(what, path, _json_problem(exc, max_depth)) from None
    check_depth(value, what, path, max_depth)
    return value


def load_yaml(path, what: str = "", max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = MAX_DEPTH):
    """The parsed YAML file at ``path`` (``yaml.safe_load``); any problem is one EdgeAVSError line naming it."""
    import yaml

    text = _decode(read_bytes(path, what, max_bytes), what, path)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise _fail(what, path, f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise _fail(what, path, f"nested more than {max_depth} levels deep") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date 2024-13-45, a 5000-digit int
        raise _fail(what, path, f"not valid YAML: {_value_problem(exc)}") from None
    check_depth(value, what, path, max_depth)
    return value


__all__ = ["DEFAULT_MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "check_depth", "load_json", "load_yaml", "loads_json",
           "read_bytes", "size_text"]
