"""Knob records: per-function overrides by workload key, the knob search and its resume, bad knob files, and
tune -> compile --records -> verify on the tiny variant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.compiler import pipeline
from edgeavs.compiler.knobs import FORMAT as KNOBS_FORMAT
from edgeavs.errors import EdgeAVSError
from edgeavs.passes.schedule_ops import ApplyEdgeAVSSchedules
from edgeavs.targets import load_target
from edgeavs.compiler.records import RecordsDir
from edgeavs.tune import knobs
from edgeavs.tvm_api import IRModule, PrimFunc, relax, to_tvm, tvm
from kernels import registry
from kernels.workloads import fuse
from tests.kernels.sched_util import NATIVE, rel_l2


def _graph(fused=True):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 14, 14), "float32"))
    w1 = relax.Var("w1", relax.TensorType((32, 16, 1, 1), "float32"))
    w2 = relax.Var("w2", relax.TensorType((32, 1, 3, 3), "float32"))
    with bb.function("main", [x, w1, w2]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, w1)))
            y = bb.emit(relax.op.clip(relax.op.nn.conv2d(y, w2, padding=1, groups=32), 0.0, 6.0))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return fuse(bb.get()) if fused else bb.get()


def _args():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, 16, 14, 14)).astype("float32"),
            rng.standard_normal((32, 16, 1, 1)).astype("float32"),
            rng.standard_normal((32, 1, 3, 3)).astype("float32")]


def _copy(mod):
    return IRModule(dict(mod.functions_items()), attrs=mod.attrs, global_infos=mod.global_infos)


def _run(mod):
    vm = relax.VirtualMachine(tvm.compile(mod, target=NATIVE), tvm.cpu())
    return vm["main"](*[to_tvm(a) for a in _args()]).numpy()


def _funcs_by_schedule(mod):
    return {str(f.attrs["edgeavs.schedule"]): (gv, f) for gv, f in mod.functions_items()
            if isinstance(f, PrimFunc) and f.attrs is not None and "edgeavs.schedule" in f.attrs}


def test_override_changes_one_functions_schedule_and_keeps_numerics():
    plain = _graph()
    default = ApplyEdgeAVSSchedules(target=NATIVE)(_copy(plain))
    gv, gemm = _funcs_by_schedule(default)["gemm"]
    key = str(gemm.attrs["edgeavs.workload"])
    assert key.startswith("conv1x1/")
    old = registry.config_from_dict("gemm", {"co_tile": 1, "pixel_vectors": 1, "lanes": 4})
    assert str(old) != str(gemm.attrs["edgeavs.config"])  # the override below is not the default
    configs = {"functions": {key: {"kind": "gemm", "config": registry.config_to_dict(old)},
                             "conv1x1/00000000deadbeef": {"kind": "gemm", "config": registry.config_to_dict(old)}}}
    p = ApplyEdgeAVSSchedules(target=NATIVE, configs=configs)
    tuned = p(_copy(plain))
    new = tuned[gv]
    assert str(new.attrs["edgeavs.config"]) == str(old) and str(new.attrs["edgeavs.knobs"]) == "tuned"
    _, dw = _funcs_by_schedule(tuned)["depthwise"]
    assert "edgeavs.knobs" not in dw.attrs  # the other function keeps its default
    assert p.report["knobs"]["tuned"] == 1 and p.report["knobs"]["default"] == 1
    assert p.report["knobs"]["stale"] == 1  # the entry for a function this module does not have
    err = rel_l2(_run(tuned), _run(plain))
    assert err <= 1e-6, err


def test_kernel_override_is_built_with_the_tuned_config():
    from kernels.hsig_gate import HsigGateWorkload, fallback_config, hsig_gate_kernel, reference

    wl = HsigGateWorkload(n=1, ci=16, hg=8, wg=8, co=24, h=8, w=8)
    default = fallback_config(wl, NATIVE)
    want = knobs.candidates(default, {"tile_co": [1, 2, 3]})[0]
    configs = {"functions": {registry.kernel_key("hsig_gate", wl): {"kind": "hsig_gate",
                                                                 "config": registry.config_to_dict(want)}}}
    cfg, make, tuned = registry.pick_kernel_config(configs, "hsig_gate", wl, default,
                                                lambda c: hsig_gate_kernel(wl, config=c))
    func = make()
    assert tuned and cfg == want and str(func.attrs["edgeavs.config"]) == str(want)
    assert registry.parse_kernel_key(str(func.attrs["edgeavs.workload"]))[1] == wl
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((1, 16, 8, 8)).astype("float32"), rng.standard_normal((1, 24, 8, 8)).astype("float32")
    w = rng.standard_normal((24, 16, 1, 1)).astype("float32")
    b = rng.standard_normal((1, 24, 1, 1)).astype("float32")
    lib = tvm.compile(func.with_attr("global_symbol", "main"), target=NATIVE)
    out = to_tvm(np.zeros((1, 24, 8, 8), "float32"))
    lib["main"](to_tvm(x), to_tvm(w), to_tvm(b), to_tvm(y), out)
    err = rel_l2(out.numpy(), reference(x, w, b, y))
    assert err <= 1e-6, err


def _tasks():
    """``(folded, tasks)``: the unfused graph (where the in-model search's builds start) and its knob tasks."""
    folded, pre, scheduled = pipeline.split_for_tuning(_graph(fused=False), NATIVE, {})
    return folded, knobs.knob_tasks(pre, scheduled, NATIVE, {})


def test_in_model_search_writes_entries_and_resume_skips_them(tmp_path):
    import time

    from edgeavs.tune import in_model

    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(load_target("host"))
    scheduled, tasks = _tasks()
    assert {t.kind for t in tasks} == {"gemm", "depthwise"} and all(t.candidates for t in tasks)
    first = in_model.search(tasks, rec, scheduled, NATIVE, _args(), deadline=time.perf_counter() + 600,
                            max_trials=None, passes=5)
    assert first.functions == 2 and first.trials >= sum(len(t.candidates) for t in tasks)
    assert first.rounds >= 1 + max(len(t.candidates) for t in tasks)  # one build times one candidate of each
    entries = rec.read_knobs()
    assert set(entries) == {t.key for t in tasks}
    for t in tasks:
        e = entries[t.key]
        assert e["kind"] == t.kind and e["measured"] == "in-model" and e["default_us"] > 0
        assert e["candidates"] >= len(t.candidates)
        if e["config"] is not None:  # kept only with the margin, re-measured against the defaults
            assert e["best_us"] < e["default_us"] * (1 - knobs.MARGIN)
        else:
            assert e["best_us"] == e["default_us"]
    if first.tuned:  # kept knobs passed the end-to-end check
        assert first.end_to_end["tuned_ms"] < first.end_to_end["default_ms"]
    text = rec.knobs_path.read_text()
    again = in_model.search(tasks, rec, scheduled, NATIVE, _args(), deadline=time.perf_counter() + 600,
                            max_trials=None, passes=5)
    assert (again.functions, again.resumed, again.trials) == (0, 2, 0)
    assert rec.knobs_path.read_text() == text


class _FakeBench:
    """ModelBench's timing replaced by a cost model: a function on any non-default config takes half the
    time (so every first candidate wins per function), and the whole model takes ``tuned_s`` when any
    function is off its default, 1 s otherwise."""

    def __init__(self, tuned_s):
        self.tuned_s = tuned_s

    def install(self, monkeypatch, tasks):
        from edgeavs.tune import in_model

        defaults = {t.key: t.default for t in tasks}
        monkeypatch.setattr(in_model.ModelBench, "build",
                            lambda bench, assign: (dict(assign), {t.key: t.names for t in tasks}))
        monkeypatch.setattr(in_model.ModelBench, "profile", lambda bench, vm: {
            n: (5.0 if t in vm and vm[t] != defaults[t.key] else 10.0) for t in tasks for n in t.names})
        monkeypatch.setattr(in_model.ModelBench, "latency", lambda bench, vm: (
            self.tuned_s if any(vm[t] != defaults[t.key] for t in vm) else 1.0))


@pytest.mark.parametrize("tuned_s, kept", [(0.5, True), (2.0, False)])
def test_knobs_that_do_not_speed_up_the_whole_model_are_rejected(tmp_path, monkeypatch, tuned_s, kept):
    """The end-to-end guard decides with the whole model's time, whatever the per-function times said."""
    import time

    from edgeavs.tune import in_model

    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(load_target("host"))
    scheduled, tasks = _tasks()
    _FakeBench(tuned_s).install(monkeypatch, tasks)
    got = in_model.search(tasks, rec, scheduled, NATIVE, _args(), deadline=time.perf_counter() + 600,
                          max_trials=None)
    assert got.end_to_end == {"default_ms": 1000.0, "tuned_ms": tuned_s * 1000.0, "measured": "in-model",
                              **({} if kept else {"rejected": 2})}
    entries = rec.read_knobs()
    assert got.tuned == (2 if kept else 0)
    for t in tasks:
        e = entries[t.key]
        assert (e["config"] is not None) == kept and ("rejected" in e) == (not kept)
        assert e["best_us"] == (5.0 if kept else 10.0) and e["default_us"] == 10.0


def test_trial_limit_caps_the_in_model_search(tmp_path, monkeypatch):
    import time

    from edgeavs.tune import in_model

    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(load_target("host"))
    scheduled, tasks = _tasks()
    _FakeBench(0.5).install(monkeypatch, tasks)
    got = in_model.search(tasks, rec, scheduled, NATIVE, _args(), deadline=time.perf_counter() + 600,
                          max_trials=3)
    assert got.trials == 3 and sum(e["candidates"] for e in rec.read_knobs().values()) == 3


@pytest.mark.parametrize("damage, message", [
    ("json", "not valid JSON"),
    ("format", "not an edgeavs knob file"),
    ("value", "knob co_tile=0 is not a positive integer"),
    ("unknown", "unknown knob 'tile'"),
    ("choice", "knob parallel=\"rows\" is not one of pixel, channel"),
])
def test_bad_knob_file_is_a_one_line_error(tmp_path, damage, message):
    host = load_target("host")
    rec = RecordsDir(tmp_path / "rec")
    rec.create_or_resume(host)
    good = {"co_tile": 4, "pixel_vectors": 2, "lanes": 16, "parallel": "pixel", "pack": True}
    bad = dict(good, **{"value": {"co_tile": 0}, "unknown": {"tile": 3}, "choice": {"parallel": "rows"}}.get(damage, {}))
    body = {"format": KNOBS_FORMAT, "functions": {"conv1x1/0123456789abcdef": {"kind": "gemm", "config": bad}}}
    text = {"json": json.dumps(body)[:-5], "format": json.dumps({"f": 1})}.get(damage, json.dumps(body))
    rec.knobs_path.write_text(text)
    with pytest.raises(EdgeAVSError) as exc:
        rec.open(host)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{rec.knobs_path}: ") and message in msg
    # the CLI: the same line, before anything is compiled
    r = CliRunner().invoke(main, ["compile", "--variant", "tiny", "--resolution", "64", "--records",
                                  str(rec.path), "-o", str(tmp_path / "art")])
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1] == f"Error: {msg}"
    assert not (tmp_path / "art").exists()


