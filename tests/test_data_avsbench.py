import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import main
from edgeavs.data.avsbench import MS3Dataset, S4Dataset, check_dataset, make_dataset, read_meta
from edgeavs.data.synth import make_synthetic
from edgeavs.errors import EdgeAVSError
from edgeavs.io.audio import load_audio
from edgeavs.io.frames import load_frame, load_mask, normalize

SIZE = 32


@pytest.fixture(scope="module")
def s4_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("avs") / "s4"
    make_synthetic(out, task="s4", clips=5, seed=0, size=SIZE)
    return out


@pytest.fixture(scope="module")
def ms3_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("avs") / "ms3"
    make_synthetic(out, task="ms3", clips=4, seed=0, size=SIZE)
    return out


@pytest.fixture
def s4_copy(s4_root, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(s4_root, dst)
    return dst


def test_check_counts(s4_root, ms3_root):
    assert check_dataset(s4_root, "s4") == {"train": 3, "val": 1, "test": 1}
    assert check_dataset(ms3_root, "ms3") == {"train": 2, "val": 1, "test": 1}
    # ROOT may also be the task folder itself
    assert check_dataset(s4_root / "Single-source", "s4") == {"train": 3, "val": 1, "test": 1}


def test_s4_train_item(s4_root):
    ds = S4Dataset(s4_root, split="train", size=SIZE)
    assert len(ds) == 3
    item = ds[0]
    assert item["frames"].shape == (5, 3, SIZE, SIZE) and item["frames"].dtype == torch.float32
    assert item["audio"].shape == (5, 32000) and item["audio"].dtype == torch.float32
    assert item["masks"].shape == (5, 1, SIZE, SIZE) and item["masks"].dtype == torch.float32
    assert item["valid"].dtype == torch.bool
    assert item["valid"].tolist() == [True, False, False, False, False]
    assert item["masks"][0].sum() > 0 and item["masks"][1:].abs().sum() == 0
    clip = ds.clips[0]
    assert item["name"] == clip.name and item["category"] == clip.category != ""
    # exactly the io functions: normalised frames, mask, 16k -> 32k audio cut into five 1-s windows
    np.testing.assert_array_equal(item["frames"][2].numpy(), normalize(load_frame(clip.frames[2])))
    np.testing.assert_array_equal(item["masks"][0, 0].numpy(), load_mask(clip.masks[0]))
    np.testing.assert_array_equal(item["audio"].numpy().reshape(-1), load_audio(clip.audio))


def test_s4_test_item_all_valid_and_resize(s4_root):
    ds = S4Dataset(s4_root, split="test", size=16)
    item = ds[0]
    assert item["valid"].all()
    assert item["frames"].shape == (5, 3, 16, 16) and item["masks"].shape == (5, 1, 16, 16)
    assert set(torch.unique(item["masks"]).tolist()) <= {0.0, 1.0}
    assert (item["masks"].sum(dim=(1, 2, 3)) > 0).all()


def test_ms3_item_and_loader(ms3_root):
    ds = make_dataset(ms3_root, "ms3", split="train", size=SIZE)
    assert isinstance(ds, MS3Dataset) and len(ds) == 2
    item = ds[1]
    assert item["valid"].all() and item["category"] == ""
    assert (item["masks"].sum(dim=(1, 2, 3)) > 0).all()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["frames"].shape == (2, 5, 3, SIZE, SIZE) and batch["audio"].shape == (2, 5, 32000)


def test_missing_file_one_line(s4_copy):
    clip = read_meta(s4_copy, "s4")[-1]
    os.remove(clip.frames[3])
    with pytest.raises(EdgeAVSError) as ei:
        check_dataset(s4_copy, "s4")
    assert str(ei.value) == f"{clip.frames[3]}: missing"
    r = CliRunner().invoke(main, ["data", "check", str(s4_copy), "--task", "s4"])
    n_files = 5 * (5 + 1) + 3 * 1 + 2 * 5  # frames and a WAV per clip; train 1 mask, val/test 5
    assert r.exit_code == 1
    assert r.output == (f"{clip.frames[3]}: missing\n"
                        f"Error: {s4_copy}: 1 of {n_files} files failed the s4 check\n")


def test_unreadable_wav_and_png(s4_copy):
    clip = read_meta(s4_copy, "s4")[0]
    good = open(clip.audio, "rb").read()
    with open(clip.audio, "wb") as fh:
        fh.write(b"\x89PNG not audio")
    with pytest.raises(EdgeAVSError) as ei:
        check_dataset(s4_copy, "s4")
    assert str(ei.value) == f"{clip.audio}: not a WAV file (no RIFF header)"
    with open(clip.audio, "wb") as fh:
        fh.write(good)
    with open(clip.masks[0], "wb") as fh:
        fh.write(b"garbage")
    with pytest.raises(EdgeAVSError) as ei:
        check_dataset(s4_copy, "s4")
    assert str(ei.value) == f"{clip.masks[0]}: not a readable image (PNG expected)"


def test_check_decodes_truncated_files_and_lists_every_bad_one(s4_copy):
    """Cut files have the right magic; the check decodes them and reports each one by name."""
    clips = read_meta(s4_copy, "s4")
    late = [c for c in clips[2:] if c.split != "train"][-1]  # train clips have mask 1 only
    wav, png, mask = clips[0].audio, clips[1].frames[2], late.masks[3]
    for path, keep in ((wav, 0.5), (png, 0.5), (mask, 0.9)):
        data = open(path, "rb").read()
        with open(path, "wb") as fh:
            fh.write(data[:int(len(data) * keep)])
    seen = []
    with pytest.raises(EdgeAVSError) as ei:
        check_dataset(s4_copy, "s4", report=seen.append)
    assert "3 of " in str(ei.value) and "files failed the s4 check" in str(ei.value)
    assert [line.split(": ")[0] for line in seen] == [wav, png, mask]
    assert "truncated" in seen[0] and all("\n" not in line for line in seen)
    with pytest.raises(EdgeAVSError) as ei:  # no report: the first, and how many more
        check_dataset(s4_copy, "s4")
    assert str(ei.value).startswith(seen[0] + " (and 2 more: 3 of ") and "\n" not in str(ei.value)
    r = CliRunner().invoke(main, ["data", "check", str(s4_copy), "--task", "s4"])
    assert r.exit_code == 1 and "all files OK" not in r.output
    lines = r.output.splitlines()
    assert lines[:3] == seen and lines[3].startswith(f"Error: {s4_copy}: 3 of ") and len(lines) == 4


def test_getitem_error_names_the_file_through_worker(s4_copy):
    """A clip that does not decode raises a one-line ClipError naming the file, in the main
    process and re-raised from a DataLoader worker."""
    from edgeavs.data.avsbench import ClipError

    ds = S4Dataset(s4_copy, split="val", size=SIZE)
    bad = ds.clips[0].masks[2]
    data = open(bad, "rb").read()
    with open(bad, "wb") as fh:
        fh.write(data[:len(data) // 2])
    with pytest.raises(ClipError) as ei:
        ds[0]
    direct = str(ei.value)
    assert direct.startswith(f"{bad}: ") and "\n" not in direct
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1)
    with pytest.raises(EdgeAVSError) as ei:
        next(iter(loader))
    assert type(ei.value) is ClipError and str(ei.value) == direct
    r = CliRunner().invoke(main, ["data", "check", str(s4_copy), "--task", "s4"])
    assert r.exit_code == 1 and r.output.splitlines()[0] == direct


def test_csv_without_header_and_bad_split(s4_copy):
    csv_path = s4_copy / "Single-source" / "s4_meta_data.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines[1:]) + "\n")
    assert sum(check_dataset(s4_copy, "s4").values()) == 5
    csv_path.write_text("\n".join(lines[:2] + [lines[2].replace(",train", ",dev").replace(",val", ",dev")
                                               .replace(",test", ",dev")]) + "\n")
    with pytest.raises(EdgeAVSError) as ei:
        read_meta(s4_copy, "s4")
    assert str(ei.value) == f"{csv_path}: line 3 has split 'dev', expected train, val or test"


def test_bad_task_and_split(s4_root):
    with pytest.raises(EdgeAVSError, match="--task"):
        check_dataset(s4_root, "avs")
    with pytest.raises(EdgeAVSError, match="split"):
        S4Dataset(s4_root, split="dev")
    with pytest.raises(EdgeAVSError) as ei:
        check_dataset(s4_root, "ms3")  # an S4 tree has no MS3 metadata
    assert "ms3_meta_data.csv: metadata CSV not found" in str(ei.value)


def test_cli_check(s4_root, tmp_path):
    r = CliRunner().invoke(main, ["data", "check", str(s4_root), "--task", "s4"])
    assert r.exit_code == 0, r.output
    assert r.output == "s4: train 3, val 1, test 1 (5 clips, all files OK)\n"
    missing = tmp_path / "nowhere"
    r = CliRunner().invoke(main, ["data", "check", str(missing), "--task", "s4"])
    assert r.exit_code == 1
    assert r.output == f"Error: {missing}: dataset root not found\n"


def test_data_folder_directly_under_root(s4_copy):
    # Some copies keep s4_data/ beside Single-source/ instead of inside it.
    shutil.move(str(s4_copy / "Single-source" / "s4_data"), str(s4_copy / "s4_data"))
    assert check_dataset(s4_copy, "s4") == {"train": 3, "val": 1, "test": 1}
    assert read_meta(s4_copy, "s4")[0].audio.startswith(str(s4_copy / "s4_data"))
