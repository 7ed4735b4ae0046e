"""Video in and out with PyAV (FFmpeg): streaming decode, the causal audio ring buffer, and the
overlay writer that muxes the original audio back in.

numpy, Pillow and PyAV only: ``edgeavs segment --artifact`` runs in a torch-free process.

Reading (:class:`MediaReader`)
    ``container.demux(video, audio)`` yields the packets in file order. Audio frames are
    resampled to mono 32 kHz and appended to an :class:`AudioRing`; each decoded video frame
    waits in a short queue until the audio up to its timestamp has been decoded (or the audio
    has ended), then it is handed out together with the reader's ring, so the caller can cut
    the causal window ending at the frame's time. Memory stays flat whatever the video's
    length: the ring keeps the last window plus the audio decoded ahead of the video, and the
    queue the frames decoded ahead of the audio, both bounded by how the file interleaves its
    streams (mp4/mkv/webm writers interleave within ~1 s). A file whose video runs more than
    ``MAX_LAG_S`` ahead of its audio is refused with a hint to remux it, rather than buffering
    it whole. Audio more than ``MAX_LAG_S`` beyond the newest video frame is not kept: past the
    video's end nothing needs it; a later frame that would is refused the same way.

Resampling
    ``av.AudioResampler`` (libswresample), not ``edgeavs.io.audio.resample`` (scipy
    ``resample_poly``): swresample keeps its filter state between chunks, so resampling the
    track packet by packet gives the same samples as resampling it whole, which a stateless
    ``resample_poly`` per chunk does not (it zero-pads every chunk edge). Measured against
    ``resample_poly`` (Kaiser beta 8) on the whole signal, band-limited noise 44.1/48 kHz ->
    32 kHz: 3.4e-5 relative L2, no delay.

Writing (:class:`OverlayWriter`)
    H.264 (libx264; MPEG-4 part 2 when the FFmpeg build lacks it) at the input's frame
    timestamps, so frame rate and duration are the input's; 4:2:0, or 4:4:4 when a side is
    odd (4:2:0 needs even sides). The input's audio, decoded once, is re-encoded to AAC.
"""

from __future__ import annotations

import collections
import fractions
import os

import av
import numpy as np
from PIL import Image

from edgeavs.errors import EdgeAVSError

MODEL_RATE = 32000
MAX_LAG_S = 10.0
"""The most video (or audio) decoded ahead of the other stream that the reader will buffer."""

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)

MAX_VIDEO_PIXELS = 8192 * 8192
"""The largest frame (width x height) the reader decodes; an 8K frame is 33 MP."""

MAX_FPS = 1000
"""A frame rate the stream header may declare; beyond it (a corrupt header) 25 fps is assumed."""

# What PyAV raises on a corrupt file besides its FFmpegError family (which also covers
# FFmpeg's EOF, ENOMEM and EPERM codes): ValueError for frames or audio formats it cannot
# convert, OverflowError / ZeroDivisionError from absurd header fields.
_DECODE_ERRORS = (av.error.FFmpegError, ValueError, OverflowError, ZeroDivisionError, MemoryError)


def _msg(exc) -> str:
    text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    return text or type(exc).__name__


def _codec_context(stream):
    """The stream's decoder context, or None where FFmpeg has no decoder for its codec."""
    try:
        return stream.codec_context
    except av.error.FFmpegError:
        return None


def _rate(vstream) -> fractions.Fraction:
    for r in (vstream.average_rate, vstream.guessed_rate):
        if r and 0 < r <= MAX_FPS:
            return fractions.Fraction(r)
    return fractions.Fraction(25)


