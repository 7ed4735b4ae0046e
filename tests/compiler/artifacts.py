"""One compile of LightAVSeg-tiny at 64x64 per test process, shared by every compiler/CLI test.

A module-level cache rather than a conftest fixture so that tests in tests/ and tests/compiler/
share it without a shared conftest (the compile takes ~30-60 s on 2 cores).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

RESOLUTION = "64"
_cache: dict[str, Path] = {}
_root: list[Path] = []


def _workdir() -> Path:
    if not _root:
        _root.append(Path(tempfile.mkdtemp(prefix="edgeavs-test-artifacts-")))
        import atexit

        atexit.register(shutil.rmtree, _root[0], True)
    return _root[0]


def tiny_artifact(via: str = "export") -> Path:
    """The compiled tiny artifact (compiled through the CLI the first time it is asked for)."""
    if via not in _cache:
        from click.testing import CliRunner

        from cli import main

        out = _workdir() / f"tiny-{via}"
        # the ONNX compile (used by one test) also exercises --dump-ir
        dump = ["--dump-ir", str(_workdir() / f"ir-{via}")] if via == "onnx" else []
        result = CliRunner().invoke(main, ["compile", "--target", "host", "--variant", "tiny",
                                           "--resolution", RESOLUTION, "--via", via, "-q",
                                           "-o", str(out), *dump])
        assert result.exit_code == 0, result.output
        # stdout only: TVM's C++ warnings reach Python's stderr, which click's output mixes in
        assert result.stdout.strip().splitlines()[-1] == str(out)
        _cache[via] = out
    return _cache[via]


def copy_of(artifact: Path, name: str) -> Path:
    dest = _workdir() / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(artifact, dest)
    return dest


def ir_dump(via: str = "onnx") -> Path:
    tiny_artifact(via)
    return _workdir() / f"ir-{via}"
