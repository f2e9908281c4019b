"""Pixel-wise softmax cross-entropy ignoring one label, normalised as the released solver.

The released graph ends in ``SoftmaxOutput(multi_output=True, use_ignore=True,
normalization='valid')`` under ``mx.mod.Module`` with ``rescale_grad = 1 / batch_size``.
For one update of a worker whose batch of ``B`` samples is split over devices
``d = 1 .. k`` (and, with ``dist_sync``, of workers ``w = 1 .. W`` each with its own
devices) the gradient the SGD step uses is::

    g = (1 / B) * sum over workers w, devices d of  grad( CE_wd / max(V_wd, 1) )

    CE_wd = sum over the non-ignored pixels p of device d of worker w of -log softmax(scores_p)[label_p]
    V_wd  = number of non-ignored pixels of that device (SoftmaxOutput's 'valid' count,
            clipped to 1 when the device holds no valid pixel)

``B`` is the per-worker ``[data] batch_size`` (the original passes ``rescale_grad`` itself,
so Module does not multiply it by the number of workers); the devices' gradients are summed
by the kvstore and the workers' by the parameter server. ``clip_gradient`` then clips ``g``
element-wise, and weight decay is added after clipping (MXNet's SGD).

:func:`device_objective` is the per-device scalar whose gradient is ``grad(CE_wd / max(V_wd, 1))``;
the trainer applies ``1 / B`` through the optimizer's ``rescale_grad``. The logged loss is the
mean cross-entropy per non-ignored pixel of the global batch, ``sum CE_wd / sum V_wd``.

Networks with several outputs (PSPNet's auxiliary head, DeepLab's multi-scale input
training) return a tuple of score maps ``(main, extra_1, ...)`` and carry ``loss_weights``
``(w_0, w_1, ...)``; a device's objective is then ``sum_i w_i * CE_i / max(V_i, 1)``, each
term normalised as above against the label map nearest-resized to that output's size
(:func:`resize_label_nearest`). The logged loss and the metrics use the main output.

Class weights (opt-in, not in the released solver): with ``class_weights`` ``(L,)`` every pixel's
cross-entropy is multiplied by the weight of its label before the sum; the normalisation stays
``max(V, 1)`` (pixels, not summed weights), so weights with mean 1 per training pixel
(:func:`log_frequency_class_weights`, :func:`median_frequency_class_weights`) keep the loss on
its unweighted scale.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np


def masked_cross_entropy_sum(scores: mx.nd.NDArray, label: mx.nd.NDArray, ignore_label: int,
                             class_weights: Optional[mx.nd.NDArray] = None) -> Tuple[mx.nd.NDArray, mx.nd.NDArray]:
    """Sum of per-pixel cross-entropy over non-ignored pixels.

    Parameters
    ----------
    scores : (N, L, h, w) float32 class scores (logits)
    label : (N, h, w) float32 class indices, ``ignore_label`` where ignored
    ignore_label : label value excluded from the loss (255)
    class_weights : optional (L,) float32 weight of each class, multiplying its pixels' cross-entropy

    Returns
    -------
    total : (1,) sum of -log p(label) over non-ignored pixels (differentiable)
    valid : (1,) number of non-ignored pixels
    """
    if scores.shape[0] != label.shape[0] or scores.shape[2:] != label.shape[1:]:
        raise ValueError(f"scores {scores.shape} and label {label.shape} do not match: "
                         f"expected (N, L, h, w) and (N, h, w)")
    if class_weights is not None and class_weights.shape != (scores.shape[1],):
        raise ValueError(f"class weights of shape {class_weights.shape} for {scores.shape[1]} classes: "
                         f"expected one weight per class")
    valid = label != ignore_label
    safe_label = mx.nd.where(valid, label, mx.nd.zeros_like(label))
    log_prob = mx.nd.log_softmax(scores, axis=1)
    nll = -mx.nd.pick(log_prob, safe_label, axis=1)
    if class_weights is not None:
        nll = nll * mx.nd.take(class_weights, safe_label)
    return mx.nd.sum(nll * valid), mx.nd.sum(valid)


def class_frequencies(labels: np.ndarray, num_classes: int, ignore_label: int) -> np.ndarray:
    """(L,) fraction of the non-ignored pixels of ``labels`` (integer maps of any shape) in each class.

    Raises ValueError for labels outside ``[0, L)`` or no valid pixel."""
    valid = labels[labels != ignore_label].astype(np.int64).ravel()
    if valid.size == 0:
        raise ValueError("no labelled pixel to count the class frequencies from")
    if valid.min() < 0 or valid.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}) or equal {ignore_label}; "
                         f"found {int(valid.min())} .. {int(valid.max())}")
    return np.bincount(valid, minlength=num_classes) / valid.size


def _mean_one_per_pixel(weights: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    return (weights / float((frequency * weights).sum())).astype(np.float32)


def median_frequency_class_weights(labels: np.ndarray, num_classes: int, ignore_label: int) -> np.ndarray:
    """SegNet's median frequency balancing ``median(p) / p_c`` (median over the classes present),
    scaled to mean 1 per non-ignored pixel of ``labels``; an absent class gets the largest weight.

    Returns (L,) float32 weights, ``sum_c p_c w_c = 1``; ValueError as :func:`class_frequencies`.
    """
    frequency = class_frequencies(labels, num_classes, ignore_label)
    present = frequency > 0
    weights = np.zeros(num_classes)
    weights[present] = np.median(frequency[present]) / frequency[present]
    weights[~present] = weights[present].max()
    return _mean_one_per_pixel(weights, frequency)


def log_frequency_class_weights(labels: np.ndarray, num_classes: int, ignore_label: int,
                                offset: float = 1.02) -> np.ndarray:
    """ENet's class weights ``1 / ln(offset + p_c)`` from the label frequencies ``p_c``, scaled
    to mean 1 per non-ignored pixel of ``labels``.

    Parameters
    ----------
    labels : integer label maps of any shape (e.g. (N, H, W) trainIds), ``ignore_label`` ignored
    num_classes : L; a class absent from ``labels`` gets the largest weight, ``1 / ln(offset)``
    offset : > 1; bounds the ratio of the largest to the smallest weight (1.02: at most about 50)

    Returns
    -------
    (L,) float32 weights, ``sum_c p_c w_c = 1``

    Raises ValueError for ``offset <= 1``, labels outside ``[0, L)`` or no valid pixel.
    """
    if offset <= 1.0:
        raise ValueError(f"offset {offset}: must be > 1 (the weights are 1 / ln(offset + p))")
    frequency = class_frequencies(labels, num_classes, ignore_label)
    return _mean_one_per_pixel(1.0 / np.log(offset + frequency), frequency)


def device_objective(total: mx.nd.NDArray, valid: mx.nd.NDArray) -> mx.nd.NDArray:
    """``total / max(valid, 1)``: one device's loss under ``normalization='valid'``.

    Parameters
    ----------
    total, valid : (1,) outputs of :func:`masked_cross_entropy_sum` on one device
    """
    return total / mx.nd.maximum(valid, 1.0)


ScoreMaps = Union[mx.nd.NDArray, Sequence[mx.nd.NDArray]]


def as_score_maps(outputs: ScoreMaps) -> Tuple[mx.nd.NDArray, ...]:
    """A network's output as a tuple of score maps ``(main, extra...)``, each (N, L, h_i, w_i)."""
    return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)


