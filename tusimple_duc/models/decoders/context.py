"""Dilation (Yu & Koltun): the front-end's classifier and the context module.

:class:`ContextModule`: seven 3x3 convs with dilations 1, 1, 2, 4, 8, 16, 1 (padding =
dilation), each followed by ReLU, then a 1x1 conv; ``basic``: C channels throughout;
``large``: 2C, 2C, 4C, 8C, 16C, 32C, 32C, then C (the paper's Table 1). Names as the authors'
code: ``ctx_conv1_1``, ``ctx_conv1_2``, ``ctx_conv2_1``, ``ctx_conv3_1``, ``ctx_conv4_1``,
``ctx_conv5_1``, ``ctx_fc1``, ``ctx_final``. ``basic10``: the basic module extended for
Cityscapes, as the authors' Dilation10 (``models/dilation10_cityscapes_deploy.prototxt``,
``network.py`` ``build_context(layers=10)``): two more 3x3 convs ``ctx_conv6_1`` and
``ctx_conv7_1`` at dilations 32 and 64 before ``ctx_fc1``, C channels throughout (dilations
1, 1, 2, 4, 8, 16, 32, 64, 1, then the 1x1). Identity initialisation
(:class:`ContextIdentity`): the centre tap of the filter from input channel a to output
channel b is ``C / c_out`` when ``floor(a C / c_in) == floor(b C / c_out)`` (basic: a == b,
weight 1), every other tap ``N(0, sigma)`` noise with ``sigma = noise_ratio * C / c_out``
(the paper: "sigma << C / c_{i+1}"; 0 for ``basic``, 1e-3 for ``large`` by default), biases 0.
At initialisation the module computes ``relu(x)`` (the first ReLU clips negative scores, the
others see non-negative maps), i.e. ``x`` for non-negative input.

The original pads the front-end's input by reflection and uses unpadded convolutions; here
the convs are zero-padded ("same"), so every map keeps the front-end's ``ceil(H/8)`` size.

:class:`DilationDecoder`: ``fc_final`` (1x1 on fc7 -> L, the front-end's classifier; the
authors' ``fc-final``), then optionally the context module: ``(fc7) -> (N, L, h, w)``,
prediction stride 8 (the authors upsample x8 with a fixed bilinear deconvolution; here
inference resizes the probabilities bilinearly).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.decoders.base import SystemDecoder

#: Dilation of each 3x3 conv per variant (the 1x1 ``ctx_final`` follows).
CONTEXT_DILATIONS: Dict[str, Tuple[int, ...]] = {"basic": (1, 1, 2, 4, 8, 16, 1), "large": (1, 1, 2, 4, 8, 16, 1),
                                                 "basic10": (1, 1, 2, 4, 8, 16, 32, 64, 1)}
#: Output channels of each layer (the 3x3 convs, then ``ctx_final``) as multiples of C.
CONTEXT_WIDTHS: Dict[str, Tuple[int, ...]] = {"basic": (1,) * 8, "large": (2, 2, 4, 8, 16, 32, 32, 1),
                                              "basic10": (1,) * 10}
DEFAULT_NOISE = {"basic": 0.0, "large": 1e-3, "basic10": 0.0}


def context_layer_names(variant: str) -> Tuple[str, ...]:
    """The authors' layer names: ``ctx_conv1_1``, ``ctx_conv1_2``, ``ctx_conv{i}_1`` for each
    dilated conv, ``ctx_fc1``, ``ctx_final``."""
    dilated = len(CONTEXT_DILATIONS[variant]) - 3
    return ("ctx_conv1_1", "ctx_conv1_2", *(f"ctx_conv{i}_1" for i in range(2, 2 + dilated)),
            "ctx_fc1", "ctx_final")


@mx.init.register
class ContextIdentity(mx.init.Initializer):
    """Yu & Koltun's identity initialisation of a conv weight ``(c_out, c_in, k, k)`` for a
    module of ``base_channels`` C (see the module docstring); ``seed`` fixes the noise."""

    def __init__(self, base_channels: int, noise_ratio: float = 0.0, seed: int = 0) -> None:
        super().__init__(base_channels=base_channels, noise_ratio=noise_ratio, seed=seed)
        self.base_channels = base_channels
        self.noise_ratio = noise_ratio
        self.seed = seed

    def _init_weight(self, _, arr):
        c_out, c_in, kh, kw = arr.shape
        C = self.base_channels
        scale = C / c_out
        rng = np.random.RandomState(self.seed)
        weight = rng.normal(0.0, self.noise_ratio * scale, size=arr.shape).astype(np.float32)
        weight[:, :, kh // 2, kw // 2] = 0.0
        groups_in = np.arange(c_in) * C // c_in
        groups_out = np.arange(c_out) * C // c_out
        centre = np.where(groups_out[:, None] == groups_in[None, :], scale, 0.0)
        weight[:, :, kh // 2, kw // 2] += centre.astype(np.float32)
        arr[:] = weight


class ContextModule(HybridBlock):
    """``(N, C, h, w) -> (N, C, h, w)``; ``variant`` basic, large or basic10; ``noise_ratio``
    None = the variant's default."""

    def __init__(self, channels: int, variant: str = "basic",
                 noise_ratio: Optional[float] = None) -> None:
        super().__init__(prefix="")
        if variant not in CONTEXT_WIDTHS:
            raise ValueError(f"context variant must be one of {tuple(CONTEXT_WIDTHS)}, got {variant!r}")
        noise = DEFAULT_NOISE[variant] if noise_ratio is None else noise_ratio
        widths = [channels * m for m in CONTEXT_WIDTHS[variant]]
        names, dilations = context_layer_names(variant), CONTEXT_DILATIONS[variant]
        with self.name_scope():
            self.layers = nn.HybridSequential(prefix="")
            with self.layers.name_scope():
                in_channels = channels
                for i, (name, out) in enumerate(zip(names, widths)):
                    last = i == len(names) - 1
                    rate = 1 if last else dilations[i]
                    self.layers.add(nn.Conv2D(
                        out, 1 if last else 3, padding=0 if last else rate, dilation=rate,
                        in_channels=in_channels, prefix=f"{name}_",
                        weight_initializer=ContextIdentity(channels, noise, seed=i),
                        bias_initializer=mx.init.Zero()))
                    if not last:
                        self.layers.add(nn.Activation("relu"))
                    in_channels = out

    def hybrid_forward(self, F, x):
        return self.layers(x)


class DilationDecoder(SystemDecoder):
    """``(fc7) -> (N, L, h, w)``: ``fc_final`` + context module (``context`` None: front-end
    only, the "Front end" row; ``basic`` / ``large``: "+ Context"; ``basic10``: Dilation10)."""

    kind = "dilation"

    def __init__(self, num_classes: int, in_channels: int, context: Optional[str] = "basic") -> None:
        super().__init__(num_classes, 8)
        with self.name_scope():
            self.fc_final = nn.Conv2D(num_classes, 1, in_channels=in_channels, prefix="fc_final_")
            self.context = None if context is None else ContextModule(num_classes, context)

    def hybrid_forward(self, F, fc7):
        scores = self.fc_final(fc7)
        return scores if self.context is None else self.context(scores)
