"""FCN-32s / 16s / 8s (Long, Shelhamer & Darrell) on the ``fcn`` VGG-16 endpoints.

Layers and names as in the reference Caffe nets (``voc-fcn{32,16,8}s``): ``score_fr`` (1x1
on fc7 -> L), ``score_pool4`` / ``score_pool3`` (1x1 on pool4 / pool3 -> L), transposed
convs without bias, kernel ``2f``, stride ``f``: ``upscore`` (32s: f 32), ``upscore2`` (f 2),
``upscore16`` (16s: f 16), ``upscore_pool4`` (8s: f 2), ``upscore8`` (8s: f 8). The
transposed convs are initialised to bilinear interpolation (each class to itself, zero across
classes, as FCN's ``surgery.interp``) and kept fixed (``grad_req = 'null'``, the reference's
``lr_mult: 0``); the scoring layers start at zero ("we initialize the class scoring layer to
zero"; ``score_pool*`` at zero so the net starts from the coarser net's prediction).

Alignment: with conv1_1's padding of 100 every map is larger than the image; the skip scores
and the final scores are cropped at the reference offsets (:data:`CROP_OFFSETS`: ``score_pool4c``
5, ``score_pool3c`` 9, final 19 / 27 / 31 for 32s / 16s / 8s) to the coarser map (resp. the
image): output exactly ``(N, L, H, W)`` for any H, W (prediction stride 1). The fusions are
plain sums (the staged nets of the paper; not the "at-once" net's 0.01 / 0.0001 scaling).

:class:`BilinearUpsampling` is the initialiser. A transposed conv with kernel ``2f``, stride
``f`` and padding ``f/2`` initialised with it is bilinear interpolation with half-pixel
centres (``cv2.resize`` ``INTER_LINEAR``) away from the border; FCN itself uses padding 0 and
the crops instead.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from tusimple_duc.models.decoders.base import SystemDecoder

FCN_VARIANTS: Tuple[str, ...] = ("32s", "16s", "8s")
#: Crop offsets (pixels of the cropped map) of the reference deploy prototxts.
CROP_OFFSETS: Dict[str, Dict[str, int]] = {
    "32s": {"score": 19},
    "16s": {"score_pool4c": 5, "score": 27},
    "8s": {"score_pool4c": 5, "score_pool3c": 9, "score": 31}}


def bilinear_kernel(size: int) -> np.ndarray:
    """``(size, size)`` bilinear interpolation kernel (Caffe's / FCN's ``upsample_filt``)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(taps, taps).astype(np.float32)


@mx.init.register
class BilinearUpsampling(mx.init.Initializer):
    """Transposed-conv weight ``(C_in, C_out, k, k)``: bilinear kernel from input channel c
    to output channel c, zero elsewhere (a per-channel bilinear upsampling)."""

    def _init_weight(self, _, arr):
        weight = np.zeros(arr.shape, dtype=np.float32)
        kernel = bilinear_kernel(arr.shape[2])
        for c in range(min(arr.shape[0], arr.shape[1])):
            weight[c, c] = kernel
        arr[:] = weight


def upsampling_layer(name: str, channels: int, factor: int, padding: int = 0
                     ) -> nn.Conv2DTranspose:
    """Fixed bilinear transposed conv: kernel ``2f``, stride ``f``, no bias, ``name_weight``."""
    layer = nn.Conv2DTranspose(channels, 2 * factor, strides=factor, padding=padding,
                               in_channels=channels, use_bias=False,
                               weight_initializer=BilinearUpsampling(), prefix=f"{name}_")
    layer.weight.grad_req = "null"
    return layer


def crop(F, x, like, offset: int):
    """``x[:, :, offset:offset + h, offset:offset + w]`` with ``(h, w)`` of ``like``."""
    x = F.slice(x, begin=(None, None, offset, offset), end=(None, None, None, None))
    return F.slice_like(x, like, axes=(2, 3))


class FCNDecoder(SystemDecoder):
    """``(image, pool3, pool4, fc7) -> (N, L, H, W)`` scores; ``variant`` 32s, 16s or 8s.

    ``in_channels``: channels of pool3, pool4, fc7 (``VGG16Backbone("fcn").endpoint_channels``).
    """

    kind = "fcn"
    takes_image = True

    def __init__(self, num_classes: int, in_channels: Sequence[int], variant: str = "8s") -> None:
        super().__init__(num_classes, 1)
        if variant not in FCN_VARIANTS:
            raise ValueError(f"FCN variant must be one of {FCN_VARIANTS}, got {variant!r}")
        self.variant = variant
        self.offsets = CROP_OFFSETS[variant]
        pool3, pool4, fc7 = in_channels
        L = num_classes

        def score(name: str, channels: int) -> nn.Conv2D:
            return nn.Conv2D(L, 1, in_channels=channels, weight_initializer=mx.init.Zero(),
                             bias_initializer=mx.init.Zero(), prefix=f"{name}_")

        with self.name_scope():
            self.score_fr = score("score_fr", fc7)
            if variant == "32s":
                self.upscore = upsampling_layer("upscore", L, 32)
            else:
                self.upscore2 = upsampling_layer("upscore2", L, 2)
                self.score_pool4 = score("score_pool4", pool4)
            if variant == "16s":
                self.upscore16 = upsampling_layer("upscore16", L, 16)
            if variant == "8s":
                self.upscore_pool4 = upsampling_layer("upscore_pool4", L, 2)
                self.score_pool3 = score("score_pool3", pool3)
                self.upscore8 = upsampling_layer("upscore8", L, 8)

    def hybrid_forward(self, F, image, pool3, pool4, fc7):
        scores = self.score_fr(fc7)
        if self.variant == "32s":
            return crop(F, self.upscore(scores), image, self.offsets["score"])
        up2 = self.upscore2(scores)
        fused = up2 + crop(F, self.score_pool4(pool4), up2, self.offsets["score_pool4c"])
        if self.variant == "16s":
            return crop(F, self.upscore16(fused), image, self.offsets["score"])
        up4 = self.upscore_pool4(fused)
        fused = up4 + crop(F, self.score_pool3(pool3), up4, self.offsets["score_pool3c"])
        return crop(F, self.upscore8(fused), image, self.offsets["score"])
