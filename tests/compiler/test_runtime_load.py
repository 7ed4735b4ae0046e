"""The lean artifact runtime: a process that only runs an artifact loads TVM's runtime library
alone (not libtvm_compiler), the weights are viewed in place inside model.so (not copied out of
it), and neither changes a single output bit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgeavs.compiler.artifact import LIBRARY, MANIFEST, load_artifact
from edgeavs.data.inputs import random_inputs
from edgeavs.workers import child_env
from tests.compiler.artifacts import RESOLUTION, tiny_artifact

H = W = int(RESOLUTION)

# A process that runs the artifact and nothing else, as `edgeavs bench`'s TVM worker does.
CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from edgeavs.compiler.artifact import load_artifact, tvm_libraries, use_runtime_only
    from edgeavs.data.inputs import random_inputs

    runtime_only = use_runtime_only()
    art, out, h, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    model = load_artifact(art)
    np.save(out, model.run(*random_inputs(0, h, w)))

    # weight 0, as main sees it: a view into the library's own mapping, not a copy
    lib = model.vm.module.imports[0]
    view = np.from_dlpack(lib["edgeavs_weight"](0))
    so = str(model.directory.resolve() / "model.so")
    ranges = [[int(x, 16) for x in line.split()[0].split("-")]
              for line in open("/proc/self/maps") if line.rstrip().endswith(so)]
    addr = view.ctypes.data
    try:
        lib["edgeavs_weight"](10**6)
        bad_index = None
    except Exception as exc:  # noqa: BLE001
        bad_index = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"runtime_only": runtime_only, "libraries": tvm_libraries(),
                      "torch": "torch" in sys.modules, "tvm_api": "edgeavs.tvm_api" in sys.modules,
                      "weight_in_library": any(a <= addr and addr + view.nbytes <= b for a, b in ranges),
                      "bad_index": bad_index}))
""")


def _child(art, out, env_runtime: str | None = None) -> dict:
    env = child_env()
    env.pop("TVM_USE_RUNTIME_LIB", None)
    if env_runtime is not None:
        env["TVM_USE_RUNTIME_LIB"] = env_runtime
    proc = subprocess.run([sys.executable, "-c", CHILD, str(art), str(out), str(H), str(W)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def full_load_logits():
    """The artifact run in this process, where TVM was loaded whole (the tests compiled here)."""
    return load_artifact(tiny_artifact()).run(*random_inputs(0, H, W))


def test_runtime_only_child_maps_no_compiler_and_gives_the_same_bits(tmp_path, full_load_logits):
    rep = _child(tiny_artifact(), tmp_path / "out.npy")
    assert rep["runtime_only"] is True
    assert "libtvm_runtime.so" in rep["libraries"]
    assert not any(name.startswith("libtvm_compiler") for name in rep["libraries"]), rep["libraries"]
    assert not rep["torch"] and not rep["tvm_api"]
    # the same library on the same input in both processes: every bit the same
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), full_load_logits)


def test_weights_are_viewed_inside_the_library(tmp_path):
    art = tiny_artifact()
    linked = json.loads((art / MANIFEST).read_text())["linked_weights"]
    assert linked["tensors"] > 0
    # the library holds the weights: it is at least as large as they are
    assert (art / LIBRARY).stat().st_size >= linked["bytes"]
    rep = _child(art, tmp_path / "out.npy")
    assert rep["weight_in_library"] is True
    assert rep["bad_index"] is not None and "weight index" in rep["bad_index"]


def test_explicit_zero_keeps_the_whole_library(tmp_path, full_load_logits):
    rep = _child(tiny_artifact(), tmp_path / "out.npy", env_runtime="0")
    assert rep["runtime_only"] is False
    assert any(name.startswith("libtvm_compiler") for name in rep["libraries"])
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), full_load_logits)


def test_a_runtime_only_process_refuses_to_compile_in_one_line():
    code = ("from edgeavs.compiler.artifact import use_runtime_only\n"
            "use_runtime_only()\n"
            "import tvm\n"
            "from edgeavs.errors import EdgeAVSError\n"
            "try:\n"
            "    import edgeavs.tvm_api\n"
            "except EdgeAVSError as exc:\n"
            "    print(exc)\n")
    env = child_env()
    env.pop("TVM_USE_RUNTIME_LIB", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "without its compiler" in lines[0] and "TVM_USE_RUNTIME_LIB" in lines[0]


@pytest.mark.slow
def test_linking_the_weights_changes_no_output_bit(tmp_path, full_load_logits):
    """The same model compiled with its weights as VM constants (the build before): same bits."""
    from edgeavs.compiler.build import compile_artifact

    compile_artifact(tmp_path / "const", target="host", variant="tiny", resolution=RESOLUTION,
                     link_weights=False)
    const = load_artifact(tmp_path / "const")
    assert json.loads((tmp_path / "const" / MANIFEST).read_text())["linked_weights"]["tensors"] == 0
    np.testing.assert_array_equal(const.run(*random_inputs(0, H, W)), full_load_logits)
