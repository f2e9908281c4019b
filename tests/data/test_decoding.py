"""Images decoded as the original's ``cv.imread``, labels as its ``np.array(Image.open(...))``, and
the list checks made at start-up from the file headers."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter
from tusimple_duc.data.lists import ListEntry
from tusimple_duc.data.readers import LabelCodec, read_bgr_image, read_image_header, read_rgb_image
from tusimple_duc.data.sample import SamplingSpec, make_sample
from tusimple_duc.errors import DataError

SHAPE = (16, 24)


def spec_for(mode: str, ignore_label: int = 255) -> SamplingSpec:
    return SamplingSpec(crop_shape=SHAPE, scale_factors=(1.0,), use_random_crop=False, convert_label=mode,
                        num_classes={"voc": 21, "none": 5}.get(mode, 19), label_layout="map", label_stride=1,
                        cell_width=1, ignore_label=ignore_label)


def random(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def save_palette(path: str, index: np.ndarray, colours) -> str:
    image = Image.fromarray(index, mode="P")
    image.putpalette([c for colour in colours for c in colour])
    image.save(path)
    return path


def stored_files(folder) -> dict:
    """name -> (path, the BGR image the original meant, derived without OpenCV's conversion)."""
    grey, grey16 = random(SHAPE), random(SHAPE, np.uint16, 1)
    rgba, rgb16 = random(SHAPE + (4,), seed=2), random(SHAPE + (3,), np.uint16, 3)
    colours = [(10, 20, 30), (200, 100, 0), (5, 250, 120)]
    index = random(SHAPE, seed=4) % 3
    files = {}

    def put(name, array, expected):
        path = str(folder / name)
        assert cv2.imwrite(path, array)
        files[name] = (path, expected)

    put("grey.png", grey, np.repeat(grey[..., None], 3, axis=2))                   # channel replicated
    put("bgra.png", rgba, rgba[..., :3])                                           # alpha dropped, no blending
    put("grey16.png", grey16, np.repeat((grey16 >> 8).astype(np.uint8)[..., None], 3, axis=2))  # v >> 8
    put("bgr16.png", rgb16, (rgb16 >> 8).astype(np.uint8))
    put("colour.bmp", rgba[..., :3], rgba[..., :3])
    put("colour.ppm", rgba[..., :3], rgba[..., :3])
    put("grey.pgm", grey, np.repeat(grey[..., None], 3, axis=2))
    path = save_palette(str(folder / "palette.png"), index, colours)
    files["palette.png"] = (path, np.array(colours, np.uint8)[index][..., ::-1])  # the colours, BGR
    Image.fromarray(grey, mode="L").convert("LA").save(str(folder / "grey_alpha.png"))
    files["grey_alpha.png"] = (str(folder / "grey_alpha.png"), np.repeat(grey[..., None], 3, axis=2))
    return files


def test_images_are_decoded_as_cv2_imread_decodes_them(tmp_path):
    for name, (path, expected) in stored_files(tmp_path).items():
        image = read_bgr_image(path)
        assert image.dtype == np.uint8 and image.shape == SHAPE + (3,), name
        assert np.array_equal(image, cv2.imread(path)), name   # the original's call
        assert np.array_equal(image, expected), name            # what it means, derived by hand
        assert np.array_equal(read_rgb_image(path), expected[..., ::-1]), name


def test_grey_jpeg_is_replicated_as_cv2_imread_does(tmp_path):
    path = str(tmp_path / "grey.jpg")
    assert cv2.imwrite(path, random(SHAPE))
    image = read_bgr_image(path)
    assert np.array_equal(image, cv2.imread(path))
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])


