"""edgeavs.video: the causal audio ring, streaming decode with audio up to each frame's time,
the writer, and one-line errors for bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeavs.errors import EdgeAVSError
from edgeavs.io.audio import resample
from edgeavs.video import AudioRing, MediaReader, overlay, probe, write_clip

FPS, SR, SECONDS = 10, 44100, 3
TONE_HZ, TONE_START = 440.0, 1.0


def frames(n=FPS * SECONDS, h=64, w=96):
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        x = 5 + 2 * i
        img[20:40, x:x + 16] = (220, 40, 40)
        yield img


def tone(seconds=SECONDS, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * TONE_HZ * t) * (t >= TONE_START)).astype(np.float32)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_clip(path, frames(), tone(), FPS, SR, faststart=True)
    return path


def test_ring_window_zero_pads_and_drops():
    ring = AudioRing(capacity=4)
    ring.append(np.arange(1, 11, dtype=np.float32))  # samples 0..9 hold 1..10, grows past 4
    assert ring.end == 10 and len(ring) == 10
    np.testing.assert_array_equal(ring.window(3, 5), [0, 0, 1, 2, 3])  # before the track: zeros
    np.testing.assert_array_equal(ring.window(12, 4), [9, 10, 0, 0])  # not decoded yet: zeros
    ring.drop_before(6)
    assert ring.start == 6 and len(ring) == 4
    np.testing.assert_array_equal(ring.window(8, 4), [0, 0, 7, 8])  # dropped: zeros
    ring.append(np.array([11.0], np.float32))
    np.testing.assert_array_equal(ring.window(11, 3), [9, 10, 11])


def test_probe_round_trip(clip):
    p = probe(clip)
    assert (p["frames"], p["width"], p["height"], p["fps"]) == (30, 96, 64, 10.0)
    assert p["audio"]["rate"] == SR and abs(p["audio"]["duration"] - SECONDS) < 2048 / SR


def test_reader_streams_frames_with_causal_audio(clip):
    seen = []
    with MediaReader(clip) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frames) == (96, 64, 30)
        for kind, item in reader:
            if kind != "video":
                continue
            w = reader.window(item.time)
            assert w.shape == (32000,) and w.dtype == np.float32
            # what the previous frame's window no longer needs has been dropped: memory is flat
            if seen:
                assert reader.ring.start >= reader.sample_index(seen[-1][1]) - 32000
            assert len(reader.ring) < 2 * 32000
            seen.append((item.index, item.time, float(np.sqrt(np.mean(w[-8000:] ** 2)))))
            if item.index == 25:
                last = w
    assert [s[0] for s in seen] == list(range(30))
    np.testing.assert_allclose([s[1] for s in seen], np.arange(30) / FPS, atol=1e-6)
    rms = {i: r for i, _, r in seen}
    # causal: up to the onset at 1 s the last quarter-second is silent; after it, the tone
    assert max(rms[i] for i in range(0, 10)) < 0.01
    assert all(abs(rms[i] - 0.3 / np.sqrt(2)) < 0.03 for i in range(13, 30))
    # the 32 kHz window is the tone (libswresample vs our scipy resampler, through AAC)
    ref = resample(tone(), SR, 32000)[int(1.5 * 32000):int(2.5 * 32000)]
    assert np.linalg.norm(last - ref) / np.linalg.norm(ref) < 0.05


def test_overlay_blends_only_the_mask():
    rgb = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = overlay(rgb, mask, colour=(255, 0, 255), alpha=0.5)
    np.testing.assert_allclose(out[1, 2], [177.5, 50, 177.5], atol=1)
    out = out.copy()
    out[1, 2] = 100
    assert (out == 100).all()
    assert (overlay(rgb, mask, alpha=0.0) == rgb).all()


def _error(path, **kw):
    with pytest.raises(EdgeAVSError) as info:
        with MediaReader(path, **kw) as reader:
            for _ in reader:
                pass
    return str(info.value)


def test_bad_inputs(tmp_path, clip):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    assert _error(text).startswith(f"{text}: not a media file FFmpeg can read")
    assert _error(tmp_path / "nope.mp4") == f"{tmp_path / 'nope.mp4'}: file not found"

    silent = tmp_path / "silent.mp4"
    write_clip(silent, frames(5), None, FPS, SR)
    assert _error(silent) == (f"{silent}: no audio stream; the model segments what makes the sound, "
                              "so pass --silent-audio to run it on silence anyway")
    with MediaReader(silent, allow_silent=True) as reader:
        windows = [reader.window(it.time) for k, it in reader if k == "video"]
    assert len(windows) == 5 and not np.any(windows)

    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.6)])
    msg = _error(cut)
    assert msg.startswith(f"{cut}: corrupt or truncated file: decoding stopped at video frame ")
    stopped = int(msg.split("video frame ")[1].split()[0])
    assert 5 < stopped < 30


def test_stereo_is_averaged_and_long_audio_is_not_buffered(tmp_path, monkeypatch):
    """Channels are averaged (as read_wav mixes WAVs); audio running past the video's end is
    not kept, so memory stays flat."""
    import edgeavs.video as video

    path = tmp_path / "stereo.mkv"
    t = np.arange(8 * SR) / SR
    left = 0.4 * np.sin(2 * np.pi * TONE_HZ * t)
    write_clip(path, frames(10), np.stack([left, 0.5 * left]).astype(np.float32), FPS, SR)
    monkeypatch.setattr(video, "MAX_LAG_S", 2.0)
    sizes = []
    with MediaReader(path) as reader:
        for kind, item in reader:
            sizes.append(len(reader.ring))
            if kind == "video" and item.index == 9:
                rms = float(np.sqrt(np.mean(reader.window(item.time)[-16000:] ** 2)))
    assert abs(rms - 0.3 / np.sqrt(2)) < 0.02  # mean of 0.4 and 0.2 amplitude
    assert max(sizes) <= 32000 + 2 * 32000
