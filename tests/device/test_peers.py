"""The peers on the projection's footing (edgeavs.device.peers): ONNX Runtime's AArch64 build
runs in the emulator's guest under the block-counting plugin, projects nonzero cycles and
computes what numpy computes; and the pieces that need no emulator (ELF code spans, symbol
cover, the guest's CPU view, op classes).

The ExecuTorch + XNNPACK path is exercised by bench/bench_arm_projection.py --peers only: its
.pte export needs a Python with executorch and its torch (a separate ~1 GB environment)."""

import os
import sys

import numpy as np
import pytest

from edgeavs.device import peers, projection

C_IN, C_OUT, SIDE, K = 8, 16, 24, 3


def tiny_onnx(path):
    """y = relu(conv3x3(x, w) + b) (no padding), then flattened and multiplied by m: a conv that
    MLAS runs with its NEON kernels, and a MatMul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.standard_normal((C_OUT, C_IN, K, K)).astype(np.float32) * 0.1
    b = rng.standard_normal(C_OUT).astype(np.float32)
    side = SIDE - K + 1
    m = rng.standard_normal((side, 10)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[K, K]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MatMul", ["r", "m"], ["y"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C_IN, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C_OUT, side, 10])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
                     numpy_helper.from_array(m, "m")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w, b, m


def numpy_reference(x, w, b, m):
    side = SIDE - K + 1
    windows = np.lib.stride_tricks.sliding_window_view(x[0], (K, K), axis=(1, 2))  # C,s,s,K,K
    conv = np.einsum("cijkl,ockl->oij", windows[:, :side, :side], w, optimize=True) + b[:, None, None]
    return (np.maximum(conv, 0) @ m)[None]


@pytest.fixture(scope="module")
def ort_projection(tmp_path_factory, emulator):
    path = tmp_path_factory.mktemp("peer-ort") / "tiny.onnx"
    w, b, m = tiny_onnx(path)
    (x,) = peers.seeded_inputs([{"shape": [1, C_IN, SIDE, SIDE], "dtype": "float32"}], seed=0)
    ref = numpy_reference(x.astype(np.float64), w, b, m)
    report = peers.project_ort(path, [x], projection.cpu_model("oryon-1"), reference=ref, runs=2)
    return report


def test_ort_peer_runs_in_the_guest_and_matches_numpy(ort_projection):
    r = ort_projection
    # the same numbers as a float64 numpy conv + relu + matmul, to fp32 rounding
    assert r["rel_l2_vs_pytorch"] < 1e-5
    assert r["guest"]["runs"] == 2 and r["guest"]["output"]["shape"] == [1, C_OUT, SIDE - K + 1, 10]
    assert r["peer"] == "onnxruntime"


def test_ort_peer_projects_the_inference(ort_projection):
    r = ort_projection
    inf = r["inference"]
    assert inf["cycles"] == pytest.approx(inf["library_cycles"] + inf["outside_cycles"], rel=1e-9)
    assert inf["library_cycles"] > 0 and inf["instructions"]["vector_fma"] > 0
    assert inf["ms"] == pytest.approx(inf["cycles"] / 4.32e6, rel=1e-9)
    # the counted fp32 FLOPs are at least the model's multiply-adds (MLAS may pad tiles), and
    # within a small factor of them: the counted section is the inference, not the start-up
    side = SIDE - K + 1
    model_flops = 2 * C_OUT * side * side * C_IN * K * K + 2 * C_OUT * side * side * 10
    assert model_flops <= inf["flops"] <= 3 * model_flops
    assert 0 < inf["peak_fraction"] <= 1
    # the library's code is charged to the library (stripped: one unnamed group)
    assert r["op_classes"][0]["class"] == "[unnamed onnxruntime]"


# ---------------------------------------------------------------- no emulator needed

def test_exec_spans_of_an_elf_file():
    spans = peers.exec_spans(sys.executable if os.path.isfile(sys.executable) else "/bin/sh")
    assert spans and all(0 <= lo < hi for lo, hi in spans)


def test_exec_spans_rejects_a_non_elf_file(tmp_path):
    bad = tmp_path / "x.so"
    bad.write_bytes(b"not an elf file at all" * 4)
    with pytest.raises(peers.EdgeAVSError, match="x.so: not an ELF64 file"):
        peers.exec_spans(bad)


def test_dynamic_symbols_cover_the_code_without_gaps(emulator):
    """The guest's (stripped) AArch64 libm: exported functions at their sizes, the code between
    them unnamed, the executable segment covered end to end."""
    from edgeavs.device.emulator import require_emulator

    path = os.path.realpath(require_emulator().sysroot / "lib" / "aarch64-linux-gnu" / "libm.so.6")
    syms = peers.dynamic_symbols(path, "libm")
    spans = peers.exec_spans(path)
    assert syms[0][0] == spans[0][0] and syms[-1][1] == spans[-1][1]
    for (s0, e0, _), (s1, _, _) in zip(syms, syms[1:]):
        assert s0 < e0 <= s1
    names = {n for _, _, n in syms}
    assert "[unnamed libm]" in names and "expf" in names


def test_op_classes_of_xnnpack_symbols():
    assert peers.op_class("xnn_f32_gemm_minmax_ukernel_6x8__aarch64_neonfma_ld128") == \
        "xnnpack gemm/conv"
    assert peers.op_class("xnn_f32_dwconv_minmax_ukernel_25p8c__neonfma_acc2") == \
        "xnnpack depthwise conv"
    assert peers.op_class("xnn_f32_vadd_minmax_ukernel__neon_u8") == "xnnpack elementwise"
    assert peers.op_class("[unnamed onnxruntime]") == "[unnamed onnxruntime]"
    assert peers.op_class(None) == "[unnamed]"


def test_peer_sysroot_shows_one_oryon_core(emulator):
    root = peers.peer_sysroot()
    cpuinfo = (root / "proc" / "cpuinfo").read_text()
    assert "CPU implementer\t: 0x51" in cpuinfo and "asimddp" in cpuinfo
    assert (root / "sys" / "devices" / "system" / "cpu" / "possible").read_text().strip() == "0"
    assert (root / "usr").is_symlink() and (root / "usr" / "bin").is_dir()
    assert peers.peer_sysroot() == root  # idempotent


def test_rel_l2_shapes_must_agree():
    assert peers.rel_l2(np.ones(4), np.ones(4)) == 0.0
    with pytest.raises(peers.EdgeAVSError, match="output has 3 values, the reference 4"):
        peers.rel_l2(np.ones(3), np.ones(4))


def test_peer_without_emulator_is_one_line_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEAVS_CACHE", str(tmp_path / "empty"))
    for run in (peers.project_ort, peers.project_xnnpack):
        with pytest.raises(peers.EdgeAVSError, match="the AArch64 emulator is not set up") as exc:
            run(tmp_path / "model", [], projection.cpu_model("oryon-1"))
        assert "\n" not in str(exc.value)
    assert not (tmp_path / "empty" / "emulator" / "peers").exists()


def test_peer_on_an_x86_model_is_refused():
    cpu = projection.CpuModel("znver3", "x86_64", "znver3", ghz=3.0, flop_per_cycle=32.0,
                              dram_gbps=20.0, cache_bytes=1 << 20, dispatch=4)
    with pytest.raises(peers.EdgeAVSError, match="--cpu znver3: the peers run in the AArch64 "
                                                 "guest only"):
        peers.project_ort("model.onnx", [], cpu)


def test_compare_artifact_names_an_unknown_peer(tmp_path):
    with pytest.raises(peers.EdgeAVSError, match="unknown peer 'tflite': expected onnxruntime, "
                                                 "xnnpack"):
        peers.compare_artifact(tmp_path, tmp_path / "work", peers=("tflite",))
