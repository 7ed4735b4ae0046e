"""``edgeavs segment`` end to end on a generated 3-second clip: with a checkpoint (PyTorch) and
with a compiled tiny artifact (TVM, torch-free), the output's frames, size, rate and audio, the
mask PNGs, the JSON summary, and the exact one-line error of every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from edgeavs.data.synth import _shape_mask
from edgeavs.video import probe, write_clip

FPS, SR, SECONDS, W, H = 10, 44100, 3, 96, 64
N_FRAMES = FPS * SECONDS
ROOT = Path(__file__).resolve().parents[1]


def _frames():
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
    for i in range(N_FRAMES):
        img = np.empty((H, W, 3), np.uint8)
        img[:] = (90, 110, 120)
        for kind, colour, cx, cy in (("circle", (220, 40, 40), 15 + 2 * i, 20),
                                     ("square", (40, 170, 60), 80 - 1.5 * i, 44)):
            img[_shape_mask(kind, (yy - cy) / 10, (xx - cx) / 10)] = colour
        yield img


def _audio():
    t = np.arange(SECONDS * SR) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) * (t >= 1.0)).astype(np.float32)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("segment")


@pytest.fixture(scope="module")
def clip(work):
    path = work / "clip.mp4"
    write_clip(path, _frames(), _audio(), FPS, SR, faststart=True)
    return path


@pytest.fixture(scope="module")
def checkpoint(work):
    from edgeavs import build_model
    from edgeavs.model import save_checkpoint

    path = work / "tiny.pt"
    save_checkpoint(build_model("tiny", seed=0), path)
    return path


@pytest.fixture(scope="module")
def artifact(work):
    """The tiny 64x64 host artifact; shared with the compiler tests when they run in this process."""
    try:
        from tests.compiler.artifacts import tiny_artifact
    except ImportError:
        from edgeavs.compiler import compile_artifact

        out = work / "tiny-64"
        compile_artifact(out, target="host", variant="tiny", resolution="64")
        return out
    return tiny_artifact()


def _invoke(*args):
    return CliRunner().invoke(main, ["segment", *map(str, args)])


def _check_output(out, clip):
    got, ref = probe(out), probe(clip)
    assert (got["frames"], got["width"], got["height"], got["fps"]) == (N_FRAMES, W, H, FPS)
    assert abs(got["video_duration"] - ref["video_duration"]) < 1e-6
    assert got["audio"] is not None and got["audio"]["channels"] == 1
    assert abs(got["audio"]["duration"] - ref["audio"]["duration"]) <= 1024 / SR


def _check_summary(path, frames, inferred, kind, fingerprint):
    s = json.loads(Path(path).read_text())
    assert (s["frames"], s["inferred_frames"], s["predictor"]) == (frames, inferred, kind)
    assert s["fingerprint"] == fingerprint
    lat = s["model_latency_ms"]
    assert 0 < lat["median"] <= lat["p90"]
    assert s["end_to_end_fps"] > 0 and s["real_time_factor"] > 0
    assert s["duration_s"] == pytest.approx(SECONDS, abs=1e-3)
    return s


def _leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("."))


def test_segment_with_checkpoint(work, clip, checkpoint):
    from edgeavs.compiler.artifact import file_sha256

    out, masks, summary = work / "ck.mp4", work / "ck-masks", work / "ck.json"
    r = _invoke(clip, "--checkpoint", checkpoint, "--resolution", "64", "--threads", "1",
                "-o", out, "--masks", masks, "--json", summary)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-3:] == [f"wrote {out}", f"wrote {masks}/ ({N_FRAMES} PNG masks)",
                                          f"wrote {summary}"]
    _check_output(out, clip)
    pngs = sorted(masks.iterdir())
    assert [p.name for p in pngs] == [f"mask_{i:06d}.png" for i in range(N_FRAMES)]
    m = np.asarray(Image.open(pngs[0]))
    assert m.shape == (H, W) and set(np.unique(m)) <= {0, 255}
    s = _check_summary(summary, N_FRAMES, N_FRAMES, "checkpoint", file_sha256(checkpoint))
    assert s["model"]["resolution"] == [64, 64] and s["audio"] is True
    assert _leftovers(work) == []


def test_segment_with_artifact_and_fps(work, clip, artifact):
    from edgeavs.compiler.artifact import file_sha256

    out, masks, summary = work / "art.mp4", work / "art-masks", work / "art.json"
    r = _invoke(clip, "--artifact", artifact, "--fps", "4", "--threads", "1", "-o", out,
                "--masks", masks, "--json", summary)
    assert r.exit_code == 0, r.output
    _check_output(out, clip)  # every frame is written, the model ran at 4 fps
    assert len(list(masks.iterdir())) == 12
    s = _check_summary(summary, N_FRAMES, 12, "artifact", file_sha256(artifact / "manifest.json"))
    assert s["model"]["target_fingerprint"] and s["model"]["variant"] == "tiny"


def test_artifact_matches_pytorch_masks(work, clip, artifact):
    """The same weights through TVM and PyTorch give (nearly) the same masks."""
    from edgeavs.model import save_checkpoint
    from edgeavs.reference import build_reference_model
    from edgeavs.segment import ArtifactPredictor, segment_video
    from edgeavs.segment_torch import TorchPredictor

    ref = work / "reference.pt"
    save_checkpoint(build_reference_model("tiny", seed=0), ref)
    masks = {}
    for name, pred in (("tvm", ArtifactPredictor(artifact)), ("torch", TorchPredictor(ref, resolution=64))):
        segment_video(clip, pred, masks_dir=work / f"cmp-{name}", fps=2)
        masks[name] = np.stack([np.asarray(Image.open(p)) for p in sorted((work / f"cmp-{name}").iterdir())])
    assert masks["tvm"].shape == (6, H, W)
    assert (masks["tvm"] == masks["torch"]).mean() > 0.98


def test_artifact_path_does_not_import_torch(work, clip, artifact):
    out = work / "notorch.mp4"
    code = textwrap.dedent(f"""
        import sys
        from edgeavs.commands.segment import segment
        segment.main([{str(clip)!r}, "--artifact", {str(artifact)!r}, "--fps", "1", "--threads", "1",
                      "-o", {str(out)!r}], standalone_mode=False)
        assert "torch" not in sys.modules, "torch was imported"
        from edgeavs.compiler.artifact import tvm_libraries
        libs = tvm_libraries()
        assert "libtvm_runtime.so" in libs and not any("compiler" in n for n in libs), libs
        print("torch-free")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TVM_USE_RUNTIME_LIB", None)  # tests/__init__.py keeps the test process on the whole TVM
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=work,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "torch-free"
    assert probe(out)["frames"] == N_FRAMES


