"""bench/int8_peers.py: the peers' int8 builds calibrate on exactly the frames edgeavs' int8 build does, and the
nodes they keep in fp32 are the log-mel front end's (tiny, 64x64)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import int8_peers  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from edgeavs.data.synth import make_synthetic

    root = tmp_path_factory.mktemp("int8peers") / "s4"
    make_synthetic(root, task="s4", clips=5, seed=0, size=SIZE)
    return root


def test_calibration_frames_are_edgeavs_own(tree):
    from edgeavs.compiler.calibrate import calibration_inputs

    frames, waveform = int8_peers.calibration_arrays(tree, "s4", 7, SIZE)
    theirs, _ = calibration_inputs(tree, (SIZE, SIZE), 7)
    assert frames.shape == (7, 3, SIZE, SIZE) and waveform.shape == (7, 32000)
    np.testing.assert_array_equal(frames, np.concatenate([f for f, _ in theirs]))
    np.testing.assert_array_equal(waveform, np.concatenate([w for _, w in theirs]))


def test_calibration_too_few_frames_is_one_line(tree):
    from edgeavs.errors import EdgeAVSError

    with pytest.raises(EdgeAVSError, match="has 15 frames"):
        int8_peers.calibration_arrays(tree, "s4", 16, SIZE)  # 3 train clips x 5


def test_fp32_nodes_are_the_log_mel_front_end(tmp_path):
    import onnx
    import torch

    from edgeavs.compiler import frontend
    from edgeavs.compiler.build import build_torch_model
    from edgeavs.data.inputs import random_inputs

    model = build_torch_model("tiny", {"source": "random", "seed": 0, "fusion": "lightavseg"})
    path = tmp_path / "model.onnx"
    frontend.export_onnx(frontend.inference_graph(model), tuple(map(torch.from_numpy, random_inputs(0, SIZE, SIZE))),
                         path)
    graph = onnx.load(str(path)).graph
    kept = set(int8_peers.onnx_nodes_in(onnx.load(str(path))))
    ops = {n.name: n.op_type for n in graph.node}
    assert "Log" in {ops[n] for n in kept}  # the log of the mel power
    assert sum(ops[n] == "Conv" for n in kept) == 2  # the STFT's real and imaginary convs
    # everything after the first Log (the audio backbone, the visual side) is left to the quantizer
    first_log = next(i for i, n in enumerate(graph.node) if n.op_type == "Log")
    assert all(n.name not in kept for n in graph.node[first_log + 1:] if n.op_type in ("Conv", "MatMul", "Gemm"))
