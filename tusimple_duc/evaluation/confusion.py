"""The confusion-matrix core shared by every dataset protocol.

A confusion matrix ``M`` (L, L) counts pixels: ``M[g, p]`` is the number of pixels whose
ground truth is class ``g`` and whose prediction is class ``p`` (rows ground truth,
columns prediction). Every score of the Cityscapes, VOC and KITTI protocols is a
function of such counts.

Scores follow ``cityscapesscripts`` (evalPixelLevelSemanticLabeling):

* only the *evaluated* classes are scored. A pixel whose ground truth is not evaluated
  (e.g. a Cityscapes "void" id) never counts; a pixel of an evaluated class predicted as
  a non-evaluated class counts as a false negative of its class;
* ``IoU = TP / (TP + FP + FN)``; it is NaN when ``TP + FP + FN == 0``, i.e. when the
  class neither occurs in the ground truth nor is predicted on an evaluated pixel. A class
  absent from the ground truth but predicted scores 0;
* averages (mIoU, mean accuracy) are taken over the non-NaN entries only, and are NaN
  when every entry is NaN.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from tusimple_duc.errors import EvaluationError

#: Pixel counts below this are exact in float32 (OpenCV's histogram type).
_FLOAT32_EXACT_COUNTS = 1 << 24


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                     ignore_label: Optional[int] = 255) -> np.ndarray:
    """Count (ground truth, prediction) pairs of one image.

    Parameters
    ----------
    pred, gt : np.ndarray
        Integer class maps of the same shape, e.g. (H, W).
    num_classes : int
        L; every counted value must lie in ``0 .. L-1``.
    ignore_label : int or None
        Pixels whose ground truth equals it are skipped; None counts every pixel.

    Returns
    -------
    np.ndarray
        (L, L) int64, rows ground truth, columns prediction.

    Raises
    ------
    EvaluationError
        If the shapes differ or a counted value lies outside ``0 .. L-1``.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise EvaluationError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if ignore_label is not None:
        valid = gt != ignore_label
        pred, gt = pred[valid], gt[valid]
    gt, pred = (v if np.issubdtype(v.dtype, np.integer) else v.astype(np.int64) for v in (gt, pred))
    for what, values in (("ground truth", gt), ("prediction", pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values.max() if values.max() >= num_classes else values.min()
            raise EvaluationError(f"{what} contains class {bad}, outside 0..{num_classes - 1}")
    if gt.dtype == pred.dtype == np.uint8 and gt.size < _FLOAT32_EXACT_COUNTS:
        return _uint8_confusion(gt, pred, num_classes)
    # gt * L + pred in the narrowest type that holds L * L (one pass each; bincount widens it once).
    key_type = np.uint16 if num_classes * num_classes <= 1 << 16 else np.intp
    keys = np.multiply(gt, num_classes, dtype=key_type, casting="unsafe")  # values checked above
    keys += pred.astype(key_type, copy=False)
    return np.bincount(keys.ravel(), minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _uint8_confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """:func:`confusion_matrix` of uint8 maps with fewer than 2**24 pixels, in one pass without temporaries.

    OpenCV's 2-D histogram counts in float32, exact for counts below 2**24.
    """
    columns = [np.ascontiguousarray(values).reshape(-1, 1) for values in (gt, pred)]
    counts = cv2.calcHist(columns, [0, 1], None, [num_classes, num_classes], [0, num_classes, 0, num_classes])
    return counts.astype(np.int64)


def group_counts(matrix: np.ndarray, groups: Sequence[Sequence[int]],
                 evaluated: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives of groups of classes.

    A group ``g`` is scored as one class (a Cityscapes category, or a single class):
    ``TP = sum M[g, g]``, ``FN = sum M[g, :] - TP`` (the whole rows, so predictions of
    non-evaluated classes are misses), ``FP = sum M[evaluated \\ g, g]`` (only rows of
    evaluated classes outside the group).

    Parameters
    ----------
    matrix : np.ndarray
        (L, L) confusion counts, rows ground truth.
    groups : sequence of sequences of int
        K groups of class indices.
    evaluated : sequence of int
        The evaluated classes (rows that may produce false positives).

    Returns
    -------
    tuple of np.ndarray
        ``(tp, fp, fn)``, each (K,) int64.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    num_classes = matrix.shape[0]
    members = np.zeros((len(groups), num_classes), dtype=np.int64)
    for index, group in enumerate(groups):
        members[index, list(group)] = 1
    evaluated_rows = np.zeros(num_classes, dtype=np.int64)
    evaluated_rows[list(evaluated)] = 1
    # column_sums[i, k]: pixels of ground-truth class i predicted as a member of group k.
    column_sums = matrix @ members.T
    tp = (members * column_sums.T).sum(axis=1)
    fn = members @ matrix.sum(axis=1) - tp
    fp = ((evaluated_rows[None, :] * (1 - members)) * column_sums.T).sum(axis=1)
    return tp, fp, fn


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator`` as float64, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def mean_of_present(scores: np.ndarray) -> float:
    """Mean over the non-NaN scores; NaN if there are none (cityscapesscripts' getScoreAverage)."""
    scores = np.asarray(scores, dtype=np.float64)
    present = scores[~np.isnan(scores)]
    return float(present.mean()) if present.size else float("nan")


class ConfusionAccumulator:
    """A confusion matrix summed over images, with the scores derived from it.

    Parameters
    ----------
    num_classes : int
        L, the size of the matrix.
    ignore_label : int or None
        Ground-truth value that is skipped (255 for trainIds and VOC); None counts every pixel.
    evaluated_classes : sequence of int, optional
        The K scored classes, in the order of the returned score arrays (default: all L).
        Ground-truth rows of other classes never count; predictions of other classes on
        evaluated pixels are false negatives.
    """

    def __init__(self, num_classes: int, ignore_label: Optional[int] = 255,
                 evaluated_classes: Optional[Sequence[int]] = None) -> None:
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.evaluated = np.arange(num_classes) if evaluated_classes is None else np.asarray(
            evaluated_classes, dtype=np.int64)
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image: ``pred`` and ``gt`` integer maps of the same shape (H, W)."""
        self.matrix += confusion_matrix(pred, gt, self.num_classes, self.ignore_label)

    def merge(self, other: "ConfusionAccumulator") -> None:
        """Add the counts of another accumulator over the same classes."""
        if other.num_classes != self.num_classes or not np.array_equal(other.evaluated, self.evaluated):
            raise ValueError("cannot merge accumulators over different classes")
        self.matrix += other.matrix

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(tp, fp, fn)`` of the evaluated classes, each (K,) int64."""
        return group_counts(self.matrix, [[c] for c in self.evaluated], self.evaluated)

    def iou(self) -> np.ndarray:
        """Per-class IoU (K,) float64, NaN for classes neither in the ground truth nor predicted."""
        tp, fp, fn = self.counts()
        return safe_ratio(tp, tp + fp + fn)

    def mean_iou(self) -> float:
        """Mean IoU over the classes whose IoU is defined."""
        return mean_of_present(self.iou())

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall ``TP / (TP + FN)`` (K,), NaN for classes absent from the ground truth."""
        tp, _, fn = self.counts()
        return safe_ratio(tp, tp + fn)

    def mean_class_accuracy(self) -> float:
        """Mean per-class accuracy over the classes present in the ground truth."""
        return mean_of_present(self.class_accuracy())

    def pixel_accuracy(self) -> float:
        """Correct pixels / pixels of evaluated ground-truth classes (NaN if there are none)."""
        tp, _, fn = self.counts()
        return float(safe_ratio(tp.sum(), tp.sum() + fn.sum()))

    def evaluated_confusion(self) -> np.ndarray:
        """The counts of the evaluated ground-truth classes, int64.

        (K, K) when every class is evaluated; otherwise (K, K+1), the last column
        counting predictions of the non-evaluated classes. Rows and the first K
        columns follow the order of ``evaluated_classes``.
        """
        rows = self.matrix[self.evaluated]
        inside = rows[:, self.evaluated]
        if len(self.evaluated) == self.num_classes:
            return inside
        return np.concatenate([inside, (rows.sum(axis=1) - inside.sum(axis=1))[:, None]], axis=1)