@pytest.mark.parametrize("name, pixel_format, converted", [
    ("grey.png", "8-bit grey", True), ("bgra.png", "8-bit colour + alpha", True),
    ("grey16.png", "16-bit grey", True), ("bgr16.png", "16-bit colour", True), ("palette.png", "palette", True),
    ("grey_alpha.png", "8-bit grey + alpha", True), ("grey.pgm", "8-bit grey", True),
    ("colour.bmp", "8-bit colour", False), ("colour.ppm", "8-bit colour", False),
])
def test_header_says_whether_cv2_converts(tmp_path, name, pixel_format, converted):
    path, _ = stored_files(tmp_path)[name]
    header = read_image_header(path)
    assert (header.height, header.width, header.pixel_format, header.converted) == SHAPE + (pixel_format, converted)


def test_a_grey_training_image_gives_the_sample_of_its_replicated_colour_image(tmp_path):
    grey = random(SHAPE)
    grey_path, colour_path, label_path = (str(tmp_path / n) for n in ("g.png", "c.png", "l.png"))
    cv2.imwrite(grey_path, grey)
    cv2.imwrite(colour_path, np.repeat(grey[..., None], 3, axis=2))
    cv2.imwrite(label_path, np.full(SHAPE, 7, np.uint8))
    spec = spec_for("cityscapes")
    sample_grey = make_sample(ListEntry(0, grey_path, label_path), 0, spec)
    sample_colour = make_sample(ListEntry(0, colour_path, label_path), 0, spec)
    assert np.array_equal(sample_grey[0], sample_colour[0]) and np.array_equal(sample_grey[1], sample_colour[1])


# ------------------------------------------------------------------ labels as PIL reads them
def test_palette_label_gives_its_indices_as_pil(tmp_path):
    index = random(SHAPE, seed=5) % 19
    path = save_palette(str(tmp_path / "l.png"), index, [(i, 255 - i, 3 * i) for i in range(19)])
    codec = LabelCodec("none", 19)
    assert np.array_equal(codec.read(path), np.array(Image.open(path)))
    assert np.array_equal(codec.read(path), index)


def test_16bit_and_1bit_labels_give_their_values_as_pil(tmp_path):
    ids = (random(SHAPE, seed=6) % 34).astype(np.uint16)
    path16, path1 = str(tmp_path / "ids16.png"), str(tmp_path / "bits.png")
    cv2.imwrite(path16, ids)
    Image.fromarray(ids % 2 == 1).save(path1)
    assert np.array_equal(LabelCodec("cityscapes").read(path16), np.array(Image.open(path16)))
    assert np.array_equal(LabelCodec("none", 2).read(path1), np.array(Image.open(path1)).astype(np.uint8))


@pytest.mark.parametrize("mode, outside, inside", [("cityscapes", (34, 200, 300), 26), ("voc", (21, 254, 1000), 15)])
def test_convert_label_makes_ids_outside_the_table_ignore_label(tmp_path, mode, outside, inside):
    values = np.full(SHAPE, inside, np.uint16)
    values[0, :3] = outside
    values[5, 5] = outside[0]
    path = str(tmp_path / "l.png")
    cv2.imwrite(path, values)
    codec = LabelCodec(mode, ignore_label=250)
    raw, count = codec.read_counted(path)
    train_ids = codec.lut[raw]
    expected_inside = {"cityscapes": 13, "voc": 15}[mode]  # car -> trainId 13; VOC index 15 is person
    assert count == 4
    assert train_ids[0, :3].tolist() == [250, 250, 250] and train_ids[5, 5] == 250
    assert np.count_nonzero(train_ids == 250) == 4 and np.all(train_ids[1:5] == expected_inside)


def test_without_convert_label_a_value_at_label_num_is_an_error(tmp_path):
    values = np.full(SHAPE, 4, np.uint16)
    values[2, 2] = 300
    path = str(tmp_path / "l.png")
    cv2.imwrite(path, values)
    with pytest.raises(DataError, match="label values 300 are not in the training ids 0..4"):
        LabelCodec("none", 5).read(path)


def pair_files(tmp_path, label_values: np.ndarray, name: str = "a"):
    image, label = str(tmp_path / f"{name}.png"), str(tmp_path / f"{name}_l.png")
    cv2.imwrite(image, random(SHAPE))
    cv2.imwrite(label, label_values)
    return image, label


