"""KITTI road, evaluated in perspective (image) space as the official road devkit does.

The devkit (``evaluateRoad.py``: ``evalExp`` + ``pxEval_maximizeFMeasure``) works on road
probabilities ``p`` in [0, 1] and the fixed thresholds ``t_k = k / 255`` (k = 0..255):

* at threshold ``t_k`` a pixel is called road iff ``p >= t_k``; only pixels that are not
  "don't care" in the ground truth count. ``TP_k``, ``FP_k`` are summed over all images of
  a category (um, umm, uu) before any ratio is taken;
* ``recall_k = TP_k / P`` (P = road pixels), ``precision_k = TP_k / (TP_k + FP_k)``; the
  thresholds with ``TP_k == 0`` are dropped;
* **MaxF** is the largest ``F_k = 2 precision_k recall_k / (precision_k + recall_k)``;
  precision, recall, FPR = FP/N and FNR = FN/P are reported at that threshold (the first
  one on ties);
* **AP** is the devkit's 11-point interpolated ("Pascal VOC") average precision:
  the mean over ``r`` in ``np.arange(0, 1.1, 0.1)`` of the largest ``precision_k`` with
  ``recall_k >= r`` (recall 1 is always reached at ``t_0 = 0``).

The devkit adds 1e-10 to the denominators of precision and F; these formulas do not, a
difference below 1e-9. An 8-bit probability PNG holds ``round(255 p)``; it is read as the
devkit does, ``uint8 / 255`` in float32, which puts level q exactly at threshold index q.
"""
from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from tusimple_duc.data.labels import IGNORE_LABEL, KITTI_CLASS_NAMES, KITTI_ROAD_CATEGORIES, kitti_gt_to_labels
from tusimple_duc.data.png import read_png
from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.confusion import safe_ratio
from tusimple_duc.evaluation.files import (check_same_size, coverage_details, list_prediction_files,
                                           require_ground_truth)
from tusimple_duc.evaluation.parallel import ordered_map
from tusimple_duc.evaluation.report import EvaluationResult, ScoreTable

#: The devkit's thresholds, ``np.array(range(0, 256)) / 255.0``.
ROAD_THRESHOLDS: np.ndarray = np.arange(256) / 255.0
#: Recall levels of the 11-point average precision, exactly as the devkit builds them.
_RECALL_LEVELS = np.arange(0, 1.1, 0.1)
#: Name of the row summing every category.
ALL_CATEGORIES = "all"

_NAME_PATTERN = re.compile(r"^(?P<category>um|umm|uu)_(?:road_)?(?P<frame>\d+)\.(?:png|npz)$")


def threshold_histogram(road_prob: np.ndarray) -> np.ndarray:
    """(T+1,) int64: entry b counts the probabilities p with exactly b thresholds ``t_k <= p``."""
    bins = np.searchsorted(ROAD_THRESHOLDS, road_prob.astype(np.float64).ravel(), side="right")
    return np.bincount(bins, minlength=len(ROAD_THRESHOLDS) + 1)


def road_scores(positive_histogram: np.ndarray, negative_histogram: np.ndarray) -> Dict[str, float]:
    """MaxF, AP, precision, recall, FPR, FNR and the threshold from summed threshold histograms.

    Parameters
    ----------
    positive_histogram, negative_histogram : np.ndarray
        (T+1,) :func:`threshold_histogram` of the road and of the non-road pixels.

    Returns
    -------
    dict
        ``MaxF, AP, precision, recall, FPR, FNR, threshold`` (floats) and
        ``TP, FP, FN, TN`` (pixel counts at the MaxF threshold).
    """
    # Pixels called road at t_k: histogram bins k+1 .. T.
    tp = np.cumsum(positive_histogram[::-1])[::-1][1:]
    fp = np.cumsum(negative_histogram[::-1])[::-1][1:]
    positives, negatives = int(positive_histogram.sum()), int(negative_histogram.sum())
    if positives == 0:
        raise EvaluationError("the ground truth has no road pixels; KITTI road scores are undefined")
    kept = np.nonzero(tp > 0)[0]
    recall = tp[kept] / positives
    precision = tp[kept] / (tp[kept] + fp[kept])
    f_measure = 2 * precision * recall / (precision + recall)
    best = int(np.argmax(f_measure))
    index = kept[best]
    average_precision = np.mean([precision[recall >= level].max() for level in _RECALL_LEVELS])
    tp_best, fp_best = int(tp[index]), int(fp[index])
    return {
        "MaxF": float(f_measure[best]),
        "AP": float(average_precision),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
        "FPR": float(safe_ratio(fp_best, negatives)),
        "FNR": (positives - tp_best) / positives,
        "threshold": float(ROAD_THRESHOLDS[index]),
        "TP": tp_best,
        "FP": fp_best,
        "FN": positives - tp_best,
        "TN": negatives - fp_best,
    }


