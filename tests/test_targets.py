"""Targets as data: targets/*.yaml -> a frozen Target, with one-line errors."""

from __future__ import annotations

import dataclasses
import os

import pytest

from edgeavs.errors import EdgeAVSError
from edgeavs.targets import ALLOWED_KEYS, Target, available_targets, fingerprint, load_target

SNAPDRAGON = """\
name: snapdragon8elite
description: Snapdragon 8 Elite (Oryon-1), Android
kind: llvm
mtriple: aarch64-linux-android
mcpu: oryon-1
mattr: [+neon, +dotprod, +i8mm, +fullfp16]
num-cores: 8
link: ndk
"""


def _write(tmp_path, text, name="t.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_host_is_detected_and_frozen():
    t = load_target("host")
    assert "host" in available_targets()
    assert isinstance(t, Target) and t.kind == "llvm" and t.link == "host"
    assert t.mcpu not in ("", "native", "generic")
    assert t.num_cores == len(os.sched_getaffinity(0))
    assert t.vector_width >= 128
    assert t.tvm_dict() == {"kind": "llvm", "mcpu": t.mcpu, "num-cores": t.num_cores}
    assert t.fingerprint() == fingerprint(dict(reversed(list(t.tvm_dict().items()))))
    assert len(t.fingerprint()) == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.mcpu = "x"  # type: ignore[misc]
    t.to_tvm()  # TVM accepts the dict


def test_snapdragon_fits_the_schema(tmp_path):
    t = load_target(_write(tmp_path, SNAPDRAGON))
    assert t.tvm_dict() == {"kind": "llvm", "mtriple": "aarch64-linux-android", "mcpu": "oryon-1",
                            "mattr": ["+neon", "+dotprod", "+i8mm", "+fullfp16"], "num-cores": 8}
    assert t.vector_width == 128 and t.link == "ndk"
    assert t.fingerprint() != load_target("host").fingerprint()


def test_unknown_name():
    with pytest.raises(EdgeAVSError, match=r"^unknown target 'pixel99'; choose one of: .*host"):
        load_target("pixel99")


def test_unknown_key_lists_the_allowed(tmp_path):
    p = _write(tmp_path, SNAPDRAGON + "cores: 8\n")
    with pytest.raises(EdgeAVSError) as e:
        load_target(p)
    assert str(e.value) == f"target {p}: unknown key(s) 'cores'; allowed: {', '.join(ALLOWED_KEYS)}"


def test_malformed_yaml(tmp_path):
    p = _write(tmp_path, "kind: llvm\nmattr: [+neon\n")
    with pytest.raises(EdgeAVSError, match=rf"^target file {p} is not valid YAML at line \d+: "):
        load_target(p)
    with pytest.raises(EdgeAVSError, match="must be a YAML mapping"):
        load_target(_write(tmp_path, "- llvm\n", "list.yaml"))


def test_llvm_must_know_the_cpu(tmp_path):
    p = _write(tmp_path, SNAPDRAGON.replace("oryon-1", "oryon-9"))
    with pytest.raises(EdgeAVSError, match=r"does not know mcpu 'oryon-9' for triple 'aarch64-linux-android'"):
        load_target(p)


@pytest.mark.parametrize("line, message", [
    ("mattr: +neon", "mattr must be a list"),
    ("num-cores: 0", "num-cores must be a positive integer"),
    ("kind: cuda", "kind 'cuda' is not supported; allowed: llvm"),
    ("link: usb", "link 'usb' is not one of: host, cross, ndk"),
    ("link: cross", "link: cross needs cross_cc"),
])
def test_bad_values(tmp_path, line, message):
    key = line.split(":")[0]
    text = "\n".join(ln for ln in SNAPDRAGON.splitlines() if not ln.startswith(key + ":")) + f"\n{line}\n"
    with pytest.raises(EdgeAVSError, match=message):
        load_target(_write(tmp_path, text))


def test_llvm_must_know_every_feature(tmp_path):
    p = _write(tmp_path, SNAPDRAGON.replace("+i8mm", "+i9mm"))
    with pytest.raises(EdgeAVSError, match=r"^target .*: LLVM \d+ does not know the aarch64 feature\(s\) \+i9mm in mattr"):
        load_target(p)
