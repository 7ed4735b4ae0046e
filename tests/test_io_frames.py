import numpy as np
import pytest
from PIL import Image

from edgeavs.errors import EdgeAVSError
from edgeavs.io.frames import IMAGENET_MEAN, IMAGENET_STD, load_frame, load_mask, normalize


def _rgb(tmp_path, name="f.png", h=6, w=8):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    p = tmp_path / name
    Image.fromarray(arr).save(p)
    return p, arr


def test_load_frame_png_exact(tmp_path):
    p, arr = _rgb(tmp_path)
    x = load_frame(p)
    assert x.shape == (3, 6, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(x, arr.transpose(2, 0, 1) / np.float32(255.0))
    np.testing.assert_array_equal(load_frame(p, size=(6, 8)), x)


def test_load_frame_resize_bilinear(tmp_path):
    p, arr = _rgb(tmp_path)
    x = load_frame(p, size=(12, 16))
    ref = np.asarray(Image.fromarray(arr).resize((16, 12), Image.BILINEAR), np.float32) / 255.0
    assert x.shape == (3, 12, 16)
    np.testing.assert_array_equal(x, ref.transpose(2, 0, 1))
    assert load_frame(p, size=4).shape == (3, 4, 4)


def test_load_frame_grey_jpeg_to_rgb(tmp_path):
    p = tmp_path / "g.jpg"
    Image.new("L", (5, 4), 200).save(p, quality=95)
    x = load_frame(p)
    assert x.shape == (3, 4, 5)
    np.testing.assert_allclose(x, 200 / 255.0, atol=2 / 255.0)  # JPEG rounding


def test_normalize():
    x = np.ones((2, 3, 2, 2), np.float32)
    y = normalize(x)
    for c in range(3):
        np.testing.assert_allclose(y[:, c], (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rtol=1e-6)
    with pytest.raises(EdgeAVSError):
        normalize(np.ones((4, 2, 2)))


def test_load_mask_palette_nonzero_index(tmp_path):
    # Index 0 is drawn in a non-black colour and index 1 in black: only the index counts.
    idx = np.array([[0, 1, 2], [0, 0, 3]], np.uint8)
    img = Image.new("P", (3, 2))
    img.putdata(idx.reshape(-1).tolist())
    img.putpalette([255, 255, 255, 0, 0, 0, 10, 20, 30, 1, 1, 1] + [0] * (256 * 3 - 12))
    p = tmp_path / "m.png"
    img.save(p)
    assert Image.open(p).mode == "P"
    m = load_mask(p)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, (idx != 0).astype(np.float32))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_load_mask_l_and_rgb(tmp_path, mode):
    g = np.array([[0, 255], [7, 0]], np.uint8)
    arr = g if mode == "L" else np.stack([np.zeros_like(g), np.zeros_like(g), g], -1)
    p = tmp_path / "m.png"
    Image.fromarray(arr).save(p)
    np.testing.assert_array_equal(load_mask(p), [[0, 1], [1, 0]])


def test_load_mask_nearest_resize(tmp_path):
    g = np.zeros((4, 4), np.uint8)
    g[:2, :2] = 255
    p = tmp_path / "m.png"
    Image.fromarray(g).save(p)
    m = load_mask(p, size=(8, 8))
    assert m.shape == (8, 8) and set(np.unique(m)) <= {0.0, 1.0}
    assert m[:4, :4].all() and not m[4:].any() and not m[:, 4:].any()


def test_missing_and_unreadable(tmp_path):
    for fn in (load_frame, load_mask):
        with pytest.raises(EdgeAVSError) as ei:
            fn(tmp_path / "none.png")
        assert str(ei.value) == f"{tmp_path / 'none.png'}: image file not found"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"RIFF not an image")
    with pytest.raises(EdgeAVSError) as ei:
        load_frame(bad)
    assert str(bad) in str(ei.value) and "\n" not in str(ei.value)
    p, _ = _rgb(tmp_path, "t.png", 20, 20)
    cut = tmp_path / "cut.png"
    cut.write_bytes(p.read_bytes()[:60])
    with pytest.raises(EdgeAVSError) as ei:
        load_mask(cut)
    assert str(cut) in str(ei.value) and "\n" not in str(ei.value)
