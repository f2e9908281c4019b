"""Every kind of bad input is one DataError naming the file (and list line), or a counted skip."""
from __future__ import annotations

import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter
from tusimple_duc.data.lists import ListEntry, read_list
from tusimple_duc.data.readers import read_rgb_image
from tusimple_duc.data.sample import SamplingSpec, make_sample
from tusimple_duc.errors import DataError

WHERE = "train.lst line 3"
SHAPE = (16, 24)


def spec_for(mode: str) -> SamplingSpec:
    return SamplingSpec(crop_shape=(16, 24), scale_factors=(1.0,), use_random_crop=False, convert_label=mode,
                        num_classes={"kitti": 2, "voc": 21, "none": 5}.get(mode, 19), label_layout="map",
                        label_stride=1, cell_width=1)


def good_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, SHAPE + (3,), dtype=np.uint8)


def good_label(mode: str) -> np.ndarray:
    if mode == "kitti":
        gt = np.zeros(SHAPE + (3,), dtype=np.uint8)
        gt[:, :] = (255, 0, 255)  # BGR magenta = road
        return gt
    return np.full(SHAPE, {"cityscapes": 7, "voc": 3, "none": 4}[mode], dtype=np.uint8)


def write(path: str, array: np.ndarray) -> str:
    assert cv2.imwrite(path, array)
    return path


def expect_error(entry: ListEntry, mode: str, *fragments: str) -> None:
    with pytest.raises(DataError) as caught:
        make_sample(entry, 0, spec_for(mode))
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments + (WHERE,):
        assert fragment in message, (fragment, message)


@pytest.fixture
def pair(tmp_path):
    """``make(mode)`` -> (image path, label path) of a valid pair in ``tmp_path``."""
    def make(mode: str = "cityscapes"):
        return write(str(tmp_path / "image.png"), good_image()), write(str(tmp_path / "label.png"), good_label(mode))

    return make


def entry_of(image: str, label: str) -> ListEntry:
    return ListEntry(2, image, label, None, WHERE)


@pytest.mark.parametrize("mode", ["cityscapes", "kitti", "voc", "none"])
def test_the_valid_pair_is_accepted(pair, mode):
    image, label = make_sample(entry_of(*pair(mode)), 0, spec_for(mode))
    assert image.shape == (3,) + SHAPE and label.shape == SHAPE


def test_read_rgb_image_returns_rgb(tmp_path):
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0], bgr[..., 2] = 10, 200  # blue 10, red 200
    rgb = read_rgb_image(write(str(tmp_path / "c.png"), bgr))
    assert rgb.shape == (2, 3, 3) and np.all(rgb[..., 0] == 200) and np.all(rgb[..., 2] == 10)


# ------------------------------------------------------------------ files
def test_missing_image(pair, tmp_path):
    _, label = pair()
    missing = str(tmp_path / "nope.png")
    expect_error(entry_of(missing, label), "cityscapes", missing, "image file not found")


def test_missing_label(pair, tmp_path):
    image, _ = pair()
    missing = str(tmp_path / "nope_label.png")
    expect_error(entry_of(image, missing), "cityscapes", missing, "label file not found")


def test_directory_instead_of_image(pair, tmp_path):
    _, label = pair()
    expect_error(entry_of(str(tmp_path), label), "cityscapes", str(tmp_path), "cannot read image file")


def test_empty_file(pair, tmp_path):
    _, label = pair()
    empty = str(tmp_path / "empty.png")
    open(empty, "wb").close()
    expect_error(entry_of(empty, label), "cityscapes", empty, "image file is empty")


def test_not_an_image(pair, tmp_path):
    _, label = pair()
    text = str(tmp_path / "notes.png")
    with open(text, "w") as handle:
        handle.write("not a picture")
    expect_error(entry_of(text, label), "cityscapes", text, "not a PNG, JPEG, BMP or PPM file")


def test_corrupt_png(pair):
    image, label = pair()
    with open(image, "r+b") as handle:  # keep the signature, scramble the chunks
        handle.seek(40)
        handle.write(bytes(range(200)))
    expect_error(entry_of(image, label), "cityscapes", image, "cannot decode image")


