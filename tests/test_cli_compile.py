"""``edgeavs compile`` / ``export-onnx`` through click: exit codes and the exact Error: lines.
The error cases all fail before anything is compiled."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.targets import ALLOWED_KEYS


def _run(*args):
    return CliRunner().invoke(main, list(args))


def _last(result):
    return result.output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    from edgeavs.model import build_model, save_checkpoint

    path = tmp_path_factory.mktemp("ck") / "small.pt"
    save_checkpoint(build_model("small", seed=0), path)
    return path


def test_unknown_target(tmp_path):
    r = _run("compile", "--target", "pixel99", "--variant", "tiny", "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert _last(r).startswith("Error: unknown target 'pixel99'; choose one of: ")
    assert "host" in _last(r)
    assert not (tmp_path / "a").exists()


def test_malformed_yaml_target(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: llvm\nmattr: [+neon\n")
    r = _run("compile", "--target", str(bad), "--variant", "tiny", "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert _last(r).startswith(f"Error: target file {bad} is not valid YAML at line ")


def test_target_with_unknown_key(tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text("name: t\nkind: llvm\nmcpu: native\nthreads: 4\n")
    r = _run("compile", "--target", str(t), "--variant", "tiny", "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert _last(r) == f"Error: target {t}: unknown key(s) 'threads'; allowed: {', '.join(ALLOWED_KEYS)}"


def test_checkpoint_of_another_variant(tmp_path, small_checkpoint):
    r = _run("compile", "--variant", "tiny", "--checkpoint", str(small_checkpoint),
             "--resolution", "64", "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert _last(r) == (f"Error: {small_checkpoint}: checkpoint is LightAVSeg-small, not the "
                        "requested variant tiny")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("res, shown", [("200", "200x200"), ("224x100", "224x100")])
def test_resolution_not_a_multiple_of_16(tmp_path, res, shown):
    r = _run("compile", "--variant", "tiny", "--resolution", res, "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert _last(r) == f"Error: resolution {shown}: LightAVSeg-tiny needs sides that are positive multiples of 16"
    assert not (tmp_path / "a").exists()


def test_resolution_not_a_size(tmp_path):
    r = _run("compile", "--variant", "tiny", "--resolution", "big", "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert _last(r) == "Error: resolution 'big' is not N or HxW (e.g. 224 or 224x320)"


def test_export_onnx_writes_a_model(tmp_path):
    import onnx

    out = tmp_path / "m.onnx"
    r = _run("export-onnx", "--variant", "tiny", "--resolution", "64", "-o", str(out))
    assert r.exit_code == 0, r.output
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["frames", "waveform"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.opset_import[0].version == 18


def test_sides_not_multiples_of_32_compile_and_verify(tmp_path):
    """80 x 112 (multiples of 16, not of 32): the stride-32 level rounds up (2.5 -> 3, 3.5 -> 4)
    the same way in PyTorch and in the compiled graph, so verify passes (fp32 tolerance table)."""
    art = tmp_path / "odd"
    r = _run("compile", "--variant", "tiny", "--resolution", "80x112", "-o", str(art), "-q")
    assert r.exit_code == 0, r.output
    report = tmp_path / "rep.json"
    r = _run("verify", str(art), "--seeds", "2", "--report", str(report))
    assert r.exit_code == 0, r.output
    rep = json.loads(report.read_text())
    assert rep["passed"] and rep["resolution"] == [80, 112]
