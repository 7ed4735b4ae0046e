"""What a user meets in the first hour: exit codes, outputs that are not clobbered, help texts,
file modes, progress. Nothing here compiles a model unless the test says so."""

from __future__ import annotations

import importlib

import pytest

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


# ---------------------------------------------------------------- existing outputs are not clobbered

class WorkStarted(Exception):
    pass


def _started(*_a, **_k):
    raise WorkStarted("the work started")


@pytest.fixture
def no_work(monkeypatch):
    importlib.import_module("edgeavs.segment")  # bound to the real reader before edgeavs.video's is patched
    for module, attr in [("edgeavs.compiler.build", "resolve_weights"), ("edgeavs.evaluate", "evaluate"),
                         ("edgeavs.verify", "verify_artifact"), ("edgeavs.benchmark", "run_bench"),
                         ("edgeavs.segment", "MediaReader"), ("edgeavs.video", "MediaReader"),
                         ("edgeavs.compiler.breakdown", "profile_artifact")]:
        monkeypatch.setattr(importlib.import_module(module), attr, _started)


# command line writing the file P (d: a scratch folder); the option the error names
FILE_OUTPUTS = {
    "segment -o": (lambda p, d: ["segment", d / "v.mp4", "--artifact", d, "-o", p], "output"),
    "segment default name": (lambda p, d: ["segment", p.parent / (p.name.removesuffix("_seg.mp4") + ".mp4"),
                                           "--artifact", d], "output"),
    "segment --json": (lambda p, d: ["segment", d / "v.mp4", "--artifact", d, "-o", d / "o.mp4", "--json", p],
                       "--json"),
    "bench --json": (lambda p, d: ["bench", d, "--json", p], "--json"),
    "profile --json": (lambda p, d: ["profile", d, "--json", p], "--json"),
    "verify --report": (lambda p, d: ["verify", d, "--report", p], "--report"),
    "evaluate --dump-inputs": (lambda p, d: ["evaluate", "--data", d, "--task", "s4", "--checkpoint", d / "c.pt",
                                             "--dump-inputs", p], "--dump-inputs"),
    "export-onnx -o": (lambda p, d: ["export-onnx", "--variant", "tiny", "--resolution", "64", "-o", p],
                       "--output"),
}


@pytest.mark.parametrize("name", sorted(FILE_OUTPUTS))
def test_an_existing_output_file_is_refused_without_overwrite(tmp_path, no_work, name):
    build, option = FILE_OUTPUTS[name]
    target = tmp_path / "clip_seg.mp4"
    target.write_bytes(b"precious")
    r = _run(build(target, tmp_path))
    assert "WorkStarted" not in r.output, "the work started before the output check"
    assert r.exit_code == (2 if name.startswith("verify") else 1), r.output
    assert r.stderr.splitlines() == [f"Error: {option} {target}: exists; pass --overwrite to replace it"]
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_seg.mp4"]

    r = _run(build(target, tmp_path) + ["--overwrite"])  # the check passes: the (patched) work starts
    assert r.exit_code == 3 and "internal error: WorkStarted" in r.stderr, r.output
    assert target.read_bytes() == b"precious"


def test_masks_folder_of_earlier_masks_needs_overwrite_and_any_other_folder_is_refused(tmp_path, no_work):
    masks = tmp_path / "m"
    masks.mkdir()
    (masks / "mask_000000.png").write_bytes(b"png")
    args = ["segment", tmp_path / "v.mp4", "--artifact", tmp_path, "-o", tmp_path / "o.mp4", "--masks", masks]
    r = _run(args)
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [f"Error: --masks {masks}: holds earlier masks; pass --overwrite to replace them"]
    r = _run(args + ["--overwrite"])
    assert r.exit_code == 3 and "WorkStarted" in r.stderr, r.output
    (masks / "notes.txt").write_text("mine")
    r = _run(args + ["--overwrite"])
    assert r.stderr.splitlines() == [f"Error: --masks {masks}: exists and is not an empty directory"]
    assert sorted(p.name for p in masks.iterdir()) == ["mask_000000.png", "notes.txt"]