def loss_weights(net: object, count: int) -> Tuple[float, ...]:
    """The loss weight of each of a network's ``count`` outputs: ``net.loss_weights`` when the
    network has several outputs, ``(1.0,)`` for a single one.

    Raises ValueError when a multi-output network does not state one weight per output.
    """
    weights = tuple(float(w) for w in getattr(net, "loss_weights", (1.0,)))
    if len(weights) != count:
        raise ValueError(f"the network returns {count} score maps but states {len(weights)} loss "
                         f"weights {weights}")
    return weights


def resize_label_nearest(label: mx.nd.NDArray, height: int, width: int) -> mx.nd.NDArray:
    """Nearest-neighbour resize of a (N, h, w) label map to (N, height, width), corners aligned.

    Output row ``i`` reads input row ``floor(i * (h - 1) / (height - 1) + 0.5)`` (the first and
    last rows map onto each other; 0 when ``height == 1``), columns alike: the geometry of
    DeepLab's label shrinking for its ``8k + 1`` crops. Identity when the sizes agree.
    """
    rows, cols = label.shape[1], label.shape[2]
    if (rows, cols) == (height, width):
        return label

    def taps(size_in: int, size_out: int) -> mx.nd.NDArray:
        step = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        index = [int(i * step + 0.5) for i in range(size_out)]
        return mx.nd.array(index, ctx=label.context, dtype="int64")

    picked = mx.nd.take(label, taps(rows, height), axis=1)
    return mx.nd.take(picked, taps(cols, width), axis=2)


def weighted_device_objective(outputs: ScoreMaps, label: mx.nd.NDArray, weights: Sequence[float],
                              ignore_label: int, class_weights: Optional[mx.nd.NDArray] = None,
                              ) -> Tuple[mx.nd.NDArray, mx.nd.NDArray, mx.nd.NDArray]:
    """One device's objective over every output of a (possibly multi-output) network.

    Parameters
    ----------
    outputs : (N, L, h_i, w_i) score maps (or one), the first being the main output
    label : (N, h_0, w_0) class indices at the main output's size, ``ignore_label`` ignored
    weights : one loss weight per output (:func:`loss_weights`)
    class_weights : optional (L,) weight per class (:func:`masked_cross_entropy_sum`)

    Returns
    -------
    objective : (1,) ``sum_i w_i * CE_i / max(V_i, 1)`` (differentiable)
    total, valid : (1,) the main output's :func:`masked_cross_entropy_sum` (logging, metrics)
    """
    maps = as_score_maps(outputs)
    if len(maps) != len(weights):
        raise ValueError(f"{len(maps)} score maps but {len(weights)} loss weights")
    objective, main = None, None
    for scores, weight in zip(maps, weights):
        resized = resize_label_nearest(label, scores.shape[2], scores.shape[3])
        total, valid = masked_cross_entropy_sum(scores, resized, ignore_label, class_weights)
        if main is None:
            main = (total, valid)
        term = device_objective(total, valid) * weight
        objective = term if objective is None else objective + term
    return objective, main[0], main[1]
