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


def device_objective(total: mx.nd.NDArray, valid: mx.nd.NDArray) -> mx.nd.NDArray:
    """``total / max(valid, 1)``: one device's loss under ``normalization='valid'``.

    Parameters
    ----------
    total, valid : (1,) outputs of :func:`masked_cross_entropy_sum` on one device
    """
    return total / mx.nd.maximum(valid, 1.0)
