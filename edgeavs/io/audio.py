"""Audio input: read a WAV file, mix to mono, resample to the model's rate, cut into windows.

numpy and scipy only: the compiled-artifact path (``edgeavs segment --artifact``) uses this
module and must not import torch.

The model takes one second of mono audio at 32 kHz per frame (SPEC §1); AVSBench ships
16 kHz, 5-second WAVs, so the usual path is ``load_audio`` (16 kHz → 32 kHz, an exact ×2)
followed by ``split_windows(x, 5)``.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings

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


MAX_WAV_BYTES = 2 * 1024 ** 3
"""The largest WAV file read (2 GiB: about 9 hours of 16-bit mono at 32 kHz); bigger ones are
refused before anything is allocated."""

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000
"""The sample rates accepted from a WAV header (real files use 8 kHz to 768 kHz): a corrupt
rate of a few Hz would otherwise resample a short clip into hundreds of MB at 32 kHz."""

_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE

# What scipy.io.wavfile raises on malformed files besides its own ValueErrors: a missing fmt or
# data chunk leaves a local unbound, zero channels or block size divide by zero, cut or odd
# fields fail struct.unpack, odd container sizes make numpy dtypes that do not exist, ...
_SCIPY_ERRORS = (ValueError, NameError, ZeroDivisionError, struct.error, EOFError, OverflowError,
                 MemoryError, IndexError, TypeError, KeyError, OSError)


class _Header:
    """The fields of a WAV file's fmt chunk and the extent of its data chunk."""

    __slots__ = ("tag", "channels", "rate", "block_align", "bits", "data_size", "data_avail")

    def __init__(self, tag, channels, rate, block_align, bits, data_size, data_avail):
        self.tag, self.channels, self.rate = tag, channels, rate
        self.block_align, self.bits = block_align, bits
        self.data_size, self.data_avail = data_size, data_avail


