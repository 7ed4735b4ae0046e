"""edgeavs tune end to end on the tiny variant: a few trials into a records directory, then
compile with the records (applied, fingerprint-checked), verify, and resume (a second tune in the same
process)."""

import json

import pytest
from click.testing import CliRunner

from cli import main

pytestmark = pytest.mark.slow
TASK = "concatenate4"  # a small function that edgeavs's schedules leave to TVM (cheap to build)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "rec"
    r = CliRunner().invoke(main, ["tune", "--variant", "tiny", "--resolution", "64", "--trials", "2",
                                  "--only", TASK, "--time-budget", "10m", "--json", "-o", str(out)])
    assert r.exit_code == 0, r.output[-3000:]
    summary = json.loads(r.stdout)  # --json: stdout is the summary alone (MetaSchedule does not log there)
    return out, summary


def test_tune_writes_a_valid_database(records):
    out, summary = records
    assert summary["trials"] == 2 and summary["tasks"] == 1 and not summary["resumed"]
    assert summary["database"]["workloads"] >= 1 and summary["database"]["records"] >= 1
    log = [json.loads(line) for line in (out / "tune_log.jsonl").read_text().splitlines()]
    assert TASK in log[0]["profile_us"] and log[0]["tasks"] == [TASK]
    assert log[1]["task"] == TASK and log[1]["best_us"] > 0


def test_compile_applies_the_records_and_verify_passes(records, tmp_path):
    from edgeavs.compiler.build import build_torch_model, import_model, resolve_weights
    from edgeavs.compiler.pipeline import PIPELINE, run_pipeline
    from edgeavs.targets import load_target

    out, _ = records
    tgt = load_target("host")
    variant, weights = resolve_weights("tiny", None)
    mod, params, _ = import_model(build_torch_model(variant, weights), (64, 64), "export")
    upto = [p.name for p in PIPELINE if p.name != "lower"]
    plain = run_pipeline(mod, tgt.to_tvm(), params, phases=upto)[0]
    tuned = run_pipeline(mod, tgt.to_tvm(), params, phases=upto, records=out)[0]
    assert "tirx.is_scheduled" not in (plain[TASK].attrs or {})
    assert tuned[TASK].attrs["tirx.is_scheduled"]

    art = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--variant", "tiny", "--resolution", "64", "--records",
                                  str(out), "-q", "-o", str(art)])
    assert r.exit_code == 0, r.output[-2000:]
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["records"]["records"] >= 1
    r = CliRunner().invoke(main, ["verify", str(art), "--seeds", "2"])
    assert r.exit_code == 0 and r.output.strip().splitlines()[-1] == "PASS", r.output[-2000:]


def test_records_for_another_target_are_refused(records, tmp_path):
    out, _ = records
    r = CliRunner().invoke(main, ["compile", "--target", "aarch64-linux", "--variant", "tiny",
                                  "--resolution", "64", "--records", str(out), "-o", str(tmp_path / "a")])
    assert r.exit_code == 1
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {out}: records were tuned for target ") and last.endswith("tune again for this target")
    assert not (tmp_path / "a").exists()


def test_corrupt_database_is_refused_by_compile(records, tmp_path):
    import shutil

    out, _ = records
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    path = bad / "database_tuning_record.json"
    path.write_text(path.read_text()[:-20])
    r = CliRunner().invoke(main, ["compile", "--variant", "tiny", "--resolution", "64", "--records",
                                  str(bad), "-o", str(tmp_path / "art")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith(f"Error: {path}: line 1 is not valid JSON")


def test_resume_adds_to_the_database(records, tmp_path):
    import shutil

    out, first = records
    again = tmp_path / "rec"
    shutil.copytree(out, again)
    r = CliRunner().invoke(main, ["tune", "--variant", "tiny", "--resolution", "64", "--trials", "2",
                                  "--only", TASK, "--json", "-o", str(again)])
    assert r.exit_code == 0, r.output[-3000:]
    summary = json.loads(r.stdout)  # a second tune in this process: the same clean run
    assert summary["resumed"]
    assert summary["database"]["records"] > first["database"]["records"]
