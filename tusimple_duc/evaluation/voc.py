"""PASCAL VOC 2012 segmentation: 21-class IoU with the boundary label 255 ignored.

Ground truth is ``SegmentationClass/{image_id}.png`` (palette PNGs, read as indices, not
colours); predictions are ``{image_id}.png`` palette or 8-bit index PNGs with values 0..20.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from tusimple_duc.data.labels import IGNORE_LABEL, VOC_CLASS_NAMES, VOC_NUM_CLASSES
from tusimple_duc.data.png import read_png
from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.confusion import ConfusionAccumulator
from tusimple_duc.evaluation.files import (check_same_size, coverage_details, list_prediction_files,
                                           require_ground_truth)
from tusimple_duc.evaluation.parallel import ordered_map
from tusimple_duc.evaluation.report import EvaluationResult, ScoreTable


class VocEvaluator:
    """Accumulate (prediction, ground truth) index maps and score them (21 classes, 255 ignored)."""

    def __init__(self) -> None:
        self.confusion = ConfusionAccumulator(VOC_NUM_CLASSES, ignore_label=IGNORE_LABEL)
        self.num_images = 0

    def add(self, pred: np.ndarray, gt: np.ndarray, source: str = "<arrays>") -> None:
        """Add one image: ``pred`` (H, W) class indices 0..20, ``gt`` (H, W) 0..20 or 255."""
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.shape != gt.shape:
            raise EvaluationError(f"{source}: prediction shape {pred.shape} differs from ground truth {gt.shape}")
        if pred.size and pred.max() >= VOC_NUM_CLASSES:
            raise EvaluationError(f"{source}: prediction contains index {pred.max()}, outside the VOC classes 0..20")
        if gt.size and gt[gt != IGNORE_LABEL].max(initial=0) >= VOC_NUM_CLASSES:
            raise EvaluationError(f"{source}: ground truth contains an index outside 0..20 and 255")
        self.confusion.add(pred, gt)
        self.num_images += 1

    def result(self) -> EvaluationResult:
        """Per-class IoU, mIoU, pixel accuracy and mean class accuracy of all images added."""
        if self.num_images == 0:
            raise EvaluationError("no VOC image was evaluated")
        iou = self.confusion.iou()
        return EvaluationResult(
            dataset="voc",
            num_images=self.num_images,
            summary={"mIoU": self.confusion.mean_iou(),
                     "pixel_accuracy": self.confusion.pixel_accuracy(),
                     "mean_class_accuracy": self.confusion.mean_class_accuracy()},
            tables=[ScoreTable("classes", list(VOC_CLASS_NAMES),
                               {"IoU": iou, "accuracy": self.confusion.class_accuracy()})],
            confusion=self.confusion.evaluated_confusion(),
            confusion_rows=list(VOC_CLASS_NAMES),
            confusion_columns=list(VOC_CLASS_NAMES),
        )


def _voc_root(gt_root: str) -> str:
    for candidate in (gt_root, os.path.join(gt_root, "VOC2012")):
        if os.path.isdir(os.path.join(candidate, "SegmentationClass")):
            return candidate
    raise EvaluationError(f"{gt_root}: no SegmentationClass folder (expected VOC2012 or VOCdevkit)")


def _split_ids(voc_root: str, split: str) -> Optional[List[str]]:
    path = os.path.join(voc_root, "ImageSets", "Segmentation", split + ".txt")
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return [line.split()[0] for line in handle if line.strip()]


def match_predictions(result_dir: str, gt_root: str, split: str = "val"
                      ) -> Tuple[List[Tuple[str, str]], Optional[List[str]], List[str]]:
    """Pair every ``{image_id}.png`` under ``result_dir`` with ``SegmentationClass/{image_id}.png``.

    The ground truths are the ids of ``ImageSets/Segmentation/{split}.txt`` or, when that list
    does not exist, every predicted id that has a ``SegmentationClass`` file. Returns the pairs,
    the ground-truth files without a prediction (None without a split list) and the prediction
    files matching no ground truth (both sorted).
    """
    voc_root = _voc_root(gt_root)
    split_ids = _split_ids(voc_root, split)
    wanted = None if split_ids is None else set(split_ids)
    if wanted is None:
        require_ground_truth(glob.glob(os.path.join(voc_root, "SegmentationClass", "*.png")),
                             os.path.join(voc_root, "SegmentationClass"), "*.png")
    else:
        require_ground_truth(wanted, os.path.join(voc_root, "ImageSets", "Segmentation", split + ".txt"),
                             "image ids")

    def gt_path(image_id: str) -> str:
        return os.path.join(voc_root, "SegmentationClass", image_id + ".png")

    pairs: Dict[str, Tuple[str, str]] = {}
    extra: List[str] = []
    for path in list_prediction_files(result_dir, (".png",)):
        image_id = os.path.splitext(os.path.basename(path))[0]
        if (wanted is not None and image_id not in wanted) or not os.path.isfile(gt_path(image_id)):
            extra.append(path)
            continue
        if image_id in pairs:
            raise EvaluationError(f"{path}: second prediction for {image_id} (the first is {pairs[image_id][0]})")
        pairs[image_id] = (path, gt_path(image_id))
    missing = None if wanted is None else sorted(gt_path(i) for i in wanted if i not in pairs)
    return [pairs[key] for key in sorted(pairs)], missing, extra


def count_files(job: Tuple[str, str]) -> np.ndarray:
    """Read one (prediction, ground truth) pair of paths: its (21, 21) int64 confusion counts."""
    pred_path, gt_path = job
    pred = read_png(pred_path, ("L", "P"), "VOC prediction", error=EvaluationError)
    gt = read_png(gt_path, ("L", "P"), "VOC ground truth", error=EvaluationError)
    check_same_size(pred, pred_path, gt, gt_path)
    evaluator = VocEvaluator()
    evaluator.add(pred, gt, source=pred_path)
    return evaluator.confusion.matrix


def evaluate_voc(result_dir: str, gt_root: str, split: str = "val", show_progress: bool = False,
                 subset: bool = False, workers: Optional[int] = None) -> EvaluationResult:
    """Score a folder of VOC index/palette PNG predictions against ``SegmentationClass``.

    Every image of the split list needs a prediction unless ``subset``; other files are ignored
    (:func:`~tusimple_duc.evaluation.files.coverage_details`). Images are read in ``workers``
    processes (None: one per physical core).
    """
    pairs, missing, extra = match_predictions(result_dir, gt_root, split)
    details = coverage_details(result_dir, missing, extra, len(pairs), subset)
    evaluator = VocEvaluator()
    for matrix in ordered_map(count_files, pairs, workers, show_progress, "voc"):
        evaluator.confusion.matrix += matrix
        evaluator.num_images += 1
    result = evaluator.result()
    result.details.update(details)
    return result
