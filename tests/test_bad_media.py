"""Bad audio, image and video inputs never crash the tool.

Seeded mutation loops (flipped bytes, cuts, garbage, header fields and chunk sizes set to 0 or
huge values) run small valid WAVs, PNGs and MP4/MKVs generated here through the library entry
points the CLI uses. Every case either returns valid data or raises EdgeAVSError with a
one-line message naming the file; any other exception fails the test with its seed and case.
Targeted tests pin each reported defect.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import traceback
import warnings
import zlib

import av
import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

import edgeavs.io.audio as audio_mod
from edgeavs.data.avsbench import check_dataset, read_meta
from edgeavs.data.synth import make_synthetic
from edgeavs.errors import EdgeAVSError
from edgeavs.io.audio import load_audio, read_wav
from edgeavs.io.frames import MAX_IMAGE_PIXELS, load_frame, load_mask, open_image
from edgeavs.video import MediaReader, probe, write_clip

SEED = 15


def _outcome(what, case, path, fn):
    """``fn()``'s result, or None for a one-line EdgeAVSError naming ``path``; anything else fails."""
    try:
        return fn()
    except EdgeAVSError as exc:
        msg = str(exc)
        assert "\n" not in msg and os.fspath(path) in msg, f"{what} seed {SEED} case {case}: {msg!r}"
        return None
    except Exception as exc:  # noqa: BLE001 - this is what the test is about
        pytest.fail(f"{what} seed {SEED} case {case}: {type(exc).__name__}: {exc}\n"
                    + "".join(traceback.format_exception(exc)[-6:]))


# ---------------------------------------------------------------------- WAV

def _wav_bytes(rate, data) -> bytes:
    buf = io.BytesIO()
    wavfile.write(buf, rate, data)
    return buf.getvalue()


