"""edgeavs --help / --version / info, through click's CliRunner."""

import json

import torch
from click.testing import CliRunner

from cli import main
from edgeavs import __version__


def test_help_and_version():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "info" in r.output
    text = " ".join(r.output.split())
    assert "--debug" in text and "3 internal error" in text  # the exit codes are documented
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_info_json_tiny():
    r = CliRunner().invoke(main, ["info", "--variant", "tiny", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["variant"] == "tiny"
    p = d["params"]
    assert p["visual"] == 1_620_096                      # SPEC §2, official SeaFormer-T
    assert p["audio"] == 5_158_799 - 540_175             # SPEC §3, PANNs minus fc_audioset
    assert p["audio_stft_mel"] == 1_083_456
    assert p["total"] == p["visual"] + p["audio"] + p["interaction"] + p["head"]
    assert isinstance(d["macs_224"], int) and d["macs_224"] > 0


def test_info_text_reports_parts():
    r = CliRunner().invoke(main, ["info", "-v", "tiny"])
    assert r.exit_code == 0
    for word in ("visual backbone", "conv-STFT + mel", "interaction", "head", "total", "MACs at 224x224"):
        assert word in r.output


def test_info_bad_weights_file_is_one_line_error(tmp_path):
    bad = tmp_path / "sea.pth"
    torch.save({"state_dict": {"nope": torch.zeros(1)}}, bad)
    r = CliRunner().invoke(main, ["info", "-v", "tiny", "--visual-weights", str(bad)])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}: does not fit the SeaFormer backbone")
    assert "unexpected keys ['nope']" in lines[0]


def test_info_unknown_variant_is_a_usage_error():
    r = CliRunner().invoke(main, ["info", "--variant", "huge"])
    assert r.exit_code == 2 and "huge" in r.output
