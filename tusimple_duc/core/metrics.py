"""The original's training metrics (``acc_ignore``, ``IoU``, ``SoftmaxLoss``) as ``mx.metric.EvalMetric`` s.

Inputs are those of the original ``Module.fit``: ``labels`` a list of (N, K) label arrays
(the released flattened DUC layout, ``ignore_label`` = ignored) and ``preds`` a list of
(N, L, K) ``SoftmaxOutput`` probabilities (or (N, L, H, W) maps with (N, H, W) labels).
Predictions are the argmax over the class axis 1. (The original called
``mx.nd.argmax_channel``, which reduces the *last* axis in MXNet and so cannot match a
(N, K) label for (N, L, K) outputs.) Pixel counts come from
:class:`tusimple_duc.evaluation.confusion.ConfusionAccumulator`.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import mxnet as mx
import numpy as np
from mxnet.metric import EvalMetric

from tusimple_duc.evaluation.confusion import ConfusionAccumulator

log = logging.getLogger(__name__)

#: Added to the IoU denominators and to the probabilities under the log, as the original.
EPS = 1e-6


class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns ``(names, values)``."""

    def __init__(self, **kwargs) -> None:
        super().__init__("composite")
        self.metrics: List[EvalMetric] = list(kwargs.get("metrics", []))

    def add(self, metric: EvalMetric) -> None:
        """Append a metric."""
        self.metrics.append(metric)

    def get_metric(self, index: int):
        """The metric at ``index`` (a ``ValueError`` instance, returned, when out of range: as the original)."""
        try:
            return self.metrics[index]
        except IndexError:
            return ValueError(f"Metric index {index} is out of range 0 and {len(self.metrics)}")

    def update(self, labels, preds) -> None:
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self) -> None:
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def get(self) -> Tuple[List[str], List[float]]:
        results = [metric.get() for metric in self.metrics]
        return [name for name, _ in results], [value for _, value in results]

    def print_log(self) -> None:
        """Log ``name: value; ...`` at INFO level."""
        names, results = self.get()
        log.info("; ".join(f"{name}: {value}" for name, value in zip(names, results)))


def check_label_shapes(labels, preds, shape: int = 0) -> None:
    """Raise ``ValueError`` unless the lengths (``shape=0``) or shapes of labels and preds agree."""
    label_shape, pred_shape = (len(labels), len(preds)) if shape == 0 else (labels.shape, preds.shape)
    if label_shape != pred_shape:
        raise ValueError(f"Shape of labels {label_shape} does not match shape of predictions {pred_shape}")


def predicted_labels(label: mx.nd.NDArray, pred: mx.nd.NDArray) -> Tuple[np.ndarray, np.ndarray]:
    """``(argmax over axis 1 of pred, label)`` as int64 arrays of the label's shape."""
    predicted = mx.nd.argmax(pred, axis=1).asnumpy().astype(np.int64)
    truth = label.asnumpy().astype(np.int64)
    check_label_shapes(truth, predicted, shape=1)
    return predicted, truth


class _ConfusionMetric(EvalMetric):
    """A running confusion matrix over non-ignored pixels."""

    def __init__(self, name: str, ignore_label: int, label_num: int) -> None:
        self._ignore_label = ignore_label
        self._label_num = label_num
        self.confusion: Optional[ConfusionAccumulator] = None
        super().__init__(name=name)

    def reset(self) -> None:
        super().reset()
        self.confusion = ConfusionAccumulator(self._label_num, self._ignore_label)

    def update(self, labels, preds) -> None:
        check_label_shapes(labels, preds)
        for label, pred in zip(labels, preds):
            predicted, truth = predicted_labels(label, pred)
            self.confusion.add(predicted, truth)
        self.sum_metric, self.num_inst = self._ratio()

    def _ratio(self) -> Tuple[float, float]:
        raise NotImplementedError


class AccWithIgnoreMetric(_ConfusionMetric):
    """Pixel accuracy over the pixels whose label is not ``ignore_label``.

    Parameters
    ----------
    ignore_label : label value skipped.
    name : metric name.
    label_num : classes counted (labels >= ``label_num`` other than ``ignore_label`` count
        as wrong); the original had no such argument, the default covers any uint8 label.
    """

    def __init__(self, ignore_label: int, name: str = "AccWithIgnore", label_num: int = 256) -> None:
        super().__init__(name, ignore_label, label_num)

    def _ratio(self) -> Tuple[float, float]:
        matrix = self.confusion.matrix
        return float(np.trace(matrix)), float(matrix.sum())


class IoUMetric(_ConfusionMetric):
    """Running mean IoU over ALL ``label_num`` classes (absent classes count 0), as the original.

    Class l: ``TP / (|pred = l or gt = l| - |pred = l and gt ignored| + 1e-6)``, counts summed
    since the last reset.
    """

    def __init__(self, ignore_label: int, label_num: int, name: str = "IoU") -> None:
        super().__init__(name, ignore_label, label_num)

    def _ratio(self) -> Tuple[float, float]:
        tp, fp, fn = self.confusion.counts()
        return float(np.mean(tp / (tp + fp + fn + EPS))), 1.0


class SoftmaxLoss(EvalMetric):
    """Mean of ``-log(p_label + 1e-6)`` over the pixels whose label is a class ``0..label_num-1``."""

    def __init__(self, ignore_label: int, label_num: int, name: str = "OverallSoftmaxLoss") -> None:
        super().__init__(name=name)
        self._ignore_label = ignore_label
        self._label_num = label_num

    def update(self, labels, preds) -> None:
        check_label_shapes(labels, preds)
        for label, pred in zip(labels, preds):
            probabilities = pred.asnumpy()
            probabilities = probabilities.reshape(probabilities.shape[:2] + (-1,))
            truth = label.asnumpy().astype(np.int64).reshape(probabilities.shape[0], -1)
            valid = (truth >= 0) & (truth < self._label_num)
            batch, pixel = np.nonzero(valid)
            picked = probabilities[batch, truth[batch, pixel], pixel]
            self.sum_metric += float(-np.log(picked + EPS).sum())
            self.num_inst += int(picked.size)