class AudioRing:
    """Mono samples on an absolute index (sample 0 = the first decoded audio sample).

    Holds ``[start, end)``; :meth:`window` reads any range, zeros where nothing is held
    (before the track, after its end, or already dropped), and :meth:`drop_before` frees what no
    later window needs.
    """

    def __init__(self, capacity: int = MODEL_RATE * 2):
        self._buf = np.zeros(max(int(capacity), 1), np.float32)
        self.start = 0
        self._n = 0

    @property
    def end(self) -> int:
        return self.start + self._n

    def __len__(self) -> int:
        return self._n

    def append(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)
        need = self._n + samples.size
        if need > self._buf.size:
            buf = np.zeros(max(need, 2 * self._buf.size), np.float32)
            buf[:self._n] = self._buf[:self._n]
            self._buf = buf
        self._buf[self._n:need] = samples
        self._n = need

    def drop_before(self, index: int) -> None:
        k = min(max(int(index) - self.start, 0), self._n)
        if k:
            self._buf[:self._n - k] = self._buf[k:self._n]
            self._n -= k
            self.start += k

    def window(self, end: int, length: int) -> np.ndarray:
        """Samples ``[end - length, end)``; zeros outside what is held."""
        out = np.zeros(int(length), np.float32)
        lo, hi = int(end) - int(length), int(end)
        a, b = max(lo, self.start), min(hi, self.end)
        if b > a:
            out[a - lo:b - lo] = self._buf[a - self.start:b - self.start]
        return out


class MediaInfo:
    """What the writer and the progress bar need to know about the input."""

    def __init__(self, vstream, astream):
        vctx = vstream.codec_context
        self.width = vctx.width
        self.height = vctx.height
        self.rate = _rate(vstream)
        tb = vstream.time_base
        # a missing or zero time base (a corrupt header): count in frames
        self.time_base = fractions.Fraction(tb) if tb and tb > 0 else 1 / self.rate
        self.frames = max(int(vstream.frames or 0), 0)
        self.duration = (float(vstream.duration * self.time_base)
                         if vstream.duration is not None and vstream.duration > 0 else None)
        self.start_pts = int(vstream.start_time or 0)
        self.start_time = float(self.start_pts * self.time_base)
        self.has_audio = astream is not None
        if astream is not None:
            actx = astream.codec_context
            self.audio_rate = actx.sample_rate or astream.rate
            self.audio_channels = actx.channels
            self.audio_layout = actx.layout.name if actx.layout is not None else None
        else:
            self.audio_rate = self.audio_channels = self.audio_layout = None


class VideoItem:
    """A decoded video frame: ``index`` in decode (= presentation) order, ``time`` in seconds,
    ``pts`` in the stream's time base, the ``av.VideoFrame`` itself."""

    __slots__ = ("index", "time", "pts", "frame", "path")

    def __init__(self, index, time, pts, frame, path=None):
        self.index, self.time, self.pts, self.frame, self.path = index, time, pts, frame, path

    def rgb(self) -> np.ndarray:
        """The frame as ``(H, W, 3)`` uint8; a frame FFmpeg cannot convert is a one-line error."""
        try:
            return self.frame.to_ndarray(format="rgb24")
        except _DECODE_ERRORS as exc:
            raise EdgeAVSError(f"{self.path}: cannot convert video frame {self.index} to RGB "
                               f"({_msg(exc)})") from None


