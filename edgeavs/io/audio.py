"""Audio input: read a WAV file, mix to mono, resample to the model's rate, cut into windows.

numpy and scipy only: the compiled-artifact path (``edgeavs segment --artifact``) uses this
module and must not import torch.

The model takes one second of mono audio at 32 kHz per frame (SPEC §1); AVSBench ships
16 kHz, 5-second WAVs, so the usual path is ``load_audio`` (16 kHz → 32 kHz, an exact ×2)
followed by ``split_windows(x, 5)``.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import wave

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from edgeavs.errors import EdgeAVSError

MODEL_SAMPLE_RATE = 32000

# Kaiser beta of the resampling filter. scipy's default (5.0) leaves ~9e-4 rel-L2 passband
# error on a 1 kHz tone at 16k -> 32k; 8.0 keeps it below 3e-4 up to 0.75 x the input
# Nyquist (measured: 1 kHz 1.7e-5, 4 kHz 3.0e-5, 6 kHz 3.0e-4) with deeper stop-band
# attenuation, at the cost of a slightly wider transition band near Nyquist.
_KAISER_BETA = 8.0

# Integer PCM: scipy returns uint8 for 8-bit (offset binary), and int16/int32/int64 for
# 16-, 24- (left-justified into int32), 32- and 64-bit. Divide by 2**(bits-1) -> [-1, 1).
_INT_SCALE = {np.dtype(np.int16): 2.0 ** 15, np.dtype(np.int32): 2.0 ** 31,
              np.dtype(np.int64): 2.0 ** 63}

_BELOW_ONE = np.nextafter(np.float32(1.0), np.float32(0.0))

_WAV_MAGICS = (b"RIFF", b"RIFX", b"RF64")


def read_wav(path) -> tuple[np.ndarray, int]:
    """Read a WAV file as mono float32 in [-1, 1) and its sample rate.

    Supports integer PCM (8-, 16-, 24-, 32-, 64-bit) and IEEE float (32-, 64-bit) through
    ``scipy.io.wavfile``. Multi-channel audio is mixed to mono by averaging the channels.
    Float data is returned as stored (not clipped).

    Raises
    ------
    EdgeAVSError
        One line naming the file: missing, empty, not a WAV file, truncated, an
        unsupported sample format, or no samples.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise EdgeAVSError(f"{path}: audio file not found")
    if os.path.isdir(path):
        raise EdgeAVSError(f"{path}: is a directory, expected a WAV file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise EdgeAVSError(f"{path}: cannot read audio file ({exc.strerror or exc})") from None
    if size == 0:
        raise EdgeAVSError(f"{path}: audio file is empty")
    if magic not in _WAV_MAGICS:
        raise EdgeAVSError(f"{path}: not a WAV file (no RIFF header)")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(path, mmap=False)
        except ValueError as exc:
            msg = " ".join(str(exc).split())
            if "not a wav file" in msg.lower():
                raise EdgeAVSError(f"{path}: not a WAV file ({msg})") from None
            if "end of file" in msg.lower():
                raise EdgeAVSError(f"{path}: truncated WAV file ({msg})") from None
            if "format" in msg.lower() or "bit depth" in msg.lower() or "data type" in msg.lower():
                raise EdgeAVSError(f"{path}: unsupported WAV sample format ({msg})") from None
            raise EdgeAVSError(f"{path}: invalid WAV file ({msg})") from None
        except (struct.error, EOFError, OSError) as exc:
            raise EdgeAVSError(f"{path}: truncated or corrupt WAV file ({exc})") from None
    for w in caught:
        text = " ".join(str(w.message).split())
        if "prematurely" in text or "end of file" in text.lower():
            raise EdgeAVSError(f"{path}: truncated WAV file ({text})")
    _check_frame_count(path, data)

    if data.size == 0:
        raise EdgeAVSError(f"{path}: WAV file has no samples")
    if rate <= 0:
        raise EdgeAVSError(f"{path}: invalid sample rate {rate} Hz in the WAV header")
    if data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype in _INT_SCALE:
        x = (data.astype(np.float64) / _INT_SCALE[data.dtype]).astype(np.float32)
        # float32 rounds (2**31 - 1) / 2**31 up to 1.0: keep the promised [-1, 1).
        np.minimum(x, _BELOW_ONE, out=x)
    elif data.dtype in (np.float32, np.float64):
        x = data.astype(np.float32)
    else:
        raise EdgeAVSError(f"{path}: unsupported WAV sample format {data.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), int(rate)


def _check_frame_count(path: str, data: np.ndarray) -> None:
    """Catch a data chunk shorter than its header says, which scipy reads silently.

    scipy warns when the file is shorter than the RIFF size, but not when the RIFF size was
    rewritten to match a cut data chunk. The standard library's ``wave`` reads the declared
    frame count of integer-PCM files; it does not know float WAVs, which are then trusted.
    """
    try:
        with wave.open(path, "rb") as wf:
            declared = wf.getnframes()
    except (wave.Error, EOFError, struct.error, OSError):
        return
    if declared != data.shape[0]:
        raise EdgeAVSError(
            f"{path}: truncated WAV file (header declares {declared} frames, found {data.shape[0]})")


def resample(x: np.ndarray, sr_in: int, sr_out: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D signal from ``sr_in`` to ``sr_out`` Hz.

    A polyphase FIR resampler (``scipy.signal.resample_poly``): upsample by ``up``, filter with
    a Kaiser-windowed-sinc low-pass (beta 8.0, cutoff at the lower Nyquist), downsample by
    ``down``, where ``up/down = sr_out/sr_in`` reduced by their gcd. 16 kHz → 32 kHz is an
    exact ×2 (up=2, down=1); 44.1 kHz → 32 kHz is 320/441. The output has
    ``ceil(len(x)·up/down)`` samples; the filter is zero-phase (no delay), with a short
    transient at the edges (the signal is zero-padded there).
    """
    for name, rate in (("sr_in", sr_in), ("sr_out", sr_out)):
        if int(rate) != rate or rate <= 0:
            raise EdgeAVSError(f"resample: {name} must be a positive integer, got {rate!r}")
    sr_in, sr_out = int(sr_in), int(sr_out)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise EdgeAVSError(f"resample: expected a 1-D signal, got shape {tuple(x.shape)}")
    if sr_in == sr_out:
        return x.copy()
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    y = resample_poly(x, up, down, window=("kaiser", _KAISER_BETA))
    return y.astype(np.float32, copy=False)


def load_audio(path, sample_rate: int = MODEL_SAMPLE_RATE, expected_rate: int | None = None) -> np.ndarray:
    """Read a WAV file as mono float32 at ``sample_rate`` Hz.

    If ``expected_rate`` is given, the file must be stored at that rate (e.g. 16000 for
    AVSBench); otherwise a one-line "wrong sample rate" error names the file and both rates.
    """
    x, rate = read_wav(path)
    if expected_rate is not None and rate != expected_rate:
        raise EdgeAVSError(
            f"{os.fspath(path)}: wrong sample rate {rate} Hz, expected {expected_rate} Hz")
    return resample(x, rate, sample_rate)


def split_windows(x: np.ndarray, n_windows: int, window: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Cut a clip into ``n_windows`` consecutive, non-overlapping windows of ``window`` samples.

    Returns ``(n_windows, window)`` float32. A clip shorter than ``n_windows·window`` is padded
    with zeros at the end (silence: a 4.9-s AVSBench clip still gives five windows, the last
    slightly padded); samples beyond ``n_windows·window`` are dropped.
    """
    if int(n_windows) != n_windows or n_windows < 1:
        raise EdgeAVSError(f"split_windows: n_windows must be an integer >= 1, got {n_windows!r}")
    if int(window) != window or window < 1:
        raise EdgeAVSError(f"split_windows: window must be an integer >= 1, got {window!r}")
    n_windows, window = int(n_windows), int(window)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise EdgeAVSError(f"split_windows: expected a 1-D signal, got shape {tuple(x.shape)}")
    total = n_windows * window
    out = np.zeros(total, dtype=np.float32)
    n = min(total, x.shape[0])
    out[:n] = x[:n]
    return out.reshape(n_windows, window)
