"""The common decoder interface and the encoder-decoder network of the comparison systems."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import mxnet as mx
from mxnet.gluon import HybridBlock

from tusimple_duc.models.segnet import predict_probabilities


class SystemDecoder(HybridBlock):
    """Encoder features -> class scores ``(N, L, H/s, W/s)``.

    ``decoder(*features)`` (or ``decoder(image, *features)`` when ``takes_image``: the
    input ``(N, 3, H, W)``, used only for its size). Attributes: ``num_classes``,
    ``prediction_stride`` (s; 1 = full resolution), ``kind``, ``auxiliary_weight`` (loss
    weight of the auxiliary output; 0 = none), ``auxiliary`` (whether the forward returns
    ``(scores, auxiliary_scores)`` instead of ``scores``).
    """

    kind = ""
    takes_image = False

    def __init__(self, num_classes: int, prediction_stride: int) -> None:
        super().__init__(prefix="")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.prediction_stride = prediction_stride
        self.auxiliary = False
        self.auxiliary_weight = 0.0


class EncoderDecoderNet(HybridBlock):
    """``(N, 3, H, W) -> decoder(*encoder(x))``: scores ``(N, L, H/s, W/s)`` (a
    ``(scores, auxiliary_scores)`` pair when ``decoder.auxiliary``).

    Same attributes as :class:`~tusimple_duc.models.segnet.SegmentationNet`: ``num_classes``,
    ``prediction_stride``, ``output_stride`` (the encoder's), ``spec``; children ``encoder``
    and ``decoder`` (the "new layers": ``net.decoder.collect_params()``). Root prefix ``''``.
    """

    def __init__(self, encoder: HybridBlock, decoder: SystemDecoder,
                 spec: Optional[Any] = None) -> None:
        super().__init__(prefix="")
        self.spec = spec
        self.num_classes: int = decoder.num_classes
        self.prediction_stride: int = decoder.prediction_stride
        self.output_stride: int = encoder.output_stride
        with self.name_scope():
            self.encoder = encoder
            self.decoder = decoder

    def hybrid_forward(self, F, x):
        features = self.encoder(x)
        if not isinstance(features, (list, tuple)):
            features = (features,)
        if self.decoder.takes_image:
            return self.decoder(x, *features)
        return self.decoder(*features)

    @property
    def loss_weights(self) -> Tuple[float, ...]:
        """Training loss weight of each output: ``(1,)``, or ``(1, decoder.auxiliary_weight)``
        when the forward also returns the auxiliary scores."""
        return (1.0, self.decoder.auxiliary_weight) if self.decoder.auxiliary else (1.0,)

    def predict(self, x: mx.nd.NDArray) -> mx.nd.NDArray:
        """Full-resolution class probabilities ``(N, L, H, W)`` (no auxiliary output)."""
        if self.decoder.auxiliary:
            raise TypeError("predict needs a network built without the auxiliary output")
        return predict_probabilities(self, x)
