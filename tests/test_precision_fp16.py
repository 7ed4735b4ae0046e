"""fp16 builds: the ToFloat16 pass, precision in the manifest, verify's rule by precision, and the refusals
(a target without +fullfp16, records of another precision)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.errors import EdgeAVSError
from tests.precision_helpers import compile_for_emulation, cortex_a53

SIZE = 64
AARCH64_NO_FP16 = cortex_a53("a53-nofp16", "Cortex-A53 class, no fp16 arithmetic")


def _mac_ops(func):
    from edgeavs.passes._rewrite import bindings, op_name
    from edgeavs.passes.to_fp16 import MAC_OPS

    return [b for b in bindings(func) if op_name(b.value) in MAC_OPS]


@pytest.fixture(scope="module")
def fused_tiny():
    """LightAVSeg-T (random init) at 64 through the pipeline up to edgeavs-fusion."""
    from edgeavs.compiler.build import prepare
    from edgeavs.compiler.pipeline import run_pipeline
    from edgeavs.targets import load_target

    mod, params, _, _ = prepare("tiny", None, str(SIZE)).import_relax()
    target = load_target("host").to_tvm()
    return run_pipeline(mod, target, params, stop="edgeavs-fusion")[0], target


@pytest.mark.parametrize("accumulate", ["float32", "float16"])
def test_to_fp16_converts_every_mac_layer_but_the_kept_ones(fused_tiny, accumulate):
    from edgeavs.compiler.pipeline import _copy
    from edgeavs.passes._rewrite import dtype_of
    from edgeavs.passes.to_fp16 import ToFloat16, kept_in_fp32

    mod, target = fused_tiny
    before = _mac_ops(mod["main"])
    kept = kept_in_fp32(mod["main"])
    assert sorted(kept.values()) == ["first conv (frames)", "last conv (logits)", "log-mel front end"]
    p = ToFloat16(accumulate=accumulate)
    with target:
        out = p(_copy(mod))
    after = _mac_ops(out["main"])
    assert len(after) == len(before)
    half = [b for b in after if all(dtype_of(a) == "float16" for a in b.value.args)]
    full = [b for b in after if all(dtype_of(a) == "float32" for a in b.value.args)]
    assert len(half) == len(before) - 3 == p.report["converted"] and len(full) == 3
    assert {dtype_of(b.var) for b in half} == {accumulate}  # the accumulator is the conv's out dtype
    assert p.report["kept"] == {"log-mel front end": 1, "first conv (frames)": 1, "last conv (logits)": 1}
    assert dtype_of(out["main"].body.body) == "float32"  # the logits stay float32


def test_fp32_pipeline_has_no_half_precision(fused_tiny):
    from edgeavs.compiler.pipeline import _copy, run_pipeline

    mod, target = fused_tiny
    out, report = run_pipeline(_copy(mod), target, None, start="precision", stop="precision")
    assert report["precision"] == {"precision": "fp32"} and "float16" not in out.script(show_meta=False)


def test_check_precision_refusals(tmp_path):
    from edgeavs.compiler.build import check_precision
    from edgeavs.targets import load_target

    (tmp_path / "a53.yaml").write_text(AARCH64_NO_FP16)
    with pytest.raises(EdgeAVSError, match=r"target a53-nofp16 .* has no \+fullfp16"):
        check_precision("fp16", load_target(str(tmp_path / "a53.yaml")))
    check_precision("fp16", load_target("aarch64-linux"))  # +fullfp16
    check_precision("fp16", load_target("snapdragon8elite"))
    check_precision("fp16", load_target("host"))  # x86: for checking
    with pytest.raises(EdgeAVSError, match=r"--precision 'int4': expected one of fp32, fp16, int8"):
        check_precision("int4", load_target("host"))
    with pytest.raises(EdgeAVSError, match="--accumulate applies to --precision fp16"):
        check_precision("fp32", load_target("host"), "fp16")


def test_cli_refuses_fp16_without_fullfp16_and_writes_nothing(tmp_path):
    (tmp_path / "a53.yaml").write_text(AARCH64_NO_FP16)
    out = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--target", str(tmp_path / "a53.yaml"), "--variant", "tiny",
                                  "--resolution", str(SIZE), "--precision", "fp16", "-o", str(out)])
    assert r.exit_code == 1 and "has no +fullfp16" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


def test_cli_refuses_records_of_another_precision(tmp_path):
    from edgeavs.compiler.records import RecordsDir
    from edgeavs.targets import load_target

    rec = tmp_path / "records"
    RecordsDir(rec).create_or_resume(load_target("host"))  # fp32 records
    out = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--target", "host", "--variant", "tiny", "--resolution", str(SIZE),
                                  "--precision", "fp16", "--records", str(rec), "-o", str(out)])
    assert r.exit_code == 1 and "tuned for a fp32 build, this is fp16" in r.output, r.output
    assert not out.exists()


def test_rule_for_reads_the_manifest():
    from edgeavs.verify import TOLERANCES, rule_for

    assert rule_for({}) == "float32"
    assert rule_for({"precision": "fp16", "precision_report": {"accumulate": "float32"}}) == "float16"
    assert rule_for({"precision": "fp16", "precision_report": {"accumulate": "float16"}}) == "float16/acc16"
    for key in ("float32", "float16", "float16/acc16"):
        assert set(TOLERANCES[key]) >= {"rel_l2", "max_abs", "mask_iou"}
    with pytest.raises(EdgeAVSError, match="no verify rule"):
        rule_for({"precision": "int4"})


@pytest.fixture(scope="module")
def fp16_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("fp16") / "art"
    r = CliRunner().invoke(main, ["compile", "--target", "host", "--variant", "tiny", "--resolution", str(SIZE),
                                  "--precision", "fp16", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "kept fp32: log-mel front end 1, first conv (frames) 1, last conv (logits) 1" in r.output
    return out


@pytest.mark.slow
def test_fp16_artifact_records_precision_and_passes_its_rule(fp16_artifact, tmp_path):
    from edgeavs.compiler.artifact import read_manifest
    from edgeavs.verify import TOLERANCES, compare

    m = read_manifest(fp16_artifact)
    assert m["precision"] == "fp16" and m["precision_report"]["accumulate"] == "float32"
    assert m["precision_report"]["converted"] > 100
    report_path = tmp_path / "v.json"
    r = CliRunner().invoke(main, ["verify", str(fp16_artifact), "--seeds", "3", "--report", str(report_path)])
    assert r.exit_code == 0, r.output
    report = json.loads(report_path.read_text())
    assert report["precision"] == "fp16" and report["rule"] == "float16" and report["passed"]
    worst = report["worst"]
    assert worst["rel_l2"] <= TOLERANCES["float16"]["rel_l2"]
    # it is an fp16 build: measurably off fp32's rule (rel-L2 ~1e-3 against fp32's 8e-5 bound)
    assert worst["rel_l2"] > TOLERANCES["float32"]["rel_l2"]
    case = report["cases"][0]["outputs"]["logits"]
    assert case["pass"] and not compare(np.zeros(1) + 1.0, np.ones(1) * 1.1, "float16")["pass"]


@pytest.mark.slow
def test_fp16_artifact_fails_when_the_rule_is_tightened(fp16_artifact, monkeypatch):
    """The rule verify applies is the fp16 row: tightening that row (and only that row) fails the build."""
    import edgeavs.verify as V

    monkeypatch.setitem(V.TOLERANCES, "float16", dict(V.TOLERANCES["float32"]))
    r = CliRunner().invoke(main, ["verify", str(fp16_artifact), "--seeds", "2"])
    assert r.exit_code == 1 and "FAIL" in r.output


def test_manifest_and_records_name_the_same_precisions():
    from edgeavs.compiler import artifact, records

    assert artifact.PRECISIONS == records.PRECISIONS


@pytest.mark.slow
def test_fp16_on_emulated_aarch64_passes_its_rule(tmp_path):
    """The snapdragon8elite fp16 build (+fullfp16: native fp16 conversions, fp32 accumulation) under
    qemu-aarch64 -cpu max: verify with the fp16 row, and the fp16 code really is there (fcvt to half)."""
    import subprocess

    from edgeavs.device.export import LINUX_LIBRARY
    from edgeavs.device.remote import DeviceSpec
    from edgeavs.verify import TOLERANCES, verify_artifact

    out = tmp_path / "sd8e-fp16"
    manifest = compile_for_emulation(out, variant="tiny", resolution=SIZE, precision="fp16")
    assert manifest["precision"] == "fp16"
    dis = subprocess.run(["llvm-objdump-19", "-d", "--mattr=+fullfp16", str(out / LINUX_LIBRARY)],
                         capture_output=True, text=True, check=True).stdout
    assert "fcvtn\tv" in dis or "fcvt\th" in dis  # fp32 -> fp16 narrowing: the half-precision operands
    report = verify_artifact(out, seeds=2, device=DeviceSpec("emulated"))
    assert report["rule"] == "float16" and report["passed"], report["worst"]
    assert TOLERANCES["float32"]["rel_l2"] < report["worst"]["rel_l2"] <= TOLERANCES["float16"]["rel_l2"]
