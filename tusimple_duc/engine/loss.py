"""Pixel-wise softmax cross-entropy ignoring one label, normalised over the global batch.

The loss of one update is::

    loss = sum over all non-ignored pixels p of the global batch of -log softmax(scores_p)[label_p]
           / (number of non-ignored pixels of the global batch)

The global batch is every sample of every device of every worker in this update; each
device computes its share of the numerator and divides by the global count, so the
gradients summed by the kvstore are exactly those of one device holding the whole batch
(k devices == 1 device on the same global batch; the optimizer's ``rescale_grad`` is 1).

Relation to the released solver: it used ``SoftmaxOutput(normalization='valid')``, which
divides each *device's* gradient by that device's own count of non-ignored pixels, then
``rescale_grad = 1 / batch_size``. With ``k`` devices holding ``V_1 .. V_k`` valid pixels
its gradient is ``(1 / B) * sum_i grad(CE_i) / V_i``. When every device holds the same
number of valid pixels this is ``k / B`` times ours: identical for the released example
config (1 device, batch 1) and for the paper's bigger-patch setting (4 GPUs x 1 patch);
for ``B`` samples on one device the released gradient is ``1 / B`` of ours (multiply the
released ``lr`` by ``k / B`` to get its step size here).
"""
from __future__ import annotations

from typing import Tuple

import mxnet as mx


def masked_cross_entropy_sum(scores: mx.nd.NDArray, label: mx.nd.NDArray,
                             ignore_label: int) -> Tuple[mx.nd.NDArray, mx.nd.NDArray]:
    """Sum of per-pixel cross-entropy over non-ignored pixels.

    Parameters
    ----------
    scores : (N, L, h, w) float32 class scores (logits)
    label : (N, h, w) float32 class indices, ``ignore_label`` where ignored
    ignore_label : label value excluded from the loss (255)

    Returns
    -------
    total : (1,) sum of -log p(label) over non-ignored pixels (differentiable)
    valid : (1,) number of non-ignored pixels
    """
    if scores.shape[0] != label.shape[0] or scores.shape[2:] != label.shape[1:]:
        raise ValueError(f"scores {scores.shape} and label {label.shape} do not match: "
                         f"expected (N, L, h, w) and (N, h, w)")
    valid = label != ignore_label
    safe_label = mx.nd.where(valid, label, mx.nd.zeros_like(label))
    log_prob = mx.nd.log_softmax(scores, axis=1)
    nll = -mx.nd.pick(log_prob, safe_label, axis=1)
    return mx.nd.sum(nll * valid), mx.nd.sum(valid)
