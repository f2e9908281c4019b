"""PSPNet (Zhao et al., CVPR 2017): pyramid pooling module and the auxiliary head.

Input: stages 4 and 5 of the dilated ResNet at output stride 8
(:class:`~tusimple_duc.models.features.ResNetFeatures`, ``stages=(4, 5)``).

:class:`PyramidPooling`: for bins 1, 2, 3, 6, adaptive average pooling to ``bin x bin``
(the reference's fixed 60/bin kernels on its 60x60 map), 1x1 conv to ``C/4`` without bias,
BatchNorm, ReLU, bilinear upsampling to the feature size (align corners, the reference's
``Interp`` layer), concatenated after the features: ``(N, C, h, w) -> (N, 2C, h, w)``. The
same computation as GluonCV's ``pspnet._PyramidPooling`` (which fixes the feature size at
construction); the parameters load in the same order.

:class:`PSPDecoder`: pyramid pooling on stage 5, 3x3 conv 512 + BN + ReLU (``conv5_4``),
dropout 0.1, 1x1 classifier ``conv6`` with bias: ``(N, L, h, w)``, prediction stride 8.
Auxiliary head on stage 4 (training only, loss weight 0.4): 3x3 conv ``C4/4`` + BN + ReLU
(``aux_conv``), dropout 0.1, 1x1 classifier ``aux_score``. With ``auxiliary=True`` the
forward returns ``(scores, auxiliary_scores)``, both ``(N, L, h, w)``; the auxiliary layers
exist either way, so a checkpoint of the training network loads into the inference one.

Names: ``conv5_3_pool{bin}_conv`` (+ ``/bn``), ``conv5_4`` (+ ``/bn``), ``conv6``, ``aux_conv``
(+ ``/bn``), ``aux_score`` (the reference's Caffe names where they do not clash with ResNet's).
BatchNorm eps 1e-5, momentum 0.9, batch statistics.
"""
from __future__ import annotations

from typing import Sequence, Tuple

from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.decoders.base import SystemDecoder
from tusimple_duc.models.decoders.deeplab import ConvBNReLU

PSP_BINS: Tuple[int, ...] = (1, 2, 3, 6)
AUXILIARY_WEIGHT = 0.4


class PyramidPooling(HybridBlock):
    """``(N, C, h, w) -> (N, C + len(bins) * C/4, h, w)``."""

    def __init__(self, in_channels: int, bins: Sequence[int] = PSP_BINS) -> None:
        super().__init__(prefix="")
        self.bins = tuple(bins)
        with self.name_scope():
            self.convs = nn.HybridSequential(prefix="")
            with self.convs.name_scope():
                for b in self.bins:
                    self.convs.add(ConvBNReLU(f"conv5_3_pool{b}_conv", in_channels,
                                              in_channels // 4, 1, bn_momentum=0.9))

    def hybrid_forward(self, F, x):
        levels = [x]
        for b, conv in zip(self.bins, self.convs):
            pooled = conv(F.contrib.AdaptiveAvgPooling2D(x, output_size=b))
            levels.append(F.contrib.BilinearResize2D(pooled, x, mode="like", align_corners=True))
        return F.concat(*levels, dim=1)


class PSPDecoder(SystemDecoder):
    """``(stage4, stage5) -> scores`` or ``(scores, auxiliary_scores)`` (``auxiliary``)."""

    kind = "pspnet"

    def __init__(self, num_classes: int, in_channels: Sequence[int], auxiliary: bool = False,
                 channels: int = 512) -> None:
        super().__init__(num_classes, 8)
        c4, c5 = in_channels
        self.auxiliary = auxiliary
        self.auxiliary_weight = AUXILIARY_WEIGHT
        with self.name_scope():
            self.pyramid = PyramidPooling(c5)
            self.conv5_4 = ConvBNReLU("conv5_4", 2 * c5, channels, 3, bn_momentum=0.9)
            self.conv6 = nn.Conv2D(num_classes, 1, in_channels=channels, prefix="conv6_")
            self.aux_conv = ConvBNReLU("aux_conv", c4, c4 // 4, 3, bn_momentum=0.9)
            self.aux_score = nn.Conv2D(num_classes, 1, in_channels=c4 // 4, prefix="aux_score_")
            self.dropout = nn.Dropout(0.1)

    def hybrid_forward(self, F, stage4, stage5):
        scores = self.conv6(self.dropout(self.conv5_4(self.pyramid(stage5))))
        if not self.auxiliary:
            return scores
        return scores, self.aux_score(self.dropout(self.aux_conv(stage4)))
