"""``edgeavs profile`` / ``edgeavs.compiler.breakdown``: the compile-time function table, the per-class
attribution of a real profile of the tiny 64x64 artifact, flop counting, and the CLI's one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from edgeavs.compiler.artifact import MANIFEST
from edgeavs.compiler.breakdown import (VM_BUILTIN, format_breakdown, function_table, prim_func_flops,
                                       profile_artifact, summarize)
from edgeavs.compiler.linked_weights import FUNCTION as WEIGHT_FUNCTION
from edgeavs.errors import EdgeAVSError
from edgeavs.tvm_api import IRModule
from edgeavs.passes.schedule_ops import CLASSES
from kernels.int8_conv import Int8ConvWorkload, int8_conv_kernel
from kernels.workloads import ConvCase, fuse, prim_funcs
from tests.compiler.artifacts import copy_of, tiny_artifact

PEAK = 100.0
"""A given ceiling (GFLOP/s) for the tests that do not check the SGEMM measurement."""


@pytest.fixture(scope="module")
def report():
    return profile_artifact(tiny_artifact(), threads=2, repeat=3)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((tiny_artifact() / MANIFEST).read_text())


def test_manifest_table_matches_the_schedule_report(manifest):
    sched = manifest["schedules"]
    table = sched["functions"]
    for cls, entry in sched["classes"].items():
        mine = [v for v in table.values() if v["class"] == cls]
        assert len(mine) == entry["functions"], cls
        assert sum(v["schedule"] is not None for v in mine) == entry["scheduled"], cls
    unscheduled = sorted(k for k, v in table.items() if v["schedule"] is None)
    assert unscheduled == sorted(sched["unmatched"])
    kernels = {k: v for k, v in table.items() if v["schedule"] == "kernel"}
    assert {"hsig_gate", "audio_gate"} <= {v["class"] for v in kernels.values()}  # one class per fused kernel
    assert not {v["class"] for v in kernels.values()} & set(CLASSES)
    assert all(v["calls"] >= 1 for v in table.values())


def test_every_called_function_in_exactly_one_class(report, manifest):
    names = [r["name"] for r in report["functions"]]
    assert len(names) == len(set(names))
    assert sum(c["functions"] for c in report["classes"].values()) == len(names)
    table = manifest["schedules"]["functions"]
    assert set(report["not_called"]) == set(table) - set(names)
    # what the VM never calls are reshapes that lowering turned into views: no arithmetic
    assert all(table[n]["flops"] == 0 and table[n]["class"] == "elementwise" for n in report["not_called"])
    for r in report["functions"]:
        assert r["class"] == (table[r["name"]]["class"] if r["name"] in table else VM_BUILTIN)
    # VM builtins, and the weight views main fetches from the library (edgeavs.compiler.linked_weights)
    assert all(r["name"].startswith("vm.builtin.") or r["name"] == WEIGHT_FUNCTION
               for r in report["functions"] if r["class"] == VM_BUILTIN)


def test_shares_sum_to_one(report):
    assert abs(sum(c["share"] for c in report["classes"].values()) - 1.0) <= 1e-6
    assert abs(sum(r["share"] for r in report["functions"]) - 1.0) <= 1e-6
    assert abs(sum(c["us"] for c in report["classes"].values()) - report["total_us"]) <= 1e-6 * report["total_us"]


def test_unscheduled_functions_listed_with_their_share(report, manifest):
    unmatched = manifest["schedules"]["unmatched"]
    assert unmatched, "the tiny artifact has functions left to TVM's default lowering"
    listed = {r["name"]: r for r in report["unscheduled"]}
    assert set(listed) == set(unmatched) - set(report["not_called"])
    assert all(r["share"] > 0 and r["us"] > 0 for r in listed.values())
    assert report["unscheduled_share"] == pytest.approx(sum(r["share"] for r in listed.values()), rel=1e-9)
    assert [r["us"] for r in report["top"]] == sorted((r["us"] for r in report["functions"]), reverse=True)[:10]


def test_measured_peak_and_fractions(report):
    peak = report["peak"]
    assert peak["threads"] == 2 and peak["single_core_gflops"] > 1.0
    assert peak["gflops"] == pytest.approx(2 * peak["single_core_gflops"])
    for c in report["classes"].values():
        assert c["gflops"] == pytest.approx(c["flops"] / c["us"] / 1e3, rel=1e-9)
        assert c["fraction_of_peak"] == pytest.approx(c["gflops"] / peak["gflops"], rel=1e-9)
    conv = report["classes"]["conv1x1"]
    assert conv["flops"] > 0 and conv["scheduled"] == conv["functions"]


def test_flops_of_a_fused_1x1_conv():
    cin, cout, h, w = 24, 40, 7, 9
    mod = fuse(ConvCase(cin, cout, h, w, k=1, act="relu").relax_module())
    (name, func), = prim_funcs(mod).items()
    table = function_table(mod)
    assert table[name]["class"] == "conv1x1" and table[name]["schedule"] is None
    assert table[name]["macs"] == cin * cout * h * w
    # + the epilogue: bias add and ReLU, one flop each per output element
    assert table[name]["flops"] == 2 * cin * cout * h * w + 2 * cout * h * w
    assert prim_func_flops(func) == {"macs": table[name]["macs"], "flops": table[name]["flops"]}
    assert table[name]["int_ops"] == 0
    assert table[name]["calls"] == 1


def test_flops_of_a_strided_depthwise_conv():
    c, h, w, k = 19, 13, 11, 5
    case = ConvCase(c, c, h, w, k=k, stride=2, groups=c, act=None)
    mod = fuse(case.relax_module())
    (name, _), = prim_funcs(mod).items()
    oh, ow = case.out_hw
    entry = function_table(mod)[name]
    assert entry["class"] == "depthwise" and entry["macs"] == c * oh * ow * k * k


def test_summarize_by_hand():
    functions = {"a": {"class": "conv1x1", "schedule": "gemm", "flops": 3_000_000, "calls": 2},
                 "b": {"class": "elementwise", "schedule": None, "flops": 1000, "calls": 1}}
    times = {"a": 60.0, "b": 30.0, "vm.builtin.alloc_tensor": 10.0}
    r = summarize(times, functions, peak_gflops=PEAK)
    assert r["total_us"] == 100.0
    assert r["classes"]["conv1x1"] == {"functions": 1, "scheduled": 1, "us": 60.0, "flops": 6_000_000,
                                       "int_ops": 0, "int_gops": 0.0, "uncounted": 0, "share": 0.6,
                                       "gflops": 100.0, "fraction_of_peak": 1.0}
    assert r["classes"][VM_BUILTIN]["share"] == 0.1
    assert [u["name"] for u in r["unscheduled"]] == ["b"] and r["unscheduled_share"] == 0.3
    with pytest.raises(EdgeAVSError, match="timed no function"):
        summarize({}, functions)


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_not_an_artifact(tmp_path):
    r = _run("profile", str(tmp_path / "nothing"))
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (f"Error: artifact {tmp_path / 'nothing'} not found (expected a "
                                                 "directory written by edgeavs compile)")
    (tmp_path / "plain").mkdir()
    r = _run("profile", str(tmp_path / "plain"))
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [f"Error: artifact {tmp_path / 'plain'}: {MANIFEST} is missing"]


def test_cli_artifact_without_function_table():
    art = copy_of(tiny_artifact(), "no-table")
    m = json.loads((art / MANIFEST).read_text())
    del m["schedules"]["functions"]
    (art / MANIFEST).write_text(json.dumps(m))
    r = _run("profile", str(art))
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"Error: artifact {art}: its manifest has no per-function schedule table (compiled without edgeavs "
        "schedules or by an older edgeavs); recompile it"]


def test_cli_table_and_json(tmp_path):
    out = tmp_path / "b.json"
    r = _run("profile", str(tiny_artifact()), "--repeat", "2", "--peak", str(PEAK), "--top", "3",
             "--json", str(out))
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["peak"] == {"gflops": PEAK, "method": "given (--peak)", "threads": 2}
    assert len(data["top"]) == 3
    lines = r.output.splitlines()
    assert lines[1].split()[:3] == ["class", "funcs", "ours"]
    assert f"{len(data['unscheduled'])} functions unscheduled" in r.output


def test_profile_into_manifest_keeps_the_artifact_valid():
    from edgeavs.compiler.artifact import validate_artifact
    from edgeavs.compiler.breakdown import profile_into_manifest

    art = copy_of(tiny_artifact(), "profiled")
    report = profile_into_manifest(art, threads=2, repeat=2)
    m = validate_artifact(art)  # the hashes cover the library, not the manifest
    prof = m["schedules"]["profile"]
    assert prof["threads"] == 2
    assert set(prof["unscheduled"]) == {r["name"] for r in report["unscheduled"]}
    assert prof["unscheduled_share"] == pytest.approx(sum(prof["unscheduled"].values()), abs=1e-3)
    assert abs(sum(c["share"] for c in prof["classes"].values()) - 1.0) <= 1e-3  # rounded to 4 places


def test_compile_profile_needs_a_host_target(tmp_path):
    r = _run("compile", "--target", "aarch64-linux", "--variant", "tiny", "--resolution", "64", "--profile",
             "-o", str(tmp_path / "a"))
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        "Error: --profile times the artifact on this machine: it needs a host-linked target with edgeavs "
        "schedules (target aarch64-linux links with cross)")
    assert not (tmp_path / "a").exists()


def test_an_int8_kernel_declares_its_work_and_the_report_keeps_it_apart_from_flops():
    # the vnni kernel's inner product is one tensorized call: its blocks show no MAC, the declaration does
    wl = Int8ConvWorkload(n=1, m=48, k=36, h=5, w=7, isa="vnni", act="relu6")
    func = int8_conv_kernel(wl)
    assert prim_func_flops(func)["macs"] == 0
    mod = IRModule({"conv": func})
    entry = function_table(mod)["conv"]
    macs = 48 * 36 * 5 * 7
    assert entry["class"] == "int8_conv" and entry["schedule"] == "kernel"
    assert entry["macs"] == macs and entry["int_ops"] == 2 * macs
    assert entry["flops"] == 5 * 36 * 35 + 4 * 48 * 35  # pack 5 per input, epilogue 2 + relu6's 2 per output
    r = summarize({"conv": 10.0}, {"conv": {**entry, "calls": 3}}, peak_gflops=PEAK)
    c = r["classes"]["int8_conv"]
    assert c["int_ops"] == 3 * 2 * macs and c["int_gops"] == pytest.approx(c["int_ops"] / 10.0 / 1e3, rel=1e-12)
    assert c["flops"] == 3 * entry["flops"]  # the integer ops are not flops and meet no float peak
    assert r["int_gop"] == pytest.approx(3 * 2 * macs / 1e9, rel=1e-12)
    text = format_breakdown({**r, "variant": "t", "resolution": [64, 64], "threads": 1, "latency_ms": 0.01,
                             "peak": {"gflops": PEAK}})
    assert "integer GOP" in text.splitlines()[0]
    assert "int GOP at" in next(line for line in text.splitlines() if line.startswith("int8_conv"))
    assert "GOP/s int" in text
