"""A small synthetic audio-visual segmentation dataset, written in the AVSBench layout.

The same readers (:mod:`edgeavs.data.avsbench`) read it, so training, evaluation and the demo
run end to end without the real AVSBench. numpy, Pillow and ``scipy.io.wavfile`` only
(:func:`demo_clip`, the demo's and the benchmark's video clip, also encodes through
:mod:`edgeavs.video`).

Design: ``CATEGORIES`` are six object kinds, each with its own look (a shape and a colour) and
its own sound (a distinct spectral/temporal pattern in its own band). A clip shows 2–4 objects
of *different* categories over a textured background, moving linearly across the five frames.
Some of them sound, the others are silent distractors; the vision alone cannot tell which, so
the audio is needed:

- S4: exactly one sounding object; the WAV is its category's sound plus white noise; the mask
  is its visible pixels (later objects occlude earlier ones). Train clips get mask 1 only.
- MS3: one or two sounding objects among one or two distractors; the WAV mixes their sounds;
  the mask is the union of their visible pixels, stored as a palette PNG (index 1 = fg).

Audio is 16 kHz, 5 s, 16-bit PCM (as AVSBench). Everything is a function of ``seed``: the same
seed writes byte-identical files. Splits are 60/20/20 % (at least one clip in val and test).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
from scipy.io import wavfile

from edgeavs.data import N_FRAMES, SPLITS, TASKS
from edgeavs.errors import EdgeAVSError
from edgeavs.io.atomic import dir_mode

AUDIO_RATE = 16000
DURATION_S = 5
DEFAULT_CLIPS = {"s4": 48, "ms3": 24}

# name, RGB colour, sound description (the synthesis is in _sound)
CATEGORIES = (
    ("circle", (220, 40, 40), "harmonic hum, f0 ~200 Hz, 5 harmonics"),
    ("square", (40, 170, 60), "1 kHz beep gated on/off at 4 Hz"),
    ("triangle", (50, 80, 230), "repeating up-chirp 1.5-3.5 kHz every 0.25 s"),
    ("ring", (235, 200, 30), "band-pass noise 5-6.5 kHz"),
    ("cross", (200, 50, 200), "click train at 10 Hz, 4.2 kHz decaying bursts"),
    ("diamond", (30, 200, 215), "700 Hz tone with 6 Hz, +-200 Hz vibrato"),
)
CATEGORY_NAMES = tuple(c[0] for c in CATEGORIES)


# --- pictures ----------------------------------------------------------------------------

def _shape_mask(kind: str, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Pixels inside a unit-radius shape; ``dy, dx`` are offsets from its centre / radius."""
    if kind == "circle":
        return dx * dx + dy * dy <= 1.0
    if kind == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8
    if kind == "triangle":  # apex up
        return (dy >= -0.9) & (dy <= 0.8) & (np.abs(dx) <= (dy + 0.9) / 1.7)
    if kind == "ring":
        r2 = dx * dx + dy * dy
        return (r2 <= 1.0) & (r2 >= 0.55 ** 2)
    if kind == "cross":
        return ((np.abs(dx) <= 0.3) & (np.abs(dy) <= 1.0)) | ((np.abs(dy) <= 0.3) & (np.abs(dx) <= 1.0))
    if kind == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.0
    raise ValueError(kind)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth muted colour field plus stripes: float (size, size, 3) in [0, 255]."""
    coarse = rng.uniform(70, 170, (6, 6, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    freq = rng.uniform(6, 14)
    stripes = 12.0 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    return smooth + stripes[..., None]


def _place_objects(rng: np.random.Generator, n: int, size: int) -> list[dict]:
    """Radius, start centre and per-frame velocity for ``n`` objects, spread apart when possible."""
    objs: list[dict] = []
    for _ in range(n):
        r = rng.uniform(0.11, 0.17) * size
        best, best_gap = None, -np.inf
        for _ in range(20):
            c = rng.uniform(r, size - r, 2)
            gap = min((np.hypot(*(c - o["c0"])) - r - o["r"] for o in objs), default=np.inf)
            if gap > best_gap:
                best, best_gap = c, gap
            if gap > 0:
                break
        vel = rng.uniform(-0.03, 0.03, 2) * size
        objs.append({"r": r, "c0": best, "v": vel})
    return objs


def _draw_clip(rng, size, cats, colours):
    """Five RGB frames (uint8) and, per object, its visible-pixel masks over the five frames."""
    objs = _place_objects(rng, len(cats), size)
    bg = _background(rng, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    frames = np.empty((N_FRAMES, size, size, 3), np.uint8)
    visible = np.zeros((len(cats), N_FRAMES, size, size), bool)
    for t in range(N_FRAMES):
        img = bg + rng.normal(0.0, 6.0, bg.shape)
        owner = np.full((size, size), -1)
        for j, (cat, o) in enumerate(zip(cats, objs)):
            cy, cx = np.clip(o["c0"] + t * o["v"], o["r"], size - o["r"])
            inside = _shape_mask(CATEGORY_NAMES[cat], (yy - cy) / o["r"], (xx - cx) / o["r"])
            shade = 1.0 - 0.25 * ((yy - cy) / o["r"])  # lit from above
            img[inside] = colours[j] * np.clip(shade[inside], 0.7, 1.3)[:, None]
            owner[inside] = j
        for j in range(len(cats)):
            visible[j, t] = owner == j
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames, visible


# --- sounds ------------------------------------------------------------------------------

def _sound(cat: int, rng: np.random.Generator) -> np.ndarray:
    """Five seconds of category ``cat``'s sound at 16 kHz, unit RMS, with per-clip jitter."""
    n = AUDIO_RATE * DURATION_S
    t = np.arange(n) / AUDIO_RATE
    j = rng.uniform(0.93, 1.07)  # pitch/rate jitter
    name = CATEGORY_NAMES[cat]
    if name == "circle":
        f0 = 200.0 * j
        x = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    elif name == "square":
        gate = (np.sin(2 * np.pi * 4.0 * j * t + rng.uniform(0, 2 * np.pi)) > 0).astype(float)
        gate = np.convolve(gate, np.hanning(81) / np.hanning(81).sum(), mode="same")
        x = gate * np.sin(2 * np.pi * 1000.0 * j * t)
    elif name == "triangle":
        period = 0.25
        tau = np.mod(t + rng.uniform(0, period), period)
        f_lo, f_hi = 1500.0 * j, 3500.0 * j
        phase = 2 * np.pi * (f_lo * tau + (f_hi - f_lo) * tau ** 2 / (2 * period))
        x = np.sin(phase) * np.sin(np.pi * tau / period) ** 0.5
    elif name == "ring":
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / AUDIO_RATE)
        spec[(f < 5000.0 * j) | (f > 6500.0 * j)] = 0
        x = np.fft.irfft(spec, n)
    elif name == "cross":
        period = int(AUDIO_RATE / (10.0 * j))
        tb = np.arange(period) / AUDIO_RATE
        burst = np.sin(2 * np.pi * 4200.0 * tb) * np.exp(-tb / 0.005)
        x = np.tile(burst, n // period + 1)[:n]
        x = np.roll(x, int(rng.integers(period)))
    elif name == "diamond":
        fm = 200.0 * np.sin(2 * np.pi * 6.0 * j * t)
        x = np.sin(2 * np.pi * 700.0 * j * t + 2 * np.pi * np.cumsum(fm) / AUDIO_RATE)
    else:
        raise ValueError(name)
    x = np.asarray(x, np.float64)
    return x / (np.sqrt(np.mean(x * x)) + 1e-12)


def _mix(cats_sounding, rng) -> np.ndarray:
    """The sounding categories' sounds (random relative gains) plus white noise at 10-20 dB SNR."""
    x = sum(rng.uniform(0.6, 1.0) * _sound(c, rng) for c in cats_sounding)
    rms = np.sqrt(np.mean(x * x))
    snr_db = rng.uniform(10.0, 20.0)
    x = x + rng.standard_normal(x.shape) * rms * 10 ** (-snr_db / 20)
    x = x / np.max(np.abs(x)) * rng.uniform(0.4, 0.8)
    return np.rint(x * 32767).astype(np.int16)


# --- writing -----------------------------------------------------------------------------

def _save_png(path: str, img: Image.Image) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, format="PNG")


