"""What a user meets in the first hour: exit codes, outputs that are not clobbered, help texts,
file modes, progress. Nothing here compiles a model unless the test says so."""

from __future__ import annotations

import importlib

from click.testing import CliRunner

from cli import main
from edgeavs.errors import EdgeAVSError


def _run(args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


def _raise(message):
    def work(*_a, **_k):
        raise EdgeAVSError(message)
    return work


# ---------------------------------------------------------------- exit codes

def test_verify_exits_2_for_every_error_line_and_1_only_for_a_numeric_failure(tmp_path, monkeypatch):
    """verify is the CI gate: an error that stopped the check (here a bad --report folder, then a
    library error) is 2; a numeric failure is 1; another command's Error: line is still 1."""
    r = _run(["verify", tmp_path / "art", "--report", tmp_path / "no" / "r.json"])
    assert r.exit_code == 2 and r.stderr.splitlines()[-1].startswith("Error: --report "), r.output

    verify = importlib.import_module("edgeavs.verify")
    monkeypatch.setattr(verify, "verify_artifact", _raise("artifact x: manifest.json is missing"))
    r = _run(["verify", tmp_path / "art"])
    assert r.exit_code == 2 and r.stderr.splitlines() == ["Error: artifact x: manifest.json is missing"]

    monkeypatch.setattr(verify, "verify_artifact", lambda *a, **k: {"passed": False})
    monkeypatch.setattr(verify, "format_report", lambda rep: "FAIL (1 input(s))")
    r = _run(["verify", tmp_path / "art"])
    assert r.exit_code == 1 and r.stdout.splitlines()[-1] == "FAIL (1 input(s))"

    monkeypatch.setattr(importlib.import_module("edgeavs.compiler.breakdown"), "profile_artifact",
                        _raise("artifact x: manifest.json is missing"))
    r = _run(["profile", tmp_path / "art"])
    assert r.exit_code == 1 and r.stderr.splitlines() == ["Error: artifact x: manifest.json is missing"]
