"""PASCAL VOC 2012: 21 classes, palette-PNG ground truth with a 255 boundary band, class IoU.

| piece | what |
| --- | --- |
| lists | ``ImageSets/Segmentation`` (+ ``SegmentationClassAug``, SBD): train, val, trainval, train_aug |
| labels | palette or grayscale PNG of class indices 0..20, 255 boundary |
| ``score/`` | class-index palette PNG (the VOC submission format) |
| metric | 21-class mIoU |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from tusimple_duc.data.datasets import Lists, Pair, require_dir, whole_image_entries
from tusimple_duc.data.labels import VOC_CLASS_NAMES, VOC_PALETTE
from tusimple_duc.data.lists import numbered
from tusimple_duc.data.readers import read_index_png
from tusimple_duc.datasets.base import DatasetSpec
from tusimple_duc.errors import DataError
from tusimple_duc.evaluation.report import EvaluationResult
from tusimple_duc.evaluation.voc import VocEvaluator, evaluate_voc


def voc_folder(root: str) -> Tuple[str, str]:
    """``(absolute VOC2012 folder, its path relative to root)``: ``root`` or ``root/VOC2012``."""
    for relative in ("", "VOC2012"):
        folder = os.path.join(root, relative)
        if os.path.isdir(os.path.join(folder, "JPEGImages")):
            return folder, relative
    raise DataError(f"{root}: neither it nor {os.path.join(root, 'VOC2012')} has a JPEGImages folder")


def read_image_set(path: str) -> List[str]:
    """Image names of an image-set file: one name per line, or DeepLab's ``/JPEGImages/X.jpg /... `` lines."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.split() for line in handle if line.strip()]
    except OSError as exc:
        raise DataError(f"{path}: cannot read image set ({exc.strerror})") from None
    names = [os.path.splitext(os.path.basename(fields[0]))[0] for fields in lines]
    if not names:
        raise DataError(f"{path}: image set is empty")
    return names


def voc_lists(root: str) -> Lists:
    """VOC 2012 lists ``train``, ``val``, ``trainval`` (``SegmentationClass``) and, with
    ``SegmentationClassAug``, ``train_aug`` and ``trainval_aug`` (= train_aug + val).

    ``train_aug`` comes from ``ImageSets/Segmentation/train_aug.txt`` or
    ``ImageSets/SegmentationAug/train_aug.txt`` when present, else it is every
    ``SegmentationClassAug`` label not in ``val`` (10,582 images with the SBD labels).
    """
    folder, relative = voc_folder(root)
    prefix = f"{relative}/" if relative else ""
    sets_dir = os.path.join(folder, "ImageSets", "Segmentation")
    require_dir(sets_dir, "VOC segmentation image sets")

    def pairs(names: Sequence[str], label_folder: str) -> List[Pair]:
        found = []
        for name in names:
            image = f"{prefix}JPEGImages/{name}.jpg"
            label = f"{prefix}{label_folder}/{name}.png"
            for path in (image, label):
                if not os.path.isfile(os.path.join(root, path)):
                    raise DataError(f"{os.path.join(root, path)}: file of image-set name {name!r} not found")
            found.append((image, label))
        return found

    lists: Lists = {}
    for split in ("train", "val", "trainval"):
        lists[split] = whole_image_entries(pairs(read_image_set(os.path.join(sets_dir, f"{split}.txt")),
                                                 "SegmentationClass"))
    aug_dir = os.path.join(folder, "SegmentationClassAug")
    if os.path.isdir(aug_dir):
        train_aug = _train_aug_names(sets_dir, aug_dir, set(read_image_set(os.path.join(sets_dir, "val.txt"))))
        lists["train_aug"] = whole_image_entries(pairs(train_aug, "SegmentationClassAug"))
        lists["trainval_aug"] = numbered(lists["train_aug"] + lists["val"])
    return lists


#: Where distributions of the SBD-augmented set put their train_aug list, relative to ImageSets/.
TRAIN_AUG_LISTS = ("Segmentation/train_aug.txt", "SegmentationAug/train_aug.txt")


def _train_aug_names(sets_dir: str, aug_dir: str, val: set) -> List[str]:
    for relative in TRAIN_AUG_LISTS:
        listed = os.path.join(os.path.dirname(sets_dir), relative)
        if os.path.isfile(listed):
            return read_image_set(listed)
    names = sorted(os.path.splitext(name)[0] for name in os.listdir(aug_dir) if name.endswith(".png"))
    return [name for name in names if name not in val]


@dataclass(frozen=True, eq=False)
class VocDataset(DatasetSpec):
    """PASCAL VOC 2012 segmentation (with the SBD-augmented training set when present)."""

    def lists(self, root: str, **options: Any) -> Lists:
        """:func:`voc_lists` (no options)."""
        return voc_lists(root, **options)

    def new_evaluator(self) -> VocEvaluator:
        return VocEvaluator()

    def evaluate_folder(self, result_dir: str, gt_root: str, split: Optional[str] = None,
                        show_progress: bool = False, subset: bool = False,
                        workers: Optional[int] = None) -> EvaluationResult:
        return evaluate_voc(result_dir, gt_root, split or self.default_split, show_progress, subset, workers)

    def encode_score(self, labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The predicted class indices (H, W)."""
        return labels

    def add_prediction(self, evaluator: VocEvaluator, labels: np.ndarray, probabilities: np.ndarray,
                       gt_path: str, source: str) -> None:
        """Add the class indices against the ground-truth index PNG."""
        evaluator.add(labels, read_index_png(gt_path), source=source)


VOC = VocDataset("voc", tuple(VOC_CLASS_NAMES), VOC_PALETTE, "val", score_palette=VOC_PALETTE)
