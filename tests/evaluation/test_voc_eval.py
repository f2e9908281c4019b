"""VOC mIoU against a brute-force per-class loop over the same files."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.voc import VocEvaluator, evaluate_voc


def brute_force_iou(preds, gts, num_classes=21):
    iou = []
    for c in range(num_classes):
        intersection = union = 0
        for pred, gt in zip(preds, gts):
            for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist()):
                if g == 255:
                    continue
                intersection += p == c and g == c
                union += p == c or g == c
        iou.append(intersection / union if union else float("nan"))
    return np.array(iou)


def test_voc_miou_equals_brute_force(voc_case):
    with pytest.raises(EvaluationError, match="no prediction for this ground truth"):
        evaluate_voc(voc_case.pred_dir, voc_case.gt_root, "val")
    result = evaluate_voc(voc_case.pred_dir, voc_case.gt_root, "val", subset=True)
    expected = brute_force_iou(voc_case.preds, voc_case.gts)
    np.testing.assert_allclose(result.table("classes").columns["IoU"], expected, rtol=0, atol=1e-12)
    assert result.summary["mIoU"] == pytest.approx(np.nanmean(expected), abs=1e-12)
    assert result.num_images == 3
    # One image of the split list has no prediction.
    assert result.details["ground_truth_without_prediction"] == 1
    valid = [g != 255 for g in voc_case.gts]
    correct = sum(int((p[v] == g[v]).sum()) for p, g, v in zip(voc_case.preds, voc_case.gts, valid))
    assert result.summary["pixel_accuracy"] == pytest.approx(correct / sum(int(v.sum()) for v in valid))


def test_palette_pngs_are_read_as_indices_not_colours(voc_case):
    # Only the first image (palette ground truth and palette prediction), VOC2012 given directly.
    for name in os.listdir(voc_case.pred_dir):
        if name != "2007_000033.png":
            os.remove(os.path.join(voc_case.pred_dir, name))
    result = evaluate_voc(voc_case.pred_dir, os.path.join(voc_case.gt_root, "VOC2012"), subset=True)
    evaluator = VocEvaluator()
    evaluator.add(voc_case.preds[0], voc_case.gts[0])
    np.testing.assert_array_equal(result.confusion, evaluator.result().confusion)
    assert result.confusion.sum() == int((voc_case.gts[0] != 255).sum())


def test_bad_voc_inputs(voc_case, tmp_path):
    pred_path = os.path.join(voc_case.pred_dir, "2007_000042.png")
    cv2.imwrite(pred_path, np.dstack([voc_case.preds[1]] * 3))
    with pytest.raises(EvaluationError, match="3-channel colour image") as error:
        evaluate_voc(voc_case.pred_dir, voc_case.gt_root, subset=True)
    assert str(error.value).startswith(pred_path)
    cv2.imwrite(pred_path, np.full_like(voc_case.preds[1], 30))
    with pytest.raises(EvaluationError, match="index 30, outside the VOC classes"):
        evaluate_voc(voc_case.pred_dir, voc_case.gt_root, subset=True)
    cv2.imwrite(pred_path, np.zeros((10, 10), np.uint8))
    with pytest.raises(EvaluationError, match=r"is 10x10 \(HxW\) but ground truth .*2007_000042.png is 40x56 \(HxW\)"):
        evaluate_voc(voc_case.pred_dir, voc_case.gt_root, subset=True)
    os.remove(pred_path)
    extra = os.path.join(voc_case.pred_dir, "2012_999999.png")
    cv2.imwrite(extra, voc_case.preds[1])
    result = evaluate_voc(voc_case.pred_dir, voc_case.gt_root, subset=True)
    assert result.details["ignored_predictions"] == [extra]
    with pytest.raises(EvaluationError, match="no SegmentationClass folder"):
        evaluate_voc(voc_case.pred_dir, str(tmp_path / "nowhere"))