@pytest.mark.parametrize("workers", [0, 2])
def test_ignored_ids_are_counted_over_workers_in_one_warning(tmp_path, caplog, workers):
    bad = np.full(SHAPE, 7, np.uint8)
    bad[0, :5] = 40
    entries = [ListEntry(i, *pair_files(tmp_path, bad if i % 2 else np.full(SHAPE, 7, np.uint8), f"s{i}"),
                         None, f"train.lst line {i + 1}") for i in range(4)]
    dataset = SegmentationDataset(entries, spec_for("cityscapes"))
    with caplog.at_level(logging.WARNING, logger="tusimple_duc.data.label_tally"):
        with SegmentationIter(dataset, 2, shuffle=False, num_workers=workers) as iterator:
            for epoch in range(2):
                labels = [batch.label[0].asnumpy() for batch in iterator]
                assert np.count_nonzero(np.concatenate(labels) == 255) == 2 * 5
                iterator.reset()
    warnings = [r.getMessage() for r in caplog.records if r.name == "tusimple_duc.data.label_tally"]
    assert len(warnings) == 1
    assert "10 label pixel(s) in 2 sample(s) have values outside the Cityscapes labelId table" in warnings[0]


# ------------------------------------------------------------------ start-up checks of a list
def test_size_mismatch_is_found_at_start_up(tmp_path):
    image, _ = pair_files(tmp_path, np.full(SHAPE, 7, np.uint8))
    small = str(tmp_path / "small.png")
    cv2.imwrite(small, np.full((8, 24), 7, np.uint8))
    entries = [ListEntry(0, image, small, None, "train.lst line 1")]
    with pytest.raises(DataError) as caught:
        SegmentationDataset(entries, spec_for("cityscapes"))  # no sample made yet
    assert str(caught.value) == f"train.lst line 1: label {small} is 8x24 but image {image} is 16x24"


@pytest.mark.parametrize("which", ["image", "label"])
def test_a_folder_in_the_list_is_found_at_start_up(tmp_path, which):
    image, label = pair_files(tmp_path, np.full(SHAPE, 7, np.uint8))
    paths = {"image": image, "label": label, which: str(tmp_path)}
    entries = [ListEntry(0, paths["image"], paths["label"], None, "train.lst line 1")]
    with pytest.raises(DataError) as caught:
        SegmentationDataset(entries, spec_for("cityscapes"))
    assert str(caught.value) == f"train.lst line 1: {tmp_path} is a folder, not a file"


def test_a_training_list_needs_labels(tmp_path, write_list_file):
    image, _ = pair_files(tmp_path, np.full(SHAPE, 7, np.uint8))
    path = write_list_file([f"0\t{image}"], "train.lst")
    with pytest.raises(DataError) as caught:
        SegmentationDataset(path, spec_for("cityscapes"))
    assert str(caught.value) == (f"{path} line 1: no label path (a test line of 2 fields); a training list has "
                                 f"3 or 5 fields")


def test_converted_images_are_counted_at_start_up_in_one_warning(tmp_path, caplog):
    files = stored_files(tmp_path)
    label = str(tmp_path / "l.png")
    cv2.imwrite(label, np.full(SHAPE, 7, np.uint8))
    names = ["grey.png", "colour.bmp", "bgra.png", "grey16.png", "grey.png"]
    entries = [ListEntry(i, files[n][0], label, None, f"train.lst line {i + 1}") for i, n in enumerate(names)]
    with caplog.at_level(logging.WARNING, logger="tusimple_duc.data.geometry_checks"):
        SegmentationDataset(entries, spec_for("cityscapes"))
    warnings = [r.getMessage() for r in caplog.records if "cv2.imread" in r.getMessage()]
    assert len(warnings) == 1
    assert f"list: 3 image(s) are not 8-bit colour" in warnings[0] and files["grey.png"][0] in warnings[0]