def _expect_error(args, line, directory):
    before = sorted(p.name for p in Path(directory).iterdir())
    r = _invoke(*args)
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1] == f"Error: {line}"
    assert sorted(p.name for p in Path(directory).iterdir()) == before  # nothing (half-)written


def test_bad_inputs(tmp_path, clip, checkpoint):
    out = tmp_path / "o.mp4"
    ck = ["--checkpoint", checkpoint, "--resolution", "64", "--threads", "1", "-o", out]

    text = tmp_path / "notes.mp4"
    text.write_text("hello\n")
    _expect_error([text, *ck], f"{text}: not a media file FFmpeg can read (Invalid data found when "
                  "processing input)", tmp_path)

    audio_only = tmp_path / "audio.mkv"
    _write_audio_only(audio_only)
    _expect_error([audio_only, *ck], f"{audio_only}: no video stream", tmp_path)

    silent = tmp_path / "silent.mp4"
    write_clip(silent, _frames(), None, FPS, SR)
    _expect_error([silent, *ck], f"{silent}: no audio stream; the model segments what makes the "
                  "sound, so pass --silent-audio to run it on silence anyway", tmp_path)

    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.6)])
    r = _invoke(cut, *ck, "--masks", tmp_path / "m")
    assert r.exit_code == 1
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {cut}: corrupt or truncated file: decoding stopped at video frame ")
    assert not out.exists() and not (tmp_path / "m").exists() and _leftovers(tmp_path) == []

    _expect_error([clip, *ck[:-1], tmp_path / "nowhere" / "o.mp4"],
                  f"output {tmp_path / 'nowhere' / 'o.mp4'}: directory {tmp_path / 'nowhere'} does not exist",
                  tmp_path)
    for fps in ("0", "-2.5"):
        _expect_error([clip, *ck, "--fps", fps], f"--fps {float(fps):g}: must be > 0", tmp_path)


