"""One code generation linked for the phone (NDK) and for AArch64 Linux (cross gcc)."""

import pytest

from edgeavs.device.export import LINUX_LIBRARY, export_libraries, find_ndk_compiler, library_for
from edgeavs.device.isa import check_no_sve
from edgeavs.targets import load_checked_target
from edgeavs.errors import EdgeAVSError

from .conftest import matmul_module


@pytest.fixture(scope="module")
def oryon_executable(emulator):
    from edgeavs.tvm_api import tvm

    target = load_checked_target("snapdragon8elite")
    return target, tvm.compile(matmul_module(), target=target.to_tvm())


def _no_ndk(monkeypatch):
    for var in ("TVM_NDK_CC", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"):
        monkeypatch.delenv(var, raising=False)


def test_without_ndk_the_linux_library_is_still_made(oryon_executable, tmp_path, monkeypatch):
    _no_ndk(monkeypatch)
    target, ex = oryon_executable
    logged = []
    rec = export_libraries(ex, tmp_path, target, log=logged.append)
    assert rec["library"] is None
    assert rec["libraries"] == [{"file": LINUX_LIBRARY, "role": "verify", "os": "linux",
                                 "linker": "aarch64-linux-gnu-gcc"}]
    assert [s["file"] for s in rec["skipped"]] == ["model.so"]
    assert logged == [rec["skipped"][0]["reason"]]
    assert logged[0].startswith("Android library model.so not produced: no Android NDK")
    assert sorted(p.name for p in tmp_path.iterdir()) == [LINUX_LIBRARY]
    check_no_sve(tmp_path / LINUX_LIBRARY)
    manifest = {"link": "ndk", "libraries": rec["libraries"], "libraries_skipped": rec["skipped"]}
    assert library_for(manifest, "linux") == LINUX_LIBRARY
    with pytest.raises(EdgeAVSError, match="no library for a android device.*NDK"):
        library_for(manifest, "android")


def test_with_ndk_both_libraries(oryon_executable, tmp_path, monkeypatch):
    """TVM_NDK_CC names the NDK clang++; any AArch64 linker exercises the path here."""
    _no_ndk(monkeypatch)
    monkeypatch.setenv("TVM_NDK_CC", "aarch64-linux-gnu-gcc")
    target, ex = oryon_executable
    rec = export_libraries(ex, tmp_path, target)
    assert rec["library"] == "model.so" and rec["skipped"] == []
    assert [(lib["file"], lib["role"], lib["os"]) for lib in rec["libraries"]] == [
        ("model.so", "phone", "android"), (LINUX_LIBRARY, "verify", "linux")]
    for lib in rec["libraries"]:
        check_no_sve(tmp_path / lib["file"])


def test_ndk_home_lookup(tmp_path, monkeypatch):
    _no_ndk(monkeypatch)
    bindir = tmp_path / "ndk" / "toolchains" / "llvm" / "prebuilt" / "linux-x86_64" / "bin"
    bindir.mkdir(parents=True)
    for api in (24, 28, 34):
        (bindir / f"aarch64-linux-android{api}-clang++").touch()
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path / "ndk"))
    cc, how = find_ndk_compiler()
    assert cc.endswith("aarch64-linux-android28-clang++") and how == "ANDROID_NDK_HOME (API 28)"
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path / "nothing"))
    cc, how = find_ndk_compiler()
    assert cc is None and "toolchains/llvm/prebuilt" in how


def test_cross_target_links_model_so(emulator, tmp_path):
    from edgeavs.tvm_api import tvm

    target = load_checked_target("aarch64-linux")
    ex = tvm.compile(matmul_module(), target=target.to_tvm())
    rec = export_libraries(ex, tmp_path, target)
    assert rec["library"] == "model.so"
    assert rec["libraries"][0]["role"] == "device" and rec["libraries"][0]["os"] == "linux"
    assert library_for({"link": "cross", "libraries": rec["libraries"]}, "linux") == "model.so"


def test_host_artifact_has_no_device_library():
    with pytest.raises(EdgeAVSError, match="compiled for the host"):
        library_for({"link": "host", "library": "model.so"}, "linux")


def test_device_linker(monkeypatch):
    from edgeavs.device.export import device_linker

    _no_ndk(monkeypatch)
    sd8e = load_checked_target("snapdragon8elite")
    assert device_linker(sd8e, "linux") == "aarch64-linux-gnu-gcc"
    with pytest.raises(EdgeAVSError, match="cannot link for Android: no Android NDK"):
        device_linker(sd8e, "android")
    monkeypatch.setenv("TVM_NDK_CC", "/ndk/clang++")
    assert device_linker(sd8e, "android") == "/ndk/clang++"
    with pytest.raises(EdgeAVSError, match="names no cross_cc"):
        device_linker(load_checked_target("host"), "linux")
