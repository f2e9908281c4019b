"""Per-dataset output formats and on-the-fly evaluation of test.py.

| dataset | ``score/`` PNG | palette | metric |
| --- | --- | --- | --- |
| cityscapes | labelIds (trainIds mapped back by the official table) | trainId colours | official pixel-level (IoU, iIoU) |
| kitti | road probability ``round(p * 255)`` (the devkit's 8-bit format) | road / not road | MaxF, AP (perspective) |
| voc | class-index palette PNG (the VOC submission format) | VOC colour map | 21-class mIoU |
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

import numpy as np
from PIL import Image

from tusimple_duc.data.labels import VOC_PALETTE, cityscapes_train_ids_to_ids
from tusimple_duc.data.readers import read_index_png, read_kitti_road_gt
from tusimple_duc.errors import ConfigError
from tusimple_duc.evaluation.cityscapes import CityscapesEvaluator, instance_path
from tusimple_duc.evaluation.files import read_png
from tusimple_duc.evaluation.kitti import KittiRoadEvaluator
from tusimple_duc.evaluation.voc import VocEvaluator
from tusimple_duc.inference.predictor import Prediction
from tusimple_duc.io.atomic import atomic_open, atomic_write_image

log = logging.getLogger(__name__)

KITTI_CATEGORIES = ("umm", "um", "uu")  # longest prefix first


def _write_palette_png(path: str, indices: np.ndarray) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(VOC_PALETTE.reshape(-1).tolist())
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG")


class DatasetOutputs:
    """How one dataset writes predictions and scores them against its ground truth."""

    def __init__(self, palette: str, evaluator, encode_score: Callable[[Prediction], np.ndarray],
                 add: Callable[["DatasetOutputs", Prediction, str, str], None],
                 palette_score: bool = False) -> None:
        self.palette = palette
        self.evaluator = evaluator
        self._encode_score = encode_score
        self._add = add
        self._palette_score = palette_score

    def write_score(self, path: str, prediction: Prediction) -> None:
        """``score/<name>.png`` in the dataset's submission format."""
        score = self._encode_score(prediction)
        if self._palette_score:
            _write_palette_png(path, score)
        else:
            atomic_write_image(path, score)

    def write_label_png(self, path: str, labels: np.ndarray) -> None:
        """A (H, W) uint8 training-id map as an 8-bit PNG."""
        atomic_write_image(path, labels.astype(np.uint8))

    @staticmethod
    def write_probabilities(path: str, probabilities: np.ndarray) -> None:
        """``(L, H, W)`` probabilities as float16 in an npz (key ``probabilities``)."""
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, probabilities=probabilities.astype(np.float16))

    def add_to_evaluator(self, prediction: Prediction, gt_path: str, source: str) -> None:
        """Score one prediction against the ground-truth file ``gt_path``."""
        self._add(self, prediction, gt_path, source)


def _add_cityscapes(outputs: DatasetOutputs, prediction: Prediction, gt_path: str, source: str) -> None:
    """Score against ``gt_path``; iIoU only while every ground truth has its instanceIds file
    (``*_gtFine_instanceIds.png`` next to a ``*_gtFine_labelIds.png``): the first one without
    stops iIoU for the whole run, said once."""
    gt = read_png(gt_path, ("L",), "ground-truth labelIds")
    evaluator = outputs.evaluator
    inst_path = instance_path(gt_path)
    instances = None
    if inst_path is not None and os.path.isfile(inst_path) and evaluator.with_instances is not False:
        instances = read_png(inst_path, ("I;16", "I"), "ground-truth instanceIds")
    elif evaluator.with_instances is not False:
        reason = (f"no {inst_path}" if inst_path is not None
                  else "its name does not end in _gtFine_labelIds.png, so no instanceIds file goes with it")
        log.warning("%s: %s; iIoU is not computed", gt_path, reason)
        evaluator.discard_instances()
    evaluator.add(cityscapes_train_ids_to_ids(prediction.labels), gt, instances, source=source)


def kitti_category(path: str) -> Optional[str]:
    """``um``, ``umm`` or ``uu`` from a KITTI road file name, None otherwise."""
    name = os.path.basename(path)
    return next((c for c in KITTI_CATEGORIES if name.startswith(c + "_")), None)


def _add_kitti(outputs: DatasetOutputs, prediction: Prediction, gt_path: str, source: str) -> None:
    gt = read_kitti_road_gt(gt_path)
    category = kitti_category(gt_path)
    road = prediction.probabilities[1]
    if category is None:
        outputs.evaluator.add(road, gt, source=source)
    else:
        outputs.evaluator.add(road, gt, category=category, source=source)


def _add_voc(outputs: DatasetOutputs, prediction: Prediction, gt_path: str, source: str) -> None:
    outputs.evaluator.add(prediction.labels, read_index_png(gt_path), source=source)


def outputs_for(dataset: str, num_classes: int) -> DatasetOutputs:
    """The :class:`DatasetOutputs` of ``dataset`` (``cityscapes``, ``kitti``, ``voc``)."""
    if dataset == "cityscapes":
        return DatasetOutputs("cityscapes", CityscapesEvaluator(),
                              lambda p: cityscapes_train_ids_to_ids(p.labels), _add_cityscapes)
    if dataset == "kitti":
        if num_classes != 2:
            raise ConfigError(f"[data] dataset=kitti needs a 2-class network (not road, road), got {num_classes}")
        return DatasetOutputs("kitti", KittiRoadEvaluator(),
                              lambda p: np.rint(p.probabilities[1] * 255).astype(np.uint8), _add_kitti)
    if dataset == "voc":
        return DatasetOutputs("voc", VocEvaluator(), lambda p: p.labels, _add_voc, palette_score=True)
    raise ConfigError(f"[data] dataset: unknown dataset {dataset!r}")
