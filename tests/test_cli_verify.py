"""``edgeavs verify`` on the shared compiled tiny artifact (export and ONNX routes)."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from cli import main
from edgeavs.compiler.artifact import LIBRARY, MANIFEST
from edgeavs.compiler.pipeline import PIPELINE
from tests.compiler.artifacts import copy_of, ir_dump, tiny_artifact


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _last(result):
    return result.output.strip().splitlines()[-1]


def test_verify_passes_with_real_inputs_and_report(tmp_path):
    art = tiny_artifact()
    rng = np.random.default_rng(7)
    inputs = tmp_path / "real.npz"
    np.savez(inputs, frames=rng.standard_normal((2, 3, 64, 64)).astype("float32"),
             waveform=(0.3 * np.sin(np.arange(32000) / 7.0) * np.ones((2, 1))).astype("float32"))
    report = tmp_path / "report.json"
    r = _run("verify", art, "--seeds", 2, "--inputs", inputs, "--report", report)
    assert r.exit_code == 0, r.output
    assert _last(r) == "PASS"
    rep = json.loads(report.read_text())
    assert rep["passed"] and len(rep["cases"]) == 4
    assert [c["input"] for c in rep["cases"]] == ["seed 0", "seed 1", "real.npz[0]", "real.npz[1]"]
    tol = rep["tolerances"]["float32"]
    for case in rep["cases"]:  # every bound of the table holds against float64
        logits = case["outputs"]["logits"]
        assert logits["pass"] and logits["finite"]
        assert logits["rel_l2"] <= tol["rel_l2"] and logits["max_abs_rms"] <= tol["max_abs"]
        assert logits["mask_iou"] is None or logits["mask_iou"] >= tol["mask_iou"]
        assert logits["pytorch_fp32_rel_l2"] is not None  # the context column was measured
    assert rep["worst"]["rel_l2"] == max(c["outputs"]["logits"]["rel_l2"] for c in rep["cases"])
    assert rep["reference"].startswith("PyTorch float64")


def test_tampered_artifact_is_refused():
    art = copy_of(tiny_artifact(), "tampered-cli")
    with open(art / LIBRARY, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    r = _run("verify", art, "--seeds", 1)
    assert r.exit_code == 2  # not 1: that is a numeric failure's alone
    assert _last(r) == (f"Error: artifact {art}: {LIBRARY} does not match its sha256 in "
                        f"{MANIFEST} (modified or corrupted)")


def test_missing_artifact_files(tmp_path):
    """A check that could not be made exits 2 (1 is a numeric failure's alone: the CI gate)."""
    r = _run("verify", tmp_path / "nope", "--seeds", 1)
    assert r.exit_code == 2
    assert _last(r) == (f"Error: artifact {tmp_path / 'nope'} not found (expected a directory "
                        "written by edgeavs compile)")
    art = copy_of(tiny_artifact(), "no-lib")
    (art / LIBRARY).unlink()
    r = _run("verify", art, "--seeds", 1)
    assert r.exit_code == 2
    assert _last(r) == f"Error: artifact {art}: {LIBRARY} is missing"


def test_usage_errors_exit_2(tmp_path):
    art = tiny_artifact()
    ck = tmp_path / "x.pt"
    ck.write_bytes(b"0")
    r = _run("verify", art, "--checkpoint", ck)
    assert r.exit_code == 2
    assert _last(r) == ("Error: this artifact was compiled from random-init weights (seed 0); "
                        "--checkpoint does not apply")
    bad = tmp_path / "bad.npz"
    np.savez(bad, frames=np.zeros((1, 3, 32, 32), "float32"), waveform=np.zeros((1, 32000), "float32"))
    r = _run("verify", art, "--inputs", bad)
    assert r.exit_code == 2
    assert _last(r) == f"Error: --inputs {bad}: frames have shape (1, 3, 32, 32); this artifact takes (N, 3, 64, 64)"


def test_numeric_failure_exits_1(monkeypatch):
    import edgeavs.verify as V

    monkeypatch.setitem(V.TOLERANCES, "float32", {"rel_l2": 0.0, "max_abs": 0.0, "mask_iou": 1.0})
    r = _run("verify", tiny_artifact(), "--seeds", 1)
    assert r.exit_code == 1
    assert _last(r) == "FAIL (1 input(s))"
    # the failing line names the bounds it missed
    assert any(ln.startswith("seed 0") and ln.endswith("FAIL (rel_l2, max_abs)") for ln in r.output.splitlines())


def test_onnx_route_compiles_and_verifies():
    art = tiny_artifact("onnx")
    assert json.loads((art / MANIFEST).read_text())["via"] == "onnx"
    dumped = sorted(p.name for p in ir_dump("onnx").iterdir())
    assert dumped == ["00-imported.py"] + [f"{i:02d}-{ph.name}.py" for i, ph in enumerate(PIPELINE, 1)]
    assert "vm.builtin" in (ir_dump("onnx") / dumped[-1]).read_text()
    r = _run("verify", art, "--seeds", 2)
    assert r.exit_code == 0, r.output
    assert _last(r) == "PASS"