class KittiRoadEvaluator:
    """Accumulate road probability maps and score them with the devkit's protocol."""

    def __init__(self) -> None:
        self.histograms: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        self.num_images = 0

    def add(self, road_prob: np.ndarray, gt_labels: np.ndarray, category: str = ALL_CATEGORIES,
            source: str = "<arrays>") -> None:
        """Add one image.

        Parameters
        ----------
        road_prob : np.ndarray
            (H, W) float road probabilities in [0, 1].
        gt_labels : np.ndarray
            (H, W) labels from :func:`tusimple_duc.data.labels.kitti_gt_to_labels`:
            1 road, 0 not road, 255 don't care.
        category : str
            The image's category (``"um"``, ``"umm"``, ``"uu"``), scored separately and in ``"all"``.
        source : str
            The prediction's file name, for error messages.
        """
        if category not in KITTI_ROAD_CATEGORIES + (ALL_CATEGORIES,):
            raise ValueError(f"unknown KITTI road category {category!r}")
        road_prob = np.asarray(road_prob)
        gt_labels = np.asarray(gt_labels)
        if road_prob.ndim != 2 or road_prob.shape != gt_labels.shape:
            raise EvaluationError(f"{source}: probability map shape {road_prob.shape} differs from "
                                  f"ground truth {gt_labels.shape}")
        if not np.issubdtype(road_prob.dtype, np.floating):
            raise EvaluationError(f"{source}: probability map has dtype {road_prob.dtype}; expected floats in [0, 1]")
        if road_prob.size and not (np.all(np.isfinite(road_prob)) and road_prob.min() >= 0 and road_prob.max() <= 1):
            raise EvaluationError(f"{source}: probability map has values outside [0, 1]")
        if not np.isin(gt_labels, (0, 1, IGNORE_LABEL)).all():
            raise EvaluationError(f"{source}: ground-truth labels must be 0 (not road), 1 (road) or 255")
        positive = threshold_histogram(road_prob[gt_labels == 1])
        negative = threshold_histogram(road_prob[gt_labels == 0])
        self._add_histograms({key: (positive, negative) for key in dict.fromkeys((category, ALL_CATEGORIES))}, 1)

    def merge(self, other: "KittiRoadEvaluator") -> None:
        """Add the histograms and image count of another evaluator."""
        self._add_histograms(other.histograms, other.num_images)

    def _add_histograms(self, histograms: Dict[str, Tuple[np.ndarray, np.ndarray]], num_images: int) -> None:
        for key, (positive, negative) in histograms.items():
            pos, neg = self.histograms.get(key, (0, 0))
            self.histograms[key] = (pos + positive, neg + negative)
        self.num_images += num_images

    def result(self) -> EvaluationResult:
        """Scores of every category seen and of all images together (summary = all images)."""
        if self.num_images == 0:
            raise EvaluationError("no KITTI road image was evaluated")
        names = [c for c in KITTI_ROAD_CATEGORIES if c in self.histograms] + [ALL_CATEGORIES]
        scores = {name: road_scores(*self.histograms[name]) for name in names}
        overall = scores[ALL_CATEGORIES]
        columns = ("MaxF", "AP", "precision", "recall", "FPR", "FNR")
        confusion = np.array([[overall["TN"], overall["FP"]], [overall["FN"], overall["TP"]]], dtype=np.int64)
        class_iou = safe_ratio(np.diag(confusion), confusion.sum(0) + confusion.sum(1) - np.diag(confusion))
        return EvaluationResult(
            dataset="kitti",
            num_images=self.num_images,
            summary={key: overall[key] for key in columns + ("threshold",)},
            tables=[ScoreTable("classes", list(KITTI_CLASS_NAMES), {"IoU": class_iou}),
                    ScoreTable("categories", names, {c: np.array([scores[n][c] for n in names]) for c in columns})],
            confusion=confusion,
            confusion_rows=list(KITTI_CLASS_NAMES),
            confusion_columns=list(KITTI_CLASS_NAMES),
            details={"scores": scores, "note": "IoU and confusion at the MaxF threshold of all images"},
        )


