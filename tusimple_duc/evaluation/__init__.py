"""Evaluation: one confusion-matrix core and the official protocols of the three datasets.

* :mod:`.confusion` - ``confusion_matrix``, ``ConfusionAccumulator`` (IoU, mIoU, accuracies).
* :mod:`.cityscapes` - ``CityscapesEvaluator``, ``evaluate_cityscapes`` (= cityscapesscripts).
* :mod:`.kitti` - ``KittiRoadEvaluator``, ``evaluate_kitti_road`` (= the KITTI road devkit).
* :mod:`.voc` - ``VocEvaluator``, ``evaluate_voc``.
* :mod:`.report` - ``EvaluationResult``, the printed table and the metrics JSON.
"""
from __future__ import annotations

from typing import Optional

from tusimple_duc.errors import EvaluationError
from tusimple_duc.evaluation.cityscapes import CityscapesEvaluator, evaluate_cityscapes
from tusimple_duc.evaluation.confusion import ConfusionAccumulator, confusion_matrix
from tusimple_duc.evaluation.kitti import KittiRoadEvaluator, evaluate_kitti_road
from tusimple_duc.evaluation.report import EvaluationResult, ScoreTable, format_tables, write_metrics_json
from tusimple_duc.evaluation.voc import VocEvaluator, evaluate_voc

#: Default split per dataset (KITTI: None = look for ``gt_image_2`` in the root or ``training/``).
DEFAULT_SPLITS = {"cityscapes": "val", "kitti": None, "voc": "val"}


def evaluate_folder(dataset: str, result_dir: str, gt_root: str, split: Optional[str] = None,
                    show_progress: bool = False, subset: bool = False) -> EvaluationResult:
    """Evaluate the predictions in ``result_dir`` with the protocol of ``dataset``.

    Parameters
    ----------
    dataset : str
        ``"cityscapes"`` (labelIds PNGs), ``"kitti"`` (road probability PNGs or npz) or
        ``"voc"`` (index or palette PNGs).
    result_dir, gt_root : str
        The predictions and the dataset root.
    split : str, optional
        Ground-truth split; default :data:`DEFAULT_SPLITS` of the dataset.
    show_progress : bool
        Show a progress bar on stderr.
    subset : bool
        Score only the ground truths that have a prediction (default: every ground truth of the
        split needs one, as the official evaluators require).
    """
    if dataset not in DEFAULT_SPLITS:
        raise EvaluationError(f"unknown dataset '{dataset}'; expected one of {', '.join(DEFAULT_SPLITS)}")
    split = split if split is not None else DEFAULT_SPLITS[dataset]
    if dataset == "cityscapes":
        return evaluate_cityscapes(result_dir, gt_root, split, show_progress, subset)
    if dataset == "kitti":
        return evaluate_kitti_road(result_dir, gt_root, split, show_progress, subset)
    return evaluate_voc(result_dir, gt_root, split, show_progress, subset)


__all__ = [
    "CityscapesEvaluator", "ConfusionAccumulator", "DEFAULT_SPLITS", "EvaluationResult", "KittiRoadEvaluator",
    "ScoreTable", "VocEvaluator", "confusion_matrix", "evaluate_cityscapes", "evaluate_folder",
    "evaluate_kitti_road", "evaluate_voc", "format_tables", "write_metrics_json",
]
