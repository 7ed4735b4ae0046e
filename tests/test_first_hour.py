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


# ---------------------------------------------------------------- file modes

def _with_umask(mask, work):
    import os

    old = os.umask(mask)
    try:
        return work()
    finally:
        os.umask(old)


def test_written_files_and_directories_get_the_umask_modes_not_mkstemps(tmp_path):
    """Reports, records, checkpoints (atomic_write) and staged directories: 0644/0755 under umask
    022, and they follow another umask (027) rather than a fixed mode."""
    import os

    import torch

    from edgeavs.io.atomic import atomic_write_text, current_umask, make_temp_dir, write_json
    from edgeavs.model.weights import atomic_torch_save

    def mode(p):
        return os.stat(p).st_mode & 0o777

    for mask, fmode, dmode in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750)):
        def work():
            assert current_umask() == mask
            d = tmp_path / f"u{mask:o}"
            d.mkdir()
            atomic_write_text(d / "r.txt", "x")
            write_json(d / "sub" / "r.json", {"a": 1})
            atomic_torch_save({"w": torch.zeros(2)}, d / "ck.pt")
            staged = make_temp_dir(d, prefix=".art.", suffix=".tmp")
            return d, staged

        d, staged = _with_umask(mask, work)
        assert [mode(d / n) for n in ("r.txt", "sub/r.json", "ck.pt")] == [fmode] * 3
        assert mode(staged) == dmode and staged.parent == d and staged.name.startswith(".art.")
        assert torch.load(d / "ck.pt", weights_only=True)["w"].shape == (2,)


def test_an_explicit_mode_still_wins(tmp_path):
    import os

    from edgeavs.io.atomic import atomic_write_text

    atomic_write_text(tmp_path / "secret", "x", mode=0o600)
    assert os.stat(tmp_path / "secret").st_mode & 0o777 == 0o600
