"""Evaluation in worker processes: same numbers for every worker count, errors from workers, the fast paths."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

from eval_cases import write_voc_case
from test_cityscapes_eval import assert_same, official_args
from test_kitti_eval import write_kitti_case
from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation import parallel
from tusimple_duc.evaluation.cityscapes import evaluate_cityscapes
from tusimple_duc.evaluation.confusion import confusion_matrix
from tusimple_duc.evaluation.kitti import evaluate_kitti_road
from tusimple_duc.evaluation.report import result_to_dict
from tusimple_duc.evaluation.voc import evaluate_voc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "evaluate.py")


def hand_confusion(pred, gt, num_classes, ignore_label=None):
    """Count pixel by pixel in Python."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    for g, p in zip(np.ravel(gt).tolist(), np.ravel(pred).tolist()):
        if g != ignore_label:
            counts[g, p] += 1
    return counts


def test_cityscapes_scores_are_bitwise_the_same_for_one_and_two_workers_and_official(cityscapes_case, tmp_path):
    one = result_to_dict(evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root, workers=1))
    two = result_to_dict(evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root, workers=2))
    assert one == two  # exact float equality, not approx
    theirs = official.evaluateImgLists(list(cityscapes_case.pred_paths), list(cityscapes_case.gt_paths),
                                       official_args(tmp_path))
    for name, scores in two["tables"]["classes"].items():
        assert_same(np.nan if scores["iIoU"] is None else scores["iIoU"], theirs["classInstScores"][name], name)
    assert_same(two["summary"]["iIoU_category"], theirs["averageScoreInstCategories"], "iIoU category")


def test_voc_and_kitti_are_the_same_for_one_and_two_workers(tmp_path):
    voc = write_voc_case(str(tmp_path / "voc"))
    voc_one = evaluate_voc(voc.pred_dir, voc.gt_root, subset=True, workers=1)
    voc_two = evaluate_voc(voc.pred_dir, voc.gt_root, subset=True, workers=2)
    assert result_to_dict(voc_one) == result_to_dict(voc_two)
    expected = sum(hand_confusion(p, g, 21, 255) for p, g in zip(voc.preds, voc.gts))
    assert np.array_equal(voc_two.confusion, expected)
    os.makedirs(tmp_path / "kitti")
    gt_root, pred_dir, _ = write_kitti_case(str(tmp_path / "kitti"), np.random.default_rng(5))
    kitti_one = evaluate_kitti_road(pred_dir, gt_root, subset=True, workers=1)
    kitti_two = evaluate_kitti_road(pred_dir, gt_root, subset=True, workers=2)
    assert result_to_dict(kitti_one) == result_to_dict(kitti_two)
    assert kitti_two.num_images == 3


def test_a_broken_file_read_in_a_worker_is_the_one_line_error_naming_it(cityscapes_case):
    broken = cityscapes_case.pred_paths[1]
    with open(broken, "rb") as handle:
        data = handle.read()
    with open(broken, "wb") as handle:
        handle.write(data[:len(data) // 2])
    with pytest.raises(EvaluationError, match=f"^{broken}: cannot decode labelIds prediction"):
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root, workers=2)
    completed = subprocess.run([sys.executable, TOOL, cityscapes_case.pred_dir, cityscapes_case.gt_root,
                                "--workers", "2"], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: cannot decode labelIds prediction")


def test_worker_count_is_checked_and_defaults_to_the_physical_cores(cityscapes_case, monkeypatch):
    with pytest.raises(EvaluationError, match="--workers 0: expected a whole number >= 1"):
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root, workers=0)
    completed = subprocess.run([sys.executable, TOOL, cityscapes_case.pred_dir, cityscapes_case.gt_root,
                                "--workers", "-1"], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == ["error: --workers -1: expected a whole number >= 1"]
    monkeypatch.setattr(parallel, "physical_core_count", lambda: 3)
    assert parallel.resolve_workers(None) == 3
    assert parallel.resolve_workers(2) == 2


def test_ordered_map_keeps_the_input_order_with_more_jobs_than_workers():
    jobs = list(range(23))
    assert list(parallel.ordered_map(np.square, jobs, workers=2)) == [j * j for j in jobs]
    assert list(parallel.ordered_map(np.square, [], workers=2)) == []


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.uint16])
@pytest.mark.parametrize("shape", [(0,), (7,), (31, 45), (2, 9, 11)])
def test_confusion_of_every_input_type_equals_a_pixel_loop(dtype, shape):
    rng = np.random.default_rng(len(shape))
    gt = rng.integers(0, 34, size=shape).astype(dtype)
    pred = rng.integers(0, 34, size=shape).astype(dtype)
    assert np.array_equal(confusion_matrix(pred, gt, 34, ignore_label=None), hand_confusion(pred, gt, 34))
    gt[..., ::3] = 255
    assert np.array_equal(confusion_matrix(pred[..., ::-1], gt[..., ::-1], 34, ignore_label=255),
                          hand_confusion(pred[..., ::-1], gt[..., ::-1], 34, 255))


def test_confusion_counts_above_float32_precision_are_exact():
    # 2**24 + 1 pixels of class 0: a float32 count would stop at 2**24.
    size = (1 << 24) + 3
    gt = np.zeros((1, size), dtype=np.uint8)
    gt[0, :2] = 1
    counts = confusion_matrix(gt, gt, 2, ignore_label=None)
    assert counts.tolist() == [[size - 2, 0], [0, 2]]
