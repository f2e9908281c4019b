"""Training metrics: the released ``acc_ignore``, ``IoU`` and ``SoftmaxLoss`` on one core.

Pixel accuracy and IoU come from :class:`tusimple_duc.evaluation.confusion.ConfusionAccumulator`
over the predictions (argmax of the scores, at the prediction stride ``s``) and the
training labels at the same resolution, 255 ignored:

* ``pixel_acc``: correct / non-ignored pixels (released ``AccWithIgnoreMetric``);
* ``mean_iou``: per-class ``TP / (TP + FP + FN)`` averaged over the classes that occur
  in the ground truth or the predictions of the window. The released ``IoUMetric``
  averaged over *all* L classes, counting absent ones as 0, so on small windows it is
  lower; neither is the official full-resolution Cityscapes metric (use ``test.py``);
* ``loss``: summed cross-entropy / non-ignored pixels (released ``SoftmaxLoss``).

Each worker measures its own shard; the chief logs its values.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.errors import ConfigError
from tusimple_duc.evaluation.confusion import ConfusionAccumulator

#: The released ``eval_metric`` names and the keys of the values they select.
METRIC_KEYS = {"acc_ignore": "pixel_acc", "IoU": "mean_iou"}


def reported_keys(eval_metric: Sequence[str], source: str = "<config>") -> Tuple[str, ...]:
    """Keys logged for ``[model] eval_metric``: ``loss`` (always, released ``SoftmaxLoss``)
    plus the selected metrics; unknown names raise :class:`ConfigError`."""
    unknown = [name for name in eval_metric if name not in METRIC_KEYS]
    if unknown:
        raise ConfigError(f"{source}: [model] eval_metric: unknown metric {unknown[0]!r} "
                          f"(known: {', '.join(METRIC_KEYS)})")
    return ("loss",) + tuple(METRIC_KEYS[name] for name in eval_metric)


class SegmentationMetrics:
    """Running loss, pixel accuracy and mIoU since the last :meth:`reset`.

    Parameters
    ----------
    num_classes : L
    ignore_label : ground-truth value skipped by every metric (255)
    """

    def __init__(self, num_classes: int, ignore_label: int) -> None:
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.confusion = ConfusionAccumulator(self.num_classes, self.ignore_label)
        self.loss_sum = 0.0
        self.valid_pixels = 0.0

    def update(self, scores: Sequence[mx.nd.NDArray], labels: Sequence[np.ndarray],
               loss_sum: float, valid_pixels: float) -> None:
        """Add one batch given per device.

        Parameters
        ----------
        scores : per-device class scores, each (n_i, L, h, w)
        labels : per-device labels, each (n_i, h, w), 255 = ignore
        loss_sum : summed cross-entropy of the batch's non-ignored pixels
        valid_pixels : number of non-ignored pixels of the batch
        """
        for score, label in zip(scores, labels):
            prediction = mx.nd.argmax(score, axis=1).asnumpy().astype(np.int64)
            self.confusion.add(prediction, label.astype(np.int64))
        self.loss_sum += float(loss_sum)
        self.valid_pixels += float(valid_pixels)

    def absorb(self, other: "SegmentationMetrics") -> None:
        """Add everything ``other`` accumulated."""
        self.confusion.merge(other.confusion)
        self.loss_sum += other.loss_sum
        self.valid_pixels += other.valid_pixels

    def values(self, keys: Sequence[str] = ("loss", "pixel_acc", "mean_iou")) -> Dict[str, float]:
        """The selected values among ``loss``, ``pixel_acc``, ``mean_iou`` (NaN when empty)."""
        loss = self.loss_sum / self.valid_pixels if self.valid_pixels else float("nan")
        every = {"loss": loss, "pixel_acc": self.confusion.pixel_accuracy(),
                 "mean_iou": self.confusion.mean_iou()}
        return {key: every[key] for key in keys}

    def per_class_iou(self) -> list:
        """IoU of every class (NaN for classes neither present nor predicted)."""
        return [float(v) for v in self.confusion.iou()]
