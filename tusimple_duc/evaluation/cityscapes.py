"""Cityscapes pixel-level semantic labelling, scored exactly as the official evaluator.

Same numbers as ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``
(tests/evaluation/test_cityscapes_eval.py compares every score), computed from one (34, 34)
labelId confusion matrix and vectorised per-instance counts:

* **class IoU** of the 19 evaluated classes and **category IoU** of the 7 categories that
  contain one (see :mod:`tusimple_duc.evaluation.confusion` for TP/FP/FN and NaN handling;
  a category's members are its evaluated classes);
* **iIoU** (instance-weighted IoU) of the 8 evaluated classes with instances and of the
  categories "human" and "vehicle": every ground-truth instance (``instanceId > 1000``,
  class ``instanceId // 1000``) contributes its true positives and false negatives weighted
  by ``AVERAGE_INSTANCE_SIZE[class] / instance size``; false positives are the unweighted
  pixel false positives. For a category, the true positives of an instance are its pixels
  predicted as any labelId of the category, including the non-evaluated "caravan" and
  "trailer", and the false positives are predictions of any such labelId on evaluated
  pixels of other categories (as the official evaluator);
* **pixel accuracy** and **mean class accuracy** over the pixels of the 19 classes (not
  reported by the official script).

Predictions are labelIds PNGs (8-bit, one channel) at full ground-truth resolution.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from tusimple_duc.data.labels import CITYSCAPES_LABELS, CITYSCAPES_NUM_CLASSES, CITYSCAPES_TRAINID_TO_ID
from tusimple_duc.data.png import read_png
from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.confusion import (
    ConfusionAccumulator, confusion_matrix, group_counts, mean_of_present, safe_ratio)
from tusimple_duc.evaluation.files import (
    check_same_size, coverage_details, list_prediction_files, require_ground_truth, size_text)
from tusimple_duc.evaluation.parallel import ordered_map
from tusimple_duc.evaluation.report import EvaluationResult, ScoreTable

#: labelIds 0..33 form the rows and columns of the confusion matrix.
NUM_LABEL_IDS = 34
#: Average pixel size of a ground-truth instance per class (``avgClassSize`` of the official
#: evaluator, measured on the training set): the iIoU weight of an instance of size s is avg / s.
AVERAGE_INSTANCE_SIZE: Dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}

_LABELS = [label for label in CITYSCAPES_LABELS if label.id >= 0]
#: The evaluated labelIds in trainId order (road, sidewalk, ..., bicycle).
EVALUATED_IDS: List[int] = [int(i) for i in CITYSCAPES_TRAINID_TO_ID[:CITYSCAPES_NUM_CLASSES]]
CLASS_NAMES: List[str] = [next(l.name for l in _LABELS if l.id == i) for i in EVALUATED_IDS]
#: Categories with at least one evaluated class, in the order of the label table.
CATEGORY_NAMES: List[str] = list(dict.fromkeys(l.category for l in _LABELS if not l.ignore_in_eval))
_CATEGORY_EVALUATED_IDS = [[l.id for l in _LABELS if l.category == c and not l.ignore_in_eval]
                           for c in CATEGORY_NAMES]
#: Evaluated classes with instances, in trainId order, and categories whose every class has instances.
INSTANCE_CLASS_IDS: List[int] = [i for i in EVALUATED_IDS if next(l for l in _LABELS if l.id == i).has_instances]
INSTANCE_CATEGORY_NAMES: List[str] = [
    c for c in CATEGORY_NAMES if all(l.has_instances for l in _LABELS if l.category == c)]
_INSTANCE_CATEGORY_ALL_IDS = [[l.id for l in _LABELS if l.category == c] for c in INSTANCE_CATEGORY_NAMES]

# Lookup tables over labelIds 0..255 (-1 = not applicable).
_ID_TO_INSTANCE_CLASS = np.full(256, -1, dtype=np.int64)
_ID_TO_INSTANCE_CLASS[INSTANCE_CLASS_IDS] = np.arange(len(INSTANCE_CLASS_IDS))
_ID_TO_INSTANCE_CATEGORY = np.full(256, -1, dtype=np.int64)
for _index, _ids in enumerate(_INSTANCE_CATEGORY_ALL_IDS):
    _ID_TO_INSTANCE_CATEGORY[_ids] = _index
del _index, _ids
#: (2, 34) 1 where labelId p belongs to instance category k (caravan and trailer too).
_INSTANCE_CATEGORY_MEMBERS = (_ID_TO_INSTANCE_CATEGORY[None, :NUM_LABEL_IDS] == np.arange(
    len(INSTANCE_CATEGORY_NAMES))[:, None]).astype(np.int64)
_INSTANCE_COUNT_SIZES = {"class_tp": len(INSTANCE_CLASS_IDS), "class_fn": len(INSTANCE_CLASS_IDS),
                         "category_tp": len(INSTANCE_CATEGORY_NAMES), "category_fn": len(INSTANCE_CATEGORY_NAMES)}
_INSTANCE_CLASS_AVERAGE_SIZE = np.array(
    [AVERAGE_INSTANCE_SIZE[next(l.name for l in _LABELS if l.id == i)] for i in INSTANCE_CLASS_IDS])

GT_SUFFIX = "_gtFine_labelIds.png"
#: Largest trainId (18): predictions that never exceed it are trainIds, not labelIds.
_LARGEST_TRAIN_ID = CITYSCAPES_NUM_CLASSES - 1
_NAME_PATTERN = re.compile(r"^(?P<city>[^_]+)_(?P<sequence>\d+)_(?P<frame>\d+)(_[^.]*)?\.png$")


@dataclass
class CityscapesImageCounts:
    """What one image adds to the Cityscapes scores (:func:`count_image`).

    Attributes
    ----------
    confusion : (34, 34) int64 labelId pixel counts, rows ground truth, columns prediction.
    instances : None without instanceIds, else the weighted counts summed over the image's
        evaluated instances: ``class_tp``, ``class_fn`` (8,) float64 in the order of
        INSTANCE_CLASS_IDS and ``category_tp``, ``category_fn`` (2,) float64 in the order of
        INSTANCE_CATEGORY_NAMES, in pixels times ``AVERAGE_INSTANCE_SIZE / instance size``.
    largest_prediction : the largest labelId in the prediction.
    """

    confusion: np.ndarray
    instances: Optional[Dict[str, np.ndarray]]
    largest_prediction: int


class CityscapesEvaluator:
    """Accumulate images (labelId maps) and score them with the official Cityscapes protocol.

    Either every image or no image comes with ground-truth instanceIds; iIoU is reported
    only in the first case. Images are summed in the order they are added.
    """

    def __init__(self) -> None:
        self.confusion = ConfusionAccumulator(NUM_LABEL_IDS, ignore_label=None, evaluated_classes=EVALUATED_IDS)
        self.num_images = 0
        self.with_instances: Optional[bool] = None
        # Weighted true positives / false negatives, summed over instances.
        self.instance_counts = {name: np.zeros(size) for name, size in _INSTANCE_COUNT_SIZES.items()}

    def add(self, pred_label_ids: np.ndarray, gt_label_ids: np.ndarray,
            gt_instance_ids: Optional[np.ndarray] = None, source: str = "<arrays>") -> None:
        """Add one image (the arguments of :func:`count_image`)."""
        self.add_counts(count_image(pred_label_ids, gt_label_ids, gt_instance_ids, source), source)

    def add_counts(self, counts: CityscapesImageCounts, source: str = "<arrays>") -> None:
        """Add the :func:`count_image` counts of one image; ``source`` names it in error messages."""
        has_instances = counts.instances is not None
        if self.with_instances is not None and has_instances != self.with_instances:
            raise EvaluationError(f"{source}: instanceIds are given for some images but not for others")
        if counts.instances is not None:
            for name, total in self.instance_counts.items():
                total += counts.instances[name]
        self.confusion.matrix += counts.confusion
        self.with_instances = has_instances
        self.num_images += 1

    def discard_instances(self) -> None:
        """Stop computing iIoU: forget the instance counts so far and ignore instanceIds from now on."""
        self.with_instances = False
        for total in self.instance_counts.values():
            total[:] = 0

    def result(self) -> EvaluationResult:
        """The scores of all images added so far."""
        if self.num_images == 0:
            raise EvaluationError("no Cityscapes image was evaluated")
        matrix = self.confusion.matrix
        class_iou = self.confusion.iou()
        tp, fp, fn = group_counts(matrix, _CATEGORY_EVALUATED_IDS, EVALUATED_IDS)
        category_iou = safe_ratio(tp, tp + fp + fn)
        class_columns = {"IoU": class_iou}
        category_columns = {"IoU": category_iou}
        summary = {"mIoU": mean_of_present(class_iou)}
        if self.with_instances:
            counts = self.instance_counts
            class_iiou = np.full(len(EVALUATED_IDS), np.nan)
            _, class_fp, _ = group_counts(matrix, [[i] for i in INSTANCE_CLASS_IDS], EVALUATED_IDS)
            class_iiou[[EVALUATED_IDS.index(i) for i in INSTANCE_CLASS_IDS]] = safe_ratio(
                counts["class_tp"], counts["class_tp"] + class_fp + counts["class_fn"])
            category_iiou = np.full(len(CATEGORY_NAMES), np.nan)
            _, category_fp, _ = group_counts(matrix, _INSTANCE_CATEGORY_ALL_IDS, EVALUATED_IDS)
            category_iiou[[CATEGORY_NAMES.index(c) for c in INSTANCE_CATEGORY_NAMES]] = safe_ratio(
                counts["category_tp"], counts["category_tp"] + category_fp + counts["category_fn"])
            class_columns["iIoU"] = class_iiou
            category_columns["iIoU"] = category_iiou
            summary["iIoU"] = mean_of_present(class_iiou)
        summary["mIoU_category"] = mean_of_present(category_iou)
        if self.with_instances:
            summary["iIoU_category"] = mean_of_present(category_columns["iIoU"])
        summary["pixel_accuracy"] = self.confusion.pixel_accuracy()
        summary["mean_class_accuracy"] = self.confusion.mean_class_accuracy()
        return EvaluationResult(
            dataset="cityscapes",
            num_images=self.num_images,
            summary=summary,
            tables=[ScoreTable("classes", list(CLASS_NAMES), class_columns),
                    ScoreTable("categories", list(CATEGORY_NAMES), category_columns)],
            confusion=self.confusion.evaluated_confusion(),
            confusion_rows=list(CLASS_NAMES),
            confusion_columns=list(CLASS_NAMES) + ["(ignored id)"],
            details={"confusion_label_ids": matrix.tolist()},
        )


def _check_ids(label_ids: np.ndarray, what: str) -> None:
    if not np.issubdtype(label_ids.dtype, np.integer):
        raise EvaluationError(f"{what} has dtype {label_ids.dtype}; expected integer labelIds")
    if label_ids.size and (label_ids.min() < 0 or label_ids.max() >= NUM_LABEL_IDS):
        bad = label_ids.max() if label_ids.max() >= NUM_LABEL_IDS else label_ids.min()
        raise EvaluationError(f"{what} contains value {bad}, outside the Cityscapes labelId table 0..33"
                              " (a trainId or colour image instead of labelIds?)")


def count_image(pred_label_ids: np.ndarray, gt_label_ids: np.ndarray,
                gt_instance_ids: Optional[np.ndarray] = None, source: str = "<arrays>") -> CityscapesImageCounts:
    """Count one image for :meth:`CityscapesEvaluator.add_counts`.

    Parameters
    ----------
    pred_label_ids, gt_label_ids : np.ndarray
        (H, W) integer labelIds 0..33 (the prediction may use any id, e.g. 0 for "unlabeled").
    gt_instance_ids : np.ndarray or None
        (H, W) integer ``*_gtFine_instanceIds`` values (``id * 1000 + k`` for instances).
    source : str
        The prediction's file name, for error messages.
    """
    pred = np.asarray(pred_label_ids)
    gt = np.asarray(gt_label_ids)
    if pred.ndim != 2:
        raise EvaluationError(f"{source}: prediction has shape {pred.shape}; expected a (H, W) labelId map")
    if pred.shape != gt.shape:
        raise EvaluationError(f"{source}: prediction is {size_text(pred.shape)} but ground truth is "
                              f"{size_text(gt.shape)}")
    _check_ids(pred, f"{source}: prediction")
    _check_ids(gt, f"{source}: ground truth")
    instances = None
    if gt_instance_ids is not None:
        instance_ids = np.asarray(gt_instance_ids)
        if instance_ids.shape != gt.shape:
            raise EvaluationError(f"{source}: instanceIds shape {instance_ids.shape} differs from labelIds {gt.shape}")
        instances = _instance_counts(pred, instance_ids, source)
    return CityscapesImageCounts(confusion_matrix(pred, gt, NUM_LABEL_IDS, ignore_label=None), instances,
                                 int(pred.max()) if pred.size else 0)


def _instance_counts(pred: np.ndarray, instance_ids: np.ndarray, source: str) -> Dict[str, np.ndarray]:
    """The weighted true positives / false negatives of every evaluated instance of one image, summed.

    One histogram of (instanceId, predicted labelId) over the instance pixels gives, per
    instance id, its size, its pixels predicted as its class and as its category.
    """
    if not np.issubdtype(instance_ids.dtype, np.integer):
        raise EvaluationError(f"{source}: instanceIds have dtype {instance_ids.dtype}; expected integers")
    in_instance = instance_ids > 1000
    instance_pixels = instance_ids[in_instance]
    largest = int(instance_pixels.max()) if instance_pixels.size else 0
    if largest // 1000 >= NUM_LABEL_IDS:
        raise EvaluationError(f"{source}: instanceIds contain {largest // 1000 * 1000}+, an unknown labelId")
    keys = np.multiply(instance_pixels, NUM_LABEL_IDS, dtype=np.intp)
    keys += pred[in_instance]
    # histogram[i, p]: pixels of instance id i predicted as labelId p.
    histogram = np.bincount(keys, minlength=(largest + 1) * NUM_LABEL_IDS).reshape(-1, NUM_LABEL_IDS)
    ids = np.nonzero(histogram.any(axis=1))[0]
    ids = ids[_ID_TO_INSTANCE_CLASS[ids // 1000] >= 0]
    rows = histogram[ids]
    sizes = rows.sum(axis=1)
    class_index = _ID_TO_INSTANCE_CLASS[ids // 1000]
    category_index = _ID_TO_INSTANCE_CATEGORY[ids // 1000]
    hits = rows[np.arange(len(ids)), ids // 1000]
    category_hits = (rows * _INSTANCE_CATEGORY_MEMBERS[category_index]).sum(axis=1)
    weight = _INSTANCE_CLASS_AVERAGE_SIZE[class_index] / sizes
    classes, categories = len(INSTANCE_CLASS_IDS), len(INSTANCE_CATEGORY_NAMES)
    return {
        "class_tp": np.bincount(class_index, weights=hits * weight, minlength=classes),
        "class_fn": np.bincount(class_index, weights=(sizes - hits) * weight, minlength=classes),
        "category_tp": np.bincount(category_index, weights=category_hits * weight, minlength=categories),
        "category_fn": np.bincount(category_index, weights=(sizes - category_hits) * weight, minlength=categories),
    }


def match_predictions(result_dir: str, gt_root: str,
                      split: str = "val") -> Tuple[List[Tuple[str, str]], List[str], List[str]]:
    """Pair the prediction PNGs under ``result_dir`` with the ground truths of the split.

    As cityscapesscripts' ``getPrediction``: the prediction of
    ``gt_root/gtFine/{split}/{city}/{city}_{sequence}_{frame}_gtFine_labelIds.png`` is the one
    PNG whose name starts with ``{city}_{sequence}_{frame}`` (test.py's label-named
    ``..._gtFine_labelIds.png`` and image-named ``..._leftImg8bit.png`` both match), in one flat
    folder or in city subfolders; two for one ground truth is an error.

    Returns
    -------
    pairs : list of (prediction path, ground-truth labelIds path)
    missing_gt : ground-truth files of the split without a prediction, sorted
    extra_predictions : PNGs that match no ground truth (ignored, as the official evaluator does), sorted
    """
    split_dir = _split_dir(gt_root, split)
    ground_truths = {os.path.basename(path)[:-len(GT_SUFFIX)]: path
                     for path in glob.glob(os.path.join(split_dir, "*", "*" + GT_SUFFIX))}
    require_ground_truth(ground_truths, split_dir, "<city>/*" + GT_SUFFIX)
    pairs: Dict[str, Tuple[str, str]] = {}
    extra: List[str] = []
    for path in list_prediction_files(result_dir, (".png",)):
        match = _NAME_PATTERN.match(os.path.basename(path))
        key = f"{match['city']}_{match['sequence']}_{match['frame']}" if match else None
        if key not in ground_truths:
            extra.append(path)
            continue
        if key in pairs:
            raise EvaluationError(f"{path}: second prediction for {key} (the first is {pairs[key][0]})")
        pairs[key] = (path, ground_truths[key])
    missing = sorted(path for key, path in ground_truths.items() if key not in pairs)
    return [pairs[key] for key in sorted(pairs)], missing, extra


def _split_dir(gt_root: str, split: str) -> str:
    fine = os.path.join(gt_root, "gtFine")
    if not os.path.isdir(fine):
        raise EvaluationError(f"{gt_root}: no gtFine folder; expected the Cityscapes root (gtFine/{split}/<city>/...)")
    split_dir = os.path.join(fine, split)
    if not os.path.isdir(split_dir):
        raise EvaluationError(f"{fine}: no split folder '{split}'")
    return split_dir


def instance_path(gt_label_ids_path: str) -> Optional[str]:
    """The ``*_gtFine_instanceIds.png`` next to a ``*_gtFine_labelIds.png``; None for any other name."""
    folder, name = os.path.split(gt_label_ids_path)
    if not name.endswith(GT_SUFFIX):
        return None
    return os.path.join(folder, name[:-len(GT_SUFFIX)] + "_gtFine_instanceIds.png")


def count_files(job: Tuple[str, str, Optional[str]]) -> CityscapesImageCounts:
    """Read and count one image: ``job`` = (prediction, ground-truth labelIds, instanceIds or None) paths."""
    pred_path, gt_path, inst_path = job
    pred = read_png(pred_path, ("L",), "labelIds prediction", error=EvaluationError)
    gt = read_png(gt_path, ("L",), "ground-truth labelIds", error=EvaluationError)
    check_same_size(pred, pred_path, gt, gt_path)
    instances = (None if inst_path is None else
                 read_png(inst_path, ("I;16", "I"), "ground-truth instanceIds", error=EvaluationError))
    return count_image(pred, gt, instances, source=pred_path)


def evaluate_cityscapes(result_dir: str, gt_root: str, split: str = "val", show_progress: bool = False,
                        subset: bool = False, workers: Optional[int] = None) -> EvaluationResult:
    """Score a folder of labelIds PNGs against ``gt_root/gtFine/{split}`` at full resolution.

    Every ground truth of the split needs a prediction unless ``subset``; other PNGs are
    ignored (:func:`match_predictions`, :func:`~tusimple_duc.evaluation.files.coverage_details`).
    iIoU is computed when every matched ground truth has its ``*_gtFine_instanceIds.png``;
    when only some have, the first missing one is reported as an error.
    ``details["warnings"]`` says when the predictions look like trainIds (no value above 18).
    Images are read and counted in ``workers`` processes (None: one per physical core) and
    summed in file order, so the scores do not depend on ``workers``.
    """
    pairs, missing, extra = match_predictions(result_dir, gt_root, split)
    details = coverage_details(result_dir, missing, extra, len(pairs), subset)
    instance_paths = [instance_path(gt) for _, gt in pairs]
    present = [os.path.isfile(p) for p in instance_paths]
    if any(present) and not all(present):
        raise EvaluationError(f"{instance_paths[present.index(False)]}: missing, but other images have instanceIds")
    jobs = [(pred_path, gt_path, inst_path if all(present) else None)
            for (pred_path, gt_path), inst_path in zip(pairs, instance_paths)]
    evaluator = CityscapesEvaluator()
    largest_value = 0
    for (pred_path, _, _), counts in zip(jobs, ordered_map(count_files, jobs, workers, show_progress, "cityscapes")):
        evaluator.add_counts(counts, pred_path)
        largest_value = max(largest_value, counts.largest_prediction)
    result = evaluator.result()
    result.details.update(details)
    if largest_value <= _LARGEST_TRAIN_ID:
        result.details["warnings"] = [
            f"{result_dir}: no prediction has a value above {_LARGEST_TRAIN_ID}: these look like trainIds, but the "
            f"Cityscapes evaluator reads labelIds (7 = road ... 33 = bicycle; test.py writes them to score/)"]
    return result
