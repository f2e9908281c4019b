"""The outputs and the on-the-fly evaluation of one test.py run, for the dataset of its config.

What is written and how it is scored is told by the dataset object
(:mod:`tusimple_duc.datasets`); :class:`DatasetOutputs` binds it to one run's evaluator and
adds the files every dataset shares (training-id PNGs, probability npz).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tusimple_duc.datasets import DatasetSpec, get_dataset
from tusimple_duc.inference.predictor import Prediction
from tusimple_duc.io.atomic import atomic_open, atomic_write_image


class DatasetOutputs:
    """How one run writes predictions of ``dataset`` and scores them against its ground truth.

    Attributes
    ----------
    dataset : the dataset object.
    evaluator : the run's accumulating evaluator (``evaluator.result()`` at the end).
    palette : (256, 3) uint8 RGB colours of the training ids (``color/`` images).
    """

    def __init__(self, dataset: DatasetSpec) -> None:
        self.dataset = dataset
        self.evaluator: Any = dataset.new_evaluator()
        self.palette: np.ndarray = dataset.palette

    def write_score(self, path: str, prediction: Prediction) -> None:
        """``score/<name>.png`` in the dataset's submission format."""
        self.dataset.write_score(path, prediction.labels, prediction.probabilities)

    @staticmethod
    def write_label_png(path: str, labels: np.ndarray) -> None:
        """A (H, W) uint8 training-id map as an 8-bit PNG."""
        atomic_write_image(path, labels.astype(np.uint8))

    @staticmethod
    def write_probabilities(path: str, probabilities: np.ndarray) -> None:
        """``(L, H, W)`` probabilities as float16 in an npz (key ``probabilities``)."""
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, probabilities=probabilities.astype(np.float16))

    def add_to_evaluator(self, prediction: Prediction, gt_path: str, source: str) -> None:
        """Score one prediction against the ground-truth file ``gt_path``."""
        self.dataset.add_prediction(self.evaluator, prediction.labels, prediction.probabilities, gt_path, source)


def outputs_for(dataset: str, num_classes: int) -> DatasetOutputs:
    """The :class:`DatasetOutputs` of the dataset called ``dataset`` for a network of ``num_classes`` outputs."""
    chosen = get_dataset(dataset)
    chosen.check_num_classes(num_classes)
    return DatasetOutputs(chosen)
