"""Finding prediction files, matching them to ground truths, size checks, with one-line errors naming the file.

PNG files are read with :func:`tusimple_duc.data.png.read_png` (``error=EvaluationError``).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Sized

import numpy as np

from tusimple_duc.errors import EvaluationError

def list_prediction_files(result_dir: str, extensions: Sequence[str]) -> List[str]:
    """All files under ``result_dir`` (recursively) ending in one of ``extensions``, sorted.

    Raises
    ------
    EvaluationError
        If ``result_dir`` is not a folder or holds no such file.
    """
    if not os.path.isdir(result_dir):
        raise EvaluationError(f"{result_dir}: result directory does not exist")
    found = []
    for folder, _, names in os.walk(result_dir):
        found += [os.path.join(folder, name) for name in names
                  if name.lower().endswith(tuple(extensions)) and not name.startswith(".")]
    if not found:
        raise EvaluationError(f"{result_dir}: no prediction files ({', '.join(extensions)}) in the result directory")
    return sorted(found)


def require_ground_truth(found: Sized, folder: str, pattern: str) -> None:
    """Raise EvaluationError naming ``folder`` when no ground-truth file (``pattern``) was found
    (e.g. a ground-truth root whose split folders are empty)."""
    if not found:
        raise EvaluationError(f"{folder}: no ground truth ({pattern}) in this folder")


def check_same_size(prediction: np.ndarray, prediction_path: str, gt: np.ndarray, gt_path: str) -> None:
    """Raise EvaluationError naming both files when the (H, W) sizes differ."""
    if prediction.shape[:2] != gt.shape[:2]:
        raise EvaluationError(f"{prediction_path}: prediction is {size_text(prediction.shape)} but ground truth "
                              f"{gt_path} is {size_text(gt.shape)}")


def size_text(shape: Sequence[int]) -> str:
    """``"<rows>x<cols> (HxW)"`` of an array shape or a (rows, cols) pair: every size message is HxW."""
    return f"{shape[0]}x{shape[1]} (HxW)"


def coverage_details(result_dir: str, missing_gt: Optional[Sequence[str]], extra_predictions: Sequence[str],
                     num_matched: int, subset: bool) -> Dict[str, Any]:
    """Apply the official evaluators' rule to a matching of predictions and ground truths.

    cityscapesscripts (and the KITTI road and VOC devkits) need a prediction for every ground
    truth of the split and never look at other files: a ground truth without a prediction is an
    error unless ``subset`` (score only the predicted ground truths); a prediction without a
    ground truth is ignored and counted.

    Parameters
    ----------
    result_dir : the prediction folder, for messages.
    missing_gt : ground-truth files without a prediction, sorted; None when the split is unknown.
    extra_predictions : prediction files matching no ground truth, sorted.
    num_matched : number of (prediction, ground truth) pairs.
    subset : score only the ground truths that have a prediction.

    Returns
    -------
    ``details`` entries: ``ground_truth_without_prediction`` (int or None),
    ``predictions_without_ground_truth`` (int) and ``ignored_predictions`` (the first 5 paths).
    """
    if num_matched == 0:
        example = f" (e.g. {extra_predictions[0]})" if extra_predictions else ""
        raise EvaluationError(f"{result_dir}: no prediction matches a ground truth{example}")
    if missing_gt and not subset:
        raise EvaluationError(
            f"{missing_gt[0]}: no prediction for this ground truth in {result_dir} ({len(missing_gt)} of "
            f"{len(missing_gt) + num_matched} have none; the official evaluator needs one for every ground truth, "
            f"--subset scores only the predicted ones)")
    return {"ground_truth_without_prediction": None if missing_gt is None else len(missing_gt),
            "predictions_without_ground_truth": len(extra_predictions),
            "ignored_predictions": list(extra_predictions[:5])}