@pytest.mark.slow
def test_tune_compile_verify_tiny(tmp_path):
    """In-model knob search through the CLI on the hottest 1x1 convs of tiny at 64 (hand-picked by --only, 8
    trials, to keep it short: the trials end the search, the budget is generous so that a loaded machine's slow
    first round does not leave it no time for a candidate), then compile --records applies the kept knobs and
    verify passes."""
    out = tmp_path / "rec"
    r = CliRunner().invoke(main, ["tune", "--variant", "tiny", "--resolution", "64", "--trials", "8",
                                  "--only", "fused_conv2d2", "--time-budget", "60m", "--json", "-o", str(out)])
    assert r.exit_code == 0, r.output[-3000:]
    summary = json.loads(r.output.strip().splitlines()[-1])
    k = summary["knobs"]
    assert k["functions"] >= 1 and 1 <= k["trials"] <= 8 and summary["trials"] == k["trials"]
    entries = RecordsDir(out).read_knobs()
    assert len(entries) == k["functions"]
    kept = sum(1 for e in entries.values() if e["config"] is not None)
    assert kept == k["tuned"]
    log = [json.loads(line) for line in (out / "tune_log.jsonl").read_text().splitlines()]
    knob_logs = [e["knobs"] for e in log if "knobs" in e]
    assert len(knob_logs) == 1 and knob_logs[0]["functions"] == k["functions"]
    # whether a knob survives the in-model and end-to-end checks is the machine's call; either way the
    # summary carries the end-to-end figures of what was kept
    if kept:
        assert k["end_to_end"]["tuned_ms"] < k["end_to_end"]["default_ms"]
        assert summary["end_to_end"]["tuned_ms"] > 0 and summary["end_to_end"]["untuned_ms"] > 0

    art = tmp_path / "art"
    r = CliRunner().invoke(main, ["compile", "--variant", "tiny", "--resolution", "64", "--records", str(out),
                                  "-o", str(art)])
    assert r.exit_code == 0, r.output[-2000:]
    used = json.loads((art / "manifest.json").read_text())["schedules"]["knobs"]
    assert used["stale"] == 0 and used["records"] == kept
    assert used["tuned"] >= kept, (used, entries)
    assert f"tuned knobs (measured): {used['tuned']} functions" in r.output
    r = CliRunner().invoke(main, ["verify", str(art), "--seeds", "2"])
    assert r.exit_code == 0 and r.output.strip().splitlines()[-1] == "PASS", r.output[-2000:]


