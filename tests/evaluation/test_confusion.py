"""The confusion-matrix core against sklearn and hand-computed counts."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.confusion import ConfusionAccumulator, confusion_matrix, group_counts, mean_of_present


def test_confusion_matrix_equals_sklearn_on_valid_pixels():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 6, size=(37, 53)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.2] = 255
    pred = rng.integers(0, 6, size=gt.shape).astype(np.uint8)
    valid = gt != 255
    expected = sklearn_confusion_matrix(gt[valid], pred[valid], labels=list(range(6)))
    ours = confusion_matrix(pred, gt, 6)
    assert ours.dtype == np.int64 and ours.shape == (6, 6)
    np.testing.assert_array_equal(ours, expected)
    everything = confusion_matrix(np.minimum(pred, 5), np.minimum(gt, 5), 6, ignore_label=None)
    np.testing.assert_array_equal(everything, sklearn_confusion_matrix(
        np.minimum(gt, 5).ravel(), np.minimum(pred, 5).ravel(), labels=list(range(6))))


def test_hand_computed_iou_and_nan_rules():
    # Classes 0..3; class 3 never occurs nor is predicted (NaN); class 2 is only predicted (0).
    gt = np.array([0, 0, 0, 1, 1, 255, 255])
    pred = np.array([0, 0, 2, 1, 0, 3, 1])
    acc = ConfusionAccumulator(4)
    acc.add(pred, gt)
    iou = acc.iou()
    # class 0: tp 2, fp 1 (a 1 predicted 0), fn 1 (a 0 predicted 2) -> 2/4; class 1: tp 1, fn 1 -> 1/2.
    np.testing.assert_allclose(iou[:3], [0.5, 0.5, 0.0])
    assert math.isnan(iou[3])
    assert acc.mean_iou() == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert acc.pixel_accuracy() == pytest.approx(3 / 5)
    np.testing.assert_allclose(acc.class_accuracy()[:2], [2 / 3, 1 / 2])
    assert math.isnan(acc.class_accuracy()[2]) and math.isnan(acc.class_accuracy()[3])
    assert acc.mean_class_accuracy() == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_non_evaluated_classes_never_count_as_false_positives_but_as_misses():
    # Class 2 is not evaluated: its ground-truth pixels are ignored, predicting it is a miss.
    gt = np.array([0, 0, 1, 2, 2])
    pred = np.array([0, 2, 1, 0, 1])
    acc = ConfusionAccumulator(3, ignore_label=None, evaluated_classes=[1, 0])
    acc.add(pred, gt)
    # class 1: tp 1, fp 0 (the class-2 pixel predicted 1 does not count) -> 1; class 0: tp 1, fn 1 -> 1/2.
    np.testing.assert_allclose(acc.iou(), [1.0, 0.5])
    np.testing.assert_array_equal(acc.evaluated_confusion(), [[1, 0, 0], [0, 1, 1]])


def test_group_counts_of_a_two_class_group():
    matrix = np.array([[5, 1, 2], [3, 4, 0], [7, 8, 9]])
    tp, fp, fn = group_counts(matrix, [[0, 1]], evaluated=[0, 1])
    assert (tp[0], fp[0], fn[0]) == (13, 0, 2)
    tp, fp, fn = group_counts(matrix, [[0, 1]], evaluated=[0, 1, 2])
    assert (tp[0], fp[0], fn[0]) == (13, 15, 2)


def test_merge_adds_counts():
    rng = np.random.default_rng(1)
    preds = [rng.integers(0, 3, (8, 8)) for _ in range(2)]
    gts = [rng.integers(0, 3, (8, 8)) for _ in range(2)]
    whole, first, second = ConfusionAccumulator(3), ConfusionAccumulator(3), ConfusionAccumulator(3)
    for pred, gt in zip(preds, gts):
        whole.add(pred, gt)
    first.add(preds[0], gts[0])
    second.add(preds[1], gts[1])
    first.merge(second)
    np.testing.assert_array_equal(first.matrix, whole.matrix)
    with pytest.raises(ValueError):
        first.merge(ConfusionAccumulator(4))


def test_out_of_range_values_and_shape_mismatch_are_errors():
    with pytest.raises(EvaluationError, match="prediction contains class 7, outside 0..3"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 4)
    with pytest.raises(EvaluationError, match="ground truth contains class 9"):
        confusion_matrix(np.array([0, 1]), np.array([9, 1]), 4)
    with pytest.raises(EvaluationError, match="shape"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((3, 2)), 4)


def test_mean_of_present():
    assert mean_of_present(np.array([0.2, np.nan, 0.4])) == pytest.approx(0.3)
    assert math.isnan(mean_of_present(np.array([np.nan, np.nan])))