class MediaReader:
    """Stream a video file's frames with the audio decoded up to each frame's time.

    Iterating yields ``("audio", av.AudioFrame)`` for every decoded audio frame (for the
    writer, in the input's format) and ``("video", VideoItem)`` for every video frame once
    :attr:`ring` holds the 32 kHz mono audio up to its time. Cut the window with
    :meth:`window`. Errors are one-line :class:`EdgeAVSError` naming the file.
    """

    def __init__(self, path, window_samples: int = MODEL_RATE, allow_silent: bool = False):
        self.path = os.fspath(path)
        self.window_samples = int(window_samples)
        if not os.path.exists(self.path):
            raise EdgeAVSError(f"{self.path}: file not found")
        if os.path.isdir(self.path):
            raise EdgeAVSError(f"{self.path}: is a directory, expected a video file")
        try:
            self.container = av.open(self.path, "r")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError, MemoryError) as exc:
            raise EdgeAVSError(f"{self.path}: not a media file FFmpeg can read ({_msg(exc)})") from None
        try:
            self._select_streams(allow_silent)
        except _DECODE_ERRORS as exc:
            self.container.close()
            raise EdgeAVSError(f"{self.path}: unreadable stream header ({_msg(exc)})") from None
        except BaseException:
            self.container.close()
            raise
        self.ring = AudioRing(self.window_samples + MODEL_RATE)
        self.audio_t0 = None
        self.frames_decoded = 0

    def _select_streams(self, allow_silent):
        video = list(self.container.streams.video)
        vs = [s for s in video if (c := _codec_context(s)) is not None and c.width > 0 and c.height > 0]
        if not vs:
            if video:
                why = "no frame size" if _codec_context(video[0]) is not None else "no decoder for its codec"
                raise EdgeAVSError(f"{self.path}: no decodable video stream ({why})")
            raise EdgeAVSError(f"{self.path}: no video stream")
        self.vstream = vs[0]
        ctx = self.vstream.codec_context
        if ctx.width * ctx.height > MAX_VIDEO_PIXELS:
            raise EdgeAVSError(f"{self.path}: video frames too large ({ctx.width}x{ctx.height}; at "
                               f"most {MAX_VIDEO_PIXELS} pixels)")
        aud = list(self.container.streams.audio)
        usable = [s for s in aud if (c := _codec_context(s)) is not None
                  and (c.sample_rate or 0) > 0 and (c.channels or 0) > 0]
        self.astream = usable[0] if usable else None
        if self.astream is None and not allow_silent:
            if aud:
                raise EdgeAVSError(f"{self.path}: the audio stream cannot be decoded (unknown codec or "
                                   "no sample rate); pass --silent-audio to run the model on silence")
            raise EdgeAVSError(f"{self.path}: no audio stream; the model segments what makes the "
                               "sound, so pass --silent-audio to run it on silence anyway")
        self.vstream.thread_type = "AUTO"
        self.info = MediaInfo(self.vstream, self.astream)

    def close(self):
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ time <-> samples

    def sample_index(self, t: float) -> int:
        """The 32 kHz sample index (on :attr:`ring`'s axis) at time ``t`` seconds."""
        return int(round((t - (self.audio_t0 or 0.0)) * MODEL_RATE))

    def window(self, t: float, length: int | None = None) -> np.ndarray:
        """The causal window of ``length`` samples (default: the reader's window) ending at ``t``."""
        return self.ring.window(self.sample_index(t), length or self.window_samples)

    # ------------------------------------------------------------------ iteration

    def _fail(self, exc=None) -> EdgeAVSError:
        detail = f" ({_msg(exc)})" if exc is not None else ""
        return EdgeAVSError(f"{self.path}: corrupt or truncated file: decoding stopped at video "
                            f"frame {self.frames_decoded}{detail}")

    def __iter__(self):
        streams = [self.vstream] + ([self.astream] if self.astream is not None else [])
        # keep the channels through the resampler and average them here: the mean, as
        # edgeavs.io.audio.read_wav mixes WAVs (swresample's own downmix scales by 1/sqrt(2))
        resampler = av.AudioResampler(format="fltp", rate=MODEL_RATE)
        pending: collections.deque[VideoItem] = collections.deque()
        audio_done = self.astream is None
        max_pending = max(int(MAX_LAG_S * float(self.info.rate)), 16)
        max_ahead = int(MAX_LAG_S * MODEL_RATE)
        cut = None  # ring index from which audio was discarded (it ran too far ahead)
        last_time = last_pts = None

        def ready(item):
            return audio_done or self.ring.end >= self.sample_index(item.time)

        def push_audio(frames):
            nonlocal cut
            for f in frames:
                x = f.to_ndarray()
                x = x[0] if x.shape[0] == 1 else x.mean(axis=0, dtype=np.float32)
                if cut is None:
                    # keep at most MAX_LAG_S of audio beyond the newest decoded video frame
                    limit = self.sample_index(last_time if last_time is not None
                                              else self.info.start_time) + max_ahead
                    if self.ring.end + x.size > limit:
                        x = x[:max(limit - self.ring.end, 0)]
                        cut = self.ring.end + x.size
                    self.ring.append(x)

        def release():
            while pending and ready(pending[0]):
                item = pending.popleft()
                if cut is not None and self.sample_index(item.time) > cut:
                    raise EdgeAVSError(
                        f"{self.path}: audio runs more than {MAX_LAG_S:g} s ahead of the video in "
                        "the file; remux it with interleaved streams (ffmpeg -i IN -c copy OUT.mp4)")
                yield "video", item
                self.ring.drop_before(self.sample_index(item.time) - self.window_samples)

        try:
            for packet in self.container.demux(*streams):
                is_audio = packet.stream is self.astream
                try:
                    decoded = packet.decode()
                except _DECODE_ERRORS as exc:
                    raise self._fail(exc) from None
                if packet.pts is None and packet.size == 0:  # the flush packet at the end
                    if is_audio:
                        audio_done = True
                for frame in decoded:
                    if is_audio:
                        if self.audio_t0 is None:
                            self.audio_t0 = float(frame.time) if frame.time is not None else 0.0
                        yield "audio", frame
                        push_audio(resampler.resample(frame))
                    else:
                        t = float(frame.time) if frame.time is not None else \
                            self.frames_decoded / float(self.info.rate)
                        if last_time is not None and t <= last_time:
                            t = last_time + 1.0 / float(self.info.rate)
                        last_time = t
                        pts = frame.pts
                        if pts is None or (last_pts is not None and pts <= last_pts):
                            pts = int(round(t / self.info.time_base))
                        last_pts = pts
                        pending.append(VideoItem(self.frames_decoded, t, pts, frame, self.path))
                        self.frames_decoded += 1
                if is_audio and audio_done:
                    push_audio(resampler.resample(None))
                yield from release()
                if len(pending) > max_pending:
                    raise EdgeAVSError(
                        f"{self.path}: video runs more than {MAX_LAG_S:g} s ahead of the audio in the "
                        "file; remux it with interleaved streams (ffmpeg -i IN -c copy OUT.mp4)")
        except _DECODE_ERRORS as exc:  # demuxing, resampling, a frame's conversion
            raise self._fail(exc) from None
        if not audio_done:
            try:
                push_audio(resampler.resample(None))
            except _DECODE_ERRORS as exc:
                raise self._fail(exc) from None
            audio_done = True
        yield from release()
        self._check_complete(last_time)

    def _check_complete(self, last_time):
        """A cut file often just ends early; compare with what the container declares."""
        info = self.info
        if self.frames_decoded == 0:
            raise EdgeAVSError(f"{self.path}: no video frame could be decoded (an empty or corrupt "
                               "video stream)")
        if info.frames and self.frames_decoded < info.frames:
            raise EdgeAVSError(f"{self.path}: corrupt or truncated file: decoding stopped at video "
                               f"frame {self.frames_decoded} of {info.frames}")
        if not info.frames and info.duration and last_time is not None:
            start = float(self.vstream.start_time * self.vstream.time_base) \
                if self.vstream.start_time is not None else 0.0
            if last_time + 2.0 / float(info.rate) < start + info.duration - 0.5:
                raise EdgeAVSError(f"{self.path}: corrupt or truncated file: decoding stopped at video "
                                   f"frame {self.frames_decoded} ({last_time:.2f} s of "
                                   f"{info.duration:.2f} s)")