def test_stride_2_depthwise_searches_its_parity_knob():
    """The knob space of a stride-2 depthwise function is built with its real stride (the even/odd plane
    split only exists there)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 15, 15), "float32"))
    w = relax.Var("w", relax.TensorType((8, 1, 5, 5), "float32"))
    with bb.function("main", [x, w]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.conv2d(x, w, strides=2, padding=2, groups=8))
        bb.emit_func_output(out)
    _, pre, scheduled = pipeline.split_for_tuning(bb.get(), NATIVE, {})
    (task,) = knobs.knob_tasks(pre, scheduled, NATIVE, {})
    assert task.kind == "depthwise" and task.space["parity"] == [True, False]
    assert any(c.parity != task.default.parity for c in task.candidates)


def test_stft_fft_kernel_is_a_knob_kind():
    """The real-FFT STFT kernel carries its workload key, and a tuned config for it is built by the pass's
    config picker (marked tuned); a config the kernel refuses falls back to the default."""
    from kernels.stft_fft import StftFftConfig, StftFftWorkload, fallback_config, stft_fft_kernel

    wl = StftFftWorkload(n=1, length=1024 + 320 * 3)
    default = stft_fft_kernel(wl, target=NATIVE)
    key = str(default.attrs["edgeavs.workload"])
    assert registry.parse_kernel_key(key)[:2] == ("stft_fft", wl)
    want = StftFftConfig(frames=4, radix=2)
    for cfg, tuned in ((want, True), (StftFftConfig(frames=1, radix=4), False)):
        configs = {"functions": {key: {"kind": "stft_fft", "config": registry.config_to_dict(cfg)}}}
        got, make, is_tuned = registry.pick_kernel_config(configs, "stft_fft", wl, fallback_config(wl, NATIVE),
                                                       lambda c: stft_fft_kernel(wl, config=c))
        assert is_tuned == tuned and got == (cfg if tuned else fallback_config(wl, NATIVE))
        assert str(make().attrs["edgeavs.config"]) == str(got)
