"""Bad output paths fail at once, in one ``Error:`` line naming the option, before any work and
with nothing written; ``compile -o FILE`` keeps the file; an unexpected exception is one line and
exit 3 (the traceback only with ``--debug`` / ``EDGEAVS_DEBUG=1``).

Every test patches the command's work function to raise :class:`WorkStarted`, so a check that came
too late shows up as that exception (an internal error naming it, exit 3) instead of the expected
``Error:`` line. Nothing is compiled.
"""

from __future__ import annotations

import importlib
import os

import pytest
from click.testing import CliRunner

from cli import INTERNAL_ERROR_EXIT, main
from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import check_writable


class WorkStarted(Exception):
    pass


def _started(*_a, **_k):
    raise WorkStarted("the command started its work before checking its outputs")


# (module, attribute): the function each command hands its work to.
WORK = [
    ("edgeavs.compiler.build", "compile_artifact"),
    ("edgeavs.compiler.build", "resolve_weights"),   # export-onnx's first step
    ("edgeavs.tune", "tune"),
    ("edgeavs.data.synth", "make_synthetic"),
    ("edgeavs.evaluate", "evaluate"),
    ("edgeavs.verify", "verify_artifact"),
    ("edgeavs.benchmark", "run_bench"),
    ("edgeavs.segment", "MediaReader"),             # segment's first look at the video
    ("edgeavs.compiler.breakdown", "profile_artifact"),
    ("edgeavs.demo", "run_demo"),
]


@pytest.fixture
def no_work(monkeypatch):
    for module, attr in WORK:
        monkeypatch.setattr(importlib.import_module(module), attr, _started)


def _run(args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


def _one_error_line(r, option):
    assert r.exit_code not in (0, None), r.output
    assert "WorkStarted" not in r.output, "the work started before the output check"
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: ") and option in lines[0], lines[0]
    assert "Traceback" not in r.output
    return lines[0]


# command line with the output path P; the option named in the error; file or directory
COMMANDS = {
    "compile": (lambda p, d: ["compile", "--variant", "tiny", "--resolution", "64", "-o", p], "--output"),
    "compile --dump-ir": (lambda p, d: ["compile", "--variant", "tiny", "--resolution", "64", "--dump-ir", p,
                                        "-o", d / "art"], "--dump-ir"),
    "export-onnx": (lambda p, d: ["export-onnx", "--variant", "tiny", "--resolution", "64", "-o", p], "--output"),
    "tune": (lambda p, d: ["tune", "--variant", "tiny", "--resolution", "64", "-o", p], "--output"),
    "data synth": (lambda p, d: ["data", "synth", p, "--task", "s4"], "OUT"),
    "evaluate": (lambda p, d: ["evaluate", "--data", d, "--task", "s4", "--checkpoint", d / "c.pt",
                               "--dump-inputs", p], "--dump-inputs"),
    "verify": (lambda p, d: ["verify", d, "--report", p], "--report"),
    "bench": (lambda p, d: ["bench", d, "--json", p], "--json"),
    "segment -o": (lambda p, d: ["segment", d / "v.mp4", "--artifact", d, "-o", p], "output"),
    "segment --json": (lambda p, d: ["segment", d / "v.mp4", "--artifact", d, "-o", d / "o.mp4", "--json", p],
                       "--json"),
    "segment --masks": (lambda p, d: ["segment", d / "v.mp4", "--artifact", d, "-o", d / "o.mp4", "--masks", p],
                        "--masks"),
    "profile": (lambda p, d: ["profile", d, "--json", p], "--json"),
    "demo": (lambda p, d: ["demo", "-o", p], "-o"),
}
# these create missing parent directories (as they did before the checks): only a file in the way fails
MAKE_PARENTS = {"compile", "compile --dump-ir", "data synth", "profile"}


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs)


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - MAKE_PARENTS))
def test_missing_parent_directory(tmp_path, no_work, name):
    build, option = COMMANDS[name]
    target = tmp_path / "nowhere" / "out"
    line = _one_error_line(_run(build(target, tmp_path)), option)
    assert str(tmp_path / "nowhere") in line and "does not exist" in line
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("name", sorted(MAKE_PARENTS))
def test_missing_parents_are_created_by_the_writer_not_the_check(tmp_path, no_work, name):
    build, _ = COMMANDS[name]
    r = _run(build(tmp_path / "new" / "deeper" / "out", tmp_path))
    assert r.exit_code == 3 and "internal error: WorkStarted" in r.stderr, r.output  # the checks passed
    assert _tree(tmp_path) == []  # and created nothing


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_parent_is_a_regular_file(tmp_path, no_work, name):
    """Not bypassable by root: a path through a regular file cannot be written by anyone."""
    build, option = COMMANDS[name]
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    deep = name in MAKE_PARENTS
    line = _one_error_line(_run(build(blocker / "sub" / "out" if deep else blocker / "out", tmp_path)), option)
    assert str(blocker) in line and ("not a directory" in line or "does not exist" in line)
    assert _tree(tmp_path) == ["file"] and blocker.read_text() == "keep"


