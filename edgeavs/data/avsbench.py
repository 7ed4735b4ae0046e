"""AVSBench S4 (single source) and MS3 (multi-source) readers, as the official loaders lay them out.

On disk (SPEC §7; paths below are relative to the task folder, ``ROOT/Single-source`` or
``ROOT/Multi-sources`` as in the official ``avsbench_data`` tree; ``ROOT`` may also be the task
folder itself; ``{task}_data/`` may also sit directly under ``ROOT``)::

    S4   s4_meta_data.csv                        0 name, 1 start, 2 category, 3 split
         s4_data/visual_frames/{split}/{category}/{name}/{name}_{1..5}.png
         s4_data/audio_wav/{split}/{category}/{name}.wav
         s4_data/gt_masks/{split}/{category}/{name}/{name}_{k}.png    train: k = 1 only
    MS3  ms3_meta_data.csv                       0 video id, 1 split
         ms3_data/visual_frames/{name}/{name}.mp4_{1..5}.png          (no split folder)
         ms3_data/audio_wav/{split}/{name}.wav
         ms3_data/gt_masks/{split}/{name}/{name}_{1..5}.png           palette PNG, fg = index != 0

The CSV is read with the ``csv`` module by column position; a header row is skipped (the first
row when its split column is not a split name). Audio is read at whatever rate the WAV holds
(16 kHz for AVSBench) and resampled to 32 kHz (:mod:`edgeavs.io.audio`), then cut into one
window per frame.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from edgeavs.data import N_FRAMES, SPLITS, TASKS
from edgeavs.errors import EdgeAVSError
from edgeavs.io.audio import MODEL_SAMPLE_RATE, load_audio, read_wav, split_windows
from edgeavs.io.frames import load_frame, load_mask, normalize, open_image



@dataclass(frozen=True)
class _Layout:
    folder: str       # task folder under ROOT
    csv_name: str
    data_dir: str     # under the task folder
    split_col: int
    category_col: int | None


_LAYOUTS = {
    "s4": _Layout("Single-source", "s4_meta_data.csv", "s4_data", split_col=3, category_col=2),
    "ms3": _Layout("Multi-sources", "ms3_meta_data.csv", "ms3_data", split_col=1, category_col=None),
}


@dataclass(frozen=True)
class Clip:
    """One clip's metadata and the files it references (``masks[k]`` is None where none exists)."""

    name: str
    category: str
    split: str
    frames: tuple[str, ...]
    audio: str
    masks: tuple[str | None, ...]


def _layout(task: str) -> _Layout:
    if task not in _LAYOUTS:
        raise EdgeAVSError(f"--task: unknown task {task!r}, expected one of {', '.join(TASKS)}")
    return _LAYOUTS[task]


def task_dir(root, task: str) -> str:
    """The folder holding ``{task}_meta_data.csv`` and ``{task}_data/``: ``ROOT/<folder>`` or ``ROOT``."""
    lay = _layout(task)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise EdgeAVSError(f"{root}: dataset root not found")
    for cand in (os.path.join(root, lay.folder), root):
        if os.path.isfile(os.path.join(cand, lay.csv_name)):
            return cand
    raise EdgeAVSError(f"{os.path.join(root, lay.folder, lay.csv_name)}: metadata CSV not found")


def _clip_paths(data: str, task: str, name: str, category: str, split: str) -> Clip:
    ks = range(1, N_FRAMES + 1)
    if task == "s4":
        fdir = os.path.join(data, "visual_frames", split, category, name)
        frames = tuple(os.path.join(fdir, f"{name}_{k}.png") for k in ks)
        audio = os.path.join(data, "audio_wav", split, category, f"{name}.wav")
        mdir = os.path.join(data, "gt_masks", split, category, name)
        with_mask = (1,) if split == "train" else tuple(ks)
    else:
        fdir = os.path.join(data, "visual_frames", name)
        frames = tuple(os.path.join(fdir, f"{name}.mp4_{k}.png") for k in ks)
        audio = os.path.join(data, "audio_wav", split, f"{name}.wav")
        mdir = os.path.join(data, "gt_masks", split, name)
        with_mask = tuple(ks)
    masks = tuple(os.path.join(mdir, f"{name}_{k}.png") if k in with_mask else None for k in ks)
    return Clip(name, category, split, frames, audio, masks)


