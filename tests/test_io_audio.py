import struct
import subprocess
import sys

import numpy as np
import pytest
from scipy.io import wavfile

from edgeavs.errors import EdgeAVSError
from edgeavs.io.audio import load_audio, read_wav, resample, split_windows


def _sine(f, sr, n, phase=0.0):
    return np.sin(2 * np.pi * f * np.arange(n) / sr + phase)


def _rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture
def wav16(tmp_path):
    x = (0.5 * _sine(440, 16000, 16000) * 32767).astype(np.int16)
    p = tmp_path / "a.wav"
    wavfile.write(p, 16000, x)
    return p, x


# --- read_wav: formats -------------------------------------------------------------------

def test_read_int16_scaled(wav16):
    p, x = wav16
    y, sr = read_wav(p)
    assert sr == 16000 and y.dtype == np.float32 and y.shape == (16000,)
    np.testing.assert_array_equal(y, x.astype(np.float32) / 32768.0)


@pytest.mark.parametrize("dtype,scale,offset", [
    (np.uint8, 128.0, 128.0), (np.int16, 2.0 ** 15, 0.0), (np.int32, 2.0 ** 31, 0.0)])
def test_read_int_formats_full_range(tmp_path, dtype, scale, offset):
    info = np.iinfo(dtype)
    data = np.array([info.min, 0 if offset == 0 else 128, info.max], dtype=dtype)
    p = tmp_path / "i.wav"
    wavfile.write(p, 8000, data)
    y, _ = read_wav(p)
    np.testing.assert_allclose(y, (data.astype(np.float64) - offset) / scale, atol=1e-7)
    assert y[0] == -1.0 and y[-1] < 1.0


def test_read_24bit(tmp_path):
    # scipy has no 24-bit writer: build one (values -2**23, 0, 2**22, 2**23-1) with its header.
    vals = [-(2 ** 23), 0, 2 ** 22, 2 ** 23 - 1]
    frames = b"".join(v.to_bytes(3, "little", signed=True) for v in vals)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000 * 3, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    p = tmp_path / "24.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    y, sr = read_wav(p)
    assert sr == 8000
    np.testing.assert_allclose(y, np.array(vals) / 2.0 ** 23, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_float(tmp_path, dtype):
    x = (0.25 * _sine(300, 8000, 800)).astype(dtype)
    p = tmp_path / "f.wav"
    wavfile.write(p, 8000, x)
    y, sr = read_wav(p)
    assert y.dtype == np.float32 and sr == 8000
    np.testing.assert_allclose(y, x, atol=1e-7)


def test_stereo_mixed_to_mono(tmp_path):
    left = np.full(100, 1000, np.int16)
    right = np.full(100, -3000, np.int16)
    p = tmp_path / "s.wav"
    wavfile.write(p, 16000, np.stack([left, right], axis=1))
    y, _ = read_wav(p)
    assert y.shape == (100,)
    np.testing.assert_allclose(y, -1000 / 32768.0, atol=1e-7)


def test_rifx_big_endian(tmp_path):
    x = np.array([-32768, 0, 1000, 32767], np.int16)
    fmt = struct.pack(">HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = (b"WAVE" + b"fmt " + struct.pack(">I", 16) + fmt
            + b"data" + struct.pack(">I", x.nbytes) + x.astype(">i2").tobytes())
    p = tmp_path / "rifx.wav"
    p.write_bytes(b"RIFX" + struct.pack(">I", len(body)) + body)
    y, sr = read_wav(p)
    assert sr == 16000 and y.dtype == np.float32
    np.testing.assert_array_equal(y, x / 32768.0)


# --- read_wav: errors --------------------------------------------------------------------

def _err(path):
    with pytest.raises(EdgeAVSError) as ei:
        read_wav(path)
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file(tmp_path):
    assert "not found" in _err(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    p = tmp_path / "e.wav"
    p.write_bytes(b"")
    assert "empty" in _err(p)


def test_png_renamed_wav(tmp_path):
    from PIL import Image
    p = tmp_path / "img.wav"
    Image.new("RGB", (4, 4)).save(p, format="PNG")
    assert "not a WAV file" in _err(p)


@pytest.mark.parametrize("cut", [1, 1001, 16000])
def test_truncated(wav16, tmp_path, cut):
    p, _ = wav16
    b = p.read_bytes()
    t = tmp_path / "t.wav"
    t.write_bytes(b[:len(b) - cut])
    assert "truncated" in _err(t)


def test_riff_but_not_wave(tmp_path):
    p = tmp_path / "video.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", 4) + b"AVI ")
    assert "not a WAV file" in _err(p)


