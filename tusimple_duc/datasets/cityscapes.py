"""Cityscapes: 19 evaluated classes (trainIds), labelIds ground truth, the official pixel-level protocol.

| piece | what |
| --- | --- |
| lists | ``leftImg8bit/`` + ``gtFine/`` (+ ``gtCoarse/``): whole images, 7-fold, 12-fold |
| labels | ``*_gtFine_labelIds.png``, ids 0..33 -> trainIds by the official table |
| ``score/`` | labelIds PNG (trainIds mapped back by the official table) |
| metric | IoU, iIoU (with ``*_gtFine_instanceIds.png``), category scores (= cityscapesscripts) |
"""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy as np

from tusimple_duc.data.datasets import Lists, Pair, patch_entries, require_dir, whole_image_entries
from tusimple_duc.data.labels import (CITYSCAPES_CLASS_NAMES, CITYSCAPES_TRAINID_PALETTE, CITYSCAPES_TRAINID_TO_ID,
                                     cityscapes_train_ids_to_ids)
from tusimple_duc.data.lists import seven_fold_centres, twelve_fold_centres
from tusimple_duc.data.png import read_png
from tusimple_duc.datasets.base import DatasetSpec
from tusimple_duc.errors import DataError, EvaluationError
from tusimple_duc.evaluation.cityscapes import CityscapesEvaluator, evaluate_cityscapes, instance_path
from tusimple_duc.evaluation.report import EvaluationResult

log = logging.getLogger(__name__)


def cityscapes_pairs(root: str, split: str, annotation: str = "gtFine") -> List[Pair]:
    """``(leftImg8bit/split/city/X_leftImg8bit.png, annotation/split/city/X_<annotation>_labelIds.png)``."""
    image_dir = os.path.join(root, "leftImg8bit", split)
    require_dir(image_dir, f"Cityscapes {split} images")
    require_dir(os.path.join(root, annotation, split), f"Cityscapes {split} {annotation} labels")
    pairs = []
    suffix = "_leftImg8bit.png"
    for path in sorted(glob.glob(os.path.join(image_dir, "*", "*" + suffix))):
        city = os.path.basename(os.path.dirname(path))
        stem = os.path.basename(path)[: -len(suffix)]
        pairs.append((f"leftImg8bit/{split}/{city}/{stem}{suffix}",
                      f"{annotation}/{split}/{city}/{stem}_{annotation}_labelIds.png"))
    if not pairs:
        raise DataError(f"{image_dir}: no *{suffix} images")
    return pairs


def cityscapes_lists(root: str, coarse: bool = False, patch: int = 800) -> Lists:
    """Cityscapes lists of the splits present under ``leftImg8bit/``: ``train_7fold``, ``train_12fold``,
    ``train``; ``val``, ``val_7fold``; ``test``; with ``coarse`` also ``train_extra_7fold``,
    ``train_extra_12fold``, ``train_extra`` (``gtCoarse``).

    Parameters
    ----------
    root : the dataset folder holding ``leftImg8bit/``, ``gtFine/`` (and ``gtCoarse/``).
    coarse : add the train_extra lists.
    patch : 12-fold patch size, pixels.
    """
    require_dir(os.path.join(root, "leftImg8bit"), "not a Cityscapes root")

    def twelve(height: int, width: int) -> List[Tuple[int, int]]:
        return twelve_fold_centres(height, width, patch)

    splits = [(split, "gtFine") for split in ("train", "val", "test")
              if os.path.isdir(os.path.join(root, "leftImg8bit", split))]
    if not splits:
        raise DataError(f"{os.path.join(root, 'leftImg8bit')}: no train, val or test folder")
    if coarse:
        splits.append(("train_extra", "gtCoarse"))
    lists: Lists = {}
    for split, annotation in splits:
        pairs = cityscapes_pairs(root, split, annotation)
        lists[split] = whole_image_entries(pairs)
        if split != "test":
            lists[f"{split}_7fold"] = patch_entries(root, pairs, seven_fold_centres)
        if split in ("train", "train_extra"):
            lists[f"{split}_12fold"] = patch_entries(root, pairs, twelve)
    return lists


@dataclass(frozen=True, eq=False)
class CityscapesDataset(DatasetSpec):
    """Cityscapes fine (and coarse) annotations, scored as ``cityscapesscripts`` does."""

    def lists(self, root: str, **options: Any) -> Lists:
        """:func:`cityscapes_lists` (options ``coarse``, ``patch``)."""
        return cityscapes_lists(root, **options)

    def new_evaluator(self) -> CityscapesEvaluator:
        return CityscapesEvaluator()

    def evaluate_folder(self, result_dir: str, gt_root: str, split: Optional[str] = None,
                        show_progress: bool = False, subset: bool = False,
                        workers: Optional[int] = None) -> EvaluationResult:
        return evaluate_cityscapes(result_dir, gt_root, split or self.default_split, show_progress, subset, workers)

    @property
    def label_ids(self) -> Tuple[int, ...]:
        """The official labelId of each trainId 0..18."""
        return tuple(int(v) for v in CITYSCAPES_TRAINID_TO_ID[:self.num_classes])

    def encode_score(self, labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """labelIds (H, W) uint8 of the predicted trainIds."""
        return cityscapes_train_ids_to_ids(labels)

    def add_prediction(self, evaluator: CityscapesEvaluator, labels: np.ndarray, probabilities: np.ndarray,
                       gt_path: str, source: str) -> None:
        """Score against ``gt_path``; iIoU only while every ground truth has its instanceIds file
        (``*_gtFine_instanceIds.png`` next to a ``*_gtFine_labelIds.png``): the first one without
        stops iIoU for the whole run, said once."""
        gt = read_png(gt_path, ("L",), "ground-truth labelIds", error=EvaluationError)
        inst_path = instance_path(gt_path)
        instances = None
        if inst_path is not None and os.path.isfile(inst_path) and evaluator.with_instances is not False:
            instances = read_png(inst_path, ("I;16", "I"), "ground-truth instanceIds",
                                 error=EvaluationError)
        elif evaluator.with_instances is not False:
            reason = (f"no {inst_path}" if inst_path is not None
                      else "its name does not end in _gtFine_labelIds.png, so no instanceIds file goes with it")
            log.warning("%s: %s; iIoU is not computed", gt_path, reason)
            evaluator.discard_instances()
        evaluator.add(self.encode_score(labels, probabilities), gt, instances, source=source)


CITYSCAPES = CityscapesDataset("cityscapes", tuple(CITYSCAPES_CLASS_NAMES), CITYSCAPES_TRAINID_PALETTE, "val")