def read_meta(root, task: str) -> list[Clip]:
    """All clips listed in the task's metadata CSV, in file order, with their file paths."""
    lay = _layout(task)
    base = task_dir(root, task)
    csv_path = os.path.join(base, lay.csv_name)
    # {task}_data/ beside the CSV (official tree); some copies keep it directly under ROOT
    data = os.path.join(base, lay.data_dir)
    beside_root = os.path.join(os.fspath(root), lay.data_dir)
    if not os.path.isdir(data) and os.path.isdir(beside_root):
        data = beside_root
    ncols = max(lay.split_col, lay.category_col or 0) + 1
    clips: list[Clip] = []
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) < ncols:
                    raise EdgeAVSError(
                        f"{csv_path}: line {lineno} has {len(row)} columns, expected at least {ncols}")
                split = row[lay.split_col].strip()
                if split not in SPLITS:
                    if lineno == 1:
                        continue  # header row
                    raise EdgeAVSError(
                        f"{csv_path}: line {lineno} has split {split!r}, expected train, val or test")
                name = row[0].strip()
                category = row[lay.category_col].strip() if lay.category_col is not None else ""
                if not name or (lay.category_col is not None and not category):
                    raise EdgeAVSError(f"{csv_path}: line {lineno} has an empty name or category")
                clips.append(_clip_paths(data, task, name, category, split))
    except UnicodeDecodeError:
        raise EdgeAVSError(f"{csv_path}: not a UTF-8 text CSV") from None
    except csv.Error as exc:
        raise EdgeAVSError(f"{csv_path}: malformed CSV ({exc})") from None
    if not clips:
        raise EdgeAVSError(f"{csv_path}: no clips listed")
    return clips


class ClipError(EdgeAVSError):
    """A clip's file that does not decode, as the datasets' ``__getitem__`` raises it.

    The message is one line naming the file, also after a DataLoader worker re-raises it in
    the main process: torch rebuilds a worker's exception as ``type(exc)(text)`` where
    ``text`` is "Caught ClipError in DataLoader worker process N." followed by the worker's
    whole traceback, whose last line is ``edgeavs.data.avsbench.ClipError: <message>``; this
    class keeps only ``<message>``.
    """

    def __init__(self, message: str = ""):
        super().__init__(self._original(str(message)))

    @classmethod
    def _original(cls, text: str) -> str:
        marker = f"{cls.__module__}.{cls.__qualname__}: "
        if text.startswith("Caught ") and "\nOriginal Traceback" in text and marker in text:
            line = text.rsplit(marker, 1)[1].split("\n", 1)[0].strip()
            if line:
                return line
        return text