@pytest.mark.parametrize("name", ["export-onnx", "verify", "bench", "evaluate", "segment --json"])
def test_file_output_that_is_a_directory(tmp_path, no_work, name):
    """Options typed ``click.Path(dir_okay=False)`` get click's usage error (exit 2), the others ours."""
    build, option = COMMANDS[name]
    (tmp_path / "d").mkdir()
    r = _run(build(tmp_path / "d", tmp_path))
    assert "WorkStarted" not in r.output and "Traceback" not in r.output
    last = r.stderr.splitlines()[-1]
    if name == "segment --json":
        assert r.exit_code == 1
        assert _one_error_line(r, option) == f"Error: --json {tmp_path / 'd'}: is a directory, expected a file name"
    else:
        assert r.exit_code == 2 and last.startswith("Error: Invalid value for ") and option in last
        assert "is a directory" in last
    assert _tree(tmp_path) == ["d"]


def test_verify_and_export_onnx_fail_before_the_work(tmp_path, monkeypatch):
    """The report/ONNX path is checked first: the (patched) work is never reached."""
    calls = []
    monkeypatch.setattr(importlib.import_module("edgeavs.verify"), "verify_artifact",
                        lambda *a, **k: calls.append("verify"))
    monkeypatch.setattr(importlib.import_module("edgeavs.compiler.build"), "build_torch_model",
                        lambda *a, **k: calls.append("export"))
    _one_error_line(_run(["verify", tmp_path, "--report", tmp_path / "no" / "r.json"]), "--report")
    _one_error_line(_run(["export-onnx", "--variant", "tiny", "--resolution", "64", "-o",
                          tmp_path / "no" / "m.onnx"]), "--output")
    assert calls == []


def test_compile_onto_an_existing_file_keeps_it(tmp_path, no_work):
    existing = tmp_path / "model.bin"
    existing.write_bytes(b"precious")
    line = _one_error_line(_run(["compile", "--variant", "tiny", "--resolution", "64", "-o", existing]),
                           "--output")
    assert line == f"Error: --output {existing}: exists and is not a directory"
    assert existing.read_bytes() == b"precious"
    assert _tree(tmp_path) == ["model.bin"]  # no .model.bin.<pid>.old, no staging directory


def test_compile_refuses_a_non_empty_directory_that_is_not_an_artifact(tmp_path, no_work):
    (tmp_path / "notes.txt").write_text("mine")
    line = _one_error_line(_run(["compile", "--variant", "tiny", "--resolution", "64", "-o", tmp_path]),
                           "--output")
    assert "is not an edgeavs artifact" in line
    assert _tree(tmp_path) == ["notes.txt"]


def test_tune_onto_an_existing_file_keeps_it(tmp_path, no_work):
    existing = tmp_path / "records"
    existing.write_text("x")
    r = _run(["tune", "-o", existing])
    assert r.exit_code != 0 and "WorkStarted" not in r.output
    assert "Traceback" not in r.output and existing.read_text() == "x"


# ---------------------------------------------------------------- staging_dir (compile's rename)

def test_staging_dir_refuses_a_file_and_leaves_nothing(tmp_path):
    from edgeavs.compiler.artifact import staging_dir

    dest = tmp_path / "art"
    dest.write_text("x")
    with pytest.raises(EdgeAVSError, match="exists and is not a directory"):
        with staging_dir(dest):
            pytest.fail("staging started")
    assert _tree(tmp_path) == ["art"] and dest.read_text() == "x"


def test_staging_dir_replaces_a_symlink_without_leaving_old(tmp_path):
    from edgeavs.compiler.artifact import staging_dir

    real = tmp_path / "real"
    real.mkdir()
    (real / "keep").write_text("k")
    link = tmp_path / "art"
    link.symlink_to(real)
    with staging_dir(link) as tmp:
        (tmp / "new").write_text("n")
    assert not link.is_symlink() and sorted(p.name for p in link.iterdir()) == ["new"]
    assert (real / "keep").read_text() == "k"  # the link's target is not touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "real"]


def test_staging_dir_puts_the_previous_artifact_back_when_the_rename_fails(tmp_path, monkeypatch):
    from edgeavs.compiler import artifact

    dest = tmp_path / "art"
    dest.mkdir()
    (dest / "old").write_text("o")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(artifact.os, "replace", failing_replace)
    with pytest.raises(OSError):
        with artifact.staging_dir(dest) as tmp:
            (tmp / "new").write_text("n")
    assert [p.name for p in tmp_path.iterdir()] == ["art"]
    assert [p.name for p in dest.iterdir()] == ["old"]


# ---------------------------------------------------------------- check_writable itself