def _binary_png(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(mask.astype(np.uint8) * 255)


def _palette_png(mask: np.ndarray) -> Image.Image:
    img = Image.new("P", (mask.shape[1], mask.shape[0]))
    img.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254)
    img.frombytes(mask.astype(np.uint8).tobytes())
    return img


def _splits(n: int, rng: np.random.Generator) -> list[str]:
    n_val = max(1, round(0.2 * n))
    n_test = max(1, round(0.2 * n))
    labels = ["train"] * (n - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
    return [labels[i] for i in rng.permutation(n)]


def _write_clip(base, task, name, split, lead, rng, size) -> str:
    """Draw and write one clip under ``base`` whose first sounding category is ``lead``;
    returns its category ("" for MS3)."""
    k = len(CATEGORIES)
    if task == "s4":
        n_sound = 1
        n_obj = int(rng.integers(2, 4))
    else:
        n_sound = int(rng.integers(1, 3))
        n_obj = n_sound + int(rng.integers(1, 3))
    others = [c for c in range(k) if c != lead]
    cats = [lead] + [others[int(c)] for c in rng.choice(k - 1, size=n_obj - 1, replace=False)]
    order = rng.permutation(n_obj)  # drawing order: the sounding ones are not always on top
    sounding = set(range(n_sound))  # objects 0..n_sound-1 sound
    drawn = [cats[i] for i in order]
    colours = [np.clip(np.asarray(CATEGORIES[c][1], float) + rng.uniform(-15, 15, 3), 0, 255)
               for c in drawn]
    frames, visible = _draw_clip(rng, size, drawn, colours)
    fg = np.zeros(frames.shape[:3], bool)
    for slot, i in enumerate(order):
        if i in sounding:
            fg |= visible[slot]
    audio = _mix([cats[i] for i in sorted(sounding)], rng)

    if task == "s4":
        cat = CATEGORY_NAMES[cats[0]]
        data = os.path.join(base, "s4_data")
        fdir = os.path.join(data, "visual_frames", split, cat, name)
        wav = os.path.join(data, "audio_wav", split, cat, f"{name}.wav")
        mdir = os.path.join(data, "gt_masks", split, cat, name)
        frame_names = [f"{name}_{t + 1}.png" for t in range(N_FRAMES)]
        mask_ts = [0] if split == "train" else range(N_FRAMES)
        to_png = _binary_png
    else:
        cat = ""
        data = os.path.join(base, "ms3_data")
        fdir = os.path.join(data, "visual_frames", name)
        wav = os.path.join(data, "audio_wav", split, f"{name}.wav")
        mdir = os.path.join(data, "gt_masks", split, name)
        frame_names = [f"{name}.mp4_{t + 1}.png" for t in range(N_FRAMES)]
        mask_ts = range(N_FRAMES)
        to_png = _palette_png
    for t in range(N_FRAMES):
        _save_png(os.path.join(fdir, frame_names[t]), Image.fromarray(frames[t]))
    for t in mask_ts:
        _save_png(os.path.join(mdir, f"{name}_{t + 1}.png"), to_png(fg[t]))
    os.makedirs(os.path.dirname(wav), exist_ok=True)
    wavfile.write(wav, AUDIO_RATE, audio)
    return cat


def make_synthetic(out, task: str = "s4", clips: int | None = None, seed: int = 0,
                   size: int = 224) -> dict[str, int]:
    """Write a synthetic ``task`` dataset (``"s4"`` or ``"ms3"``) to the new folder ``out``.

    ``out`` is laid out as an AVSBench root (``out/Single-source/...`` or
    ``out/Multi-sources/...``) plus ``out/synth.json`` describing the categories. It is built in a
    temporary folder beside ``out`` and renamed into place, so ``out`` is either complete or
    absent; an existing non-empty ``out`` is refused. Returns the number of clips per split.
    """
    if task not in TASKS:
        raise EdgeAVSError(f"--task: unknown task {task!r}, expected one of {', '.join(TASKS)}")
    clips = DEFAULT_CLIPS[task] if clips is None else clips
    if int(clips) != clips or clips < 3:
        raise EdgeAVSError(f"--clips: need at least 3 clips (one per split), got {clips}")
    if int(size) != size or not 16 <= size <= 1024:
        raise EdgeAVSError(f"--size: must be an integer in [16, 1024], got {size}")
    if int(seed) != seed or seed < 0:
        raise EdgeAVSError(f"--seed: must be a non-negative integer, got {seed}")
    clips, size, seed = int(clips), int(size), int(seed)
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise EdgeAVSError(f"{out}: output exists and is not an empty directory")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)

    rng = np.random.default_rng(seed)
    splits = _splits(clips, rng)
    # the (first) sounding category cycles through all categories, in a shuffled order
    leads = rng.permutation(np.resize(np.arange(len(CATEGORIES)), clips))
    clip_rngs = rng.spawn(clips)
    folder, csv_name = ("Single-source", "s4_meta_data.csv") if task == "s4" else \
        ("Multi-sources", "ms3_meta_data.csv")

    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        base = os.path.join(tmp, folder)
        rows = []
        for i, (split, crng) in enumerate(zip(splits, clip_rngs)):
            name = f"{task}_{i:05d}"
            cat = _write_clip(base, task, name, split, int(leads[i]), crng, size)
            rows.append(f"{name},0,{cat},{split}" if task == "s4" else f"{name},{split}")
        header = "name,start,category,split" if task == "s4" else "video_id,split"
        with open(os.path.join(base, csv_name), "w", newline="") as fh:
            fh.write("\n".join([header] + rows) + "\n")
        info = {"task": task, "clips": clips, "seed": seed, "size": size,
                "audio_rate": AUDIO_RATE, "duration_s": DURATION_S,
                "categories": [{"name": n, "colour": list(c), "sound": s} for n, c, s in CATEGORIES]}
        with open(os.path.join(tmp, "synth.json"), "w") as fh:
            json.dump(info, fh, indent=1)
            fh.write("\n")
        os.chmod(tmp, dir_mode())
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {s: splits.count(s) for s in SPLITS}


