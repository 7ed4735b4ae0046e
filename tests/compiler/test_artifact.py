"""The artifact directory: manifest contents and hashes, plain-TVM loading without torch,
refusal of modified files, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgeavs.compiler.artifact import (
    LIBRARY,
    MANIFEST,
    file_sha256,
    load_artifact,
    staging_dir,
    validate_artifact,
)
from edgeavs.errors import EdgeAVSError
from edgeavs.targets import load_target
from tests.compiler.artifacts import copy_of, tiny_artifact


def test_manifest_contents():
    art = tiny_artifact()
    m = json.loads((art / MANIFEST).read_text())
    host = load_target("host")
    assert m["format"] == "edgeavs-artifact/1"
    assert m["edgeavs"] and m["tvm"].startswith("0.27") and int(m["llvm"]) >= 15
    assert m["target"] == host.tvm_dict() and m["target_fingerprint"] == host.fingerprint()
    assert m["variant"] == "tiny" and m["resolution"] == [64, 64] and m["via"] == "export"
    assert m["weights"] == {"storage": "bound", "source": "random-init", "seed": 0, "fusion": "lightavseg"}
    assert m["inputs"] == [{"name": "frames", "shape": [1, 3, 64, 64], "dtype": "float32"},
                           {"name": "waveform", "shape": [1, 32000], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "logits", "shape": [1, 1, 64, 64], "dtype": "float32"}]
    assert set(m["files"]) == {LIBRARY}
    for name, digest in m["files"].items():
        assert file_sha256(art / name) == digest
    assert m["fusion"]["enabled"] is True
    assert set(m["compile_seconds"]) >= {"import", "fold-constants", "legalize", "codegen", "total"}


def test_loads_with_plain_tvm_and_without_torch():
    """The README snippet, in a fresh process; then load_artifact keeps torch out."""
    art = tiny_artifact()
    code = textwrap.dedent(f"""
        import sys, numpy as np
        sys.modules["torch"] = None  # tvm_ffi imports torch when it can; plain TVM must not need it
        import tvm
        from tvm import relax
        del sys.modules["torch"]
        lib = tvm.runtime.load_module("{art}/{LIBRARY}")
        vm = relax.VirtualMachine(lib, tvm.cpu())
        frames = np.zeros((1, 3, 64, 64), "float32"); wave = np.zeros((1, 32000), "float32")
        out = vm["main"](tvm.runtime.tensor(frames), tvm.runtime.tensor(wave)).numpy()
        assert out.shape == (1, 1, 64, 64) and np.isfinite(out).all()

        from edgeavs.compiler.artifact import load_artifact
        model = load_artifact("{art}")
        logits = model.run(np.zeros((2, 3, 64, 64), "float32"), np.zeros((2, 32000), "float32"))
        assert logits.shape == (2, 1, 64, 64)
        np.testing.assert_array_equal(logits[0], out[0])
        assert "torch" not in sys.modules, "load_artifact imported torch"
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_run_checks_input_shapes():
    model = load_artifact(tiny_artifact())
    with pytest.raises(EdgeAVSError, match=r"^input frames has shape \(1, 3, 32, 32\); this artifact takes \(N, 3, 64, 64\)"):
        model.run(np.zeros((1, 3, 32, 32), "float32"), np.zeros((1, 32000), "float32"))


def test_tampered_and_missing_files_are_refused():
    art = copy_of(tiny_artifact(), "tampered")
    with open(art / LIBRARY, "ab") as f:
        f.write(b"\0")
    with pytest.raises(EdgeAVSError) as e:
        validate_artifact(art)
    assert str(e.value) == f"artifact {art}: {LIBRARY} does not match its sha256 in {MANIFEST} (modified or corrupted)"
    (art / LIBRARY).unlink()
    with pytest.raises(EdgeAVSError, match=rf"^artifact {art}: {LIBRARY} is missing$"):
        load_artifact(art)
    (art / MANIFEST).unlink()
    with pytest.raises(EdgeAVSError, match=rf"^artifact {art}: {MANIFEST} is missing$"):
        load_artifact(art)


def test_staging_is_atomic(tmp_path):
    dest = tmp_path / "art"
    with pytest.raises(RuntimeError):
        with staging_dir(dest) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("compile failed")
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temp left
    with staging_dir(dest) as tmp:
        (tmp / "a").write_text("1")
    with staging_dir(dest) as tmp:  # replaces a previous artifact whole
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in dest.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["art"]
