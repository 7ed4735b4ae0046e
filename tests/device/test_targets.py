"""Target YAMLs for AArch64 devices, and LLVM's view of them (a typo is a one-line error)."""

import pytest

from edgeavs.device.llvm_check import check_llvm_target, cpu_features
from edgeavs.targets import load_checked_target
from edgeavs.errors import EdgeAVSError


def test_snapdragon8elite_is_oryon_without_sve():
    t = load_checked_target("snapdragon8elite")
    assert t.tvm_dict() == {"kind": "llvm", "mtriple": "aarch64-linux-android", "mcpu": "oryon-1",
                            "mattr": ["+neon", "+dotprod", "+i8mm", "+fullfp16"], "num-cores": 8}
    assert t.link == "ndk" and t.cross_cc == "aarch64-linux-gnu-gcc"
    assert t.vector_width == 128
    feats = cpu_features(t.mcpu, t.mattr, t.mtriple)
    assert {"neon", "dotprod", "i8mm", "fullfp16", "v8.6a"} <= feats
    assert not {"sve", "sve2", "sme"} & feats


def test_aarch64_linux_board():
    t = load_checked_target("aarch64-linux")
    assert (t.mtriple, t.mcpu, t.link, t.cross_cc) == (
        "aarch64-linux-gnu", "cortex-a76", "cross", "aarch64-linux-gnu-gcc")
    feats = cpu_features(t.mcpu, t.mattr, t.mtriple)
    assert {"neon", "dotprod", "fullfp16"} <= feats and "sve" not in feats


def test_cortex_x4_would_bring_sve():
    """Why the target names oryon-1: the obvious stand-in, cortex-x4, implies SVE."""
    assert "sve" in cpu_features("cortex-x4", (), "aarch64-linux-android")


def _one_line(exc):
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_unknown_mcpu_is_one_line_error():
    with pytest.raises(EdgeAVSError) as exc:
        check_llvm_target("oryon1", ["+neon"], "aarch64-linux-android", source="target t")
    assert _one_line(exc).startswith("target t: LLVM ") and "'oryon1'" in str(exc.value)


@pytest.mark.parametrize("mattr, bad", [(["+neon", "+i8mmm"], "+i8mmm"),
                                        (["+neon", "-svee"], "-svee"),
                                        (["+dotprod", "+neno"], "+neno")])
def test_unknown_feature_is_one_line_error(mattr, bad):
    with pytest.raises(EdgeAVSError) as exc:
        check_llvm_target("oryon-1", mattr, "aarch64-linux-gnu", source="target t")
    msg = _one_line(exc)
    assert bad in msg and "mattr" in msg


def test_known_negative_feature_is_fine():
    check_llvm_target("oryon-1", ["+neon", "-i8mm"], "aarch64-linux-gnu")
    assert "i8mm" not in cpu_features("oryon-1", ["-i8mm"], "aarch64-linux-gnu")


def test_typo_in_yaml_file(tmp_path, capfd):
    path = tmp_path / "phone.yaml"
    path.write_text("kind: llvm\nmtriple: aarch64-linux-android\nmcpu: oryon-1\n"
                    "mattr: [+neon, +dotprd]\nnum-cores: 8\nlink: ndk\n")
    with pytest.raises(EdgeAVSError) as exc:
        load_checked_target(str(path))
    assert "+dotprd" in _one_line(exc)
    assert "not a recognized feature" not in capfd.readouterr().err  # LLVM's warning is kept quiet


def test_cli_check_target(tmp_path):
    from click.testing import CliRunner

    from cli import main

    ok = CliRunner().invoke(main, ["device", "check-target", "snapdragon8elite"])
    assert ok.exit_code == 0, ok.output
    assert "oryon-1" in ok.output and "i8mm" in ok.output and "sve" not in ok.output
    path = tmp_path / "bad.yaml"
    path.write_text("kind: llvm\nmtriple: aarch64-linux-gnu\nmcpu: cortex-a767\n")
    bad = CliRunner().invoke(main, ["device", "check-target", str(path)])
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: target bad: LLVM") or "does not know mcpu" in bad.output


def test_compile_rejects_a_misspelt_feature(tmp_path):
    """edgeavs.targets checks mattr through llvm_check: compile stops with one line."""
    from click.testing import CliRunner

    from cli import main

    path = tmp_path / "phone.yaml"
    path.write_text("kind: llvm\nmtriple: aarch64-linux-android\nmcpu: oryon-1\n"
                    "mattr: [+neon, +fullfp61]\nlink: ndk\ncross_cc: aarch64-linux-gnu-gcc\n")
    res = CliRunner().invoke(main, ["compile", "--target", str(path), "--variant", "tiny",
                                    "-o", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("Error: target ") and "+fullfp61 in mattr" in res.output
    assert not (tmp_path / "out").exists()