# ---------------------------------------------------------------- a demo clip (``edgeavs demo``, bench_segment)

def _heard(schedule: list[dict], t: float, window: float):
    """Index into :data:`CATEGORIES` of what sounds at ``t`` (``window`` 0) or longest in
    ``[t - window, t]``."""
    if window <= 0:
        return next((CATEGORY_NAMES.index(s["category"]) for s in schedule if s["start"] <= t < s["end"]), None)
    heard: dict[str, float] = {}
    for s in schedule:
        overlap = min(s["end"], t) - max(s["start"], t - window)
        if overlap > 0:
            heard[s["category"]] = heard.get(s["category"], 0.0) + overlap
    if not heard:
        return _heard(schedule, t, 0.0)
    return CATEGORY_NAMES.index(max(heard, key=heard.get))


def demo_clip(path, seconds: float = 6.0, width: int = 192, height: int = 144, fps: int = 10,
              categories=(0, 1, 2), switch_s: float | None = None, seed: int = 0,
              truth: list | None = None, truth_window_s: float = 0.0) -> list[dict]:
    """Write an mp4 of ``categories`` (indices into :data:`CATEGORIES`) bouncing over a
    textured background, with the sound of one of them at a time: the sounding one changes
    every ``switch_s`` seconds (default: each category once), in turn. Frames are drawn and
    encoded one at a time (a long 1280x720 clip needs no more memory than a short one), the
    audio is made whole (small); returns the sounding schedule
    ``[{"start": s, "end": s, "category": name}, ...]``.

    ``truth``: a list that gets, per frame, the ``(height, width)`` boolean mask of the shape that
    sounds at that frame's time, or with ``truth_window_s`` > 0 of the shape that sounds longest in
    the ``truth_window_s`` seconds up to it (what a model given that causal audio window hears;
    before the clip's start counts as silence). The demo scores its masks against this."""
    from edgeavs.video import write_clip

    rng = np.random.default_rng(seed)
    n_frames = int(round(seconds * fps))
    side = max(width, height)
    bg = _background(rng, side)[:height, :width]
    k = len(categories)
    switch_s = switch_s or seconds / k
    radius = rng.uniform(0.12, 0.16, k) * min(width, height)
    pos = np.stack([rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)], 1)
    vel = rng.uniform(-0.25, 0.25, (k, 2)) * min(width, height)  # pixels per second
    colours = [np.asarray(CATEGORIES[c][1], np.float32) for c in categories]

    def frames():
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        noise = np.random.default_rng(seed + 1)
        for i in range(n_frames):
            t = i / fps
            img = bg + noise.normal(0.0, 5.0, bg.shape).astype(np.float32)
            sounding = _heard(schedule, t, truth_window_s)
            gt = np.zeros((height, width), bool)
            for j, c in enumerate(categories):
                lo, hi = radius[j], np.array([width, height]) - radius[j]
                p = pos[j] + vel[j] * t  # bounce off the borders
                span = hi - lo
                p = lo + span - np.abs(np.mod(p - lo, 2 * span) - span)
                inside = _shape_mask(CATEGORY_NAMES[c], (yy - p[1]) / radius[j], (xx - p[0]) / radius[j])
                shade = np.clip(1.0 - 0.25 * (yy - p[1]) / radius[j], 0.7, 1.3)
                img[inside] = colours[j] * shade[inside][:, None]
                gt[inside] = c == sounding  # a later shape covers an earlier one
            if truth is not None:
                truth.append(gt)
            yield np.clip(np.rint(img), 0, 255).astype(np.uint8)

    schedule, chunks = [], []
    n_audio = int(round(seconds * AUDIO_RATE))
    start = 0.0
    turn = 0
    while start < seconds:
        end = min(start + switch_s, seconds)
        cat = categories[turn % k]
        need = int(round(end * AUDIO_RATE)) - int(round(start * AUDIO_RATE))
        x = np.concatenate([_sound(cat, rng) for _ in range(need // (5 * AUDIO_RATE) + 1)])[:need]
        ramp = np.minimum(1.0, np.minimum(np.arange(need), np.arange(need)[::-1]) / 160.0)
        chunks.append(x * ramp)
        schedule.append({"start": round(start, 3), "end": round(end, 3), "category": CATEGORY_NAMES[cat]})
        start, turn = end, turn + 1
    audio = np.concatenate(chunks)[:n_audio]
    audio = audio + rng.standard_normal(audio.shape) * 0.05
    audio = (0.5 * audio / np.max(np.abs(audio))).astype(np.float32)
    write_clip(path, frames(), audio, fps, AUDIO_RATE)
    return schedule
