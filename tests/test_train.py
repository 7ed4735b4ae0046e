"""Training: a short run writes its files and lowers the loss; resume is exact; torchrun/gloo; CLI errors."""

import json
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from cli import main
from edgeavs.model import load_checkpoint
from edgeavs.train import TrainConfig, train

pytestmark = pytest.mark.slow
SIZE = 64


@pytest.fixture(scope="module")
def s4_root(tmp_path_factory):
    """5 tiny S4 clips: 3 train (mask 1 only), 1 val, 1 test."""
    from edgeavs.data.synth import make_synthetic

    root = tmp_path_factory.mktemp("synth") / "s4"
    counts = make_synthetic(root, task="s4", clips=5, seed=0, size=SIZE)
    assert counts == {"train": 3, "val": 1, "test": 1}
    return str(root)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and polite on a shared machine
    yield
    torch.set_num_threads(n)


def _cfg(root, out, **kw):
    base = dict(data=root, out=str(out), task="s4", variant="tiny", size=SIZE, batch_size=2, seed=0,
                num_workers=0, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _lines(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_short_run_writes_checkpoints_and_metrics_and_lowers_the_loss(s4_root, tmp_path):
    run = tmp_path / "run"
    summary = train(_cfg(s4_root, run, epochs=4, batch_size=3, lr=1e-3))  # one step of all 3 clips per epoch
    assert summary["epochs_done"] == 4 and summary["steps"] == 4
    assert {p.name for p in run.iterdir()} == {"last.pt", "best.pt", "metrics.jsonl"}
    lines = _lines(run / "metrics.jsonl")
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    for r in lines:
        assert {"train_loss", "train_dice", "train_bce", "train_msa", "val_M_J", "val_M_F", "time_s"} <= set(r)
        assert r["train_loss"] == pytest.approx(r["train_dice"] + r["train_bce"] + 0.5 * r["train_msa"], rel=1e-5)
        assert 0.0 <= r["val_M_J"] <= 1.0 and 0.0 <= r["val_M_F"] <= 1.0
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    best = load_checkpoint(run / "best.pt")
    assert best.cfg.name == "tiny"
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["epoch"] == 4 and last["config"]["size"] == SIZE
    best_epoch = max(lines, key=lambda r: r["val_M_J"])["epoch"]
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best_epoch == summary["best_epoch"]
    # the frozen audio encoder did not move
    fresh = torch.load(run / "last.pt", weights_only=True)["state_dict"]
    from edgeavs.model import build_model

    init = build_model("tiny", seed=0).state_dict()
    assert all(torch.equal(fresh[k], init[k]) for k in init if k.startswith("audio."))
    assert not all(torch.equal(fresh[k], init[k]) for k in init if k.startswith("head."))


def _same_state(a, b):
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    for k in sa["state_dict"]:
        assert torch.equal(sa["state_dict"][k], sb["state_dict"][k]), k
    oa, ob = sa["optimizer"]["state"], sb["optimizer"]["state"]
    assert oa.keys() == ob.keys()
    for k in oa:
        for name in oa[k]:
            assert torch.equal(oa[k][name], ob[k][name]), (k, name)
    assert (sa["epoch"], sa["global_step"]) == (sb["epoch"], sb["global_step"])


def test_resume_continues_exactly(s4_root, tmp_path):
    # 3 train clips, batch 2: two steps per epoch
    train(_cfg(s4_root, tmp_path / "straight", epochs=2))
    train(_cfg(s4_root, tmp_path / "split", epochs=1))
    train(TrainConfig(data=s4_root, out=str(tmp_path / "split"), epochs=2, resume=True,
                      num_workers=0, progress=False))
    _same_state(tmp_path / "straight" / "last.pt", tmp_path / "split" / "last.pt")
    assert [r["epoch"] for r in _lines(tmp_path / "split" / "metrics.jsonl")] == [1, 2]
    # stopped inside epoch 2 (after 3 steps), then resumed: still the same weights
    train(_cfg(s4_root, tmp_path / "mid", epochs=2, max_steps=3))
    mid = torch.load(tmp_path / "mid" / "last.pt", weights_only=True)
    assert (mid["epoch"], mid["step_in_epoch"]) == (1, 1)
    train(TrainConfig(data=s4_root, out=str(tmp_path / "mid"), resume=True, num_workers=0, progress=False))
    _same_state(tmp_path / "straight" / "last.pt", tmp_path / "mid" / "last.pt")
    records = _lines(tmp_path / "mid" / "metrics.jsonl")
    assert [(r["epoch"], r["complete"]) for r in records] == [(1, True), (2, False), (2, True)]


def test_cli_refuses_existing_run_and_empty_resume_and_missing_data(s4_root, tmp_path):
    runner = CliRunner()
    base = ["train", "--task", "s4", "--variant", "tiny", "--size", str(SIZE), "--num-workers", "0",
            "--no-progress"]
    missing = tmp_path / "nowhere"
    r = runner.invoke(main, base + ["--data", str(missing), "-o", str(tmp_path / "r0")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == f"Error: {missing}: dataset root not found"
    assert not (tmp_path / "r0").exists()

    r = runner.invoke(main, base + ["--data", s4_root, "-o", str(tmp_path / "r1"), "--resume"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == f"Error: {tmp_path / 'r1'}: nothing to resume (no last.pt)"

    run = tmp_path / "r2"
    run.mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    r = runner.invoke(main, base + ["--data", s4_root, "-o", str(run)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        f"Error: {run}: already holds a training run (metrics.jsonl); "
        "pass --resume to continue it or choose another -o")

    r = runner.invoke(main, ["train", "--data", s4_root, "--task", "s4", "-o", str(tmp_path / "r3")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == "Error: --variant: required for a new run (tiny, small, base or large)"

    r = runner.invoke(main, base + ["--data", s4_root, "-o", str(tmp_path / "r4"), "--precision", "bf16",
                                    "--device", "cpu"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        "Error: --precision bf16: mixed precision is for CUDA only; the CPU trains in fp32")


def test_cli_run_then_resume_with_a_conflicting_option(s4_root, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "--data", s4_root, "--task", "s4", "--size", str(SIZE), "--num-workers", "0",
            "--no-progress", "-o", str(run), "--batch-size", "3"]
    r = runner.invoke(main, args + ["--variant", "tiny", "--epochs", "1", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["epochs_done"] == 1 and summary["steps"] == 1
    r = runner.invoke(main, args + ["--variant", "small", "--resume", "--epochs", "2"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        "Error: --variant: this run was started with tiny, not small; leave the option out to resume it")


def test_torchrun_two_processes_on_gloo(s4_root, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "cli", "train", "--data", s4_root, "--task", "s4", "--variant", "tiny",
           "--size", str(SIZE), "--batch-size", "1", "--epochs", "1", "--num-workers", "0",
           "--device", "cpu", "--no-progress", "--json", "-o", str(run)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 3 clips over 2 ranks: DistributedSampler pads to 2 per rank, two steps of one clip each
    # (two steps: DDP fails on the second one if a gradient reduction was left unfinished)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["steps"] == 2
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["world_size"] == 2 and len(last["rng"]) == 2 and last["epoch"] == 1
    assert len(_lines(run / "metrics.jsonl")) == 1
    assert (run / "best.pt").is_file()
    assert not any(p.name.startswith(".") for p in run.iterdir())  # no leftover temporary files


def test_mixed_precision_path_keeps_the_audio_encoder_in_fp32():
    """The AMP code path, exercised with CPU bf16 autocast (a CUDA run uses the same code)."""
    from edgeavs.losses import total_loss
    from edgeavs.model import build_model
    from edgeavs.train import _audio_in_fp32, _resolve_precision, _to_float

    assert _resolve_precision("auto", torch.device("cpu")) == "fp32"
    model = build_model("tiny", seed=0).train()
    a0_ref = model.audio(torch.randn(2, 32000, generator=torch.Generator().manual_seed(1)))
    _audio_in_fp32(model)
    assert "audio.fc1.weight" in model.state_dict()  # keys untouched
    frames, audio = torch.randn(5, 3, 64, 64), torch.randn(5, 32000)
    masks = (torch.rand(5, 1, 64, 64) > 0.5).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a0 = model.audio(torch.randn(2, 32000, generator=torch.Generator().manual_seed(1)))
        out = model(frames, audio, return_aux=True)
    assert a0.dtype == torch.float32 and torch.equal(a0, a0_ref)
    assert out["logits"].dtype == torch.bfloat16
    terms = total_loss(_to_float(out), masks, torch.ones(5, dtype=torch.bool))
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("fusion", ["tpavi", "avsegformer"])
def test_baseline_fusions_train_and_evaluate(s4_root, tmp_path, fusion):
    """The baselines train with the same loop (no L_msa: they have no audio path to align) and
    their checkpoints evaluate with the same metrics."""
    from edgeavs.data import make_dataset
    from edgeavs.evaluate import evaluate_model

    run = tmp_path / fusion
    summary = train(_cfg(s4_root, run, fusion=fusion, epochs=1, batch_size=3, lr=1e-3))
    assert summary["steps"] == 1
    rec = _lines(run / "metrics.jsonl")[0]
    assert rec["train_msa"] == 0.0
    assert rec["train_loss"] == pytest.approx(rec["train_dice"] + rec["train_bce"], rel=1e-5)
    model = load_checkpoint(run / "best.pt")
    assert model.fusion == fusion
    res = evaluate_model(model, make_dataset(s4_root, "s4", "test", size=SIZE))
    assert res["clips"] == 1 and 0.0 <= res["M_J"] <= 1.0


def test_msa_weight_is_refused_for_a_baseline(s4_root, tmp_path):
    r = CliRunner().invoke(main, ["train", "--data", s4_root, "--task", "s4", "--variant", "tiny",
                                  "--fusion", "tpavi", "--msa-weight", "0.5", "-o", str(tmp_path / "r")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        "Error: --msa-weight: the tpavi fusion has no audio path for L_msa to align; leave it out "
        "(it is LightAVSeg's loss)")


def _broken_copy(s4_root, tmp_path, clip_index):
    """A copy of the synthetic root whose ``clip_index``-th train clip (file order) has a frame
    that is not an image; returns (root, that frame's path)."""
    import shutil

    from edgeavs.data import make_dataset

    root = tmp_path / "broken"
    shutil.copytree(s4_root, root)
    frame = make_dataset(root, "s4", "train", size=SIZE).clips[clip_index].frames[2]
    with open(frame, "wb") as fh:
        fh.write(b"not a png")
    return str(root), frame


def test_unreadable_first_clip_fails_before_the_run_directory_exists(s4_root, tmp_path):
    root, frame = _broken_copy(s4_root, tmp_path, 0)
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", root, "--task", "s4", "--variant", "tiny",
                                  "--size", str(SIZE), "--num-workers", "0", "--no-progress",
                                  "-o", str(run)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith(f"Error: {frame}: ")
    assert not run.exists()


def test_a_later_clip_failing_in_a_loader_worker_leaves_no_empty_run_directory(s4_root, tmp_path):
    """The first clips load; the last train clip breaks in a DataLoader worker during epoch 1,
    before anything is written: the one-line error names the file, and RUN_DIR is gone."""
    from edgeavs.errors import EdgeAVSError

    root, frame = _broken_copy(s4_root, tmp_path, 2)
    run = tmp_path / "run"
    with pytest.raises(EdgeAVSError) as exc:
        train(_cfg(root, run, epochs=1, batch_size=3, num_workers=1))
    assert str(exc.value).startswith(f"{frame}: ") and "\n" not in str(exc.value)
    assert not run.exists()


def test_an_existing_empty_run_directory_is_kept_on_failure(s4_root, tmp_path):
    from edgeavs.errors import EdgeAVSError

    root, _ = _broken_copy(s4_root, tmp_path, 2)
    run = tmp_path / "mine"
    run.mkdir()  # the user's, not this run's: left in place
    with pytest.raises(EdgeAVSError):
        train(_cfg(root, run, epochs=1, batch_size=3))
    assert run.is_dir() and not any(run.iterdir())


def test_bad_output_paths_fail_up_front(s4_root, tmp_path):
    base = ["train", "--data", s4_root, "--task", "s4", "--variant", "tiny", "--size", str(SIZE),
            "--num-workers", "0", "--no-progress", "-o"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = {
        str(a_file): f"Error: {a_file}: exists and is not a directory",
        str(tmp_path / "no" / "such" / "run"):
            f"Error: -o {tmp_path / 'no' / 'such' / 'run'}: parent directory {tmp_path / 'no' / 'such'} "
            "does not exist",
        str(a_file / "run"): f"Error: -o {a_file / 'run'}: parent {a_file} is not a directory",
    }
    for out, message in cases.items():
        r = CliRunner().invoke(main, base + [out])
        assert r.exit_code == 1, out
        assert r.output.strip().splitlines() == [message]
    assert not (tmp_path / "no").exists()
