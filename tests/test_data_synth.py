import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.io import wavfile

from cli import main
from edgeavs.data.avsbench import read_meta
from edgeavs.data.synth import CATEGORIES, CATEGORY_NAMES, _sound, make_synthetic
from edgeavs.errors import EdgeAVSError

SIZE = 32


@pytest.fixture(scope="module")
def s4(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "s4"
    counts = make_synthetic(out, task="s4", clips=8, seed=3, size=SIZE)
    return out, counts


@pytest.fixture(scope="module")
def ms3(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "ms3"
    counts = make_synthetic(out, task="ms3", clips=5, seed=3, size=SIZE)
    return out, counts


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_layout_and_splits(s4, ms3):
    out, counts = s4
    assert counts == {"train": 4, "val": 2, "test": 2}
    assert (out / "Single-source" / "s4_meta_data.csv").read_text().splitlines()[0] == "name,start,category,split"
    assert (out / "synth.json").is_file()
    out3, counts3 = ms3
    assert counts3 == {"train": 3, "val": 1, "test": 1}
    assert (out3 / "Multi-sources" / "ms3_meta_data.csv").read_text().splitlines()[0] == "video_id,split"
    # no temporary build folder left beside the output
    assert [p.name for p in out.parent.iterdir()] == ["s4"]


def test_s4_masks_per_split_and_object_colour(s4):
    out, _ = s4
    for clip in read_meta(out, "s4"):
        present = [m is not None and os.path.isfile(m) for m in clip.masks]
        assert present == ([True] + [False] * 4 if clip.split == "train" else [True] * 5)
        mdir = os.path.dirname(clip.masks[0])
        assert len(os.listdir(mdir)) == sum(present)  # nothing else written for train
        for k, m in enumerate(clip.masks):
            if m is None:
                continue
            mask = np.asarray(Image.open(m))
            assert Image.open(m).mode == "L" and set(np.unique(mask)) <= {0, 255}
            assert (mask > 0).sum() > 0.01 * SIZE * SIZE
            # the mask covers the sounding object: its mean colour is the CSV category's colour
            frame = np.asarray(Image.open(clip.frames[k]), np.float64)
            mean = frame[mask > 0].mean(axis=0)
            nearest = min(CATEGORIES, key=lambda c: np.linalg.norm(mean - np.asarray(c[1])))
            assert nearest[0] == clip.category


def test_wav_format(s4):
    out, _ = s4
    clip = read_meta(out, "s4")[0]
    sr, x = wavfile.read(clip.audio)
    assert sr == 16000 and x.shape == (5 * 16000,) and x.dtype == np.int16
    assert 0.3 * 32767 < np.abs(x).max() <= 32767


def test_ms3_palette_masks(ms3):
    out, _ = ms3
    for clip in read_meta(out, "ms3"):
        assert clip.category == ""
        for m in clip.masks:
            img = Image.open(m)
            assert img.mode == "P"
            idx = np.asarray(img)
            assert set(np.unique(idx)) <= {0, 1} and (idx == 1).sum() > 0


def test_deterministic(s4, tmp_path):
    out, _ = s4
    again = tmp_path / "again"
    make_synthetic(again, task="s4", clips=8, seed=3, size=SIZE)
    assert _files(again) == _files(out)
    for rel in _files(out):
        assert (again / rel).read_bytes() == (out / rel).read_bytes(), rel
    other = tmp_path / "other"
    make_synthetic(other, task="s4", clips=8, seed=4, size=SIZE)
    a, b = read_meta(out, "s4")[0], read_meta(other, "s4")[0]
    assert open(a.frames[0], "rb").read() != open(b.frames[0], "rb").read()
    assert open(a.audio, "rb").read() != open(b.audio, "rb").read()


def test_category_sounds_are_distinct():
    # Normalised log power in 128 bands (62.5 Hz): each category's signature is far from every other one's.
    rng = np.random.default_rng(0)
    sigs = []
    for c in range(len(CATEGORIES)):
        p = np.abs(np.fft.rfft(_sound(c, rng))) ** 2
        bands = np.log10(np.array([b.sum() for b in np.array_split(p[1:], 128)]) + 1e-9)
        sigs.append((bands - bands.mean()) / bands.std())
    sigs = np.array(sigs)
    corr = sigs @ sigs.T / sigs.shape[1]
    off = corr[~np.eye(len(CATEGORIES), dtype=bool)]
    assert off.max() < 0.85, corr.round(2)


def test_refuses_non_empty_out(tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("keep")
    with pytest.raises(EdgeAVSError) as ei:
        make_synthetic(out, task="s4", clips=3, size=SIZE)
    assert str(ei.value) == f"{out}: output exists and is not an empty directory"
    assert (out / "x").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert make_synthetic(empty, task="ms3", clips=3, size=SIZE) == {"train": 1, "val": 1, "test": 1}


def test_bad_options(tmp_path):
    with pytest.raises(EdgeAVSError, match="--clips"):
        make_synthetic(tmp_path / "o", task="s4", clips=2)
    with pytest.raises(EdgeAVSError, match="--task"):
        make_synthetic(tmp_path / "o", task="avs")
    assert not (tmp_path / "o").exists()


def test_cli_synth(tmp_path):
    out = tmp_path / "cli"
    r = CliRunner().invoke(main, ["data", "synth", str(out), "--task", "s4", "--clips", "5",
                                  "--seed", "1", "--size", str(SIZE)])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"wrote 5 s4 clips to {out} (train 3, val 1, test 1)"
    cats = [c.category for c in read_meta(out, "s4")]
    # the sounding category cycles through the categories: 5 clips, 5 different ones
    assert len(set(cats)) == 5 and set(cats) <= set(CATEGORY_NAMES)
    r = CliRunner().invoke(main, ["data", "synth", str(out), "--task", "s4", "--clips", "5"])
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {out}: output exists and is not an empty directory"


def test_synth_does_not_import_torch():
    code = "import sys, edgeavs.data.synth; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