def test_truncated_header(wav16, tmp_path):
    p, _ = wav16
    t = tmp_path / "t.wav"
    t.write_bytes(p.read_bytes()[:30])
    msg = _err(t)
    assert "truncated" in msg or "invalid" in msg


def test_truncated_with_consistent_riff_size(wav16, tmp_path):
    # Data chunk cut but RIFF size patched to match: scipy reads this silently.
    p, _ = wav16
    b = bytearray(p.read_bytes()[:-1000])
    b[4:8] = struct.pack("<I", len(b) - 8)
    t = tmp_path / "t.wav"
    t.write_bytes(bytes(b))
    assert "truncated" in _err(t)


def test_zero_samples(tmp_path):
    p = tmp_path / "z.wav"
    wavfile.write(p, 16000, np.zeros(0, np.int16))
    assert "no samples" in _err(p)


def test_unsupported_format(tmp_path):
    # WAVE_FORMAT_ALAW (6): a valid header scipy does not decode.
    fmt = struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 4) + b"\0" * 4
    p = tmp_path / "alaw.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert "unsupported" in _err(p)


# --- resample ----------------------------------------------------------------------------

def test_resample_16k_to_32k_matches_analytic_sine():
    x = _sine(1000, 16000, 16000).astype(np.float32)
    y = resample(x, 16000, 32000)
    assert y.dtype == np.float32 and y.shape == (32000,)
    ref = _sine(1000, 32000, 32000)
    inner = slice(500, -500)  # away from the zero-padded edges
    assert _rel_l2(y[inner], ref[inner]) <= 1e-3
    # exact x2: the original samples are kept on the even positions (to filter accuracy)
    np.testing.assert_allclose(y[inner][::2], x[inner.start // 2:inner.stop // 2], atol=1e-3)


@pytest.mark.parametrize("sr_in,n_out", [(44100, 32000), (48000, 32000), (22050, 32000), (8000, 32000)])
def test_resample_general_ratios(sr_in, n_out):
    x = _sine(1000, sr_in, sr_in).astype(np.float32)
    y = resample(x, sr_in, 32000)
    assert y.shape == (n_out,)
    ref = _sine(1000, 32000, n_out)
    assert _rel_l2(y[500:-500], ref[500:-500]) <= 1e-3


def test_resample_length_rounds_up_and_identity():
    x = np.ones(1001, np.float32)
    assert resample(x, 44100, 32000).shape == (int(np.ceil(1001 * 320 / 441)),)
    np.testing.assert_array_equal(resample(x, 32000, 32000), x)


def test_resample_bad_rate():
    with pytest.raises(EdgeAVSError, match="sr_in"):
        resample(np.zeros(10), 0, 32000)


# --- load_audio / split_windows ----------------------------------------------------------

def test_load_audio_resamples(wav16):
    p, x = wav16
    y = load_audio(p)
    assert y.shape == (32000,) and y.dtype == np.float32
    ref = 0.5 * _sine(440, 32000, 32000)
    assert _rel_l2(y[500:-500], ref[500:-500]) <= 1e-3


def test_load_audio_wrong_rate(wav16):
    p, _ = wav16
    with pytest.raises(EdgeAVSError) as ei:
        load_audio(p, expected_rate=44100)
    msg = str(ei.value)
    assert msg == f"{p}: wrong sample rate 16000 Hz, expected 44100 Hz"


def test_split_windows_exact_and_padded():
    x = np.arange(5 * 4, dtype=np.float32)
    w = split_windows(x, 5, window=4)
    assert w.shape == (5, 4) and w.dtype == np.float32
    np.testing.assert_array_equal(w.reshape(-1), x)
    w = split_windows(x[:17], 5, window=4)
    np.testing.assert_array_equal(w[4], [16, 0, 0, 0])
    w = split_windows(np.ones(100), 2, window=4)  # longer: the rest is dropped
    assert w.shape == (2, 4) and (w == 1).all()


def test_split_windows_bad_input():
    with pytest.raises(EdgeAVSError, match="n_windows"):
        split_windows(np.zeros(10), 0)
    with pytest.raises(EdgeAVSError, match="1-D"):
        split_windows(np.zeros((2, 10)), 2, window=10)


def test_no_torch_import():
    code = "import sys, edgeavs.io.audio, edgeavs.io.frames; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