# ---------------------------------------------------------------------- writing

def video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class OverlayWriter:
    """Encode RGB frames at given timestamps, plus the input's audio re-encoded to AAC."""

    def __init__(self, path, info: MediaInfo, container_format: str | None = None):
        self.path = os.fspath(path)
        self.container = av.open(self.path, "w", format=container_format)
        try:
            self._setup(info)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, info):
        codec = video_codec()
        odd = info.width % 2 or info.height % 2
        vs = self.container.add_stream(codec, rate=info.rate)
        vs.width, vs.height = info.width, info.height
        vs.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"
        if odd and codec != "libx264":
            raise EdgeAVSError(f"{self.path}: odd frame size {info.width}x{info.height} needs "
                               "libx264, which this FFmpeg build lacks")
        vs.time_base = info.time_base
        if codec == "libx264":
            # ultrafast: ~13 ms per 720p frame on this class of CPU against ~95 ms for veryfast,
            # which would cost more than the model; the file is larger, not worse (crf 20)
            vs.options = {"crf": "20", "preset": "ultrafast"}
        else:
            vs.bit_rate = max(info.width * info.height * 4, 400_000)
        self.vstream = vs
        self.astream = None
        self._resampler = None
        if info.has_audio:
            rate = info.audio_rate if info.audio_rate in AAC_RATES else 48000
            layout = "mono" if info.audio_channels == 1 else "stereo"
            a = self.container.add_stream("aac", rate=rate)
            a.layout = layout
            a.time_base = fractions.Fraction(1, rate)
            self.astream = a
            self._rate, self._layout = rate, layout
            self._apts = None

    def _audio_resampler(self):
        if self._resampler is None:
            size = self.astream.codec_context.frame_size or 1024
            self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate,
                                                frame_size=size)
        return self._resampler

    def write_audio(self, frame, video_t0: float) -> None:
        """One input audio frame; ``video_t0`` (the video stream's start) is time 0 here."""
        if self.astream is None:
            return
        if self._apts is None:
            t = float(frame.time) if frame.time is not None else video_t0
            self._apts = max(int(round((t - video_t0) * self._rate)), 0)
        frame.pts = None
        self._encode_audio(self._audio_resampler().resample(frame))

    def _encode_audio(self, frames):
        for f in frames:
            f.pts = self._apts
            f.time_base = fractions.Fraction(1, self._rate)
            self._apts += f.samples
            for p in self.astream.encode(f):
                self.container.mux(p)

    def write_video(self, rgb, pts: int) -> None:
        """One frame, ``(H, W, 3)`` uint8 or an RGB Pillow image, at ``pts`` (input time base)."""
        if isinstance(rgb, Image.Image):
            frame = av.VideoFrame.from_image(rgb)
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts
        frame.time_base = self.vstream.time_base
        for p in self.vstream.encode(frame):
            self.container.mux(p)

    def close(self) -> None:
        """Flush both encoders and finish the file."""
        if self.astream is not None and self._apts is not None:
            self._encode_audio(self._audio_resampler().resample(None))
        for s in (self.vstream, self.astream):
            if s is not None:
                for p in s.encode(None):
                    self.container.mux(p)
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is deleted next anyway
            pass


