"""Segment a video: for each frame, which pixels make the sound.

:class:`Segmenter` streams a video through a *predictor* (``predictor(frames, waveform) ->
logits``, numpy in and out): decode one frame, cut the causal audio window ending at its time,
infer, overlay, encode; it never holds the whole video, its audio or its masks.

Two predictors:

- :class:`ArtifactPredictor`: a compiled artifact (``edgeavs compile``) on TVM's runtime
  alone. This module never imports torch (not even inside a function; an import-linter
  contract in pyproject.toml holds it to that), so ``edgeavs segment --artifact`` runs in a
  torch-free process.
- :class:`edgeavs.segment_torch.TorchPredictor`: an edgeavs checkpoint in PyTorch eager, in a
  module of its own.

The audio window (``window`` seconds, at most 1.0)
    The model takes exactly 32000 samples, one second at 32 kHz, and was trained on whole
    seconds. The window is causal, the ``window`` seconds *ending at the frame's time* (so it
    can run live), zero-padded at the start of the video; a window shorter than 1 s keeps its
    last ``window`` seconds and puts silence before them (the model still sees 32000 samples,
    nothing is stretched). Longer windows are refused: they do not fit the input.

Outputs are written beside their final path and renamed at the end, so a failure or Ctrl-C
leaves no half-written video or mask folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edgeavs.compiler.artifact import file_sha256
from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import dir_mode, file_mode
from edgeavs.io.frames import normalize
from edgeavs.video import (MODEL_RATE, MediaReader, OverlayWriter, container_format, overlay_image,
                           resize_map, resize_rgb)

WAVEFORM_SAMPLES = 32000
OVERLAY_COLOUR = (255, 0, 255)


# ---------------------------------------------------------------------- predictors

class ArtifactPredictor:
    """A compiled artifact: input size and fingerprint from its manifest; torch-free.

    Reads only manifest fields that :func:`edgeavs.compiler.artifact.read_manifest` has checked
    (``resolution``, ``variant``, ``weights``; ``target_name``/``target_fingerprint`` may be
    absent), so a damaged manifest is refused in one line by ``load_artifact``."""

    kind = "artifact"

    def __init__(self, directory, threads: int | None = None):
        from edgeavs.compiler.artifact import MANIFEST, load_artifact

        if threads:
            # read by TVM's thread pool when it starts, i.e. at the first run
            os.environ["TVM_NUM_THREADS"] = str(int(threads))
        self.model = load_artifact(directory)  # the manifest checked: every field below is typed
        m = self.model.manifest
        self.input_size = self.model.resolution  # == the frames input's (H, W), checked
        self.variant = m["variant"]
        self.fingerprint = file_sha256(Path(directory) / MANIFEST)
        self.details = {"artifact": str(directory), "manifest_sha256": self.fingerprint,
                        "target_fingerprint": m.get("target_fingerprint"),
                        "target": m.get("target_name"), "variant": self.variant,
                        "resolution": list(self.input_size), "weights": m.get("weights")}

    def __call__(self, frames: np.ndarray, waveform: np.ndarray) -> np.ndarray:
        return self.model.run(frames, waveform)


# ---------------------------------------------------------------------- staging outputs

def check_output_path(path, what: str = "output", overwrite: bool = True) -> Path:
    """An output file: its folder exists, it is not a directory, and (``overwrite=False``, what
    ``edgeavs segment`` passes without ``--overwrite``) nothing is there yet."""
    path = Path(path)
    if not path.absolute().parent.is_dir():
        raise EdgeAVSError(f"{what} {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise EdgeAVSError(f"{what} {path}: is a directory, expected a file name")
    if not overwrite and os.path.lexists(path):
        raise EdgeAVSError(f"{what} {path}: exists; pass --overwrite to replace it")
    return path


MASK_NAME = re.compile(r"mask_\d{6,}\.png")
"""The names of the masks :class:`Segmenter` writes (``mask_<frame index>.png``)."""


def _earlier_masks(path: Path) -> bool:
    """True when the folder holds only masks this module wrote (plain files named as they are)."""
    return all(e.is_file(follow_symlinks=False) and MASK_NAME.fullmatch(e.name) for e in os.scandir(path))


def check_masks_dir(path, overwrite: bool = False) -> Path:
    """The ``--masks`` folder: new, or empty; with ``overwrite``, also a folder of earlier masks
    (only ``mask_NNNNNN.png`` files), which is then replaced whole. Any other folder is refused."""
    path = Path(path)
    if not path.absolute().parent.is_dir():
        raise EdgeAVSError(f"--masks {path}: directory {path.parent} does not exist")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise EdgeAVSError(f"--masks {path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not _earlier_masks(path):
            raise EdgeAVSError(f"--masks {path}: exists and is not an empty directory")
        if not overwrite:
            raise EdgeAVSError(f"--masks {path}: holds earlier masks; pass --overwrite to replace them")
    return path


class _Staged:
    """Temp file/dir beside each output; :meth:`commit` renames them all, :meth:`discard`
    removes them."""

    def __init__(self):
        self.items: list[tuple[Path, Path]] = []

    def file(self, dest: Path) -> Path:
        dest = dest.absolute()
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + dest.suffix, dir=dest.parent)
        os.close(fd)
        self.items.append((Path(tmp), dest))
        return Path(tmp)

    def dir(self, dest: Path) -> Path:
        dest = dest.absolute()
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        self.items.append((tmp, dest))
        return tmp

    def commit(self):
        earlier = []
        for tmp, dest in self.items:
            if tmp.is_dir():
                os.chmod(tmp, dir_mode())
                if dest.is_dir():
                    if any(dest.iterdir()):  # earlier masks (checked up front): step aside
                        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
                        os.replace(dest, old / "masks")
                        earlier.append(old)
                    else:
                        dest.rmdir()
            else:
                os.chmod(tmp, file_mode())
            os.replace(tmp, dest)
        self.items = []
        for old in earlier:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self):
        for tmp, _ in self.items:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                try:
                    tmp.unlink()
                except FileNotFoundError:
                    pass
        self.items = []


# ---------------------------------------------------------------------- the pipeline

class Segmenter:
    """Stream a video through ``predictor``; see the module docstring for the audio window.

    ``fps``: run the model at most ``fps`` times per second of video (``None``: every frame);
    frames in between are written with the latest mask, so the output keeps the input's frame
    rate and duration, and ``masks_dir`` gets one PNG per *inferred* frame.
    """

    def __init__(self, predictor, window: float = 1.0, threshold: float = 0.5, alpha: float = 0.5,
                 fps: float | None = None, colour=OVERLAY_COLOUR):
        if not 0.0 < window <= 1.0:
            raise EdgeAVSError(f"--window {window:g}: must be in (0, 1] seconds (the model takes "
                               "1 s of audio; a shorter window is zero-padded at the start)")
        if fps is not None and not fps > 0:
            raise EdgeAVSError(f"--fps {fps:g}: must be > 0")
        if not 0.0 <= threshold <= 1.0:
            raise EdgeAVSError(f"--threshold {threshold:g}: must be in [0, 1]")
        if not 0.0 <= alpha <= 1.0:
            raise EdgeAVSError(f"--alpha {alpha:g}: must be in [0, 1]")
        self.predictor = predictor
        self.window = float(window)
        self.window_samples = int(round(self.window * MODEL_RATE))
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.fps = fps
        self.colour = colour

    def waveform(self, reader: MediaReader, t: float) -> np.ndarray:
        """The model's ``(32000,)`` input at time ``t``: the window, silence before it."""
        w = reader.window(t, self.window_samples)
        if w.size == WAVEFORM_SAMPLES:
            return w
        out = np.zeros(WAVEFORM_SAMPLES, np.float32)
        out[WAVEFORM_SAMPLES - w.size:] = w
        return out

    def predict(self, rgb: np.ndarray, waveform: np.ndarray) -> tuple[np.ndarray, float]:
        """Mask at the frame's own size, and the predictor's latency in seconds."""
        x = normalize(resize_rgb(rgb, self.predictor.input_size))[None]
        t0 = time.perf_counter()
        logits = self.predictor(x, waveform[None])
        latency = time.perf_counter() - t0
        logits = np.asarray(logits, np.float32)[0, 0]
        # sigmoid(l) > p  <=>  l > logit(p): threshold the resized logits, no sigmoid needed
        p = min(max(self.threshold, 1e-7), 1 - 1e-7)
        cut = np.log(p / (1 - p))
        mask = resize_map(logits, rgb.shape[:2]) > cut
        return mask, latency

    def run(self, video, out=None, masks_dir=None, json_path=None, silent_audio: bool = False,
            progress: bool | None = None, overwrite: bool = True) -> dict:
        """Segment ``video``; write any of ``out`` (overlay video with the original audio),
        ``masks_dir`` (PNG per inferred frame), ``json_path`` (the summary). Returns the summary.

        ``overwrite`` (the default here; ``edgeavs segment`` passes its ``--overwrite``): existing
        ``out``/``json_path`` files and a ``masks_dir`` of earlier masks are replaced; without it
        an existing output is an error. A folder holding anything but masks is never replaced."""
        out = check_output_path(out, "output", overwrite) if out is not None else None
        json_path = check_output_path(json_path, "--json", overwrite) if json_path is not None else None
        masks_dir = check_masks_dir(masks_dir, overwrite) if masks_dir is not None else None
        staged = _Staged()
        writer = None
        try:
            with MediaReader(video, self.window_samples, allow_silent=silent_audio) as reader:
                info = reader.info
                if out is not None:
                    writer = OverlayWriter(staged.file(out), info, container_format(out) or "mp4")
                mdir = staged.dir(masks_dir) if masks_dir is not None else None
                summary = self._loop(reader, writer, mdir, progress)
            if writer is not None:
                writer.close()
                writer = None
            summary.update({"video": str(video), "output": str(out) if out else None,
                            "masks": str(masks_dir) if masks_dir else None})
            if json_path is not None:
                tmp = staged.file(json_path)
                tmp.write_text(json.dumps(summary, indent=2) + "\n")
            staged.commit()
            return summary
        except BaseException:
            if writer is not None:
                writer.abort()
            staged.discard()
            raise

    def _loop(self, reader: MediaReader, writer, mdir, progress) -> dict:
        from tqdm import tqdm

        info = reader.info
        if progress is None:
            progress = sys.stderr.isatty()
        bar = tqdm(total=info.frames or None, unit="frame", disable=not progress, file=sys.stderr,
                   leave=False, dynamic_ncols=True)
        latencies: list[float] = []
        period = 1.0 / self.fps if self.fps else None
        next_tick = None
        mask = None
        t_first = t_last = None
        n = 0
        wall0 = time.perf_counter()
        try:
            for kind, item in reader:
                if kind == "audio":
                    if writer is not None:
                        writer.write_audio(item, info.start_time)
                    continue
                if t_first is None:
                    t_first = item.time
                t_last = item.time
                rgb = item.rgb()
                if period is None or next_tick is None or item.time >= next_tick - 1e-6:
                    mask, lat = self.predict(rgb, self.waveform(reader, item.time))
                    latencies.append(lat)
                    if period is not None:
                        next_tick = (next_tick if next_tick is not None else item.time) + period
                        while next_tick <= item.time + 1e-6:
                            next_tick += period
                    if mdir is not None:
                        Image.fromarray(mask.astype(np.uint8) * 255).save(
                            mdir / f"mask_{item.index:06d}.png", format="PNG")
                if writer is not None:
                    writer.write_video(overlay_image(rgb, mask, self.colour, self.alpha),
                                       item.pts - info.start_pts)
                n += 1
                bar.update(1)
        finally:
            bar.close()
        wall = time.perf_counter() - wall0
        duration = (t_last - t_first + 1.0 / float(info.rate)) if n else 0.0
        lat_ms = np.asarray(latencies) * 1000.0
        pred = self.predictor
        return {
            "frames": n,
            "inferred_frames": len(latencies),
            "width": info.width, "height": info.height, "fps": float(info.rate),
            "duration_s": round(duration, 4),
            "audio": info.has_audio,
            "window_s": self.window, "threshold": self.threshold,
            "model_latency_ms": {"median": round(float(np.median(lat_ms)), 3) if n else None,
                                 "p90": round(float(np.percentile(lat_ms, 90)), 3) if n else None},
            "end_to_end_fps": round(n / wall, 3) if wall > 0 else None,
            "wall_s": round(wall, 3),
            # processing time / video time: < 1 is faster than real time
            "real_time_factor": round(wall / duration, 4) if duration > 0 else None,
            "predictor": pred.kind,
            "fingerprint": pred.fingerprint,
            "model": pred.details,
        }


def segment_video(video, predictor, out=None, masks_dir=None, json_path=None, *, fps=None,
                  window=1.0, threshold=0.5, alpha=0.5, silent_audio=False, progress=None,
                  overwrite=True) -> dict:
    """Function form of :class:`Segmenter`; returns the summary dict."""
    seg = Segmenter(predictor, window=window, threshold=threshold, alpha=alpha, fps=fps)
    return seg.run(video, out=out, masks_dir=masks_dir, json_path=json_path,
                   silent_audio=silent_audio, progress=progress, overwrite=overwrite)
