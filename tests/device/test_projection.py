"""The cycle projection (``edgeavs device project``): the plugin's counts, the cost model's
scaling, the command end to end under emulation, and its one-line errors."""

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from edgeavs.device import projection
from edgeavs.errors import EdgeAVSError

from .conftest import ORYON, cross_build

TRIPS = (256, 512, 768)
LOOPS = ("loop_a", "loop_b", "loop_c")


def recurrence_module():
    """main(x_a, x_b, x_c) -> three calls of the same serial recurrence
    ``y[i + 1] = y[i] * c + x[i + 1]`` over the input's length (a symbolic shape, so the machine
    code of the three functions differs only in ``c``); the loop-carried dependence keeps LLVM
    from vectorising it, and each iteration stores exactly one float."""
    from edgeavs.tvm_api import T, relax, tirx

    def recurrence(c):
        @T.prim_func(private=True)
        def f(xh: T.handle, yh: T.handle):
            m = T.int64()
            x = T.match_buffer(xh, (m,), "float32")
            y = T.match_buffer(yh, (m,), "float32")
            y[0] = x[0]
            for i in range(m - 1):
                y[i + 1] = y[i] * T.float32(c) + x[i + 1]

        return f

    bb = relax.BlockBuilder()
    lengths = [tirx.Var(f"m{i}", "int64") for i in range(len(LOOPS))]
    xs = [relax.Var(f"x{i}", relax.TensorType((m,), "float32")) for i, m in enumerate(lengths)]
    with bb.function("main", xs):
        outs = []
        for name, c, x, m in zip(LOOPS, (0.5, 0.25, 0.125), xs, lengths):
            gv = bb.add_func(recurrence(c), name)
            outs.append(bb.emit(relax.call_tir(gv, (x,), relax.TensorType((m,), "float32"))))
        bb.emit_func_output(relax.Tuple(outs))
    return bb.get()


@pytest.fixture(scope="module")
def loop_projection(tmp_path_factory, emulator):
    lib = cross_build(recurrence_module(), ORYON, tmp_path_factory.mktemp("proj") / "loops.so")
    inputs = [{"shape": [n + 1], "dtype": "float32"} for n in TRIPS]
    report = projection.project_library(lib, inputs, projection.cpu_model("oryon-1"), runs=2)
    return {f["name"]: f for f in report["functions"]}, report


def test_plugin_counts_a_known_loop_exactly(loop_projection):
    funcs, report = loop_projection
    assert set(LOOPS) <= set(funcs)
    a, b, c = (funcs[n] for n in LOOPS)
    assert a["calls"] == b["calls"] == c["calls"] == 1
    # one store per iteration: the store counts differ by exactly the trip counts' difference
    assert b["instructions"]["store"] - a["instructions"]["store"] == TRIPS[1] - TRIPS[0]
    assert c["instructions"]["store"] - b["instructions"]["store"] == TRIPS[2] - TRIPS[1]
    # the same code per iteration: executed instructions are exactly linear in the trip count
    step_ab = b["instructions_total"] - a["instructions_total"]
    step_bc = c["instructions_total"] - b["instructions_total"]
    assert step_ab == step_bc > 0
    assert a["instructions"]["vector_fma"] == 0  # scalar recurrence, as written
    assert report["guest"]["runs"] == 2


def test_projected_cycles_scale_with_the_trip_count(loop_projection):
    funcs, _ = loop_projection
    cycles = [funcs[n]["cycles"] for n in LOOPS]
    assert cycles[0] < cycles[1] < cycles[2]
    # equal trip steps give equal cycle steps (same blocks, same mca costs), to rounding
    assert cycles[2] - cycles[1] == pytest.approx(cycles[1] - cycles[0], rel=1e-9)
    per_iteration = (cycles[2] - cycles[0]) / (TRIPS[2] - TRIPS[0])
    # a float multiply-add chain: at least one FP latency per iteration, no more than 20 cycles
    assert 1.0 <= per_iteration <= 20.0
    assert funcs["loop_a"]["ms"] == pytest.approx(cycles[0] / 4.32e9 * 1e3)


# ---------------------------------------------------------------- the command end to end

@pytest.fixture(scope="module")
def sd8e_tiny(tmp_path_factory, emulator):
    from edgeavs.compiler import compile_artifact

    saved = {v: os.environ.pop(v) for v in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
             if v in os.environ}
    try:
        out = tmp_path_factory.mktemp("proj-sd8e") / "tiny-64-sd8e"
        manifest = compile_artifact(out, target="snapdragon8elite", variant="tiny",
                                    resolution=64, log=lambda _m: None)
    finally:
        os.environ.update(saved)
    return out, manifest