def container_format(path) -> str | None:
    """FFmpeg muxer for an output name (``.mp4`` -> ``mp4``), so a temp name can differ."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    return {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska"}.get(ext)


# ---------------------------------------------------------------------- images

def resize_rgb(rgb: np.ndarray, size_hw) -> np.ndarray:
    """Bilinear resize of ``(H, W, 3)`` uint8 to ``size_hw``; float32 ``(3, h, w)`` in [0, 1]."""
    h, w = size_hw
    img = Image.fromarray(rgb)
    if (img.height, img.width) != (h, w):
        img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0


def resize_map(prob: np.ndarray, size_hw) -> np.ndarray:
    """Bilinear resize of a float32 ``(h, w)`` map to ``size_hw``."""
    h, w = size_hw
    if prob.shape == (h, w):
        return prob
    return np.asarray(Image.fromarray(prob.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))


def overlay_image(rgb: np.ndarray, mask: np.ndarray, colour=(255, 0, 255),
                  alpha: float = 0.5) -> Image.Image:
    """``rgb`` with ``colour`` blended in at ``alpha`` where ``mask`` is true, as a Pillow image
    (a masked paste: ~4x faster than numpy fancy indexing on a 720p frame)."""
    img = Image.fromarray(rgb)
    if alpha > 0 and mask.any():
        level = np.uint8(round(255 * min(float(alpha), 1.0)))
        alpha_map = Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * level)
        img.paste(tuple(int(c) for c in colour), mask=alpha_map)
    return img


def overlay(rgb: np.ndarray, mask: np.ndarray, colour=(255, 0, 255), alpha: float = 0.5) -> np.ndarray:
    """:func:`overlay_image` as a ``(H, W, 3)`` uint8 array."""
    return np.asarray(overlay_image(rgb, mask, colour, alpha))


# ---------------------------------------------------------------------- clips (tests, demo, bench)

def write_clip(path, frames, audio: np.ndarray | None, fps: int, sample_rate: int,
               faststart: bool = False) -> None:
    """Encode an iterable of ``(H, W, 3)`` uint8 frames at ``fps`` and float ``audio`` at
    ``sample_rate`` (mono ``(n,)`` or ``(channels, n)``, AAC) into ``path`` (mp4/mkv/mov by
    extension). Frames are encoded as they come, with the audio up to each frame's time, so
    the streams are interleaved as a camera writes them. ``faststart`` puts the mp4 index
    first, so a cut file still opens."""
    options = {"movflags": "+faststart"} if faststart else {}
    out = av.open(os.fspath(path), "w", format=container_format(path), options=options)
    try:
        vs = None
        n_video = 0
        astream = None
        if audio is not None:
            x = np.asarray(audio, np.float32)
            x = x[None] if x.ndim == 1 else x
            layout = {1: "mono", 2: "stereo"}[x.shape[0]]
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = layout
            size = astream.codec_context.frame_size or 1024
            a_pos = 0

        def audio_until(n):
            nonlocal a_pos
            n = min(n, x.shape[1])
            while a_pos < n:
                chunk = np.ascontiguousarray(x[:, a_pos:a_pos + size])
                f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                f.sample_rate = sample_rate
                f.pts = a_pos
                f.time_base = fractions.Fraction(1, sample_rate)
                a_pos += chunk.shape[1]
                for p in astream.encode(f):
                    out.mux(p)

        for rgb in frames:
            if vs is None:
                vs = out.add_stream(video_codec(), rate=fps)
                vs.height, vs.width = rgb.shape[:2]
                vs.pix_fmt = "yuv420p"
                if vs.codec_context.name == "libx264":
                    vs.options = {"crf": "18", "preset": "veryfast"}
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            f.pts = n_video
            f.time_base = fractions.Fraction(1, fps)
            n_video += 1
            for p in vs.encode(f):
                out.mux(p)
            if astream is not None:
                audio_until(n_video * sample_rate // fps)
        if vs is not None:
            for p in vs.encode(None):
                out.mux(p)
        if astream is not None:
            audio_until(x.shape[1])
            for p in astream.encode(None):
                out.mux(p)
    finally:
        out.close()


def probe(path) -> dict:
    """Frame count, size, frame rate and stream durations of a file (for tests and the bench).

    A file that is not a video, has no video stream, or does not decode is a one-line
    :class:`EdgeAVSError` naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EdgeAVSError(f"{path}: file not found" if not os.path.exists(path) else
                           f"{path}: not a regular file, expected a video file")
    try:
        return _probe(path)
    except EdgeAVSError:
        raise
    except (*_DECODE_ERRORS, OSError, UnicodeDecodeError) as exc:
        raise EdgeAVSError(f"{path}: cannot probe the video ({type(exc).__name__}: {_msg(exc)})") from None


def _probe(path) -> dict:
    with av.open(path) as c:
        if not c.streams.video or _codec_context(c.streams.video[0]) is None:
            raise EdgeAVSError(f"{path}: no decodable video stream")
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
    with av.open(path) as c:
        v = c.streams.video[0]
        res = {"frames": n, "width": v.codec_context.width, "height": v.codec_context.height,
               "fps": float(v.average_rate) if v.average_rate else None,
               "video_duration": float(v.duration * v.time_base) if v.duration and v.time_base else None,
               "audio": None}
        if c.streams.audio:
            a = c.streams.audio[0]
            if _codec_context(a) is None or not a.codec_context.sample_rate:
                raise EdgeAVSError(f"{path}: the audio stream cannot be decoded (unknown codec or "
                                   "no sample rate)")
            samples = sum(f.samples for f in c.decode(a))
            rate = a.codec_context.sample_rate
            res["audio"] = {"rate": rate, "samples": samples, "duration": samples / rate,
                            "channels": a.codec_context.channels,
                            "stream_duration": float(a.duration * a.time_base)
                            if a.duration and a.time_base else None}
    return res
