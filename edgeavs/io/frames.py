"""Image input: video frames as normalised CHW float32 and ground-truth masks as binary HW.

numpy and Pillow only: the compiled-artifact path must not import torch.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgeavs.errors import EdgeAVSError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _size_hw(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise EdgeAVSError(f"size must be an int or (H, W), got {size!r}") from None
    if h < 1 or w < 1:
        raise EdgeAVSError(f"size must be positive, got {size!r}")
    return h, w


def _open_image(path) -> Image.Image:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise EdgeAVSError(f"{path}: image file not found")
    if os.path.isdir(path):
        raise EdgeAVSError(f"{path}: is a directory, expected an image file")
    try:
        img = Image.open(path)
        img.load()
    except UnidentifiedImageError:
        raise EdgeAVSError(f"{path}: not a readable image (PNG/JPEG expected)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise EdgeAVSError(f"{path}: unreadable image ({msg})") from None
    return img


def load_frame(path, size=None) -> np.ndarray:
    """Load an image as RGB float32 ``(3, H, W)`` in [0, 1] (not normalised).

    ``size`` is ``(H, W)`` (or an int for a square); when it differs from the image's size the
    image is resized bilinearly. ``None`` keeps the stored size. Apply :func:`normalize` for
    the model's input.
    """
    hw = _size_hw(size)
    img = _open_image(path).convert("RGB")
    if hw is not None and (img.height, img.width) != hw:
        img = img.resize((hw[1], hw[0]), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def normalize(arr: np.ndarray) -> np.ndarray:
    """ImageNet mean/std normalisation of RGB in [0, 1]; channels on axis -3 (``(..., 3, H, W)``)."""
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim < 3 or arr.shape[-3] != 3:
        raise EdgeAVSError(f"normalize: expected (..., 3, H, W) RGB, got shape {tuple(arr.shape)}")
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
    return (arr - mean) / std


def load_mask(path, size=None) -> np.ndarray:
    """Load a ground-truth mask as float32 ``(H, W)`` with 1 = foreground, 0 = background.

    Foreground is any stored value ≠ 0, as AVSBench counts it: the palette index for palette
    PNGs (MS3), the grey level for L/1 masks (S4), any of R, G, B for colour masks (alpha is
    ignored). Resizing, when ``size`` differs, is nearest-neighbour on the binary mask.
    """
    hw = _size_hw(size)
    img = _open_image(path)
    if img.mode in ("P", "L", "1", "I", "I;16", "F"):
        raw = np.asarray(img)
        fg = raw != 0
    else:
        raw = np.asarray(img.convert("RGB"))
        fg = (raw != 0).any(axis=-1)
    if hw is not None and fg.shape != hw:
        small = Image.fromarray(fg.astype(np.uint8) * 255)
        fg = np.asarray(small.resize((hw[1], hw[0]), Image.NEAREST)) != 0
    return fg.astype(np.float32)
