"""DeepLab heads: v1 LargeFOV classifier and v3 ASPP (v2's ASPP-sum is the project's
``bilinear`` head, :class:`~tusimple_duc.models.heads.BilinearHead`).

* :class:`LargeFOVDecoder` (DeepLab v1, on the ``largefov`` VGG-16 whose fc6 is the 3x3
  dilation-12 conv with 1024 channels and fc7 1x1): ``fc8`` (1x1 -> L, weights N(0, 0.01),
  bias 0, as the reference prototxt). ``(fc7) -> (N, L, h, w)``, prediction stride 8.
* :class:`ASPPv3Decoder` (DeepLab v3, Chen et al. 2017, section 3.3): parallel 1x1 conv and
  three 3x3 atrous convs (rates 6, 12, 18 at output stride 16, doubled at 8), each 256
  channels + BatchNorm + ReLU, and image-level features (global average pooling, 1x1 conv 256,
  BN, ReLU, broadcast back to h x w: the bilinear upsampling of a 1x1 map); concatenated
  (1280), 1x1 conv 256 + BN + ReLU, dropout 0.1 (the authors' TensorFlow code), then the
  1x1 classifier with bias. The same layout as GluonCV's ``deeplabv3._ASPP`` (which fixes
  the feature size at construction and uses dropout 0.5), whose parameters load in the same
  order. Convs before BN have no bias. ``(features) -> (N, L, h, w)``, prediction stride =
  output stride.

Names: ``aspp_b0`` (1x1), ``aspp_b1..b3`` (3x3), ``aspp_pool``, ``aspp_project`` (``_weight``,
BatchNorm ``<conv>/bn_gamma|beta|running_mean|running_var``), ``logits``; v1: ``fc8``.
BatchNorm eps 1e-5, momentum 0.9997 (TensorFlow DeepLab's decay), batch statistics.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.decoders.base import SystemDecoder

V3_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


class LargeFOVDecoder(SystemDecoder):
    """DeepLab v1 classifier ``fc8``: ``(fc7 (N, C, h, w)) -> (N, L, h, w)``."""

    kind = "deeplab_v1"

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__(num_classes, 8)
        with self.name_scope():
            self.fc8 = nn.Conv2D(num_classes, 1, in_channels=in_channels, prefix="fc8_",
                                 weight_initializer=mx.init.Normal(0.01),
                                 bias_initializer=mx.init.Zero())

    def hybrid_forward(self, F, fc7):
        return self.fc8(fc7)


class ConvBNReLU(HybridBlock):
    """Bias-free conv ``name`` + BatchNorm ``name/bn`` + ReLU."""

    def __init__(self, name: str, in_channels: int, channels: int, kernel: int,
                 dilation: int = 1, bn_momentum: float = 0.9997) -> None:
        super().__init__(prefix="")
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel, padding=dilation * (kernel // 2),
                                  dilation=dilation, use_bias=False, in_channels=in_channels,
                                  prefix=f"{name}_")
            self.bn = nn.BatchNorm(momentum=bn_momentum, epsilon=1e-5, in_channels=channels,
                                   prefix=f"{name}/bn_")

    def hybrid_forward(self, F, x):
        return F.Activation(self.bn(self.conv(x)), act_type="relu")


class ASPPv3(HybridBlock):
    """``(N, C, h, w) -> (N, channels, h, w)``: the five branches, concatenation, projection."""

    def __init__(self, in_channels: int, rates: Sequence[int], channels: int = 256) -> None:
        super().__init__(prefix="")
        with self.name_scope():
            self.branches = nn.HybridSequential(prefix="")
            with self.branches.name_scope():
                self.branches.add(ConvBNReLU("aspp_b0", in_channels, channels, 1))
                for i, rate in enumerate(rates):
                    self.branches.add(ConvBNReLU(f"aspp_b{i + 1}", in_channels, channels, 3, rate))
            self.image_pool = ConvBNReLU("aspp_pool", in_channels, channels, 1)
            self.project = ConvBNReLU("aspp_project", (len(rates) + 2) * channels, channels, 1)

    def hybrid_forward(self, F, x):
        # Pooling, not mean (mx2onnx's ReduceMean fails its own checker); the 1x1 map resized to
        # h x w is its broadcast, and exports as a dynamic Resize (broadcast_like's Expand does
        # not compile in OpenVINO 2026 at dynamic sizes)
        pooled = self.image_pool(F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg"))
        image = F.contrib.BilinearResize2D(pooled, x, mode="like", align_corners=True)
        return self.project(F.concat(*[branch(x) for branch in self.branches], image, dim=1))


class ASPPv3Decoder(SystemDecoder):
    """DeepLab v3 head: ``(features (N, C, h, w)) -> (N, L, h, w)``; ``output_stride`` 16 or 8
    chooses the rates unless ``rates`` is given."""

    kind = "deeplab_v3"

    def __init__(self, num_classes: int, in_channels: int, output_stride: int = 16,
                 rates: Optional[Tuple[int, ...]] = None, channels: int = 256) -> None:
        if rates is None and output_stride not in V3_RATES:
            raise ValueError(f"DeepLab v3 output stride must be 16 or 8, got {output_stride}")
        super().__init__(num_classes, output_stride)
        self.rates = tuple(rates or V3_RATES[output_stride])
        with self.name_scope():
            self.aspp = ASPPv3(in_channels, self.rates, channels)
            self.dropout = nn.Dropout(0.1)
            self.logits = nn.Conv2D(num_classes, 1, in_channels=channels, prefix="logits_")

    def hybrid_forward(self, F, x):
        return self.logits(self.dropout(self.aspp(x)))
