"""Atomic file writes: a temporary file beside the target, then ``os.replace``.

A reader (or a crash) sees the old file or the new one, never a half-written one. What lands has
the modes any other program's output would have under the process's umask (0644 files and 0755
directories under umask 022), not the 0600/0700 of ``mkstemp``/``mkdtemp``'s private temporaries.
:func:`check_writable` checks an output path before any work starts, so that a bad
``-o``/``--report``/``--json`` fails in one line at once, not after minutes of work.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from edgeavs.errors import EdgeAVSError


def current_umask() -> int:
    """The process's umask. Read from ``/proc/self/status`` where Linux has it (no change, so no race
    with other threads); else set and put back at once."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a new regular file under the umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode of a new directory under the umask (0755 under 022)."""
    return 0o777 & ~current_umask()


def make_temp_dir(parent, prefix: str, suffix: str = "") -> Path:
    """``tempfile.mkdtemp`` in ``parent`` (unique name, created by this process alone), with
    :func:`dir_mode` instead of mkdtemp's 0700: the directory that a rename turns into the output."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


def check_writable(path, option: str, kind: str = "file", make_parents: bool = False,
                   overwrite: bool = True) -> Path:
    """Check, before any work, that ``path`` can be written as a ``kind`` (``"file"`` or ``"dir"``).

    The parent directory must exist (with ``make_parents``: the nearest existing ancestor, the
    writer creating the rest), be a directory and be writable: ``os.access`` and then a real
    temporary file created and removed in it (root passes ``os.access`` on any mode; a read-only
    file system does not). A file must not be an existing directory, a directory not an existing
    non-directory. With ``overwrite=False`` (a command's ``--overwrite`` not given) an existing
    file is refused too. Raises :class:`EdgeAVSError` with one line naming ``option`` and ``path``;
    returns ``path`` as a :class:`Path`. Nothing is created.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', not {kind!r}")
    path = Path(path)
    where = f"{option} {path}"
    if kind == "file" and os.path.isdir(path):
        raise EdgeAVSError(f"{where}: is a directory, expected a file name")
    if kind == "dir" and os.path.exists(path) and not os.path.isdir(path):
        raise EdgeAVSError(f"{where}: exists and is not a directory")
    if kind == "file" and not overwrite and os.path.lexists(path):
        raise EdgeAVSError(f"{where}: exists; pass --overwrite to replace it")
    parent = Path(os.path.abspath(path)).parent
    base = parent
    if make_parents:
        while not os.path.lexists(base) and base != base.parent:
            base = base.parent
    if not os.path.lexists(base):
        raise EdgeAVSError(f"{where}: parent directory {parent} does not exist")
    if not os.path.isdir(base):
        what = "parent" if base == parent else "ancestor"
        raise EdgeAVSError(f"{where}: {what} {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise EdgeAVSError(f"{where}: directory {base} is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgeavs-write-check.", dir=base)
    except OSError as exc:
        raise EdgeAVSError(f"{where}: directory {base} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def atomic_write(path, write, mode: int | None = None) -> None:
    """The one atomic writer: ``write(f)`` fills a binary file beside ``path`` (``mkstemp``), which
    is flushed, fsync'ed and renamed over ``path``; on any failure the temporary file is removed
    and ``path`` is untouched. ``mode``: the permission bits (default: :func:`file_mode`, what the
    umask gives a new file; not ``mkstemp``'s 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, file_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path, text: str, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data), mode)


def atomic_copy(src, dst, mode: int | None = None) -> None:
    """Copy the file ``src`` over ``dst`` atomically (:func:`atomic_write`)."""
    import shutil

    def write(f):
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, f)

    atomic_write(dst, write, mode)


def write_json(path, obj, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically, creating its folder (modes from the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")
