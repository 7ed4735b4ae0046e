"""Atomic file writes: a temporary file beside the target, then ``os.replace``.

A reader (or a crash) sees the old file or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_text(path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` atomically (flushed and fsync'ed before the rename).

    ``mode``: the file's permission bits (default: ``mkstemp``'s owner-only 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, obj, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically, creating its folder; readable by everyone (0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n", mode=0o644)
