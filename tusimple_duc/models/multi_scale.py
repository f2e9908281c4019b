"""DeepLab's multi-scale input training (v2 "MSC"): one network on several input scales.

:class:`MultiScaleInput` wraps a network ``net(x) -> (N, L, h, w)`` (prediction stride s) and
returns, for the training loss, ``(fused, scores_1, scores_2, ...)``:

* ``scores_k = net(resize(x, scale_k))``, the input resized bilinearly with corners aligned to
  ``floor((H - 1) * scale_k) + 1`` rows (and columns alike): DeepLab's ``Interp`` layer on the
  data, 321 -> 241 at 0.75 and -> 161 at 0.5 (scale 1 is the input itself);
* ``fused``: every ``scores_k`` resized bilinearly (corners aligned) to the size of the first
  scale's map, then the element-wise maximum (DeepLab's ``fc_fusion``, ``Eltwise MAX``).

The loss weights are all 1 (``loss_weights``): the engine sums the normalised cross-entropy of
every map against the label nearest-resized to its size (``engine.loss``). The parameters are the
wrapped network's (same names): checkpoints of the wrapper are checkpoints of ``net``, and
inference uses ``net`` alone. Training-time only: the forward reads the input's shape, so this is
a plain (not hybridizable) block around the hybridizable network.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import mxnet as mx
from mxnet.gluon import Block

#: DeepLab v2's training scales (the first one gives the fused map's size).
DEEPLAB_SCALES: Tuple[float, ...] = (1.0, 0.75, 0.5)


def scaled_side(side: int, scale: float) -> int:
    """``floor((side - 1) * scale) + 1``: a side resized with corners aligned (Caffe ``Interp``)."""
    return int((side - 1) * scale) + 1


class MultiScaleInput(Block):
    """``(N, 3, H, W) -> (fused, scores at scales[0], scores at scales[1], ...)``.

    Parameters
    ----------
    net : the network, ``net(x) -> (N, L, h, w)``; its ``num_classes``, ``prediction_stride``,
        ``output_stride`` and ``spec`` are exposed unchanged.
    scales : input scales, each in (0, 1], the first one 1 for DeepLab's geometry.
    """

    def __init__(self, net: Block, scales: Sequence[float] = DEEPLAB_SCALES) -> None:
        super().__init__(prefix="")
        scales = tuple(float(s) for s in scales)
        if len(scales) < 2 or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"multi-scale input needs at least two scales in (0, 1], got {scales}")
        self.scales = scales
        self.num_classes = net.num_classes
        self.prediction_stride = net.prediction_stride
        self.output_stride = net.output_stride
        self.spec = getattr(net, "spec", None)
        self.loss_weights: Tuple[float, ...] = (1.0,) * (len(scales) + 1)
        with self.name_scope():
            self.net = net

    def forward(self, x: mx.nd.NDArray) -> Tuple[mx.nd.NDArray, ...]:
        height, width = x.shape[2], x.shape[3]
        maps = []
        for scale in self.scales:
            rows, cols = scaled_side(height, scale), scaled_side(width, scale)
            scaled = x if (rows, cols) == (height, width) else mx.nd.contrib.BilinearResize2D(
                x, height=rows, width=cols, align_corners=True)
            maps.append(self.net(scaled))
        size = maps[0].shape[2:]
        fused = maps[0]
        for scores in maps[1:]:
            if scores.shape[2:] != size:
                scores = mx.nd.contrib.BilinearResize2D(scores, height=size[0], width=size[1],
                                                        align_corners=True)
            fused = mx.nd.maximum(fused, scores)
        return (fused, *maps)
