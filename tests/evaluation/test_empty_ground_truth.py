"""A ground-truth root whose split folders are empty says "no ground truth", naming the folder,
instead of "no prediction matches a ground truth"."""
import os

import numpy as np
import pytest

from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.cityscapes import evaluate_cityscapes
from tusimple_duc.evaluation.kitti import evaluate_kitti_road
from tusimple_duc.evaluation.voc import evaluate_voc
from tusimple_duc.io.atomic import atomic_write_image


@pytest.fixture
def predictions(tmp_path):
    """A result folder with one prediction named for each dataset."""
    folder = tmp_path / "results"
    for name in ("frankfurt_000000_000294_gtFine_labelIds.png", "um_000000.png", "2007_000033.png"):
        atomic_write_image(str(folder / name), np.zeros((4, 6), dtype=np.uint8))
    return str(folder)


def test_cityscapes_empty_city_folders(tmp_path, predictions):
    split = tmp_path / "gt" / "gtFine" / "val"
    (split / "frankfurt").mkdir(parents=True)
    with pytest.raises(EvaluationError, match=f"^{split}: no ground truth \\(<city>/\\*_gtFine_labelIds.png\\)"):
        evaluate_cityscapes(predictions, str(tmp_path / "gt"), "val")


def test_kitti_empty_gt_image_2(tmp_path, predictions):
    gt_dir = tmp_path / "kitti" / "training" / "gt_image_2"
    gt_dir.mkdir(parents=True)
    with pytest.raises(EvaluationError, match=f"^{gt_dir}: no ground truth \\(\\*_road_\\*.png\\)"):
        evaluate_kitti_road(predictions, str(tmp_path / "kitti"))


def test_voc_empty_segmentation_class_and_empty_split_list(tmp_path, predictions):
    root = tmp_path / "VOC2012"
    (root / "SegmentationClass").mkdir(parents=True)
    with pytest.raises(EvaluationError, match=f"^{root / 'SegmentationClass'}: no ground truth"):
        evaluate_voc(predictions, str(root), "val")
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "val.txt").write_text("\n")
    with pytest.raises(EvaluationError, match=f"^{lists / 'val.txt'}: no ground truth"):
        evaluate_voc(predictions, str(root), "val")
    assert os.listdir(predictions)