def test_bad_artifact(tmp_path, clip, artifact):
    import shutil

    bad = tmp_path / "art"
    shutil.copytree(artifact, bad)
    with open(bad / "model.so", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    _expect_error([clip, "--artifact", bad, "-o", tmp_path / "o.mp4"],
                  f"artifact {bad}: model.so does not match its sha256 in manifest.json (modified or "
                  "corrupted)", tmp_path)
    _expect_error([clip, "-o", tmp_path / "o.mp4"], "pass exactly one of --artifact DIR or "
                  "--checkpoint FILE", tmp_path)
    _expect_error([clip, "--artifact", artifact, "--resolution", "64", "-o", tmp_path / "o.mp4"],
                  "--resolution goes with --checkpoint; an artifact's input size is fixed when it is "
                  "compiled", tmp_path)


def _write_audio_only(path):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=SR)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(_audio()[None, :SR], format="flt", layout="mono")
        frame.sample_rate = SR
        res = av.AudioResampler(format="fltp", layout="mono", rate=SR, frame_size=1024)
        pts = 0
        for f in list(res.resample(frame)) + list(res.resample(None)):
            f.pts = pts
            pts += f.samples
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_demo_reuses_a_matching_artifact(tmp_path, artifact):
    """The demo on a 2-s clip, with the shared 64x64 artifact already in OUT_DIR (no compile)."""
    import shutil

    from edgeavs.demo import reusable_artifact, run_demo

    out_dir = tmp_path / "demo"
    out_dir.mkdir()
    art = out_dir / "artifact-tiny-64-host"
    shutil.copytree(artifact, art)
    seed0 = {"source": "random-init", "seed": 0}
    assert reusable_artifact(art, "tiny", 64, "host", seed0)
    assert not reusable_artifact(art, "tiny", 96, "host", seed0)
    assert not reusable_artifact(art, "tiny", 64, "host", {"source": "checkpoint", "checkpoint_sha256": "0"})
    lines = []
    summary = run_demo(out_dir, resolution=64, seconds=2.0, threads=1, random_weights=True,
                       say=lines.append)
    assert f"artifact  {art} (reused)" in lines
    assert any("UNTRAINED" in line for line in lines)
    assert lines[-1] == f"overlay   {out_dir / 'clip_seg.mp4'}"
    p = probe(out_dir / "clip_seg.mp4")
    assert p["frames"] == summary["frames"] == 20 and p["audio"] is not None


def test_edgeavs_cli_segment_artifact_does_not_import_torch(work, clip, artifact):
    """The same through cli.py, which registers every sub-command."""
    code = textwrap.dedent(f"""
        import sys
        from cli import main
        main(["segment", {str(clip)!r}, "--artifact", {str(artifact)!r}, "--fps", "1", "--threads",
              "1", "-o", {str(work / "cli-notorch.mp4")!r}], standalone_mode=False)
        assert "torch" not in sys.modules, "torch was imported"
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=work,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


class _Recorder:
    """A numpy predictor: logits +10 on the left half, -10 on the right; records its inputs."""

    kind, fingerprint, details = "fake", "0" * 64, {}

    def __init__(self, size=(32, 32), interrupt_at=None):
        self.input_size = size
        self.calls = []
        self.interrupt_at = interrupt_at

    def __call__(self, frames, waveform):
        assert frames.shape == (1, 3, *self.input_size) and waveform.shape == (1, 32000)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls.append(waveform[0].copy())
        logits = np.full((1, 1, *self.input_size), -10.0, np.float32)
        logits[..., : self.input_size[1] // 2] = 10.0
        return logits


def test_pipeline_feeds_the_causal_window_and_writes_masks(tmp_path, clip):
    from edgeavs.segment import segment_video

    rec = _Recorder()
    s = segment_video(clip, rec, out=tmp_path / "o.mp4", masks_dir=tmp_path / "m", window=0.5)
    assert s["frames"] == s["inferred_frames"] == len(rec.calls) == N_FRAMES
    for i, w in enumerate(rec.calls):
        t = i / FPS
        assert not w[:16000].any()  # --window 0.5: the first half second is zero padding
        heard = np.abs(w[16000:]).max()
        assert (heard > 0.2) == (t >= 1.1), (t, heard)  # the tone starts at 1 s, causally
    mask = np.asarray(Image.open(tmp_path / "m" / "mask_000007.png"))
    assert (mask[:, : W // 2 - 1] == 255).all() and (mask[:, W // 2 + 1:] == 0).all()


def test_interrupt_leaves_nothing_behind(tmp_path, clip):
    from edgeavs.segment import segment_video

    with pytest.raises(KeyboardInterrupt):
        segment_video(clip, _Recorder(interrupt_at=5), out=tmp_path / "o.mp4",
                      masks_dir=tmp_path / "m", json_path=tmp_path / "s.json")
    assert list(tmp_path.iterdir()) == []
