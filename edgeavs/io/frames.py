"""Image input: video frames as normalised CHW float32 and ground-truth masks as binary HW.

numpy and Pillow only: the compiled-artifact path must not import torch.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib

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


MAX_IMAGE_PIXELS = 8192 * 8192
"""The most pixels an image may declare (67 MP: an 8K frame is 33 MP). Bigger ones are refused
from the header, before anything is decoded: a few-byte PNG can declare gigapixels."""

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
"""The Pillow decoders tried; other files (and Pillow's many exotic plugins) are refused."""

# What Pillow raises on garbage or truncated files besides UnidentifiedImageError: OSError
# ("image file is truncated", decoder errors), SyntaxError (bad PNG chunks or CRCs),
# ValueError, and from the odder chunk readers struct/zlib/Index/EOF errors.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError,
                  TypeError, KeyError, OverflowError)


def open_image(path, formats=IMAGE_FORMATS) -> Image.Image:
    """Open and fully decode an image file (a cut or corrupt file fails here, not later).

    Raises
    ------
    EdgeAVSError
        One line naming the file: missing, a directory, not an image of ``formats``, larger
        than :data:`MAX_IMAGE_PIXELS` or zero-sized, truncated or corrupt.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise EdgeAVSError(f"{path}: image file not found")
    if os.path.isdir(path):
        raise EdgeAVSError(f"{path}: is a directory, expected an image file")
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            # Pillow only warns between its own limit and twice that: make it an error too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh, formats=formats)
            w, h = img.size
            if w < 1 or h < 1:
                raise EdgeAVSError(f"{path}: image has zero size ({w}x{h} pixels)")
            if w * h > MAX_IMAGE_PIXELS:
                raise EdgeAVSError(f"{path}: image too large ({w}x{h} pixels; at most "
                                   f"{MAX_IMAGE_PIXELS} are decoded)")
            img.load()  # decode now, while the file is open: truncation and bad data fail here
    except EdgeAVSError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        detail = _msg(exc).split(", could be")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        raise EdgeAVSError(f"{path}: image too large ({detail})") from None
    except UnidentifiedImageError:
        names = "/".join(formats) if formats else "an image"
        raise EdgeAVSError(f"{path}: not a readable image ({names} expected)") from None
    except MemoryError:
        raise EdgeAVSError(f"{path}: image too large to decode") from None
    except _DECODE_ERRORS as exc:
        raise EdgeAVSError(f"{path}: unreadable image ({_msg(exc)})") from None
    return img


def _msg(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _convert(path, fn, *args):
    """``fn(*args)`` on a decoded image; a mode Pillow cannot convert becomes a one-line error."""
    try:
        return fn(*args)
    except MemoryError:
        raise EdgeAVSError(f"{os.fspath(path)}: image too large to convert") from None
    except _DECODE_ERRORS as exc:
        raise EdgeAVSError(f"{os.fspath(path)}: unreadable image ({_msg(exc)})") from None



def load_frame(path, size=None) -> np.ndarray:
    """Load an image as RGB float32 ``(3, H, W)`` in [0, 1] (not normalised).

    ``size`` is ``(H, W)`` (or an int for a square); when it differs from the image's size the
    image is resized bilinearly. ``None`` keeps the stored size. Apply :func:`normalize` for
    the model's input.
    """
    hw = _size_hw(size)
    img = open_image(path)
    return _convert(path, _frame_array, img, hw)


def _frame_array(img, hw):
    img = img.convert("RGB")
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
    img = open_image(path)
    return _convert(path, _mask_array, img, hw)


def _mask_array(img, hw):
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
