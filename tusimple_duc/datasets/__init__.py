"""The datasets, one object each: :data:`DATASETS` by name, :func:`get_dataset`.

* :mod:`.base` - ``DatasetSpec``, what every dataset provides.
* :mod:`.cityscapes` - ``CITYSCAPES`` (``cityscapes_lists``).
* :mod:`.kitti_road` - ``KITTI_ROAD`` (``kitti_road_lists``).
* :mod:`.voc` - ``VOC`` (``voc_lists``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from tusimple_duc.data.datasets import Lists
from tusimple_duc.datasets.base import DatasetSpec
from tusimple_duc.datasets.cityscapes import CITYSCAPES
from tusimple_duc.datasets.kitti_road import KITTI_ROAD
from tusimple_duc.datasets.voc import VOC
from tusimple_duc.errors import ConfigError
from tusimple_duc.evaluation.report import EvaluationResult

#: Every dataset by its ``[data] dataset`` name.
DATASETS: Dict[str, DatasetSpec] = {dataset.name: dataset for dataset in (CITYSCAPES, KITTI_ROAD, VOC)}


def get_dataset(name: str, key: str = "[data] dataset") -> DatasetSpec:
    """The dataset called ``name``; an unknown name is a ConfigError naming ``key``."""
    if name not in DATASETS:
        raise ConfigError(f"{key}: unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_lists(name: str, root: str, **options: Any) -> Lists:
    """The lists of dataset ``name`` under ``root`` (:meth:`DatasetSpec.lists`)."""
    return get_dataset(name, "dataset").lists(root, **options)


def evaluate_folder(name: str, result_dir: str, gt_root: str, split: Optional[str] = None,
                    show_progress: bool = False, subset: bool = False,
                    workers: Optional[int] = None) -> EvaluationResult:
    """Score the predictions in ``result_dir`` with the protocol of dataset ``name``
    (:meth:`DatasetSpec.evaluate_folder`)."""
    return get_dataset(name, "--dataset").evaluate_folder(
        result_dir, gt_root, split, show_progress, subset, workers)


__all__ = ["DATASETS", "DatasetSpec", "dataset_lists", "evaluate_folder", "get_dataset"]
