"""Cityscapes scores against the official cityscapesscripts evaluator on the same files."""
from __future__ import annotations

import math
import os
import shutil

import cv2
import numpy as np
import pytest
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
from PIL import Image

from eval_cases import write_cityscapes_case
from tusimple_duc.data.labels import CITYSCAPES_ID_TO_TRAINID
from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.cityscapes import (
    AVERAGE_INSTANCE_SIZE, CATEGORY_NAMES, CLASS_NAMES, EVALUATED_IDS, CityscapesEvaluator, evaluate_cityscapes)


def official_args(tmp_path):
    """The official evaluator's parameters: quiet, no JSON export, instance scores on."""
    args = official.CArgs()
    args.evalInstLevelScore = True
    args.evalPixelAccuracy = False
    args.evalLabels = []
    args.printRow = 5
    args.normalized = True
    args.colorized = False
    args.bold = ""
    args.nocol = ""
    args.JSONOutput = False
    args.quiet = True
    args.exportFile = str(tmp_path / "official.json")
    args.avgClassSize = dict(official.args.avgClassSize)
    return args


def assert_same(ours: float, theirs: float, what: str) -> None:
    if math.isnan(theirs):
        assert math.isnan(ours), f"{what}: ours {ours}, official nan"
    else:
        assert ours == pytest.approx(theirs, abs=1e-9), what


def test_average_instance_sizes_are_the_official_ones():
    assert AVERAGE_INSTANCE_SIZE == official.args.avgClassSize


def test_every_score_equals_cityscapesscripts(cityscapes_case, tmp_path):
    case = cityscapes_case
    theirs = official.evaluateImgLists(list(case.pred_paths), list(case.gt_paths), official_args(tmp_path))
    result = evaluate_cityscapes(case.pred_dir, case.gt_root, "val")

    assert result.num_images == 3
    assert result.details["confusion_label_ids"] == np.asarray(theirs["confMatrix"]).astype(np.int64).tolist()
    classes, categories = result.table("classes"), result.table("categories")
    assert classes.names == CLASS_NAMES and len(CLASS_NAMES) == 19
    for row, name in enumerate(classes.names):
        assert_same(classes.columns["IoU"][row], theirs["classScores"][name], f"IoU {name}")
        assert_same(classes.columns["iIoU"][row], theirs["classInstScores"][name], f"iIoU {name}")
    for name, score in theirs["classScores"].items():
        if name not in CLASS_NAMES:
            assert math.isnan(score) and math.isnan(theirs["classInstScores"][name])
    assert categories.names == CATEGORY_NAMES and len(CATEGORY_NAMES) == 7
    for row, name in enumerate(categories.names):
        assert_same(categories.columns["IoU"][row], theirs["categoryScores"][name], f"category IoU {name}")
        assert_same(categories.columns["iIoU"][row], theirs["categoryInstScores"][name], f"category iIoU {name}")
    assert math.isnan(theirs["categoryScores"]["void"]) and math.isnan(theirs["categoryInstScores"]["void"])
    assert_same(result.summary["mIoU"], theirs["averageScoreClasses"], "mIoU")
    assert_same(result.summary["iIoU"], theirs["averageScoreInstClasses"], "iIoU")
    assert_same(result.summary["mIoU_category"], theirs["averageScoreCategories"], "category mIoU")
    assert_same(result.summary["iIoU_category"], theirs["averageScoreInstCategories"], "category iIoU")

    # The synthetic data exercises what it is meant to: classes absent from both (NaN),
    # predicted but absent from the ground truth (0), and instance scores that differ from IoU.
    iou = dict(zip(CLASS_NAMES, classes.columns["IoU"]))
    iiou = dict(zip(CLASS_NAMES, classes.columns["iIoU"]))
    assert math.isnan(iou["wall"]) and math.isnan(iou["bus"]) and math.isnan(iiou["bus"])
    assert iou["terrain"] == 0 and iou["motorcycle"] == 0 and iiou["motorcycle"] == 0
    assert math.isnan(iiou["road"]) and 0 < iiou["car"] < 1 and iiou["car"] != pytest.approx(iou["car"], abs=1e-3)
    assert 0 < result.summary["mIoU"] < 1


