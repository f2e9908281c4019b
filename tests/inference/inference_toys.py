"""Helpers for tests/inference: toy networks with the SegmentationNet interface and NumPy references.

Every toy net maps (N, 3, H, W) to (N, L, H/s, W/s) class scores and has ``num_classes``,
``prediction_stride`` and ``output_stride`` (8, like the released model).
"""
from __future__ import annotations

from typing import List

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
import mxnet as mx
import numpy as np
from mxnet.gluon import nn

# Per-class slopes of the positional net's scores along rows and columns (prediction pixels).
ROW_SLOPE = np.array([0.11, -0.07, 0.02])
COL_SLOPE = np.array([-0.05, 0.09, 0.013])


class PositionalNet(nn.HybridBlock):
    """Scores depend only on the position inside the input: ``score[l, i, j] = ROW_SLOPE[l]*i + COL_SLOPE[l]*j``.

    ``i, j`` are prediction-pixel indices counted from the input's top-left corner.
    """

    num_classes = 3
    output_stride = 8

    def __init__(self, prediction_stride: int = 2) -> None:
        super().__init__()
        self.prediction_stride = prediction_stride

    def hybrid_forward(self, F, x):
        n, _, h, w = x.shape
        s = self.prediction_stride
        rows = mx.nd.arange(h // s, ctx=x.context).reshape((1, 1, -1, 1))
        cols = mx.nd.arange(w // s, ctx=x.context).reshape((1, 1, 1, -1))
        row_slope = mx.nd.array(ROW_SLOPE, ctx=x.context).reshape((1, -1, 1, 1))
        col_slope = mx.nd.array(COL_SLOPE, ctx=x.context).reshape((1, -1, 1, 1))
        scores = mx.nd.broadcast_add(mx.nd.broadcast_mul(rows, row_slope), mx.nd.broadcast_mul(cols, col_slope))
        return mx.nd.broadcast_to(scores, (n, self.num_classes, h // s, w // s))


def softmax(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def positional_probabilities(rows: int, cols: int, row_offset: int = 0, col_offset: int = 0) -> np.ndarray:
    """(3, rows, cols) float64 softmax of the positional net's scores, indices shifted by the offsets."""
    i = np.arange(rows)[None, :, None] - row_offset
    j = np.arange(cols)[None, None, :] - col_offset
    return softmax(ROW_SLOPE[:, None, None] * i + COL_SLOPE[:, None, None] * j)


# The colour net's pointwise scores: score = COLOUR_WEIGHTS @ (rgb - mean) + COLOUR_BIAS.
COLOUR_WEIGHTS = np.array([[0.04, -0.02, 0.0], [-0.03, 0.05, 0.01], [0.0, 0.01, -0.04]])
COLOUR_BIAS = np.array([0.1, -0.2, 0.05])


class ColourNet(nn.HybridBlock):
    """A 1x1 convolution: class scores are a fixed affine function of each pixel's colour (stride 1)."""

    num_classes = 3
    output_stride = 8
    prediction_stride = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2D(3, kernel_size=1, in_channels=3)

    def hybrid_forward(self, F, x):
        return self.conv(x)


def make_colour_net(contexts: List[mx.Context]) -> ColourNet:
    net = ColourNet()
    net.initialize(ctx=contexts)
    net.conv.weight.set_data(mx.nd.array(COLOUR_WEIGHTS.reshape(3, 3, 1, 1)))
    net.conv.bias.set_data(mx.nd.array(COLOUR_BIAS))
    return net


def colour_probabilities(image: np.ndarray, rgb_mean) -> np.ndarray:
    """(3, H, W) float64 softmax of the colour net's scores for an (H, W, 3) image."""
    centred = image.astype(np.float64) - np.asarray(rgb_mean)
    scores = np.einsum("lc,hwc->lhw", COLOUR_WEIGHTS, centred) + COLOUR_BIAS[:, None, None]
    return softmax(scores)


class TinyConvNet(nn.HybridBlock):
    """A small random conv net with prediction stride 2 (output depends on content and neighbours)."""

    num_classes = 4
    output_stride = 8
    prediction_stride = 2

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.HybridSequential()
        self.body.add(nn.Conv2D(8, 3, strides=2, padding=1, in_channels=3, activation="relu"),
                      nn.Conv2D(8, 3, padding=2, dilation=2, in_channels=8, activation="relu"),
                      nn.Conv2D(4, 1, in_channels=8))

    def hybrid_forward(self, F, x):
        return self.body(x)


def make_tiny_conv_net(contexts: List[mx.Context]) -> TinyConvNet:
    mx.random.seed(7)
    net = TinyConvNet()
    net.initialize(mx.init.Normal(0.05), ctx=contexts)
    return net


class ProbeNet(nn.HybridBlock):
    """Wraps a net and records every input batch (as NumPy) and its context."""

    def __init__(self, inner: nn.HybridBlock) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = inner.num_classes
        self.prediction_stride = inner.prediction_stride
        self.output_stride = inner.output_stride
        self.inputs: List[np.ndarray] = []
        self.contexts: List[mx.Context] = []

    def hybrid_forward(self, F, x):
        self.inputs.append(x.asnumpy())
        self.contexts.append(x.context)
        return self.inner(x)


def initialised_preset(preset: str = "tiny_duc_hdc", seed: int = 11):
    """A preset's network (``get_model``) with seeded Xavier weights, shapes inferred at 32x32."""
    from tusimple_duc.models.presets import get_model

    mx.random.seed(seed)
    net = get_model(preset)
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, 32, 32)))
    return net


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A reproducible random (height, width, 3) uint8 RGB image."""
    return np.random.RandomState(seed).randint(0, 256, size=(height, width, 3)).astype(np.uint8)


def has_int8_dot_product() -> bool:
    """True on a CPU with int8 dot-product instructions (VNNI, AMX); int8 agreement of the random-weight
    test networks was measured lower without them (0.84-0.94 on an AMD EPYC of family 23, AVX2)."""
    with open("/proc/cpuinfo") as f:
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(f.read().split()))