@pytest.mark.parametrize("which", ["image", "label"])
def test_truncated_png(pair, which):
    paths = dict(zip(("image", "label"), pair()))
    with open(paths[which], "rb") as handle:
        data = handle.read()
    with open(paths[which], "wb") as handle:
        handle.write(data[: len(data) // 2])
    expect_error(entry_of(paths["image"], paths["label"]), "cityscapes", paths[which], f"cannot decode {which}")


def test_truncated_label_png_stays_an_error_when_pil_was_told_to_load_truncated_images(pair, monkeypatch):
    """GluonCV's data package sets PIL's LOAD_TRUNCATED_IMAGES on import; a truncated label must
    still be an error, and the flag is left as it was."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    image, label = pair()
    with open(label, "rb") as handle:
        data = handle.read()
    with open(label, "wb") as handle:
        handle.write(data[: len(data) // 2])
    expect_error(entry_of(image, label), "cityscapes", label, "cannot decode label")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_truncated_jpeg(pair, tmp_path):
    _, label = pair()
    jpeg = str(tmp_path / "image.jpg")
    write(jpeg, good_image())
    with open(jpeg, "rb") as handle:
        data = handle.read()
    with open(jpeg, "wb") as handle:
        handle.write(data[: len(data) - 40])
    expect_error(entry_of(jpeg, label), "cityscapes", jpeg, "truncated JPEG")


def test_image_and_label_of_different_sizes(pair, tmp_path):
    image, _ = pair()
    label = write(str(tmp_path / "small_label.png"), np.full((8, 24), 7, np.uint8))
    expect_error(entry_of(image, label), "cityscapes", label, image, "8x24", "16x24")


# ------------------------------------------------------------------ label kinds
@pytest.mark.parametrize("array, described", [
    (np.zeros(SHAPE + (3,), np.uint8), "3-channel colour image (mode RGB)"),
    (np.zeros(SHAPE + (4,), np.uint8), "4-channel colour image (mode RGBA)"),
])
def test_cityscapes_label_in_colour_is_refused(pair, tmp_path, array, described):
    image, _ = pair()
    label = write(str(tmp_path / "odd_label.png"), array)
    expect_error(entry_of(image, label), "cityscapes", label, described, "expected 8-bit single-channel")


# ------------------------------------------------------------------ label values
def test_kitti_colour_outside_the_three(pair, tmp_path):
    image, _ = pair("kitti")
    gt = good_label("kitti")
    gt[5, 9] = (0, 255, 0)  # BGR green
    label = write(str(tmp_path / "gt.png"), gt)
    expect_error(entry_of(image, label), "kitti", label, "colour (0, 255, 0) at row 5, column 9")


def test_kitti_gt_that_is_grayscale(pair, tmp_path):
    image, _ = pair("kitti")
    label = write(str(tmp_path / "gt.png"), np.zeros(SHAPE, np.uint8))
    expect_error(entry_of(image, label), "kitti", label, "expected 8-bit RGB")


def test_voc_label_saved_as_rgb_colours(pair, tmp_path):
    image, _ = pair("voc")
    label = write(str(tmp_path / "voc_rgb.png"), np.zeros(SHAPE + (3,), np.uint8))
    expect_error(entry_of(image, label), "voc", label, "mode RGB")


def test_train_id_label_above_the_classes(pair, tmp_path):
    image, _ = pair("none")
    ids = np.full(SHAPE, 4, np.uint8)
    ids[3, 3] = 5
    label = write(str(tmp_path / "train_ids.png"), ids)
    expect_error(entry_of(image, label), "none", label, "label values 5", "training ids 0..4")


# ------------------------------------------------------------------ lists
@pytest.mark.parametrize("line, fragment", [
    ("1\ta.png\tb.png\t5", "expected 2, 3 or 5 TAB-separated fields, got 4"),
    ("1 a.png b.png 5 6", "expected 2, 3 or 5 TAB-separated fields, got 1 (the line has spaces but no TAB)"),
    ("1\ta.png\t", "empty label path"),
    ("one\ta.png\tb.png", "index 'one' is not an integer"),
    ("1\ta.png\tb.png\t5\tx", "crop centre column 'x' is not a number"),
    ("1\ta.png\tb.png\tnan\t5", "crop centre row 'nan' is not a finite number"),
    ("1\t\tb.png", "empty image path"),
])
def test_malformed_list_line_names_file_and_line(write_list_file, line, fragment):
    path = write_list_file(["0\tx.png\ty.png", line])
    with pytest.raises(DataError) as caught:
        read_list(path)
    assert str(caught.value) == f"{path} line 2: {fragment}"


def test_list_mixing_formats(write_list_file):
    path = write_list_file(["0\tx.png\ty.png\t1\t2", "1\tx.png\ty.png"])
    with pytest.raises(DataError, match=f"{path} line 2: has 3 fields but {path} line 1 has 5"):
        read_list(path)


def test_empty_list(write_list_file):
    path = write_list_file(["", "  "])
    with pytest.raises(DataError, match=f"{path}: list is empty"):
        read_list(path)


def test_missing_list(tmp_path):
    with pytest.raises(DataError, match="list file not found"):
        read_list(str(tmp_path / "none.lst"))


def test_empty_entries_and_too_many_parts(pair):
    spec = spec_for("cityscapes")
    with pytest.raises(DataError, match="list is empty"):
        SegmentationDataset([], spec)
    dataset = SegmentationDataset([entry_of(*pair())], spec)
    with pytest.raises(DataError, match="1 samples cannot be split into 2 parts"):
        SegmentationIter(dataset, 1, num_parts=2, part_index=1)


# ------------------------------------------------------------------ the iterator
@pytest.fixture
def half_bad(pair, tmp_path):
    """Six entries; entries 1 and 4 point to a missing and a corrupt image."""
    image, label = pair()
    corrupt = str(tmp_path / "corrupt.png")
    with open(corrupt, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    images = [image, str(tmp_path / "missing.png"), image, image, corrupt, image]
    return [ListEntry(i, path, label, (8, 12), f"train.lst line {i + 1}") for i, path in enumerate(images)]


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_sample_stops_the_epoch_naming_file_and_line(half_bad, workers):
    dataset = SegmentationDataset(half_bad, spec_for("cityscapes"))
    with SegmentationIter(dataset, 2, shuffle=False, num_workers=workers) as iterator:
        with pytest.raises(DataError, match=r"missing\.png: image file not found \(train\.lst line 2\)"):
            next(iterator)


def test_skip_bad_skips_counts_and_logs_identically_for_any_worker_count(half_bad, caplog):
    batches = {}
    for workers in (0, 2):
        dataset = SegmentationDataset(half_bad, spec_for("cityscapes"))
        with caplog.at_level(logging.WARNING, logger="tusimple_duc.data.iterator"):
            caplog.clear()
            with SegmentationIter(dataset, 2, shuffle=False, num_workers=workers, skip_bad=True) as iterator:
                batches[workers] = [(list(b.index), b.data[0].asnumpy()) for b in iterator]
                assert iterator.num_skipped == 2
        logged = " ".join(record.getMessage() for record in caplog.records)
        assert "missing.png: image file not found (train.lst line 2)" in logged
        assert "corrupt.png: cannot decode image" in logged
    assert [rows for rows, _ in batches[0]] == [[0, 2], [3, 5]]
    for (rows, data), (rows2, data2) in zip(batches[0], batches[2]):
        assert rows == rows2 and np.array_equal(data, data2)


def test_skip_bad_with_every_sample_bad_is_an_error(tmp_path):
    entries = [ListEntry(i, str(tmp_path / f"gone{i}.png"), str(tmp_path / "l.png"), None, "") for i in range(3)]
    dataset = SegmentationDataset(entries, spec_for("cityscapes"))
    iterator = SegmentationIter(dataset, 2, skip_bad=True)
    with pytest.raises(DataError, match="all 3 samples of epoch 0 are bad"):
        next(iterator)
    assert iterator.num_skipped == 3
    assert os.path.isdir(tmp_path)