def test_pixel_and_class_accuracy_equal_a_brute_force_count(cityscapes_case):
    result = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    preds = np.concatenate([p.ravel() for p in cityscapes_case.preds])
    gts = np.concatenate([g.ravel() for g in cityscapes_case.label_ids])
    evaluated = np.isin(gts, EVALUATED_IDS)
    assert result.summary["pixel_accuracy"] == pytest.approx(np.mean(preds[evaluated] == gts[evaluated]), abs=1e-12)
    accuracies = [np.mean(preds[gts == i] == i) for i in EVALUATED_IDS if np.any(gts == i)]
    assert result.summary["mean_class_accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-12)


def test_evaluator_on_arrays_equals_folder_evaluation(cityscapes_case):
    folder = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    evaluator = CityscapesEvaluator()
    for pred, label_ids, instance_ids in zip(cityscapes_case.preds, cityscapes_case.label_ids,
                                             cityscapes_case.instance_ids):
        evaluator.add(pred, label_ids, instance_ids)
    arrays = evaluator.result()
    for key, value in folder.summary.items():
        assert arrays.summary[key] == pytest.approx(value, abs=1e-12)
    np.testing.assert_array_equal(arrays.confusion, folder.confusion)


def test_without_instance_files_iiou_is_not_reported(cityscapes_case, tmp_path):
    theirs = official.evaluateImgLists(list(cityscapes_case.pred_paths), list(cityscapes_case.gt_paths),
                                       official_args(tmp_path))
    for path in cityscapes_case.gt_paths:
        os.remove(path.replace("labelIds", "instanceIds"))
    result = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert "iIoU" not in result.summary and "iIoU" not in result.table("classes").columns
    assert_same(result.summary["mIoU"], theirs["averageScoreClasses"], "mIoU")


def test_size_mismatch_is_an_error_naming_both_files_as_the_official_one_is(cityscapes_case, tmp_path):
    bad = cityscapes_case.pred_paths[0]
    cv2.imwrite(bad, np.zeros((50, 80), np.uint8))
    with pytest.raises(SystemExit):
        official.evaluateImgLists(list(cityscapes_case.pred_paths), list(cityscapes_case.gt_paths),
                                  official_args(tmp_path))
    with pytest.raises(EvaluationError, match=r"50x80 \(HxW\)") as error:
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert bad in str(error.value) and cityscapes_case.gt_paths[0] in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("kind, match", [
    ("rgb", "3-channel colour"),
    ("palette", "palette"),
    ("train_ids", "value 255, outside the Cityscapes labelId table"),
    ("out_of_table", "value 40, outside"),
])
def test_colour_palette_and_out_of_table_predictions_are_rejected(cityscapes_case, kind, match):
    path = cityscapes_case.pred_paths[1]
    pred = cityscapes_case.preds[1]
    if kind == "rgb":
        cv2.imwrite(path, np.dstack([pred] * 3))
    elif kind == "palette":
        Image.fromarray(pred, mode="P").save(path)
    elif kind == "train_ids":
        cv2.imwrite(path, np.where(pred == 7, 255, pred).astype(np.uint8))
    else:
        cv2.imwrite(path, np.where(pred == 7, 40, pred).astype(np.uint8))
    with pytest.raises(EvaluationError, match=match) as error:
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert str(error.value).startswith(path)


def official_prediction_search(pred_dir, gt_path):
    """cityscapesscripts' own getPrediction for one ground truth (SystemExit when it finds none or two)."""
    args = official.CArgs()
    args.predictionPath = pred_dir
    args.predictionWalk = None
    return official.getPrediction(args, gt_path)


def test_a_prediction_without_ground_truth_is_ignored_as_the_official_evaluator_does(cityscapes_case):
    expected = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    extra = os.path.join(cityscapes_case.pred_dir, "lindau_000000_000019_leftImg8bit.png")
    shutil.copy(cityscapes_case.pred_paths[0], extra)
    odd = os.path.join(cityscapes_case.pred_dir, "figure.png")
    shutil.copy(cityscapes_case.pred_paths[0], odd)
    assert [official_prediction_search(cityscapes_case.pred_dir, gt) for gt in cityscapes_case.gt_paths] == \
        cityscapes_case.pred_paths
    result = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert result.summary == expected.summary and result.num_images == 3
    assert result.details["predictions_without_ground_truth"] == 2
    assert result.details["ignored_predictions"] == [odd, extra]


def test_ground_truth_without_prediction_is_an_error_unless_subset(cityscapes_case):
    os.remove(cityscapes_case.pred_paths[2])
    with pytest.raises(SystemExit):
        official_prediction_search(cityscapes_case.pred_dir, cityscapes_case.gt_paths[2])
    with pytest.raises(EvaluationError, match=r"no prediction for this ground truth .*\(1 of 3 have none; .*--subset"
                       ) as error:
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert str(error.value).startswith(cityscapes_case.gt_paths[2])
    result = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root, subset=True)
    assert result.num_images == 2 and result.details["ground_truth_without_prediction"] == 1