@pytest.mark.slow
def test_cli_project_end_to_end(sd8e_tiny, tmp_path):
    from cli import main
    from edgeavs.compiler.artifact import read_manifest

    out, _ = sd8e_tiny
    report_path = tmp_path / "proj.json"
    res = CliRunner().invoke(main, ["device", "project", str(out), "--cpu", "oryon-1",
                                    "--json", str(report_path)])
    assert res.exit_code == 0, res.output
    assert "projected on oryon-1 @ 4.32 GHz" in res.output
    report = json.loads(report_path.read_text())
    funcs = report["functions"]
    table = read_manifest(out)["schedules"]["functions"]
    # the artifact's TIR functions are found by their symbols and called as often per inference
    # as the compiler recorded (reshape-like ones may run as VM views, not as TIR; the library
    # may hold functions outside the schedule table, e.g. weight-linking helpers)
    names = {f["name"] for f in funcs}
    assert [n for n, meta in table.items() if meta["flops"] and n not in names] == []
    assert len(names & set(table)) >= 0.9 * len(table)
    assert [(f["name"], f["calls"]) for f in funcs
            if f["name"] in table and f["calls"] != table[f["name"]]["calls"]] == []
    total = report["total"]
    assert total["cycles"] == pytest.approx(sum(f["cycles"] for f in funcs), rel=1e-9)
    assert total["ms"] == pytest.approx(total["cycles"] / 4.32e6, rel=1e-9)
    assert total["instructions"]["vector_fma"] > 0 and 0 < total["peak_fraction"] <= 1
    assert all(f["bound"] in ("compute", "memory") for f in funcs)
    assert report["outside"]["instructions_total"] > 0  # the VM between calls, reported apart


@pytest.mark.slow
def test_cli_refuses_a_host_artifact(sd8e_tiny, tmp_path):
    """An artifact whose manifest names the host triple is refused in one line."""
    from cli import main

    out, manifest = sd8e_tiny
    host = tmp_path / "host-art"
    host.mkdir()
    target = {k: v for k, v in manifest["target"].items() if k != "mtriple"}
    (host / "manifest.json").write_text(json.dumps({**manifest, "target": target}))
    res = CliRunner().invoke(main, ["device", "project", str(host)])
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: artifact ")
    assert "compiled for the host" in lines[0]


# ---------------------------------------------------------------- one-line errors

def _one_error_line(res) -> str:
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


def test_cli_without_emulator(tmp_path, monkeypatch):
    from cli import main

    monkeypatch.setenv("EDGEAVS_CACHE", str(tmp_path / "empty"))
    line = _one_error_line(CliRunner().invoke(main, ["device", "project", str(tmp_path)]))
    assert "the AArch64 emulator is not set up" in line
    assert line.endswith("run 'edgeavs device setup-emulator'")


def test_cli_without_llvm_mca(tmp_path, monkeypatch, emulator):
    """Every tool on PATH except llvm-mca-19."""
    from cli import main

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("qemu-aarch64", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objdump", "gcc",
                 "llvm-mc-19", "llvm-nm-19"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    line = _one_error_line(CliRunner().invoke(main, ["device", "project", str(tmp_path)]))
    assert line.startswith("Error: llvm-mca-19 not found") and "setup-emulator" in line


def test_unknown_cpu_is_one_line():
    with pytest.raises(EdgeAVSError, match="--cpu 'no such cpu' is not a CPU name"):
        projection.cpu_model("no such cpu")


def test_classify_aarch64_and_x86():
    c = projection.classify
    assert c("aarch64", "fmla\tv0.4s, v1.4s, v2.4s") == ("vector_fma", "vector", 8)
    assert c("aarch64", "sdot\tv0.4s, v1.16b, v2.16b")[0] == "vector_fma"
    assert c("aarch64", "fmaxnm\tv0.4s, v0.4s, v1.4s") == ("vector_other", "vector", 4)
    assert c("aarch64", "ldr\tq0, [x0, #16]")[0] == "load"
    assert c("aarch64", "stp\tq0, q1, [x1], #32")[0] == "store"
    assert c("aarch64", "fmadd\ts0, s1, s2, s0") == ("scalar", "vector", 2)
    assert c("aarch64", "b.ne\t#-16")[0] == "branch"
    assert c("aarch64", "add\tx0, x1, x2") == ("scalar", "int", 0)
    assert c("x86_64", "vfmadd231ps\t%ymm2, %ymm1, %ymm0") == ("vector_fma", "vector", 16)
    assert c("x86_64", "vmovups\t%ymm0, (%rdi,%rax,4)")[0] == "store"
    assert c("x86_64", "vbroadcastss\t(%rsi), %ymm1")[0] == "load"
    assert c("x86_64", "jne\t-16")[0] == "branch"
