"""The host tools of the cycle projection and its qemu plugin's build (no other edgeavs import,
so that ``edgeavs.device.emulator``'s setup can install them without importing the projection).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import dir_mode

LLVM_SUFFIX = "-19"
LLVM_PACKAGE = "llvm-19"
TOOLS = {f"llvm-mca{LLVM_SUFFIX}": LLVM_PACKAGE, f"llvm-mc{LLVM_SUFFIX}": LLVM_PACKAGE,
         f"llvm-nm{LLVM_SUFFIX}": LLVM_PACKAGE, "gcc": "gcc"}
"""Host tools the projection needs and the Debian package of each."""
PLUGIN_SOURCE = Path(__file__).with_name("plugin") / "blockcount.c"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pkg = TOOLS.get(name, name)
        raise EdgeAVSError(f"{name} not found: the cycle projection needs {pkg} "
                           f"(run 'edgeavs device setup-emulator', which installs it)")
    return path


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def plugin_file(cache: Path) -> Path:
    """Where the plugin built from this source lives under the cache directory ``cache``."""
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:12]
    return Path(cache) / "emulator" / "plugin" / f"blockcount-{digest}.so"


def build_plugin(cache: Path, log=None, force: bool = False) -> tuple[Path, bool]:
    """Compile the plugin into ``cache`` (once per source version); ``(path, built_now)``."""
    path = plugin_file(cache)
    if path.is_file() and not force:
        return path, False
    gcc = _tool("gcc")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".blockcount-", suffix=".so", dir=path.parent)
    os.close(fd)
    if log:
        log(f"gcc -O2 -shared {PLUGIN_SOURCE.name} -> {path}")
    proc = subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall",
                           "-o", tmp, str(PLUGIN_SOURCE)], capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        lines = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines()
        raise EdgeAVSError(f"building the qemu plugin {PLUGIN_SOURCE.name} failed: "
                           f"{lines[0] if lines else proc.returncode}")
    os.chmod(tmp, dir_mode())  # a shared object: executable, as the umask allows
    os.replace(tmp, path)
    return path, True
