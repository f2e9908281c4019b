"""Evaluation: one confusion-matrix core and the official protocols of the three datasets.

* :mod:`.confusion` - ``confusion_matrix``, ``ConfusionAccumulator`` (IoU, mIoU, accuracies).
* :mod:`.cityscapes` - ``CityscapesEvaluator``, ``evaluate_cityscapes`` (= cityscapesscripts).
* :mod:`.kitti` - ``KittiRoadEvaluator``, ``evaluate_kitti_road`` (= the KITTI road devkit).
* :mod:`.voc` - ``VocEvaluator``, ``evaluate_voc``.
* :mod:`.report` - ``EvaluationResult``, the printed table and the metrics JSON.
* :mod:`.files` - finding prediction files, the coverage rule of the official evaluators, size checks.

Which protocol a dataset uses, and its default split, is told by its object in
:mod:`tusimple_duc.datasets` (``get_dataset(name).evaluate_folder``).
"""
from __future__ import annotations

from tusimple_duc.evaluation.cityscapes import CityscapesEvaluator, evaluate_cityscapes
from tusimple_duc.evaluation.confusion import ConfusionAccumulator, confusion_matrix
from tusimple_duc.evaluation.kitti import KittiRoadEvaluator, evaluate_kitti_road
from tusimple_duc.evaluation.report import EvaluationResult, ScoreTable, format_tables, write_metrics_json
from tusimple_duc.evaluation.voc import VocEvaluator, evaluate_voc

__all__ = [
    "CityscapesEvaluator", "ConfusionAccumulator", "EvaluationResult", "KittiRoadEvaluator",
    "ScoreTable", "VocEvaluator", "confusion_matrix", "evaluate_cityscapes",
    "evaluate_kitti_road", "evaluate_voc", "format_tables", "write_metrics_json",
]
