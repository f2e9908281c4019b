"""Colouring, overlays, mosaics and result figures."""
from __future__ import annotations

import json
import math
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from tusimple_duc.data.labels import CITYSCAPES_LABELS, VOC_PALETTE
from tusimple_duc.evaluation.cityscapes import evaluate_cityscapes
from tusimple_duc.evaluation.report import format_tables, result_to_dict, write_metrics_json
from tusimple_duc.viz.colorize import colorize, mosaic, overlay, segmentation_mosaic, write_rgb_png
from tusimple_duc.viz.plots import CLASS_IOU_FIGURE, CONFUSION_FIGURE, row_normalise, write_result_figures

CLASS_NAMES_CAR = 13  # row of "car" in the Cityscapes class table (its trainId)


def test_colorize_equals_per_pixel_palette_lookups():
    rng = np.random.default_rng(0)
    train_ids = rng.choice(list(range(19)) + [255], size=(6, 7)).astype(np.uint8)
    colours = colorize(train_ids, "cityscapes")
    by_train_id = {label.train_id: label.color for label in CITYSCAPES_LABELS if 0 <= label.train_id < 19}
    for (y, x), t in np.ndenumerate(train_ids):
        assert tuple(colours[y, x]) == (by_train_id[t] if t != 255 else (0, 0, 0))
    label_ids = rng.integers(0, 34, size=(5, 5))
    by_id = {label.id: label.color for label in CITYSCAPES_LABELS}
    colours = colorize(label_ids, "cityscapes_label_ids")
    assert all(tuple(colours[y, x]) == by_id[i] for (y, x), i in np.ndenumerate(label_ids))
    voc = np.array([[0, 1, 15, 255]])
    # The VOC colour map: aeroplane (128, 0, 0), person (192, 128, 128), boundary (224, 224, 192).
    np.testing.assert_array_equal(colorize(voc, "voc")[0], [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]])
    np.testing.assert_array_equal(colorize(np.array([[0, 1, 255]]), "kitti")[0],
                                  [[255, 0, 0], [255, 0, 255], [0, 0, 0]])
    assert colorize(voc, VOC_PALETTE).dtype == np.uint8
    with pytest.raises(ValueError):
        colorize(np.array([[300]]), "voc")


def test_overlay_is_a_rounded_alpha_blend():
    image = np.array([[[10, 200, 0]]], np.uint8)
    colour = np.array([[[255, 0, 101]]], np.uint8)
    np.testing.assert_array_equal(overlay(image, colour, 0.25), [[[71, 150, 25]]])  # 0.75*a + 0.25*b, rounded
    np.testing.assert_array_equal(overlay(image, colour, 0.0), image)
    np.testing.assert_array_equal(overlay(image, colour, 1.0), colour)
    with pytest.raises(ValueError):
        overlay(image, colour[:, :0], 0.5)


def test_mosaic_places_panels_side_by_side_with_title_strips():
    image = np.full((32, 20, 3), 7, np.uint8)
    grey = np.full((32, 10), 99, np.uint8)
    plain = mosaic([image, grey])
    assert plain.shape == (32, 30, 3) and plain.dtype == np.uint8
    np.testing.assert_array_equal(plain[:, :20], image)
    np.testing.assert_array_equal(plain[:, 20:], 99)
    titled = mosaic([image, grey], titles=["image", "gt"])
    assert titled.shape == (52, 30, 3)
    np.testing.assert_array_equal(titled[20:], plain)
    assert titled[:20].max() > 128  # light text drawn on the black strip
    with pytest.raises(ValueError):
        mosaic([image, grey[:5]])


def test_write_rgb_png_round_trips_rgb(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = str(tmp_path / "out" / "mosaic.png")
    write_rgb_png(path, rgb)
    np.testing.assert_array_equal(np.array(Image.open(path).convert("RGB")), rgb)
    assert os.listdir(tmp_path / "out") == ["mosaic.png"]


def test_figures_json_and_table_of_a_result(cityscapes_case, tmp_path):
    result = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    written = write_result_figures(result, str(tmp_path / "figures"))
    assert [os.path.basename(p) for p in written] == [CONFUSION_FIGURE, CLASS_IOU_FIGURE]
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 200
        assert cv2.imread(path) is not None
    assert sorted(os.listdir(tmp_path / "figures")) == sorted([CONFUSION_FIGURE, CLASS_IOU_FIGURE])

    json_path = str(tmp_path / "metrics.json")
    write_metrics_json(json_path, result)
    with open(json_path) as handle:
        data = json.load(handle)
    assert data["summary"]["mIoU"] == pytest.approx(result.summary["mIoU"])
    assert data["tables"]["classes"]["wall"]["IoU"] is None  # NaN -> null
    assert data["tables"]["classes"]["car"]["iIoU"] == pytest.approx(
        result.table("classes").columns["iIoU"][CLASS_NAMES_CAR])
    assert data["confusion"]["columns"][-1] == "(ignored id)"
    assert data == json.loads(json.dumps(result_to_dict(result)))

    table = format_tables(result)
    car = next(line for line in table.splitlines() if line.startswith("car "))
    iou, iiou = (result.table("classes").columns[c][CLASS_NAMES_CAR] for c in ("IoU", "iIoU"))
    assert car.split()[1:] == [f"{iou:.4f}", f"{iiou:.4f}"]
    assert next(line for line in table.splitlines() if line.startswith("wall ")).split()[1:] == ["nan", "nan"]


def test_row_normalise():
    np.testing.assert_allclose(row_normalise(np.array([[1, 3], [0, 0]])), [[0.25, 0.75], [0, 0]])
    assert not any(math.isnan(v) for v in row_normalise(np.zeros((2, 2))).ravel())


def test_segmentation_mosaic_is_image_then_coloured_gt_then_coloured_prediction():
    image = np.full((24, 8, 3), 50, np.uint8)
    gt = np.zeros((24, 8), np.uint8)
    pred = np.ones((24, 8), np.uint8)
    plain = segmentation_mosaic(image, gt, pred, "voc", with_titles=False)
    np.testing.assert_array_equal(plain, np.concatenate([image, colorize(gt, "voc"), colorize(pred, "voc")], axis=1))
    without_gt = segmentation_mosaic(image, None, pred, "voc")
    assert without_gt.shape == (24 + 20, 16, 3)
    np.testing.assert_array_equal(without_gt[20:, 8:], colorize(pred, "voc"))