def test_check_writable_when_the_directory_is_not_writable(tmp_path, monkeypatch):
    """Root passes os.access whatever the mode bits, so both halves are checked: os.access, and a
    real temporary file (what fails for root on a read-only file system)."""
    target = tmp_path / "r.json"
    assert check_writable(target, "--report") == target
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(EdgeAVSError, match=rf"^--report {target}: directory {tmp_path} is not writable$"):
        check_writable(target, "--report")
    monkeypatch.undo()

    import tempfile

    def read_only(*_a, **_k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(EdgeAVSError, match=rf"^--report {target}: directory {tmp_path} is not writable "
                                           r"\(Read-only file system\)$"):
        check_writable(target, "--report")
    monkeypatch.undo()
    assert _tree(tmp_path) == []


def test_check_writable_kinds(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(EdgeAVSError, match="exists and is not a directory"):
        check_writable(tmp_path / "f", "-o", kind="dir")
    with pytest.raises(EdgeAVSError, match="is a directory, expected a file name"):
        check_writable(tmp_path, "--json")
    assert check_writable(tmp_path, "-o", kind="dir") == tmp_path  # an existing directory is fine
    assert _tree(tmp_path) == ["f"]


def test_verify_report_and_bench_json_are_written_atomically(tmp_path, monkeypatch):
    """Through atomic_write_text: complete, mode 0644, no temporary file left."""
    import json

    report = {"passed": True, "resolution": [64, 64]}
    monkeypatch.setattr(importlib.import_module("edgeavs.verify"), "verify_artifact", lambda *a, **k: report)
    monkeypatch.setattr(importlib.import_module("edgeavs.verify"), "format_report", lambda r: "ok")
    out = tmp_path / "r.json"
    out.write_text("previous")
    r = _run(["verify", tmp_path / "art", "--report", out, "--overwrite"])  # without it: refused
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text()) == report and (out.stat().st_mode & 0o777) == 0o644

    bench = importlib.import_module("edgeavs.benchmark")
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: {"x": 1})
    monkeypatch.setattr(bench, "format_table", lambda rep: "table")
    r = _run(["bench", tmp_path / "art", "--json", tmp_path / "b.json"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "r.json"]


# ---------------------------------------------------------------- the CLI catch-all

def _boom(*_a, **_k):
    raise ValueError("bad value\nsecond line")


INTERNAL = ("Error: edgeavs data check: internal error: ValueError: bad value (please report it; rerun "
            "with --debug or EDGEAVS_DEBUG=1 for the traceback)")


def test_unexpected_exception_is_one_line_exit_3(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.import_module("edgeavs.data.avsbench"), "check_dataset", _boom)
    r = _run(["data", "check", tmp_path, "--task", "s4"])
    assert r.exit_code == INTERNAL_ERROR_EXIT == 3
    assert r.stderr.splitlines() == [INTERNAL] and r.stdout == ""


@pytest.mark.parametrize("how", ["--debug", "EDGEAVS_DEBUG"])
def test_debug_shows_the_traceback(tmp_path, monkeypatch, how):
    monkeypatch.setattr(importlib.import_module("edgeavs.data.avsbench"), "check_dataset", _boom)
    args = ["data", "check", tmp_path, "--task", "s4"]
    r = _run(["--debug", *args]) if how == "--debug" else _run(args, env={"EDGEAVS_DEBUG": "1"})
    assert r.exit_code == 3
    err = r.stderr.splitlines()
    assert err[0] == "Traceback (most recent call last):" and "ValueError: bad value" in r.stderr
    assert err[-1] == INTERNAL


def test_edgeavs_error_first_line_only_exit_1(tmp_path, monkeypatch):
    def bad(*_a, **_k):
        raise EdgeAVSError("first line\nsecond line")

    monkeypatch.setattr(importlib.import_module("edgeavs.data.avsbench"), "check_dataset", bad)
    r = _run(["data", "check", tmp_path, "--task", "s4"])
    assert r.exit_code == 1 and r.stderr.splitlines() == ["Error: first line"]


def test_debug_also_shows_an_edgeavs_errors_traceback(tmp_path, monkeypatch):
    def bad(*_a, **_k):
        raise EdgeAVSError("first line\nsecond line")

    monkeypatch.setattr(importlib.import_module("edgeavs.data.avsbench"), "check_dataset", bad)
    r = _run(["--debug", "data", "check", tmp_path, "--task", "s4"])
    assert r.exit_code == 1
    assert r.stderr.startswith("Traceback") and r.stderr.splitlines()[-1] == "Error: first line"


def test_usage_errors_and_interrupts_keep_their_exit_codes(tmp_path, monkeypatch):
    from edgeavs.verify import VerifyUsageError

    def usage(*_a, **_k):
        raise VerifyUsageError("--inputs and --seeds conflict")

    monkeypatch.setattr(importlib.import_module("edgeavs.verify"), "verify_artifact", usage)
    r = _run(["verify", tmp_path])
    assert r.exit_code == 2 and r.stderr.splitlines()[-1] == "Error: --inputs and --seeds conflict"

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("edgeavs.data.avsbench"), "check_dataset", interrupt)
    r = _run(["data", "check", tmp_path, "--task", "s4"])
    assert r.exit_code == 130 and r.stderr.splitlines() == ["Aborted."]