def _scan_header(path: str, buf: bytes) -> _Header:
    """Walk the RIFF chunks up to the data chunk and check what scipy would trust blindly.

    Catches, before scipy allocates or divides anything: a cut header, no fmt or data chunk,
    zero channels, a zero or absurd sample rate, a block size that does not split into the
    channels, a sample width that does not fit its container, and a data chunk that declares
    more bytes than the file holds (a truncated file, or a size field set to garbage).
    """
    magic = buf[:4]
    if len(buf) < 12:
        raise EdgeAVSError(f"{path}: truncated WAV file (the {len(buf)}-byte file ends inside the RIFF header)")
    if buf[8:12] != b"WAVE":
        raise EdgeAVSError(f"{path}: not a WAV file (RIFF form type {bytes(buf[8:12])!r}, expected b'WAVE')")
    e = ">" if magic == b"RIFX" else "<"
    rf64 = magic == b"RF64"
    rf64_data = None
    fmt = None
    pos = 12
    while pos + 8 <= len(buf):
        cid = bytes(buf[pos:pos + 4])
        size = struct.unpack(e + "I", buf[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"ds64" and rf64 and body + 16 <= len(buf):
            rf64_data = struct.unpack("<Q", buf[body + 8:body + 16])[0]
        elif cid == b"fmt ":
            if size < 16:
                raise EdgeAVSError(f"{path}: invalid WAV header (fmt chunk of {size} bytes, expected at least 16)")
            if body + 16 > len(buf):
                raise EdgeAVSError(f"{path}: truncated WAV file (the file ends inside the fmt chunk)")
            tag, channels, rate, _, block_align, bits = struct.unpack(e + "HHIIHH", buf[body:body + 16])
            if tag == _EXTENSIBLE and size >= 40 and body + 28 <= len(buf):
                tag = struct.unpack(e + "I", buf[body + 24:body + 28])[0]  # the sub-format GUID's first field
            fmt = (tag, channels, rate, block_align, bits)
        elif cid == b"data":
            if fmt is None:
                raise EdgeAVSError(f"{path}: invalid WAV file (data chunk before any fmt chunk)")
            if rf64:
                if rf64_data is None:
                    raise EdgeAVSError(f"{path}: invalid RF64 file (no ds64 chunk before the data chunk)")
                size = rf64_data
            hdr = _Header(*fmt, data_size=size, data_avail=len(buf) - body)
            _check_fmt(path, hdr)
            if hdr.data_size > hdr.data_avail:
                raise EdgeAVSError(f"{path}: truncated WAV file (header declares {hdr.data_size} bytes of "
                                   f"audio data, the file holds {hdr.data_avail})")
            if hdr.tag in (_PCM, _IEEE_FLOAT) and hdr.data_size % hdr.block_align:
                raise EdgeAVSError(f"{path}: invalid WAV file (data chunk of {hdr.data_size} bytes is "
                                   f"not a whole number of {hdr.block_align}-byte frames)")
            return hdr
        pos = body + size + (size & 1)
    what = "fmt chunk" if fmt is None else "data chunk"
    if pos < len(buf):
        raise EdgeAVSError(f"{path}: truncated WAV file (no {what}; the file ends inside a chunk header)")
    raise EdgeAVSError(f"{path}: invalid or truncated WAV file (no {what})")


def _check_fmt(path: str, h: _Header) -> None:
    if h.channels == 0:
        raise EdgeAVSError(f"{path}: invalid WAV header (0 channels)")
    if not MIN_SAMPLE_RATE <= h.rate <= MAX_SAMPLE_RATE:
        raise EdgeAVSError(f"{path}: invalid sample rate {h.rate} Hz in the WAV header "
                           f"(expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})")
    if h.block_align == 0 or h.block_align % h.channels:
        raise EdgeAVSError(f"{path}: invalid WAV header (block size {h.block_align} bytes for "
                           f"{h.channels} channels)")
    width = h.block_align // h.channels
    if h.tag == _PCM:
        if h.bits == 0 or h.bits > 8 * width or (h.bits <= 8 and width != 1):
            raise EdgeAVSError(f"{path}: invalid WAV header ({h.bits}-bit samples in {width}-byte containers)")
    elif h.tag == _IEEE_FLOAT:
        if h.bits not in (32, 64) or 8 * width != h.bits:
            raise EdgeAVSError(f"{path}: unsupported WAV sample format ({h.bits}-bit float in "
                               f"{width}-byte containers)")


def read_wav(path) -> tuple[np.ndarray, int]:
    """Read a WAV file as mono float32 in [-1, 1) and its sample rate.

    Supports integer PCM (8-, 16-, 24-, 32-, 64-bit) and IEEE float (32-, 64-bit) through
    ``scipy.io.wavfile``. Multi-channel audio is mixed to mono by averaging the channels.
    Float data is returned as stored (not clipped), and must be finite.

    The file (at most :data:`MAX_WAV_BYTES`) is read whole and its header checked before scipy
    decodes it from memory, so a size field set to garbage cannot make scipy allocate more than
    the file holds.

    Raises
    ------
    EdgeAVSError
        One line naming the file: missing, empty, too large, not a WAV file, truncated, a
        malformed header, an unsupported sample format, no samples, or non-finite samples.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise EdgeAVSError(f"{path}: audio file not found")
    if os.path.isdir(path):
        raise EdgeAVSError(f"{path}: is a directory, expected a WAV file")
    try:
        size = os.path.getsize(path)
        if size > MAX_WAV_BYTES:
            raise EdgeAVSError(f"{path}: audio file too large ({size} bytes; at most {MAX_WAV_BYTES} "
                               "are read)")
        with open(path, "rb") as fh:
            buf = fh.read(MAX_WAV_BYTES + 1)
    except OSError as exc:
        raise EdgeAVSError(f"{path}: cannot read audio file ({exc.strerror or exc})") from None
    except MemoryError:
        raise EdgeAVSError(f"{path}: audio file too large to read ({size} bytes)") from None
    if not buf:
        raise EdgeAVSError(f"{path}: audio file is empty")
    if len(buf) > MAX_WAV_BYTES:
        raise EdgeAVSError(f"{path}: audio file too large (more than {MAX_WAV_BYTES} bytes)")
    if buf[:4] not in _WAV_MAGICS:
        raise EdgeAVSError(f"{path}: not a WAV file (no RIFF header)")
    hdr = _scan_header(path, buf)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            # from memory: scipy reads the data chunk with fid.read(size), which a BytesIO
            # answers with what it holds, where a real file would allocate ``size`` first
            rate, data = wavfile.read(io.BytesIO(buf), mmap=False)
        except ValueError as exc:
            msg = " ".join(str(exc).split())
            if "not a wav file" in msg.lower():
                raise EdgeAVSError(f"{path}: not a WAV file ({msg})") from None
            if "end of file" in msg.lower():
                raise EdgeAVSError(f"{path}: truncated WAV file ({msg})") from None
            if "format" in msg.lower() or "bit depth" in msg.lower() or "data type" in msg.lower():
                raise EdgeAVSError(f"{path}: unsupported WAV sample format ({msg})") from None
            raise EdgeAVSError(f"{path}: invalid WAV file ({msg})") from None
        except (struct.error, EOFError) as exc:
            raise EdgeAVSError(f"{path}: truncated or corrupt WAV file ({_msg(exc)})") from None
        except NameError:
            # scipy stopped at the size the RIFF header declares before it met fmt or data
            raise EdgeAVSError(f"{path}: invalid WAV file (no fmt or data chunk within the size "
                               "the RIFF header declares)") from None
        except MemoryError:
            raise EdgeAVSError(f"{path}: WAV file too large to decode") from None
        except _SCIPY_ERRORS as exc:
            raise EdgeAVSError(f"{path}: invalid WAV file ({type(exc).__name__}: {_msg(exc)})") from None
    for w in caught:
        text = " ".join(str(w.message).split())
        if "prematurely" in text or "end of file" in text.lower():
            raise EdgeAVSError(f"{path}: truncated WAV file ({text})")

    if data.size == 0:
        raise EdgeAVSError(f"{path}: WAV file has no samples")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise EdgeAVSError(f"{path}: invalid sample rate {rate} Hz in the WAV header")
    frames = hdr.data_size // hdr.block_align
    if data.ndim not in (1, 2) or data.shape[0] != frames or (data.ndim == 2) != (hdr.channels > 1):
        raise EdgeAVSError(f"{path}: invalid WAV file (decoded {data.shape[0]} frames, the header "
                           f"declares {frames})")
    if not data.dtype.isnative:  # RIFX (big-endian) files
        data = data.astype(data.dtype.newbyteorder("="))
    if data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype in _INT_SCALE:
        x = (data.astype(np.float64) / _INT_SCALE[data.dtype]).astype(np.float32)
        # float32 rounds (2**31 - 1) / 2**31 up to 1.0: keep the promised [-1, 1).
        np.minimum(x, _BELOW_ONE, out=x)
    elif data.dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            x = data.astype(np.float32)
        if not np.isfinite(x).all():
            raise EdgeAVSError(f"{path}: WAV file holds non-finite samples (NaN, inf, or beyond "
                               "float32's range)")
    else:
        raise EdgeAVSError(f"{path}: unsupported WAV sample format {data.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), int(rate)


def _msg(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
