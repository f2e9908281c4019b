"""KITTI road MaxF / AP / precision / recall against sklearn and a per-threshold loop."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_curve

from tusimple_duc.data.labels import kitti_gt_to_labels
from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.kitti import (
    KittiRoadEvaluator, evaluate_kitti_road, read_road_probability, threshold_histogram)

SHAPES = {"um_000000": (30, 50), "umm_000001": (24, 40), "uu_000002": (30, 50)}


def synthetic_road(rng, shape):
    """(labels: 1 road / 0 not road / 255 don't care, quantised road probability levels 0..255)."""
    labels = (rng.random(shape) < 0.4).astype(np.uint8)
    labels[rng.random(shape) < 0.1] = 255
    levels = np.clip(rng.normal(90 + 100 * (labels == 1), 60), 0, 255).round().astype(np.uint8)
    return labels, levels


def sklearn_reference(labels, probs):
    """MaxF, 11-point AP and the operating point from sklearn's precision-recall curve."""
    valid = labels != 255
    y, s = labels[valid] == 1, probs[valid]
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # sklearn's extra (recall 0, precision 1) end point
    kept = recall > 0
    precision, recall, thresholds = precision[kept], recall[kept], thresholds[kept]
    f_measure = 2 * precision * recall / (precision + recall)
    best = np.argmax(f_measure)
    ap = np.mean([precision[recall >= r].max() for r in np.arange(0, 1.1, 0.1)])
    return {"MaxF": f_measure.max(), "AP": ap, "precision": precision[best], "recall": recall[best],
            "threshold": thresholds[best], "y": y, "s": s}


def test_scores_equal_sklearn_precision_recall_curve():
    rng = np.random.default_rng(0)
    evaluator = KittiRoadEvaluator()
    all_labels, all_probs = [], []
    for shape in SHAPES.values():
        labels, levels = synthetic_road(rng, shape)
        probs = levels / 255.0  # exactly the devkit threshold values
        evaluator.add(probs, labels)
        all_labels.append(labels.ravel())
        all_probs.append(probs.ravel())
    result = evaluator.result()
    reference = sklearn_reference(np.concatenate(all_labels), np.concatenate(all_probs))
    for key in ("MaxF", "AP", "precision", "recall"):
        assert result.summary[key] == pytest.approx(reference[key], abs=1e-12), key
    y, s = reference["y"], reference["s"]
    # Same operating point (the devkit reports the lowest threshold giving it).
    np.testing.assert_array_equal(s >= result.summary["threshold"], s >= reference["threshold"])
    called = s >= result.summary["threshold"]
    assert result.summary["MaxF"] == pytest.approx(f1_score(y, called), abs=1e-12)
    assert result.summary["FPR"] == pytest.approx(np.mean(called[~y]), abs=1e-12)
    assert result.summary["FNR"] == pytest.approx(np.mean(~called[y]), abs=1e-12)
    assert 0.5 < result.summary["MaxF"] < 1 and 0.5 < result.summary["AP"] < 1


def write_kitti_case(root, rng):
    """training/gt_image_2/{cat}_road_{frame}.png (RGB) and predictions: PNG, PNG, npz float16."""
    gt_dir = os.path.join(root, "data_road", "training", "gt_image_2")
    pred_dir = os.path.join(root, "pred")
    os.makedirs(gt_dir)
    os.makedirs(pred_dir)
    cases = {}
    for name, shape in SHAPES.items():
        category, frame = name.split("_")
        labels, levels = synthetic_road(rng, shape)
        rgb = np.zeros(shape + (3,), np.uint8)
        rgb[labels != 255, 0] = 255
        rgb[labels == 1, 2] = 255
        cv2.imwrite(os.path.join(gt_dir, f"{category}_road_{frame}.png"), rgb[:, :, ::-1])
        if category == "uu":
            probs = (levels / 255.0).astype(np.float16)
            np.savez(os.path.join(pred_dir, f"{category}_road_{frame}.npz"), probabilities=np.stack([1 - probs, probs]))
        else:
            cv2.imwrite(os.path.join(pred_dir, name + ".png"), levels)
            probs = levels
        cases[name] = (kitti_gt_to_labels(rgb), probs)
    cv2.imwrite(os.path.join(gt_dir, "um_road_000099.png"), rgb[:, :, ::-1])  # no prediction
    return os.path.join(root, "data_road"), pred_dir, cases


def loop_scores(pairs):
    """Devkit definition, one threshold at a time: called road iff p >= k / 255 (compared in float64)."""
    pairs = [(labels, p.astype(np.float64)) for labels, p in pairs]
    best = (-1.0, None)
    points = []
    positives = sum(int((labels == 1).sum()) for labels, _ in pairs)
    for k in range(256):
        threshold = k / 255.0
        tp = sum(int(((p >= threshold) & (labels == 1)).sum()) for labels, p in pairs)
        fp = sum(int(((p >= threshold) & (labels == 0)).sum()) for labels, p in pairs)
        if tp == 0:
            continue
        precision, recall = tp / (tp + fp), tp / positives
        points.append((precision, recall))
        f_measure = 2 * precision * recall / (precision + recall)
        if f_measure > best[0]:
            best = (f_measure, threshold)
    ap = np.mean([max(p for p, r in points if r >= level) for level in np.arange(0, 1.1, 0.1)])
    return best[0], ap, best[1]


def test_folder_evaluation_equals_a_per_threshold_loop_with_devkit_png_reading(tmp_path):
    gt_root, pred_dir, cases = write_kitti_case(str(tmp_path), np.random.default_rng(3))
    with pytest.raises(EvaluationError, match="no prediction for this ground truth"):
        evaluate_kitti_road(pred_dir, gt_root)
    result = evaluate_kitti_road(pred_dir, gt_root, subset=True)
    # PNG levels are read as the devkit does: uint8 / 255 in float32.
    as_read = {name: (labels, probs.astype(np.float32) / 255 if probs.dtype == np.uint8 else probs)
               for name, (labels, probs) in cases.items()}
    max_f, ap, threshold = loop_scores(list(as_read.values()))
    assert result.summary["MaxF"] == pytest.approx(max_f, abs=1e-12)
    assert result.summary["AP"] == pytest.approx(ap, abs=1e-12)
    assert result.summary["threshold"] == threshold
    categories = result.table("categories")
    assert categories.names == ["um", "umm", "uu", "all"]
    for row, name in enumerate(SHAPES):
        max_f, ap, _ = loop_scores([as_read[name]])
        assert categories.columns["MaxF"][row] == pytest.approx(max_f, abs=1e-12)
        assert categories.columns["AP"][row] == pytest.approx(ap, abs=1e-12)
    assert result.details["ground_truth_without_prediction"] == 1
    tn, fp, fn, tp = result.confusion.ravel()
    assert result.table("classes").columns["IoU"][1] == pytest.approx(tp / (tp + fp + fn))


def test_bad_kitti_inputs(tmp_path):
    gt_root, pred_dir, _ = write_kitti_case(str(tmp_path), np.random.default_rng(4))
    with pytest.raises(EvaluationError, match="no gt_image_2 folder"):
        evaluate_kitti_road(pred_dir, str(tmp_path))
    png = os.path.join(pred_dir, "um_000000.png")
    levels = cv2.imread(png, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(png, np.dstack([levels] * 3))
    with pytest.raises(EvaluationError, match="3-channel colour") as error:
        evaluate_kitti_road(pred_dir, gt_root, subset=True)
    assert str(error.value).startswith(png)
    cv2.imwrite(png, levels[:10])
    size_message = r"is 10x50 \(HxW\) but ground truth .*um_road_000000.png is 30x50 \(HxW\)"
    with pytest.raises(EvaluationError, match=size_message):
        evaluate_kitti_road(pred_dir, gt_root, subset=True)
    cv2.imwrite(png, levels)
    npz = os.path.join(pred_dir, "uu_road_000002.npz")
    np.savez(npz, a=np.zeros((30, 50)), b=np.zeros((30, 50)))
    with pytest.raises(EvaluationError, match="expected one .H, W. road or .2, H, W. .not road, road. probability"):
        evaluate_kitti_road(pred_dir, gt_root, subset=True)
    np.savez(npz, prob=np.full((30, 50), 1.5))
    with pytest.raises(EvaluationError, match="outside \\[0, 1\\]"):
        evaluate_kitti_road(pred_dir, gt_root, subset=True)
    os.remove(npz)
    stray = os.path.join(pred_dir, "um_lane_000000.png")
    cv2.imwrite(stray, levels)
    unknown = os.path.join(pred_dir, "uu_000077.png")
    cv2.imwrite(unknown, levels)
    result = evaluate_kitti_road(pred_dir, gt_root, subset=True)
    assert result.details["ignored_predictions"] == [stray, unknown]


def test_ground_truth_without_road_is_an_error():
    evaluator = KittiRoadEvaluator()
    evaluator.add(np.full((4, 4), 0.3), np.zeros((4, 4), np.uint8))
    with pytest.raises(EvaluationError, match="no road pixels"):
        evaluator.result()


def test_png_level_q_is_called_road_exactly_up_to_threshold_index_q():
    levels = np.arange(256, dtype=np.uint8)
    as_read = levels.astype(np.float32) / np.float32(255)
    counts = threshold_histogram(as_read)
    # Level q satisfies p >= t_k for k = 0..q, i.e. falls in histogram bin q + 1.
    np.testing.assert_array_equal(counts, np.r_[0, np.ones(256, dtype=np.int64)])


def test_road_probability_files(tmp_path):
    road = np.array([[0.0, 0.25], [0.5, 1.0]], np.float16)
    np.savez(tmp_path / "a.npz", road=road)
    np.savez(tmp_path / "b.npz", probabilities=np.stack([1 - road, road]))
    cv2.imwrite(str(tmp_path / "c.png"), np.array([[0, 64], [128, 255]], np.uint8))
    np.testing.assert_array_equal(read_road_probability(str(tmp_path / "a.npz")), road)
    np.testing.assert_array_equal(read_road_probability(str(tmp_path / "b.npz")), road)
    png = read_road_probability(str(tmp_path / "c.png"))
    assert png.dtype == np.float32
    np.testing.assert_array_equal(png, np.array([[0, 64], [128, 255]], np.float32) / np.float32(255))