def _decode(path: str, fn, *args):
    """``fn(path, *args)``; whatever goes wrong decoding becomes a :class:`ClipError` naming the file."""
    try:
        return fn(path, *args)
    except EdgeAVSError as exc:
        raise ClipError(str(exc).strip().split("\n")[0]) from None
    except (OSError, ValueError, MemoryError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ClipError(f"{path}: cannot decode ({type(exc).__name__}: {detail})") from None


_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC


def _check_png(path: str) -> None:
    if not os.path.isfile(path):
        raise EdgeAVSError(f"{path}: missing")
    open_image(path, formats=("PNG",))  # decodes the whole image: a cut or corrupt file fails here
    # Pillow stops at the last pixel row: a file cut after the image data, before its closing
    # IEND chunk, decodes. It is still an incomplete copy (an interrupted download, a full disk).
    try:
        with open(path, "rb") as fh:
            fh.seek(max(os.path.getsize(path) - 4096, 0))
            tail = fh.read()
    except OSError as exc:
        raise EdgeAVSError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if _PNG_END not in tail:
        raise EdgeAVSError(f"{path}: truncated PNG file (no IEND chunk at its end)")


def _check_wav(path: str) -> None:
    if not os.path.isfile(path):
        raise EdgeAVSError(f"{path}: missing")
    read_wav(path)  # decodes the samples: a cut or malformed file fails here


def check_dataset(root, task: str, report=None) -> dict[str, int]:
    """Check that every file the metadata CSV references exists and decodes.

    Every frame and mask is decoded as a PNG (:func:`edgeavs.io.frames.open_image`), every
    WAV read whole (:func:`edgeavs.io.audio.read_wav`), so truncated or garbage files are
    found, not only missing ones. Returns the number of clips per split (``{"train": n,
    "val": n, "test": n}``) when all files are good.

    Every file is checked before it fails. ``report``, when given, is called with each
    problem's one-line message (``"<file>: <what is wrong>"``) as it is found. Then a bad
    file raises a one-line :class:`EdgeAVSError`: the problem itself when there is one (and
    no ``report``), else a count of the bad files (naming the first when ``report`` is None).
    """
    counts = {s: 0 for s in SPLITS}
    problems: list[str] = []
    checked = 0
    for clip in read_meta(root, task):
        files = [(p, _check_png) for p in clip.frames] + [(clip.audio, _check_wav)]
        files += [(p, _check_png) for p in clip.masks if p is not None]
        for path, check in files:
            checked += 1
            try:
                check(path)
            except EdgeAVSError as exc:
                problems.append(str(exc))
                if report is not None:
                    report(str(exc))
        counts[clip.split] += 1
    if problems:
        if len(problems) == 1 and report is None:
            raise EdgeAVSError(problems[0])
        what = f"{len(problems)} of {checked} files failed the {task} check"
        if report is None:
            raise EdgeAVSError(f"{problems[0]} (and {len(problems) - 1} more: {what})")
        raise EdgeAVSError(f"{os.fspath(root)}: {what}")
    return counts


class _AVSBenchClips(Dataset):
    task = ""

    def __init__(self, root, split: str = "train", size=224):
        if split not in SPLITS:
            raise EdgeAVSError(f"split: unknown split {split!r}, expected one of {', '.join(SPLITS)}")
        self.root = os.fspath(root)
        self.split = split
        self.size = size
        self.clips = [c for c in read_meta(root, self.task) if c.split == split]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        """One clip: ``frames (5,3,H,W)`` normalised, ``audio (5,32000)``, ``masks (5,1,H,W)``
        in {0,1}, ``valid (5,)`` bool (frames that have a ground-truth mask; zeros elsewhere),
        ``name`` and ``category`` (``""`` for MS3)."""
        clip = self.clips[index]
        frames = [normalize(_decode(p, load_frame, self.size)) for p in clip.frames]
        for p, f in zip(clip.frames[1:], frames[1:]):
            if f.shape != frames[0].shape:
                raise ClipError(f"{p}: frame of {f.shape[2]}x{f.shape[1]} pixels, the clip's first "
                                f"frame has {frames[0].shape[2]}x{frames[0].shape[1]}")
        frames = np.stack(frames)
        h, w = frames.shape[-2:]
        audio = split_windows(_decode(clip.audio, load_audio, MODEL_SAMPLE_RATE), N_FRAMES,
                              MODEL_SAMPLE_RATE)
        masks = np.zeros((N_FRAMES, 1, h, w), np.float32)
        valid = np.zeros(N_FRAMES, bool)
        for k, p in enumerate(clip.masks):
            if p is not None:
                masks[k, 0] = _decode(p, load_mask, (h, w))
                valid[k] = True
        return {
            "frames": torch.from_numpy(frames),
            "audio": torch.from_numpy(audio),
            "masks": torch.from_numpy(masks),
            "valid": torch.from_numpy(valid),
            "name": clip.name,
            "category": clip.category,
        }


class S4Dataset(_AVSBenchClips):
    """AVSBench S4 (single sounding source). Train clips have only mask 1 (``valid[0]``)."""

    task = "s4"


class MS3Dataset(_AVSBenchClips):
    """AVSBench MS3 (multiple sources). Every split has all five masks."""

    task = "ms3"


def make_dataset(root, task: str, split: str = "train", size=224) -> _AVSBenchClips:
    """The Dataset for ``task`` (``"s4"`` or ``"ms3"``)."""
    _layout(task)
    return (S4Dataset if task == "s4" else MS3Dataset)(root, split=split, size=size)
