"""Every internal failure of ``edgeavs tune`` is one line naming the stage that failed; Ctrl-C is not one of them.

A stage is made to fail by monkeypatching what it calls (an unexpected exception, as a bug or TVM would raise);
the CLI must then print exactly one ``Error: tune: <stage> failed: <type>: <first line>`` line, no traceback
(``--debug`` shows the original one, chained), and exit non-zero.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.errors import EdgeAVSError
from edgeavs.compiler.records import RecordsDir
from edgeavs.tune.tuner import stage

TUNE = ["tune", "--variant", "tiny", "--resolution", "64", "--trials", "1", "--time-budget", "1m", "--json"]


def _raise(exc):
    def fail(*_args, **_kwargs):
        raise exc

    return fail


def _error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("Error:")]


def test_unexpected_exception_in_a_stage_is_one_error_line(tmp_path, monkeypatch):
    import edgeavs.compiler.build as build

    monkeypatch.setattr(build, "import_model", _raise(RuntimeError("the exporter broke\nsecond line of detail")))
    out = tmp_path / "rec"
    r = CliRunner().invoke(main, [*TUNE, "-o", str(out)])
    assert r.exit_code == 1, r.output
    assert _error_lines(r.output) == ["Error: tune: model import failed: RuntimeError: the exporter broke"]
    assert r.output.strip().splitlines()[-1] == _error_lines(r.output)[0]
    assert "Traceback" not in r.output and "second line" not in r.output
    assert RecordsDir(out).exists()  # what was set up before the failure stays valid: a rerun continues


def test_a_later_stage_is_named_and_debug_shows_the_chained_traceback(tmp_path, monkeypatch):
    from edgeavs.compiler import pipeline

    monkeypatch.setattr(pipeline, "split_for_tuning", _raise(ValueError("no fused functions")))
    r = CliRunner().invoke(main, ["--debug", *TUNE, "-o", str(tmp_path / "rec")])
    assert r.exit_code == 1, r.output
    assert _error_lines(r.output) == ["Error: tune: task preparation failed: ValueError: no fused functions"]
    assert "Traceback" in r.output and "ValueError: no fused functions" in r.output
    assert "The above exception was the direct cause of the following exception" in r.output


def test_ctrl_c_is_not_turned_into_an_error_and_keeps_the_records(tmp_path, monkeypatch):
    import edgeavs.compiler.build as build

    out = tmp_path / "rec"
    monkeypatch.setattr(build, "import_model", _raise(KeyboardInterrupt()))
    r = CliRunner().invoke(main, [*TUNE, "-o", str(out)])
    assert r.exit_code == 130, r.output
    assert not _error_lines(r.output) and "Aborted." in r.output
    from edgeavs.targets import load_target

    assert RecordsDir(out).create_or_resume(load_target("host"))  # resumable: the next run continues


def test_stage_passes_edgeavs_errors_and_interrupts_unchanged():
    mine = EdgeAVSError("--checkpoint x.pt: not a checkpoint")
    with pytest.raises(EdgeAVSError) as info, stage("model import"):
        raise mine
    assert info.value is mine
    with pytest.raises(KeyboardInterrupt), stage("knob search"):
        raise KeyboardInterrupt
    with pytest.raises(EdgeAVSError) as info, stage("MetaSchedule tuning"):
        raise RuntimeError()
    assert str(info.value) == "tune: MetaSchedule tuning failed: RuntimeError"
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(EdgeAVSError) as info, stage("records publication"):
        raise OSError(28, "No space left on device")
    assert str(info.value) == "tune: records publication failed: OSError: [Errno 28] No space left on device"
