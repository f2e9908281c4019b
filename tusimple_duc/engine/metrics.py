"""Training metrics: this project's running values and the released solver's, side by side.

Running values over a window (reset by :meth:`SegmentationMetrics.reset`, e.g. every
``log_interval`` batches), from :class:`tusimple_duc.evaluation.confusion.ConfusionAccumulator`
over the predictions (argmax of the scores, at the prediction stride ``s``) and the training
labels at the same resolution, 255 ignored:

* ``loss``: summed cross-entropy / non-ignored pixels of the window;
* ``pixel_acc``: correct / non-ignored pixels;
* ``mean_iou``: per-class ``TP / (TP + FP + FN)`` averaged over the classes that occur in the
  ground truth or the predictions of the window.

The released solver's metrics (``tusimple_duc/core/metrics.py`` of the original), computed
as it did over everything since the object was created (the run creates one per epoch:
``Module.fit`` resets its metrics at every epoch start and its ``Speedometer`` never does),
logged under the original's names so that logs can be compared:

* ``accuracy`` (``eval_metric = acc``: MXNet's ``Accuracy``, which the released solver
  created by name): pixels whose label equals the predicted class / ALL pixels, the ignored
  ones included (a label 255 never equals a class);
* ``acc_ignore`` (``AccWithIgnoreMetric``): correct / non-ignored pixels;
* ``IoU`` (``IoUMetric``): ``(1 / L) * sum over ALL L classes of TP_c / (TP_c + FP_c + FN_c + 1e-6)``
  with counts accumulated since the start (non-ignored pixels only): a class absent from
  both ground truth and predictions counts as 0;
* ``SoftmaxLoss``: ``sum -log(p_label + 1e-6) / count`` over the pixels whose label is a class
  ``0 .. L-1``, ``p`` the softmax probabilities (the output of ``SoftmaxOutput``).

Neither is the official full-resolution Cityscapes metric (use ``test.py``). Each worker
measures its own shard; the chief logs its values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.errors import ConfigError
from tusimple_duc.evaluation.confusion import ConfusionAccumulator

#: The released ``eval_metric`` names: the keys of this project's values each selects, and
#: the name the released metric is logged under (``acc`` is MXNet's ``Accuracy``, 'accuracy').
METRIC_KEYS = {"acc": ((), "accuracy"), "acc_ignore": (("pixel_acc",), "acc_ignore"),
               "IoU": (("mean_iou",), "IoU")}
#: The released metrics' epsilon (IoU denominator, SoftmaxLoss log argument).
RELEASED_EPS = 1e-6
#: What each logged key is (the training log states it once; tools/plot_log.py names what it draws).
METRIC_MEANINGS = {
    "loss": "this project's cross-entropy per non-ignored pixel, batches since the previous line",
    "pixel_acc": "this project's pixel accuracy, batches since the previous line",
    "mean_iou": "this project's mean IoU over the classes present (ground truth or prediction), "
                "batches since the previous line",
    "accuracy": "the original's 'acc' (MXNet's Accuracy: ignored pixels count in the denominator), the epoch so far",
    "acc_ignore": "the original's AccWithIgnoreMetric, the epoch so far",
    "IoU": "the original's IoUMetric: mean over ALL classes (an absent class counts 0), the epoch so far",
    "SoftmaxLoss": "the original's SoftmaxLoss, the epoch so far",
}


def metric_legend(keys: Sequence[str]) -> str:
    """One line naming what each of ``keys`` is (:data:`METRIC_MEANINGS`)."""
    return "metrics: " + "; ".join(f"{key} = {METRIC_MEANINGS[key]}" for key in keys)


def reported_keys(eval_metric: Sequence[str], source: str = "<config>") -> Tuple[str, ...]:
    """Keys logged for ``[model] eval_metric``: ``loss`` (always), this project's values of
    the selected metrics, the released metrics of the same names, and ``SoftmaxLoss``
    (always, as the released solver); unknown names raise :class:`ConfigError`."""
    unknown = [name for name in eval_metric if name not in METRIC_KEYS]
    if unknown:
        raise ConfigError(f"{source}: [model] eval_metric: unknown metric {unknown[0]!r} "
                          f"(known: {', '.join(METRIC_KEYS)})")
    ours = tuple(key for name in eval_metric for key in METRIC_KEYS[name][0])
    return ("loss",) + ours + tuple(METRIC_KEYS[name][1] for name in eval_metric) + ("SoftmaxLoss",)


@dataclass
class _Counts:
    """Accumulated counts of some batches."""

    confusion: ConfusionAccumulator
    loss_sum: float = 0.0
    valid_pixels: float = 0.0
    released_loss_sum: float = 0.0
    released_loss_pixels: float = 0.0
    label_matches: float = 0.0
    all_pixels: float = 0.0

    def add(self, other: "_Counts") -> None:
        self.confusion.merge(other.confusion)
        self.loss_sum += other.loss_sum
        self.valid_pixels += other.valid_pixels
        self.released_loss_sum += other.released_loss_sum
        self.released_loss_pixels += other.released_loss_pixels
        self.label_matches += other.label_matches
        self.all_pixels += other.all_pixels


def released_softmax_loss(scores: mx.nd.NDArray, label: np.ndarray, num_classes: int) -> Tuple[float, float]:
    """The released ``SoftmaxLoss`` numerator and count of one device's batch.

    Parameters
    ----------
    scores : (n, L, h, w) class scores (logits)
    label : (n, h, w) labels; pixels whose label is not a class ``0 .. L-1`` are skipped

    Returns
    -------
    (sum of -log(p_label + 1e-6) in float64, number of counted pixels)
    """
    counted = (label >= 0) & (label < num_classes) & (label == np.round(label))
    safe = mx.nd.array(np.where(counted, label, 0), ctx=scores.context)
    picked = mx.nd.pick(mx.nd.softmax(scores, axis=1), safe, axis=1).asnumpy().astype(np.float64)
    return float(-np.log(picked[counted] + RELEASED_EPS).sum()), float(counted.sum())


class SegmentationMetrics:
    """Window values (since :meth:`reset`) and the released metrics (since creation).

    Parameters
    ----------
    num_classes : L
    ignore_label : ground-truth value skipped by every metric (255)
    """

    def __init__(self, num_classes: int, ignore_label: int) -> None:
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.since_start = self._empty()
        self.reset()

    def _empty(self) -> _Counts:
        return _Counts(ConfusionAccumulator(self.num_classes, self.ignore_label))

    def reset(self) -> None:
        """Forget the window (the released metrics keep counting)."""
        self.window = self._empty()

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
        batch = self._empty()
        for score, label in zip(scores, labels):
            prediction = mx.nd.argmax(score, axis=1).asnumpy().astype(np.int64)
            batch.confusion.add(prediction, label.astype(np.int64))
            batch.label_matches += float((prediction == label.astype(np.int64)).sum())
            batch.all_pixels += float(label.size)
            released_sum, released_pixels = released_softmax_loss(score, label, self.num_classes)
            batch.released_loss_sum += released_sum
            batch.released_loss_pixels += released_pixels
        batch.loss_sum, batch.valid_pixels = float(loss_sum), float(valid_pixels)
        self.window.add(batch)
        self.since_start.add(batch)

    def absorb(self, other: "SegmentationMetrics") -> None:
        """Add ``other``'s window to this object's window and released metrics."""
        self.window.add(other.window)
        self.since_start.add(other.window)

    def values(self, keys: Sequence[str] = ("loss", "pixel_acc", "mean_iou")) -> Dict[str, float]:
        """The selected values among ``loss``, ``pixel_acc``, ``mean_iou`` (window) and
        ``accuracy``, ``acc_ignore``, ``IoU``, ``SoftmaxLoss`` (released, since creation); NaN
        when empty."""
        window, start = self.window, self.since_start
        every = {"loss": _ratio(window.loss_sum, window.valid_pixels),
                 "pixel_acc": window.confusion.pixel_accuracy(),
                 "mean_iou": window.confusion.mean_iou()}
        tp, fp, fn = start.confusion.counts()
        every["accuracy"] = _ratio(start.label_matches, start.all_pixels)
        every["acc_ignore"] = _ratio(float(tp.sum()), float(tp.sum() + fn.sum()))
        every["IoU"] = float(np.mean(tp / (tp + fp + fn + RELEASED_EPS)))
        every["SoftmaxLoss"] = _ratio(start.released_loss_sum, start.released_loss_pixels)
        return {key: every[key] for key in keys}

    def per_class_iou(self) -> list:
        """IoU of every class in the window (NaN for classes neither present nor predicted)."""
        return [float(v) for v in self.window.confusion.iou()]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")
