"""Gridding, exactly: which input offsets reach one output pixel of a chain of dilated convs.

:func:`coverage_pattern` and :func:`stack_coverage` compute the reachable offsets exactly
(binary dilation of the kernel footprints, NumPy); :func:`backbone_coverage` does it for a
ResNet backbone's stages 4-5 and :func:`gradient_coverage` measures the same pattern with MXNet
autograd on a width-1 copy of the backbone (the two must agree). The paper's rule for a group of
rates, Eq. (2), is :func:`tusimple_duc.models.hdc.hdc_check`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Sequence

import numpy as np

from tusimple_duc.models.hdc import Layer
from tusimple_duc.models.resnet import BackboneConfig, ResNetBackbone


@dataclass(frozen=True)
class Coverage:
    """Input offsets that reach the centre output.

    ``pattern`` is a square bool array of side ``2 * radius + 1``; element ``[radius + dy,
    radius + dx]`` is True when input offset ``(dy, dx)`` influences the output.
    """

    pattern: np.ndarray

    @property
    def radius(self) -> int:
        return self.pattern.shape[0] // 2

    @property
    def covered(self) -> int:
        return int(self.pattern.sum())

    @property
    def total(self) -> int:
        return int(self.pattern.size)

    @property
    def holes(self) -> int:
        return self.total - self.covered

    @property
    def full(self) -> bool:
        return self.holes == 0


def stack_coverage(layers: Sequence[Layer]) -> Coverage:
    """Exact coverage of a chain of square convs ``(kernel, dilation, stride)`` (input first).

    A tap ``t`` of layer ``l`` moves ``t * dilation_l * S_l`` input pixels, ``S_l`` being the
    product of the strides of the layers below it; the reachable set is the Minkowski sum
    of the tap sets, computed by binary dilation of a bool image. Residual shortcuts add
    nothing (every footprint contains offset 0).
    """
    radius = sum((k // 2) * d * s for k, d, s in _with_cumulative_stride(layers))
    size = 2 * radius + 1
    pattern = np.zeros((size, size), dtype=bool)
    pattern[radius, radius] = True
    for kernel, dilation, step in _with_cumulative_stride(layers):
        taps = [t * dilation * step for t in range(-(kernel // 2), kernel // 2 + 1)]
        grown = np.zeros_like(pattern)
        for dy in taps:
            for dx in taps:
                grown |= _shift(pattern, dy, dx)
        pattern = grown
    return Coverage(pattern)


def _with_cumulative_stride(layers: Sequence[Layer]) -> List[Layer]:
    out, step = [], 1
    for kernel, dilation, stride in layers:
        out.append((kernel, dilation, step))
        step *= stride
    return out


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` translated by ``(dy, dx)`` with zero fill."""
    h, w = image.shape
    out = np.zeros_like(image)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def coverage_pattern(rates: Sequence[int], kernel: int = 3) -> Coverage:
    """Exact coverage of stacked stride-1 ``kernel x kernel`` convs with ``rates``."""
    return stack_coverage([(kernel, int(r), 1) for r in rates])


def backbone_coverage(config: BackboneConfig, start_stage: int = 4) -> Coverage:
    """Exact coverage, in feature pixels at the input of ``start_stage``, of one output
    pixel of the backbone's main path (1x1 convs contribute their stride only)."""
    return stack_coverage(config.main_path_layers(start_stage))


def gradient_coverage(config: BackboneConfig, start_stage: int = 4, width: int = 1) -> Coverage:
    """Coverage measured with MXNet autograd on a ``width``-wide copy of the backbone.

    Runs stages ``start_stage``..5 on an all-ones float64 input with every conv weight
    ``1 / fan_in`` and BatchNorm an identity with frozen statistics (so every activation is
    positive and ReLU passes everything); the non-zero entries of ``d(centre output) /
    d(input)`` are the covered offsets. Agrees with :func:`backbone_coverage`.
    """
    import mxnet as mx  # heavy import deferred: the NumPy functions above do not need it

    small = replace(config, width=width, bn_use_global_stats=True, bn_fix_gamma=False)
    layers = small.main_path_layers(start_stage)
    step = int(np.prod([s for _, _, s in layers]))
    radius = backbone_coverage(small, start_stage).radius
    side = step * (2 * -(-radius // step) + 1)
    net = ResNetBackbone(small)
    net.initialize(mx.init.Zero())
    for name, param in net.collect_params().items():
        if name.endswith("_weight"):
            fan_in = int(np.prod(param.shape[1:]))
            param.set_data(mx.nd.full(param.shape, 1.0 / fan_in))
        elif name.endswith(("gamma", "running_var")):
            param.set_data(mx.nd.ones(param.shape))
    net.cast("float64")
    x = mx.nd.ones((1, small.stage_in_channels(start_stage), side, side), dtype="float64")
    x.attach_grad()
    with mx.autograd.record(train_mode=False):
        y = net.forward_stages(x, start_stage)
        centre = y.shape[2] // 2
        out = y[0, :, centre, centre].sum()
    out.backward()
    reach = x.grad[0].sum(axis=0).asnumpy() != 0
    anchor = centre * step
    window = reach[anchor - radius:anchor + radius + 1, anchor - radius:anchor + radius + 1]
    if window.sum() != reach.sum():  # pragma: no cover - would mean the geometry is wrong
        raise RuntimeError("gradient reaches beyond the receptive field computed by NumPy")
    return Coverage(window)
