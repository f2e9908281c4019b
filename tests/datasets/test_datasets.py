"""The dataset objects, the one PNG reader and the one palette-PNG writer."""
from __future__ import annotations

import typing

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import trainId2label
from PIL import Image

from tusimple_duc.config import DataSection
from tusimple_duc.data.png import read_png, write_palette_png
from tusimple_duc.datasets import DATASETS, get_dataset
from tusimple_duc.errors import ConfigError, DataError, EvaluationError


def test_every_config_dataset_has_one_object():
    assert sorted(DATASETS) == sorted(typing.get_args(typing.get_type_hints(DataSection)["dataset"]))
    assert [(d.name, d.num_classes) for d in DATASETS.values()] == [("cityscapes", 19), ("kitti", 2), ("voc", 21)]
    with pytest.raises(ConfigError, match=r"^\[data\] dataset: unknown dataset 'ade'"):
        get_dataset("ade")


def test_cityscapes_score_is_the_official_label_id():
    train_ids = np.arange(19, dtype=np.uint8).reshape(1, 19)
    score = get_dataset("cityscapes").encode_score(train_ids, np.zeros((19, 1, 19), np.float32))
    assert score.tolist() == [[trainId2label[t].id for t in range(19)]]


def test_kitti_score_is_the_rounded_road_probability_and_needs_two_classes():
    probabilities = np.array([[[0.0, 0.5]], [[1.0, 0.5]]], dtype=np.float32)  # (2, 1, 2)
    assert get_dataset("kitti").encode_score(np.zeros((1, 2), np.uint8), probabilities).tolist() == [[255, 128]]
    with pytest.raises(ConfigError, match="needs a 2-class network"):
        get_dataset("kitti").check_num_classes(19)
    get_dataset("voc").check_num_classes(3)


def test_voc_score_is_a_palette_png_of_the_class_indices(tmp_path):
    labels = np.array([[0, 1, 15], [20, 2, 0]], dtype=np.uint8)
    path = str(tmp_path / "x.png")
    get_dataset("voc").write_score(path, labels, np.zeros((21, 2, 3), np.float32))
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.array(image), labels)
        palette = np.array(image.getpalette()[:3 * 21]).reshape(21, 3)
    # The VOC colour map: aeroplane, bicycle, person, tvmonitor.
    assert palette[1].tolist() == [128, 0, 0] and palette[2].tolist() == [0, 128, 0]
    assert palette[15].tolist() == [192, 128, 128] and palette[20].tolist() == [0, 64, 128]


def test_label_codec_of_each_dataset_reads_its_label_files(tmp_path):
    path = str(tmp_path / "ids.png")
    Image.fromarray(np.array([[7, 26, 0]], np.uint8), mode="L").save(path)
    codec = get_dataset("cityscapes").label_codec()
    assert codec.lut[codec.read(path)].tolist() == [[0, 13, 255]]
    write_palette_png(path, np.array([[3, 255]], np.uint8), np.zeros((256, 3), np.uint8))
    assert get_dataset("voc").label_codec().read(path).tolist() == [[3, 255]]


@pytest.mark.parametrize("error", [DataError, EvaluationError])
def test_read_png_errors_are_one_line_naming_the_file(tmp_path, error):
    good = str(tmp_path / "good.png")
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(good)
    with open(good, "rb") as handle:
        content = handle.read()
    cases = {"missing.png": (None, "file not found"), "empty.png": (b"", "file is empty"),
             "text.png": (b"not a picture", "is not a PNG file"),
             "cut.png": (content[:len(content) // 2], "cannot decode label"),
             "good.png": (content, "is a 3-channel colour image (mode RGB); expected 8-bit single-channel (mode L)")}
    for name, (data, fragment) in cases.items():
        path = str(tmp_path / name)
        if data is not None:
            with open(path, "wb") as handle:
                handle.write(data)
        with pytest.raises(error) as caught:
            read_png(path, ("L",), "label", "a.lst line 2", error=error)
        message = str(caught.value)
        assert message.startswith(path + ": ") and fragment in message and message.endswith("(a.lst line 2)")
        assert "\n" not in message
    assert read_png(good, ("RGB",), "image").shape == (4, 5, 3)