def _base_wavs():
    x = (np.random.default_rng(0).standard_normal(1600) * 3000).astype(np.int16)
    return [_wav_bytes(16000, x), _wav_bytes(16000, np.stack([x, x // 2], 1)),
            _wav_bytes(16000, x.astype(np.float32) / 32768), _wav_bytes(16000, x.astype(np.int32) << 16),
            _wav_bytes(16000, (x // 256 + 128).astype(np.uint8))]


def _mutate_wav(rnd, b: bytes) -> bytes:
    b = bytearray(b)
    k = rnd.randrange(6)
    if k == 0:  # flip bits in the header
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(min(64, len(b)))
            b[i] ^= 1 << rnd.randrange(8)
    elif k == 1:  # cut
        b = b[:rnd.randrange(len(b))]
    elif k == 2:  # RIFF, fmt or data chunk size
        off = rnd.choice([4, 16, 40])
        b[off:off + 4] = struct.pack("<I", rnd.choice([0, 1, 7, 0xFFFFFFFF, 0x7FFFFFFF, rnd.randrange(1 << 32)]))
    elif k == 3:  # a fmt field (format, channels, rate, byte rate, block align, bits) to 0 or huge
        off, f = rnd.choice([(20, "H"), (22, "H"), (24, "I"), (28, "I"), (32, "H"), (34, "H")])
        top = 1 << (8 * struct.calcsize(f))
        b[off:off + struct.calcsize(f)] = struct.pack("<" + f, rnd.choice([0, 1, 3, top - 1, rnd.randrange(top)]))
    elif k == 4:  # garbage anywhere
        i = rnd.randrange(len(b))
        b[i:i + 4] = bytes(rnd.randrange(256) for _ in range(4))
    else:  # chunk ids
        b[8:12] = rnd.choice([b"WAVE", b"WAVX"])
        b[12:16] = rnd.choice([b"fmt ", b"data", b"LIST", b"JUNK", b"abcd"])
    return bytes(b)


def _valid_audio(x, rate=None):
    assert x.dtype == np.float32 and x.ndim == 1 and x.size > 0 and np.isfinite(x).all()
    if rate is not None:
        assert audio_mod.MIN_SAMPLE_RATE <= rate <= audio_mod.MAX_SAMPLE_RATE


def test_mutated_wavs(tmp_path):
    rnd = random.Random(SEED)
    bases = _base_wavs()
    outcomes = {"ok": 0, "error": 0}
    for case in range(100):
        path = tmp_path / f"wav_{case}.wav"
        path.write_bytes(_mutate_wav(rnd, rnd.choice(bases)))
        got = _outcome("read_wav", case, path, lambda: read_wav(path))
        if got is not None:
            _valid_audio(*got)
            _valid_audio(_outcome("load_audio", case, path, lambda: load_audio(path)))
        outcomes["ok" if got is not None else "error"] += 1
    assert min(outcomes.values()) > 10, outcomes  # the loop exercises both sides


def _wav_fields(base=None, **fields):
    """A 16-bit mono 16 kHz WAV with fmt fields (channels, rate, byte_rate, align, bits) replaced."""
    b = bytearray(base or _wav_bytes(16000, np.arange(100, dtype=np.int16)))
    offsets = {"tag": (20, "H"), "channels": (22, "H"), "rate": (24, "I"), "byte_rate": (28, "I"),
               "align": (32, "H"), "bits": (34, "H"), "data_size": (40, "I"), "riff_size": (4, "I")}
    for name, value in fields.items():
        off, f = offsets[name]
        b[off:off + struct.calcsize(f)] = struct.pack("<" + f, value)
    return bytes(b)


def _wav_error(tmp_path, data: bytes, name="bad.wav") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(EdgeAVSError) as ei:
        read_wav(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


@pytest.mark.parametrize("fields,expect", [
    ({"channels": 0}, "0 channels"),                          # ZeroDivisionError in scipy
    ({"align": 0}, "block size 0 bytes"),                     # ZeroDivisionError in scipy
    ({"rate": 0, "byte_rate": 0}, "invalid sample rate 0 Hz"),
    ({"rate": 4_000_000_000, "byte_rate": 0}, "invalid sample rate 4000000000 Hz"),
    ({"tag": 3, "bits": 32, "align": 3, "byte_rate": 48000}, "unsupported WAV sample format"),  # '<f3'
    ({"bits": 0}, "0-bit samples"),
    ({"bits": 24}, "24-bit samples in 2-byte containers"),
    ({"data_size": 0xFFFFFFFF}, "truncated WAV file (header declares 4294967295 bytes"),
    ({"data_size": 199}, "not a whole number of 2-byte frames"),
    ({"riff_size": 4}, "no fmt or data chunk within the size"),  # UnboundLocalError in scipy
])
def test_wav_header_fields(tmp_path, fields, expect):
    assert expect in _wav_error(tmp_path, _wav_fields(**fields))


def test_wav_without_fmt_or_data_chunk(tmp_path):
    good = _wav_fields()
    no_data = good[:36] + b"LIST" + good[40:]  # the data chunk renamed
    assert "no data chunk" in _wav_error(tmp_path, no_data)
    body = b"WAVE" + b"data" + struct.pack("<I", 4) + b"\0" * 4
    no_fmt = b"RIFF" + struct.pack("<I", len(body)) + body
    assert "data chunk before any fmt chunk" in _wav_error(tmp_path, no_fmt)
    assert "truncated" in _wav_error(tmp_path, good[:24])  # inside the fmt chunk


def test_wav_non_finite_float_and_size_limit(tmp_path, monkeypatch):
    x = np.zeros(100, np.float32)
    x[5] = np.nan
    assert "non-finite samples" in _wav_error(tmp_path, _wav_bytes(16000, x))
    big = np.full(10, 1e300)
    assert "non-finite samples" in _wav_error(tmp_path, _wav_bytes(16000, big))  # beyond float32
    monkeypatch.setattr(audio_mod, "MAX_WAV_BYTES", 100)
    assert "too large" in _wav_error(tmp_path, _wav_fields())


# ---------------------------------------------------------------------- PNG

def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _with_ihdr(png: bytes, width=None, height=None, **fields) -> bytes:
    """``png`` with IHDR fields replaced and a correct CRC, so Pillow trusts them."""
    w, h, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", png[16:29])
    vals = dict(w=w if width is None else width, h=h if height is None else height, depth=depth,
                ctype=ctype, comp=comp, filt=filt, inter=inter)
    vals.update(fields)
    return png[:8] + _chunk(b"IHDR", struct.pack(">IIBBBBB", *vals.values())) + png[33:]


def _base_pngs():
    rgb = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    return [_png_bytes(i) for i in (img, img.convert("L"), img.convert("P"), img.convert("RGBA"),
                                    img.convert("1"))]


def _mutate_png(rnd, b: bytes) -> bytes:
    b = bytearray(b)
    k = rnd.randrange(6)
    if k == 0:
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
    elif k == 1:
        b = b[:rnd.randrange(len(b))]
    elif k in (2, 3):  # one IHDR field to 0, small or huge, with a valid CRC
        name = rnd.choice(["width", "height", "depth", "ctype", "comp", "filt", "inter"])
        top = 1 << (32 if name in ("width", "height") else 8)
        value = rnd.choice([0, 1, 2, 3, 7, 16, 255, 100_000, 0x7FFFFFFF, rnd.randrange(top)]) % top
        b = bytearray(_with_ihdr(bytes(b), **{name: value}))
    elif k == 4:  # the first chunk after IHDR gets a garbage length
        b[33:37] = struct.pack(">I", rnd.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rnd.randrange(1 << 32)]))
    else:  # garbage in the image data
        i = rnd.randrange(33, len(b))
        b[i:i + 8] = bytes(rnd.randrange(256) for _ in range(8))
    return bytes(b)


def test_mutated_pngs(tmp_path):
    rnd = random.Random(SEED)
    bases = _base_pngs()
    outcomes = {"ok": 0, "error": 0}
    for case in range(100):
        path = tmp_path / f"png_{case}.png"
        path.write_bytes(_mutate_png(rnd, rnd.choice(bases)))
        size = rnd.choice([None, 8, (6, 10)])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no DecompressionBombWarning (or other) leaks out
            frame = _outcome("load_frame", case, path, lambda: load_frame(path, size))
            mask = _outcome("load_mask", case, path, lambda: load_mask(path, size))
        assert (frame is None) == (mask is None), f"case {case}: frame and mask readers disagree"
        if frame is not None:
            assert frame.dtype == np.float32 and frame.ndim == 3 and frame.shape[0] == 3
            assert frame.min() >= 0 and frame.max() <= 1
            assert mask.shape == frame.shape[1:] and set(np.unique(mask)) <= {0.0, 1.0}
        outcomes["ok" if frame is not None else "error"] += 1
    assert min(outcomes.values()) > 10, outcomes


def _img_error(path, fn=load_frame) -> str:
    with pytest.raises(EdgeAVSError) as ei:
        fn(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def test_png_huge_ihdr_is_refused_before_decoding(tmp_path):
    png = _base_pngs()[0]
    bomb = tmp_path / "bomb.png"  # 2**31-1 squared: Pillow's DecompressionBombError
    bomb.write_bytes(_with_ihdr(png, 0x7FFFFFFF, 0x7FFFFFFF))
    assert "image too large" in _img_error(bomb)
    assert "image too large" in _img_error(bomb, load_mask)
    ours = tmp_path / "ours.png"  # under Pillow's limit, over ours
    ours.write_bytes(_with_ihdr(png, 9000, 8000))
    assert 9000 * 8000 > MAX_IMAGE_PIXELS
    assert _img_error(ours) == f"{ours}: image too large (9000x8000 pixels; at most {MAX_IMAGE_PIXELS} are decoded)"


def test_png_decompression_bomb_warning_is_an_error(tmp_path, monkeypatch):
    # Pillow warns between MAX_IMAGE_PIXELS and twice that; the warning becomes our error
    path = tmp_path / "warn.png"
    path.write_bytes(_base_pngs()[0])  # 16 x 12 = 192 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "image too large" in _img_error(path)


def test_png_truncated_garbage_and_zero_size(tmp_path):
    png = _base_pngs()[0]
    cut = tmp_path / "cut.png"
    cut.write_bytes(png[:len(png) // 2])
    assert "unreadable image" in _img_error(cut)  # only load() finds this: the header is intact
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    msg = _img_error(garbage)
    assert "unreadable image" in msg or "not a readable image" in msg
    zero = tmp_path / "zero.png"
    zero.write_bytes(_with_ihdr(png, 0, 12))
    _img_error(zero)
    tiff = tmp_path / "doc.png"  # a format outside PNG/JPEG/BMP/WEBP is not handed to Pillow
    Image.new("RGB", (4, 4)).save(tiff, format="TIFF")
    assert _img_error(tiff) == f"{tiff}: not a readable image (PNG/JPEG/BMP/WEBP expected)"
    jpeg = tmp_path / "photo.png"  # the data check asks for PNG only
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    assert load_frame(jpeg).shape == (3, 4, 4)
    with pytest.raises(EdgeAVSError, match="PNG expected"):
        open_image(jpeg, formats=("PNG",))


# ---------------------------------------------------------------------- video

FPS, SR = 10, 16000


def _frames(n=5, h=32, w=48):
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        img[:, 4 * i:4 * i + 8] = 200
        yield img


def _tone(seconds=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    out = {}
    for name, faststart in (("fast.mp4", True), ("plain.mp4", False), ("clip.mkv", False)):
        write_clip(d / name, _frames(), _tone(), FPS, SR, faststart=faststart)
        out[name] = (d / name).read_bytes()
    return out


_BOXES = [b"mp4a", b"esds", b"avc1", b"avcC", b"stsd", b"stco", b"stsz", b"moov", b"mdat", b"trak",
          b"hdlr", b"soun", b"vide", b"mdhd", b"tkhd", b"stts"]


def _mutate_video(rnd, b: bytes) -> bytes:
    b = bytearray(b)
    k = rnd.randrange(5)
    if k == 0:
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
    elif k == 1:
        b = b[:rnd.randrange(len(b))]
    elif k == 2:
        i = rnd.randrange(len(b))
        b[i:i + 16] = bytes(rnd.randrange(256) for _ in range(16))
    elif k == 3:  # a box (or codec tag) renamed
        b = bytearray(bytes(b).replace(rnd.choice(_BOXES), rnd.choice([b"zzzz", b"free", b"\0\0\0\0"])))
    else:  # a box's size field
        i = bytes(b).find(rnd.choice(_BOXES))
        if i >= 4:
            b[i - 4:i] = rnd.choice([b"\0\0\0\0", b"\xff\xff\xff\xff", b"\0\0\0\x01",
                                     bytes(rnd.randrange(256) for _ in range(4))])
    return bytes(b)


def _read_all(path, silent):
    n = 0
    with MediaReader(path, allow_silent=silent) as reader:
        for kind, item in reader:
            if kind == "video":
                rgb = item.rgb()
                assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
                w = reader.window(item.time)
                assert w.shape == (32000,) and np.isfinite(w).all()
                n += 1
    assert n > 0
    return n


def test_mutated_videos(tmp_path, clips):
    rnd = random.Random(SEED)
    names = sorted(clips)
    outcomes = {"ok": 0, "error": 0}
    for case in range(30):
        name = rnd.choice(names)
        path = tmp_path / f"video_{case}{os.path.splitext(name)[1]}"
        path.write_bytes(_mutate_video(rnd, clips[name]))
        silent = rnd.random() < 0.5
        got = _outcome("MediaReader", case, path, lambda: _read_all(path, silent))
        _outcome("probe", case, path, lambda: probe(path))
        outcomes["ok" if got is not None else "error"] += 1
    assert min(outcomes.values()) > 3, outcomes


def _video_error(path, **kw) -> str:
    with pytest.raises(EdgeAVSError) as ei:
        _read_all(path, **kw)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def test_audio_stream_without_codec_context(tmp_path, clips):
    path = tmp_path / "nocodec.mp4"  # the AAC sample entry and its decoder config renamed
    path.write_bytes(clips["fast.mp4"].replace(b"mp4a", b"zzzz").replace(b"esds", b"zzzz"))
    with av.open(str(path)) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context is None  # what crashed
    assert "the audio stream cannot be decoded" in _video_error(path, silent=False)
    assert "--silent-audio" in _video_error(path, silent=False)
    assert _read_all(path, silent=True) == 5  # on silence, as asked
    with pytest.raises(EdgeAVSError, match="the audio stream cannot be decoded"):
        probe(path)


def test_not_a_video_no_video_zero_frames_truncated(tmp_path, clips):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    assert "not a media file FFmpeg can read" in _video_error(text, silent=True)
    wav = tmp_path / "sound.mp4"
    wav.write_bytes(_wav_bytes(SR, (_tone() * 3000).astype(np.int16)))
    assert _video_error(wav, silent=True) == f"{wav}: no video stream"
    with pytest.raises(EdgeAVSError, match="no decodable video stream"):
        probe(wav)
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    _video_error(empty, silent=True)

    zero = tmp_path / "zero.mkv"  # a video stream without a single frame, and some audio
    out = av.open(str(zero), "w")
    vs = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
    a = out.add_stream("aac", rate=SR)
    a.layout = "mono"
    f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    f.sample_rate, f.pts = SR, 0
    for p in [*a.encode(f), *a.encode(None), *vs.encode(None)]:
        out.mux(p)
    out.close()
    assert "no video frame could be decoded" in _video_error(zero, silent=False)

    for keep in (0.3, 0.6, 0.9):
        cut = tmp_path / f"cut_{keep}.mp4"
        data = clips["plain.mp4"]
        cut.write_bytes(data[:int(len(data) * keep)])
        _video_error(cut, silent=True)


def test_odd_frame_size(tmp_path):
    if "libx264" not in av.codecs_available:
        pytest.fail("this FFmpeg build lacks libx264, which 4:4:4 odd-size test clips need")
    path = tmp_path / "odd.mkv"
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = 47, 33, "yuv444p"
    for i in range(4):
        f = av.VideoFrame.from_ndarray(np.full((33, 47, 3), 40 * i, np.uint8), format="rgb24")
        f.pts = i
        for p in vs.encode(f):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    with MediaReader(path, allow_silent=True) as reader:
        shapes = [item.rgb().shape for kind, item in reader if kind == "video"]
    assert shapes == [(33, 47, 3)] * 4
    assert probe(path)["width"] == 47


# ---------------------------------------------------------------------- the data check

@pytest.fixture(scope="module")
def s4_tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("avs") / "s4"
    make_synthetic(out, task="s4", clips=3, seed=0, size=16)
    return out


def test_mutated_dataset_files(s4_tree, tmp_path):
    """One mutated WAV or PNG at a time: the check passes, or names exactly that file."""
    root = tmp_path / "tree"
    shutil.copytree(s4_tree, root)
    clips = read_meta(root, "s4")
    wavs = [c.audio for c in clips]
    pngs = [p for c in clips for p in (*c.frames, *c.masks) if p is not None]
    rnd = random.Random(SEED)
    for case in range(20):
        path = rnd.choice(wavs) if case % 2 == 0 else rnd.choice(pngs)
        good = open(path, "rb").read()
        bad = (_mutate_wav if path.endswith(".wav") else _mutate_png)(rnd, good)
        with open(path, "wb") as fh:
            fh.write(bad)
        try:
            counts = _outcome("check_dataset", case, path, lambda: check_dataset(root, "s4"))
            seen = []
            if counts is None:  # the report names that file, and only it
                with pytest.raises(EdgeAVSError):
                    check_dataset(root, "s4", report=seen.append)
                assert len(seen) == 1 and seen[0].startswith(f"{path}: "), (case, seen)
            else:
                assert counts == {"train": 1, "val": 1, "test": 1}
        finally:
            with open(path, "wb") as fh:
                fh.write(good)
    assert check_dataset(root, "s4") == {"train": 1, "val": 1, "test": 1}
