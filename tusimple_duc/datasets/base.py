"""What every dataset object provides: :class:`DatasetSpec`.

One frozen object per dataset (``cityscapes.CITYSCAPES``, ``kitti_road.KITTI_ROAD``,
``voc.VOC``) holds its facts (name, class names, palette, ignore label, label format) and its
behaviour (list builder, evaluator, the ``score/`` file of test.py and how a prediction is
scored against a ground-truth file). Everything that used to switch on the dataset name asks
this object instead; adding a dataset is one module with one subclass and one registry line
in ``tusimple_duc/datasets/__init__.py``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Tuple

import numpy as np

from tusimple_duc.data.datasets import Lists
from tusimple_duc.data.labels import IGNORE_LABEL
from tusimple_duc.data.png import write_palette_png
from tusimple_duc.data.readers import LabelCodec
from tusimple_duc.evaluation.report import EvaluationResult
from tusimple_duc.io.atomic import atomic_write_image


@dataclass(frozen=True, eq=False)
class DatasetSpec(ABC):
    """A segmentation dataset: its facts and the operations that differ between datasets.

    Attributes
    ----------
    name : the ``[data] dataset`` value and the tools' ``--dataset`` / sub-command name.
    class_names : the training classes, in training-id order.
    palette : (256, 3) uint8 RGB colour of every training id (``color/`` images of test.py).
    default_split : ground-truth split the evaluator scores when none is given (None: the
        evaluator finds the ground-truth folder itself).
    score_palette : (256, 3) uint8 palette of ``score/`` PNGs written as palette images, or
        None for plain 8-bit PNGs.
    ignore_label : training id of void pixels.
    scores_probabilities : (class attribute) True when :meth:`encode_score` and
        :meth:`add_prediction` read the class probabilities, False when the labels are enough
        (test.py then does not keep the (L, H, W) map).
    """

    scores_probabilities: ClassVar[bool] = False

    name: str
    class_names: Tuple[str, ...]
    palette: np.ndarray
    default_split: Optional[str]
    score_palette: Optional[np.ndarray] = None
    ignore_label: int = IGNORE_LABEL

    @property
    def num_classes(self) -> int:
        """Number of training classes."""
        return len(self.class_names)

    @property
    def label_ids(self) -> Tuple[int, ...]:
        """The dataset's own id of each training class, in training-id order (default: the index)."""
        return tuple(range(self.num_classes))

    def label_codec(self, ignore_label: int = IGNORE_LABEL) -> LabelCodec:
        """How this dataset's label files decode to training ids (``[data] convert_label = True``)."""
        return LabelCodec(self.name, self.num_classes, ignore_label)

    @abstractmethod
    def lists(self, root: str, **options: Any) -> Lists:
        """The training and test lists of the dataset folder ``root`` (``tools/make_lists.py``)."""

    @abstractmethod
    def new_evaluator(self) -> Any:
        """A fresh accumulating evaluator of the official protocol (``add`` images, then ``result()``)."""

    @abstractmethod
    def evaluate_folder(self, result_dir: str, gt_root: str, split: Optional[str] = None,
                        show_progress: bool = False, subset: bool = False,
                        workers: Optional[int] = None) -> EvaluationResult:
        """Score the prediction files in ``result_dir`` against the ground truth under ``gt_root``.

        ``split`` defaults to :attr:`default_split`; every ground truth of the split needs a
        prediction unless ``subset`` (then only the predicted ones are scored). Files are read in
        ``workers`` processes (None: one per physical core); the scores do not depend on it.
        """

    @abstractmethod
    def encode_score(self, labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The (H, W) uint8 image of test.py's ``score/`` folder, in the dataset's submission format.

        ``labels`` (H, W) are the predicted training ids, ``probabilities`` (L, H, W) float32 the
        class probabilities.
        """

    @abstractmethod
    def add_prediction(self, evaluator: Any, labels: np.ndarray, probabilities: np.ndarray,
                       gt_path: str, source: str) -> None:
        """Score one prediction (as in :meth:`encode_score`) against the ground-truth file ``gt_path``.

        ``source`` names the prediction in error messages.
        """

    def check_num_classes(self, num_classes: int) -> None:
        """Raise ConfigError when a network of ``num_classes`` outputs cannot be scored on this dataset."""

    def write_score(self, path: str, labels: np.ndarray, probabilities: np.ndarray) -> None:
        """Write :meth:`encode_score` to ``path`` atomically (a palette PNG when :attr:`score_palette` is set)."""
        score = self.encode_score(labels, probabilities)
        if self.score_palette is not None:
            write_palette_png(path, score, self.score_palette)
        else:
            atomic_write_image(path, score)