class _Halves:
    """A predictor without a model: the left part of the frame sounds, up to ``split``."""

    kind, fingerprint = "fake", "0" * 64

    def __init__(self, *_a, split=0.5, **_k):
        self.input_size, self.details, self.split = (32, 32), {"fake": True}, split

    def __call__(self, frames, waveform):
        import numpy as np

        logits = np.full((1, 1, 32, 32), -10.0, np.float32)
        logits[..., : int(32 * self.split)] = 10.0
        return logits


def test_segment_twice_refuses_then_replaces_with_overwrite(tmp_path, monkeypatch):
    """A real (small) segment run: the second run without --overwrite changes nothing; with it the
    video, the summary and the masks are replaced and nothing else is left in the folder."""
    import numpy as np
    from PIL import Image

    from edgeavs import segment as seg
    from edgeavs.video import write_clip

    clip = tmp_path / "v.mp4"
    frames = (np.full((32, 48, 3), 100, np.uint8) for _ in range(5))
    write_clip(clip, frames, np.zeros(44100 // 2, np.float32), 10, 44100, faststart=True)
    monkeypatch.setattr(seg, "ArtifactPredictor", _Halves)
    args = ["segment", clip, "--artifact", tmp_path, "--json", tmp_path / "s.json", "--masks", tmp_path / "m"]
    r = _run(args)
    assert r.exit_code == 0, r.output
    out = tmp_path / "v_seg.mp4"
    before = {p: p.read_bytes() for p in (out, tmp_path / "s.json", tmp_path / "m" / "mask_000000.png")}

    r = _run(args)
    assert r.exit_code == 1 and r.stderr.splitlines() == [
        f"Error: output {out}: exists; pass --overwrite to replace it"]
    assert {p: p.read_bytes() for p in before} == before

    monkeypatch.setattr(seg, "ArtifactPredictor", lambda *a, **k: _Halves(split=0.25))
    r = _run(args + ["--overwrite"])
    assert r.exit_code == 0, r.output
    mask = np.asarray(Image.open(tmp_path / "m" / "mask_000000.png"))
    assert (mask[:, :10] == 255).all() and (mask[:, 14:] == 0).all()  # the new masks (a quarter, not half)
    assert len(list((tmp_path / "m").iterdir())) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "s.json", "v.mp4", "v_seg.mp4"]


def test_compile_replaces_only_an_edgeavs_artifact_and_says_so(tmp_path, monkeypatch):
    import json

    build = importlib.import_module("edgeavs.compiler.build")
    manifest = {"variant": "tiny", "resolution": [64, 64], "compile_seconds": {"total": 1.0}}
    monkeypatch.setattr(build, "compile_artifact", lambda out, **k: manifest)
    art = tmp_path / "art"
    art.mkdir()
    (art / "manifest.json").write_text(json.dumps({"format": "edgeavs-artifact/1"}))
    r = _run(["compile", "--variant", "tiny", "--resolution", "64", "-o", art])
    assert r.exit_code == 0, r.output
    assert f"replaced the earlier artifact in {art}" in r.stderr.splitlines()

    web = tmp_path / "site"
    web.mkdir()
    (web / "manifest.json").write_text(json.dumps({"name": "my web app"}))
    r = _run(["compile", "--variant", "tiny", "--resolution", "64", "-o", web])
    assert r.exit_code == 1 and r.stderr.splitlines() == [
        f"Error: --output {web}: exists and is not an edgeavs artifact (compile replaces the whole directory; "
        "choose a new or empty one)"]

    r = _run(["compile", "--variant", "tiny", "--resolution", "64", "-o", tmp_path / "new"])
    assert r.exit_code == 0 and "replaced" not in r.stderr


# ---------------------------------------------------------------- --resolution defaults to the checkpoint's

@pytest.fixture(scope="module")
def ck64(tmp_path_factory):
    """A tiny checkpoint that says it was trained at 64 (as train's best.pt/last.pt do: config.size)."""
    from edgeavs.model import build_model, save_checkpoint

    path = tmp_path_factory.mktemp("ck") / "tiny64.pt"
    save_checkpoint(build_model("tiny", seed=0), path, config={"size": 64})
    return path


class _Seen(Exception):
    pass


def _capture(seen, key):
    def work(*_a, **k):
        seen.append(k[key])
        raise _Seen()
    return work


def _capture_positional(seen):
    def work(resolution, *_a, **_k):
        seen.append(resolution)
        raise _Seen()
    return work


def _side(resolution):
    from edgeavs.compiler.build import parse_resolution

    return parse_resolution(resolution)


@pytest.mark.parametrize("command", ["compile", "export-onnx", "tune", "segment"])
def test_resolution_defaults_to_the_checkpoint_training_size_and_says_so(tmp_path, monkeypatch, ck64, command):
    seen = []
    if command == "compile":
        monkeypatch.setattr(importlib.import_module("edgeavs.compiler.build"), "compile_artifact",
                            _capture(seen, "resolution"))
        args = ["compile", "--checkpoint", ck64, "-o", tmp_path / "art"]
    elif command == "export-onnx":
        monkeypatch.setattr(importlib.import_module("edgeavs.compiler.build"), "check_resolution",
                            _capture_positional(seen))
        args = ["export-onnx", "--checkpoint", ck64, "-o", tmp_path / "m.onnx"]
    elif command == "tune":
        monkeypatch.setattr(importlib.import_module("edgeavs.tune"), "tune", _capture(seen, "resolution"))
        args = ["tune", "--checkpoint", ck64, "-o", tmp_path / "rec"]
    else:
        importlib.import_module("edgeavs.segment")  # bound to the real reader first
        monkeypatch.setattr(importlib.import_module("edgeavs.video"), "MediaReader",
                            lambda *a, **k: type("Reader", (), {"close": lambda self: None})())
        monkeypatch.setattr(importlib.import_module("edgeavs.segment_torch"), "TorchPredictor",
                            _capture(seen, "resolution"))
        args = ["segment", tmp_path / "v.mp4", "--checkpoint", ck64]
    r = _run(args)
    assert "_Seen" in r.stderr, r.output  # reached the work
    assert _side(seen[0]) == (64, 64), seen
    assert f"resolution 64x64: the size {ck64} was trained at (--resolution to change it)" in r.stderr.splitlines()

    seen.clear()
    _run(args + ["--resolution", "96"])  # given: used as given, nothing said
    assert _side(seen[0]) == (96, 96), seen


def test_resolution_without_a_recorded_size_is_224_and_says_so(tmp_path, monkeypatch):
    from edgeavs.model import build_model, save_checkpoint

    ck = tmp_path / "plain.pt"
    save_checkpoint(build_model("tiny", seed=0), ck)
    seen = []
    monkeypatch.setattr(importlib.import_module("edgeavs.compiler.build"), "compile_artifact",
                        _capture(seen, "resolution"))
    r = _run(["compile", "--checkpoint", ck, "-o", tmp_path / "art"])
    assert seen == ["224"]
    assert (f"resolution 224x224: {ck} does not record the size it was trained at (--resolution to change it)"
            in r.stderr.splitlines())
    seen.clear()
    r = _run(["compile", "--variant", "tiny", "-o", tmp_path / "art"])  # no checkpoint: 224, as the help says
    assert seen == ["224"] and "resolution" not in r.stderr


# ---------------------------------------------------------------- TVM's C++ warnings

FAST_MODE = ("[06:20:06] /project/include/tvm/topi/transform.h:1261: Warning: Fast mode segfaults when there are "
             "out-of-bounds indices. Make sure input indices are in bound\n")
POOL_AVG = ('[06:23:05] /project/src/s_tir/meta_schedule/schedule_rule/apply_custom_rule.cc:64: Warning: Unknown '
            'schedule rule "meta_schedule.pool_avg" for target keys "("cpu",)". Checked ffi::Functions:\n'
            "  s_tir.meta_schedule.cpu.meta_schedule.pool_avg\n")


def test_native_filter_drops_only_the_listed_tvm_messages(capfd):
    """By their text, as TVM 0.27 prints them (copied from a compile's and a tune's stderr); everything
    else passes through in order, a partial line (a progress bar's update) included."""
    import os

    from edgeavs.commands.native_log import filtered

    kept = ["\rtune: task preparation 2/4 [00:12]", "\n[06:00:00] x.cc:1: Warning: another one\n",
            "Error: a real line\n"]
    with filtered():
        for text in (FAST_MODE, kept[0], kept[1], POOL_AVG, kept[2]):
            os.write(2, text.encode())
    assert capfd.readouterr().err == "".join(kept)


def test_native_filter_keeps_python_stderr_on_the_terminal(monkeypatch):
    """On a terminal, sys.stderr still is one inside the filter (the progress bars of training, segment
    and tune ask it), its lines arrive, and TVM's noise on descriptor 2 does not."""
    import os
    import sys

    from edgeavs.commands.native_log import filtered

    master, slave = os.openpty()
    keep = os.dup(2)
    os.dup2(slave, 2)
    term = open(2, "w", buffering=1, closefd=False)
    monkeypatch.setattr(sys, "stderr", term)
    try:
        with filtered():
            assert sys.stderr.isatty()
            os.write(2, FAST_MODE.encode())
            print("training 3/10", file=sys.stderr)
            os.write(2, b"kept from C++\n")
        assert sys.stderr is term
    finally:
        os.dup2(keep, 2)
        os.close(keep)
        os.close(slave)
    got = b""
    while b"kept from C++" not in got:
        got += os.read(master, 4096)
    os.close(master)
    text = got.decode().replace("\r\n", "\n")
    assert "training 3/10\n" in text and "kept from C++\n" in text and "Fast mode" not in text


def test_native_filter_matches_the_message_tvm_really_prints(capfd):
    """The real thing: topi's take in its unchecked mode prints the warning (outside the filter), and
    nothing inside it; with filtered(enabled=False) (edgeavs --debug) it shows again."""
    from edgeavs.commands.native_log import filtered
    from edgeavs.tvm_api import te, topi

    def take():
        a = te.placeholder((4,), name="a")
        i = te.placeholder((2,), dtype="int32", name="i")
        topi.take(a, i, mode="fast")

    take()
    assert "Warning: Fast mode segfaults" in capfd.readouterr().err
    with filtered():
        take()
    assert capfd.readouterr().err == ""
    with filtered(enabled=False):
        take()
    assert "Warning: Fast mode segfaults" in capfd.readouterr().err


def test_torch_leafspec_warning_is_silenced_in_the_import_only(recwarn):
    """frontend.import_export ignores torch's own LeafSpec deprecation (raised inside
    run_decompositions) by message and category; the same warning elsewhere still shows."""
    import warnings

    import torch

    from edgeavs.compiler import frontend

    class Tiny(torch.nn.Module):
        def forward(self, frames, waveform):
            return frames * 2 + waveform.mean()

    warnings.simplefilter("always")
    frontend.import_export(Tiny(), (torch.zeros(1, 3, 4, 4), torch.zeros(1, 8)))
    assert not [w for w in recwarn if "LeafSpec" in str(w.message)]
    warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
    assert [w for w in recwarn if "LeafSpec" in str(w.message)]


# ---------------------------------------------------------------- tune's progress

class _Terminal:
    """A stderr that says it is a terminal, keeping what is written."""

    def __init__(self):
        import io

        self.buf = io.StringIO()

    def write(self, s):
        return self.buf.write(s)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_tune_steps_name_the_step_and_keep_the_clock_moving_during_a_long_call(monkeypatch):
    import sys
    import time

    from edgeavs.tune import progress

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setattr(progress, "REFRESH_S", 0.05)
    assert progress.enabled(True) and not progress.enabled(False)
    with progress.Steps("task preparation", 2, progress.enabled(True)) as steps:
        with steps.step("the pipeline up to the schedules"):
            pass
        with steps.step("MetaSchedule's task extraction"):
            time.sleep(0.5)  # a call that prints nothing itself
    out = term.buf.getvalue()
    assert "tune: task preparation 1/2: the pipeline up to the schedules [00:00]" in out
    assert out.count("tune: task preparation 2/2: MetaSchedule's task extraction") >= 4  # redrawn while it ran


def test_tune_bars_stay_off_a_pipe_and_log_lines_print_above_a_bar(monkeypatch):
    import io
    import sys

    from edgeavs.tune import progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert not progress.enabled(True)
    with progress.Steps("end to end", 3, progress.enabled(True)) as steps:
        with steps.step("the untuned build"):
            pass
    assert sys.stderr.getvalue() == ""
    lines = []
    progress.bar_safe(lines.append)("  4 MetaSchedule tasks")
    assert lines == ["  4 MetaSchedule tasks"]


# ---------------------------------------------------------------- --help

def _command_paths(group=None, prefix=()):
    import click

    group = group or main
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _command_paths(cmd, (*prefix, name))


def test_every_help_is_plain_words_and_says_the_same_about_sizes():
    """No reference to a file the repository does not ship (SPEC), no raw reST markup, one multiple for
    input sides everywhere: the model's (VariantConfig.size_multiple)."""
    from edgeavs.model.config import VARIANTS

    multiple = {v.size_multiple for v in VARIANTS.values()}
    assert multiple == {16}
    texts = {(): _run(["--help"]).output}
    for path, _ in _command_paths():
        r = _run([*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        texts[path] = r.output
    for path, text in texts.items():
        assert "SPEC" not in text and "``" not in text, path
        assert "multiple of 32" not in text and "multiples of 32" not in text, path
    for path in [p for p, t in texts.items() if "--resolution" in t]:
        flat = " ".join(texts[path].split())
        assert "multiple of 16" in flat or "multiples of 16" in flat, path


def test_variant_is_the_same_choice_everywhere_and_aliases_reach_the_work_as_full_names(tmp_path, monkeypatch):
    import click

    choices = {}
    for path, cmd in _command_paths():
        for p in cmd.params:
            if p.name == "variant":
                assert isinstance(p.type, click.Choice), path
                choices[path] = tuple(p.type.choices)
    assert {("compile",), ("export-onnx",), ("tune",), ("train",), ("info",), ("segment",)} <= set(choices)
    assert len(set(choices.values())) == 1, choices

    seen = []
    monkeypatch.setattr(importlib.import_module("edgeavs.compiler.build"), "compile_artifact",
                        _capture(seen, "variant"))
    _run(["compile", "--variant", "T", "--resolution", "64", "-o", tmp_path / "a"])
    assert seen == ["tiny"]


def test_train_shows_its_defaults_and_passes_none_for_options_not_given(tmp_path, monkeypatch):
    """--help: click's [default: ...] with edgeavs.train's own numbers; an option left out still reaches
    TrainConfig as None, so --resume keeps the run's value."""
    from edgeavs import train as train_mod
    from edgeavs.commands.train import DEFAULTS

    assert DEFAULTS == {k: train_mod.RUN_DEFAULTS[k] for k in DEFAULTS}
    flat = " ".join(_run(["train", "--help"]).output.split())
    for text in ("[default: 60;", "[default: 8;", "[default: 0.0001;", "[default: 224;"):
        assert text in flat
    seen = []
    monkeypatch.setattr(train_mod, "train", _capture_positional(seen))
    _run(["train", "--data", tmp_path, "--task", "s4", "-o", tmp_path / "run", "--resume", "--epochs", "70"])
    cfg = seen[0]
    assert cfg.epochs == 70 and cfg.size is None and cfg.lr is None and cfg.batch_size is None and cfg.seed is None


# ---------------------------------------------------------------- a clone in a folder named edgeavs/

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_editable_install_is_a_path_entry_that_a_folder_named_edgeavs_cannot_hide(tmp_path):
    """setuptools' editable wheel of this project (PEP 660, as `pip install -e .` builds it) is a plain
    .pth path entry, no import hook: from a directory holding a folder named edgeavs/ without
    __init__.py (a clone's root), `import edgeavs` still finds the real package, because a regular
    package anywhere on sys.path wins over a namespace portion earlier on it. (The import hook came
    after Python's path finder: the namespace won, and edgeavs.build_model was missing.)"""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "cli.py"):
        shutil.copy(ROOT / name, src / name)
    for name in ("edgeavs", "kernels", "targets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheel"
    out.mkdir()
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_editable(sys.argv[1])", str(out)],
                   cwd=src, check=True, capture_output=True)
    (wheel,) = out.glob("edgeavs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    pths = [n for n in names if n.endswith(".pth")]
    assert len(pths) == 1 and not [n for n in names if "finder" in n], names
    entry = zipfile.ZipFile(wheel).read(pths[0]).decode().strip()
    assert __import__("pathlib").Path(entry).resolve() == src.resolve()

    site = tmp_path / "site"
    site.mkdir()
    (site / "edgeavs-editable.pth").write_text(entry + "\n")
    work = tmp_path / "work"
    (work / "edgeavs").mkdir(parents=True)  # the clone's root, seen from its parent
    probe = ("import site, sys; site.addsitedir(sys.argv[1]); import edgeavs; "
             "print(edgeavs.__file__); print(edgeavs.__version__)")
    # -S: no site-packages of this interpreter (its own editable .pth would find the checkout under
    # test first); only the wheel's .pth, added by hand
    r = subprocess.run([sys.executable, "-S", "-c", probe, str(site)], cwd=work, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(src / "edgeavs" / "__init__.py")


def test_cli_names_a_folder_that_hides_the_package(tmp_path):
    """Where the folder still wins (an install made before, with the import hook), the CLI says so in
    one line instead of "cannot import name '__version__' from 'edgeavs' (unknown location)"."""
    import os
    import subprocess
    import sys

    import click

    import shutil

    work = tmp_path / "work"
    (work / "edgeavs").mkdir(parents=True)
    alone = tmp_path / "cli-alone"
    alone.mkdir()
    shutil.copy(ROOT / "cli.py", alone / "cli.py")
    site_packages = os.path.dirname(os.path.dirname(click.__file__))
    # no site (-S): no .pth, no import hook; only the folder, a copy of cli.py and click
    probe = "import sys; sys.path[:] = ['', sys.argv[1], sys.argv[2]] + sys.path[1:]; import cli"
    r = subprocess.run([sys.executable, "-S", "-c", probe, str(alone), site_packages], cwd=work,
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == (
        f"Error: {work / 'edgeavs'}: a folder named edgeavs without __init__.py (a clone of the repository?) "
        "hides the installed edgeavs package: Python imports it first, from the current directory or "
        "sys.path; run from another directory, or reinstall the clone with `pip install -e .` (a plain path "
        "entry, which the real package wins over)")


def test_evaluate_dump_inputs_gets_the_umask_mode(tmp_path):
    import os

    import numpy as np
    import torch

    from edgeavs.evaluate import write_inputs

    clip = {"frames": torch.zeros(5, 3, 32, 32), "audio": torch.zeros(5, 32000)}
    path = tmp_path / "inputs.npz"
    _with_umask(0o022, lambda: write_inputs([clip], path, 1))
    assert os.stat(path).st_mode & 0o777 == 0o644 and sorted(p.name for p in tmp_path.iterdir()) == ["inputs.npz"]
    with np.load(path) as data:
        assert data["frames"].shape == (5, 3, 32, 32) and data["waveform"].shape == (5, 32000)


def test_an_artifact_directory_gets_the_umask_mode(tmp_path):
    """compile's staging directory (renamed into the artifact) is 0755 under umask 022, not 0700."""
    import os

    from edgeavs.compiler.artifact import staging_dir

    old = os.umask(0o022)
    try:
        with staging_dir(tmp_path / "art") as tmp:
            (tmp / "manifest.json").write_text("{}")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "art").st_mode & 0o777 == 0o755