def test_label_named_predictions_match_as_in_the_official_search(cityscapes_case):
    """test.py names score/ PNGs after the list line's label file, as the released script did."""
    expected = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    renamed = [path.replace("_leftImg8bit.png", "_gtFine_labelIds.png") for path in cityscapes_case.pred_paths]
    for old, new in zip(cityscapes_case.pred_paths, renamed):
        os.rename(old, new)
    assert [official_prediction_search(cityscapes_case.pred_dir, gt) for gt in cityscapes_case.gt_paths] == renamed
    assert evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root).summary == expected.summary


def test_train_id_predictions_get_a_hint(cityscapes_case):
    assert "warnings" not in evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root).details
    for path, label_ids in zip(cityscapes_case.pred_paths, cityscapes_case.label_ids):
        cv2.imwrite(path, CITYSCAPES_ID_TO_TRAINID[label_ids].clip(0, 18).astype(np.uint8))
    result = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert len(result.details["warnings"]) == 1
    assert "look like trainIds" in result.details["warnings"][0]


def test_bad_folders_and_names(cityscapes_case, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EvaluationError, match="no prediction files"):
        evaluate_cityscapes(str(empty), cityscapes_case.gt_root)
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate_cityscapes(str(tmp_path / "missing"), cityscapes_case.gt_root)
    with pytest.raises(EvaluationError, match="no gtFine folder"):
        evaluate_cityscapes(cityscapes_case.pred_dir, str(tmp_path))
    with pytest.raises(EvaluationError, match="no split folder 'test'"):
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root, "test")
    duplicate = os.path.join(cityscapes_case.pred_dir, "munster_000010_000019_leftImg8bit.png")
    shutil.copy(cityscapes_case.pred_paths[2], duplicate)
    with pytest.raises(EvaluationError, match="second prediction for munster_000010_000019"):
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    os.remove(duplicate)


def test_instance_files_for_only_some_images(cityscapes_case):
    missing = cityscapes_case.gt_paths[1].replace("labelIds", "instanceIds")
    os.remove(missing)
    with pytest.raises(EvaluationError, match="missing, but other images have instanceIds") as error:
        evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert str(error.value).startswith(missing)
    evaluator = CityscapesEvaluator()
    evaluator.add(cityscapes_case.preds[0], cityscapes_case.label_ids[0], cityscapes_case.instance_ids[0])
    with pytest.raises(EvaluationError, match="instanceIds are given for some images"):
        evaluator.add(cityscapes_case.preds[1], cityscapes_case.label_ids[1], None, source="b.png")


def test_second_seed_also_matches_official(tmp_path):
    case = write_cityscapes_case(str(tmp_path), seed=7)
    theirs = official.evaluateImgLists(case.pred_paths, case.gt_paths, official_args(tmp_path))
    result = evaluate_cityscapes(case.pred_dir, case.gt_root)
    assert_same(result.summary["mIoU"], theirs["averageScoreClasses"], "mIoU")
    assert_same(result.summary["iIoU"], theirs["averageScoreInstClasses"], "iIoU")
    assert_same(result.summary["iIoU_category"], theirs["averageScoreInstCategories"], "category iIoU")