def _gt_dir(gt_root: str, split: Optional[str]) -> str:
    candidates = [os.path.join(gt_root, split)] if split else [gt_root, os.path.join(gt_root, "training")]
    for candidate in candidates:
        if os.path.isdir(os.path.join(candidate, "gt_image_2")):
            return os.path.join(candidate, "gt_image_2")
    raise EvaluationError(f"{candidates[0]}: no gt_image_2 folder (expected the KITTI road training folder)")


def read_road_probability(path: str) -> np.ndarray:
    """A (H, W) float road probability map.

    From an 8-bit PNG (``round(255 p)``, read as the devkit does: ``uint8 / 255`` in float32),
    or from an ``.npz`` holding one array: (H, W) road probabilities, or test.py's
    ``prob/<name>.npz`` (2, H, W) probabilities of (not road, road).
    """
    if path.endswith(".png"):
        levels = read_png(path, ("L",), "road probability map", error=EvaluationError)
        return levels.astype(np.float32) / np.float32(255)
    try:
        with np.load(path) as archive:
            arrays = [archive[key] for key in archive.files]
    except (OSError, ValueError) as error:
        raise EvaluationError(f"{path}: cannot read road probability map ({error})") from None
    if len(arrays) == 1 and arrays[0].ndim == 3 and arrays[0].shape[0] == 2:
        return arrays[0][1]
    if len(arrays) != 1 or arrays[0].ndim != 2:
        raise EvaluationError(f"{path}: expected one (H, W) road or (2, H, W) (not road, road) probability array")
    return arrays[0]


def match_predictions(result_dir: str, gt_root: str, split: Optional[str] = None
                      ) -> Tuple[List[Tuple[str, str, str]], List[str], List[str]]:
    """Pair every ``{um,umm,uu}_{frame}.png|npz`` (or ``{cat}_road_{frame}``) under ``result_dir``
    with ``gt_image_2/{cat}_road_{frame}.png``.

    Returns the (prediction, ground truth, category) triples, the road ground truths without a
    prediction and the prediction files that match no ground truth (both sorted).
    """
    gt_dir = _gt_dir(gt_root, split)
    ground_truths = {os.path.basename(path)[:-len(".png")]: path
                     for path in glob.glob(os.path.join(gt_dir, "*_road_*.png"))}
    require_ground_truth(ground_truths, gt_dir, "*_road_*.png")
    pairs: Dict[str, Tuple[str, str, str]] = {}
    extra: List[str] = []
    for path in list_prediction_files(result_dir, (".png", ".npz")):
        match = _NAME_PATTERN.match(os.path.basename(path))
        key = f"{match['category']}_road_{match['frame']}" if match else None
        if key not in ground_truths:
            extra.append(path)
            continue
        if key in pairs:
            raise EvaluationError(f"{path}: second prediction for {key} (the first is {pairs[key][0]})")
        pairs[key] = (path, ground_truths[key], match["category"])
    missing = sorted(path for key, path in ground_truths.items() if key not in pairs)
    return [pairs[key] for key in sorted(pairs)], missing, extra


def count_files(job: Tuple[str, str, str]) -> KittiRoadEvaluator:
    """Read and add one (prediction, ground truth, category) triple: a one-image evaluator."""
    pred_path, gt_path, category = job
    road_prob = read_road_probability(pred_path)
    gt_rgb = read_png(gt_path, ("RGB",), "KITTI road ground truth", error=EvaluationError)
    gt_labels = kitti_gt_to_labels(gt_rgb)
    check_same_size(road_prob, pred_path, gt_labels, gt_path)
    evaluator = KittiRoadEvaluator()
    evaluator.add(road_prob, gt_labels, category, source=pred_path)
    return evaluator


def evaluate_kitti_road(result_dir: str, gt_root: str, split: Optional[str] = None, show_progress: bool = False,
                        subset: bool = False, workers: Optional[int] = None) -> EvaluationResult:
    """Score a folder of road probability maps against the KITTI road ground truth.

    ``gt_root`` is the folder holding ``gt_image_2`` or its parent (``data_road``, which
    holds ``training/gt_image_2``); ``split`` names the subfolder explicitly. Every ground
    truth needs a prediction unless ``subset``; other files are ignored
    (:func:`~tusimple_duc.evaluation.files.coverage_details`). Images are read in ``workers``
    processes (None: one per physical core).
    """
    triples, missing, extra = match_predictions(result_dir, gt_root, split)
    details = coverage_details(result_dir, missing, extra, len(triples), subset)
    evaluator = KittiRoadEvaluator()
    for image in ordered_map(count_files, triples, workers, show_progress, "kitti"):
        evaluator.merge(image)
    result = evaluator.result()
    result.details.update(details)
    return result
