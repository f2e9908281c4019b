"""``SegmentationNet``: backbone + head, plus prediction and parameter-count helpers.

:func:`class_probabilities` is THE network call of prediction (the inference predictor's
``forward_probabilities`` runs it on each device).
"""
from __future__ import annotations

from typing import Any, Optional

import mxnet as mx
from mxnet.gluon import HybridBlock

from tusimple_duc.models.heads import SegmentationHead
from tusimple_duc.models.resnet import ResNetBackbone

AUX_SUFFIXES = ("running_mean", "running_var")


class SegmentationNet(HybridBlock):
    """Backbone + head: ``(N, 3, H, W) -> (N, L, H/s, W/s)`` class scores (logits).

    ``x`` is float32 mean-subtracted RGB with H and W multiples of the output stride ``d``;
    ``s = prediction_stride`` (DUC: the cell width c; bilinear baseline: d; deconv: 1).

    Attributes
    ----------
    backbone : :class:`~tusimple_duc.models.resnet.ResNetBackbone`
    head : :class:`~tusimple_duc.models.heads.SegmentationHead` (the "new layers":
        ``net.head.collect_params()`` to initialise them separately)
    num_classes, prediction_stride, output_stride : int
    spec : the :class:`~tusimple_duc.models.presets.ModelSpec` it was built from (or None)
    """

    def __init__(self, backbone: ResNetBackbone, head: SegmentationHead,
                 spec: Optional[Any] = None) -> None:
        super().__init__(prefix="")
        self.backbone = backbone
        self.head = head
        self.spec = spec
        self.num_classes: int = head.num_classes
        self.output_stride: int = backbone.output_stride
        self.prediction_stride: int = head.prediction_stride

    def hybrid_forward(self, F, x):
        return self.head(self.backbone(x))

    def head_scores(self, x: mx.nd.NDArray) -> mx.nd.NDArray:
        """The head's raw output; DUC: ``(N, L*r*r, H/d, W/d)``."""
        return self.head.raw_scores(self.backbone(x))

    def predict(self, x: mx.nd.NDArray) -> mx.nd.NDArray:
        """Full-resolution class probabilities ``(N, L, H, W)``: softmax over classes, then a
        bilinear resize of the probabilities (half-pixel centres) when ``s > 1``."""
        return predict_probabilities(self, x)


def class_probabilities(net: HybridBlock, x: mx.nd.NDArray) -> mx.nd.NDArray:
    """``softmax(net(x))`` over the classes: ``x`` (N, 3, H, W) network input -> (N, L, H/s, W/s)
    probabilities at the prediction resolution, on ``x``'s context.

    ``net`` is any block returning class scores ``(N, L, H/s, W/s)``.
    """
    return mx.nd.softmax(net(x), axis=1)


def predict_probabilities(net: HybridBlock, x: mx.nd.NDArray) -> mx.nd.NDArray:
    """:func:`class_probabilities` resized to ``x``'s height and width: ``(N, L, H, W)``.

    ``net`` is any block with a ``prediction_stride`` attribute returning ``(N, L, H/s, W/s)``.
    """
    prob = class_probabilities(net, x)
    height, width = x.shape[2], x.shape[3]
    if prob.shape[2:] != (height, width):
        prob = mx.nd.contrib.BilinearResize2D(prob, height=height, width=width,
                                              align_corners=False)
    return prob


def count_parameters(block: HybridBlock, include_aux: bool = False) -> int:
    """Number of scalars in ``block``'s parameters; BatchNorm running statistics (the
    checkpoint's ``aux`` arrays) only if ``include_aux``. Shapes must be known."""
    total = 0
    for name, param in block.collect_params().items():
        if include_aux or not name.endswith(AUX_SUFFIXES):
            size = 1
            for dim in param.shape:
                size *= dim
            total += size
    return total
