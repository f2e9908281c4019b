"""KITTI road: road vs. not road, ``gt_image_2`` colour ground truth, the devkit's perspective-space protocol.

| piece | what |
| --- | --- |
| lists | ``training/image_2`` + ``training/gt_image_2``: sliding patches and whole images |
| labels | ``*_road_*.png`` colours -> 1 road, 0 not road, 255 don't care |
| ``score/`` | road probability ``round(p * 255)`` (the devkit's 8-bit format) |
| metric | MaxF, AP per category (um, umm, uu) and overall |
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any, ClassVar, List, Optional

import numpy as np

from tusimple_duc.data.datasets import Lists, Pair, patch_entries, require_dir, whole_image_entries
from tusimple_duc.data.labels import KITTI_CLASS_NAMES, KITTI_PALETTE, KITTI_ROAD_CATEGORIES
from tusimple_duc.data.lists import sliding_patch_centres
from tusimple_duc.data.readers import read_kitti_road_gt
from tusimple_duc.datasets.base import DatasetSpec
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.evaluation.kitti import ALL_CATEGORIES, KittiRoadEvaluator, evaluate_kitti_road
from tusimple_duc.evaluation.report import EvaluationResult


def kitti_road_pairs(root: str) -> List[Pair]:
    """``(training/image_2/C_N.png, training/gt_image_2/C_road_N.png)`` for C in um, umm, uu."""
    image_dir = os.path.join(root, "training", "image_2")
    require_dir(image_dir, "KITTI road training images")
    require_dir(os.path.join(root, "training", "gt_image_2"), "KITTI road ground truth")
    pairs = []
    for path in sorted(glob.glob(os.path.join(image_dir, "*.png"))):
        name = os.path.basename(path)
        category, _, number = name.rpartition("_")
        if category not in KITTI_ROAD_CATEGORIES:
            raise DataError(f"{path}: not a KITTI road image name (um_/umm_/uu_<number>.png)")
        pairs.append((f"training/image_2/{name}", f"training/gt_image_2/{category}_road_{number}"))
    if not pairs:
        raise DataError(f"{image_dir}: no .png images")
    return pairs


def kitti_road_lists(root: str, patch: int = 320, stride: int = 100) -> Lists:
    """KITTI road lists: ``train_patches`` (``patch``-px patches every ``stride`` px) and ``train``."""
    pairs = kitti_road_pairs(root)
    return {
        "train_patches": patch_entries(root, pairs, lambda h, w: sliding_patch_centres(h, w, patch, stride)),
        "train": whole_image_entries(pairs),
    }


def kitti_category(path: str) -> str:
    """``um``, ``umm`` or ``uu`` from a KITTI road file name; ``"all"`` for any other name."""
    name = os.path.basename(path)
    return next((c for c in KITTI_ROAD_CATEGORIES if name.startswith(c + "_")), ALL_CATEGORIES)


@dataclass(frozen=True, eq=False)
class KittiRoadDataset(DatasetSpec):
    """The KITTI road benchmark (training split with ground truth), scored as the road devkit does."""

    scores_probabilities: ClassVar[bool] = True

    def lists(self, root: str, **options: Any) -> Lists:
        """:func:`kitti_road_lists` (options ``patch``, ``stride``)."""
        return kitti_road_lists(root, **options)

    def new_evaluator(self) -> KittiRoadEvaluator:
        return KittiRoadEvaluator()

    def evaluate_folder(self, result_dir: str, gt_root: str, split: Optional[str] = None,
                        show_progress: bool = False, subset: bool = False,
                        workers: Optional[int] = None) -> EvaluationResult:
        return evaluate_kitti_road(result_dir, gt_root, split or self.default_split, show_progress, subset, workers)

    def encode_score(self, labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Road probability (H, W) as ``round(p * 255)`` uint8."""
        return np.rint(probabilities[1] * 255).astype(np.uint8)

    def add_prediction(self, evaluator: KittiRoadEvaluator, labels: np.ndarray, probabilities: np.ndarray,
                       gt_path: str, source: str) -> None:
        """Add the road probabilities under the category of the ground-truth file name."""
        evaluator.add(probabilities[1], read_kitti_road_gt(gt_path), category=kitti_category(gt_path),
                      source=source)

    def check_num_classes(self, num_classes: int) -> None:
        if num_classes != self.num_classes:
            raise ConfigError(f"[data] dataset={self.name} needs a 2-class network (not road, road), got {num_classes}")


KITTI_ROAD = KittiRoadDataset("kitti", tuple(KITTI_CLASS_NAMES), KITTI_PALETTE, None)
