"""``get_symbol_duc_hdc``: the original's training symbol, built from the package's Gluon network.

The original built ResNet-101-HDC (deep stem, released dilation schedule, output stride 8)
plus an ASPP-sum DUC head with ``cell_cap * label_num`` channels per branch, reshaped to
(N, label_num, -1) and fed to ``SoftmaxOutput`` (``seg_loss``, label ``seg_loss_label``).
Here the same arguments become a :class:`~tusimple_duc.models.presets.ModelSpec`, the
network comes from :func:`~tusimple_duc.models.presets.get_model`, and the symbol from
:func:`~tusimple_duc.io.symbol.training_symbol`: one definition of the architecture.
"""
from __future__ import annotations

import math

import mxnet as mx

from tusimple_duc.errors import ConfigError
from tusimple_duc.io.symbol import training_symbol
from tusimple_duc.models.presets import ModelSpec, get_model, get_spec

#: Output stride of the original's ResNet-HDC backbone (fixed there).
BACKBONE_STRIDE = 8


def cell_width_of(cell_cap: int, ds_rate: int = BACKBONE_STRIDE) -> int:
    """DUC cell width ``c`` of a cell capacity ``cell_cap = (ds_rate / c) ** 2`` (64 -> 1, 16 -> 2, 4 -> 4)."""
    ratio = math.isqrt(cell_cap) if isinstance(cell_cap, int) and cell_cap > 0 else 0
    if ratio < 1 or ratio * ratio != cell_cap or ds_rate % ratio:
        raise ConfigError(f"get_symbol_duc_hdc: cell_cap={cell_cap!r} must be (ds_rate / cell_width)^2 with "
                          f"ds_rate {ds_rate}, i.e. one of 64, 16, 4 (cell width 1, 2, 4)")
    return ds_rate // ratio


def duc_hdc_spec(label_num: int = 19, bn_use_global_stats: bool = True, aspp_num: int = 4, aspp_stride: int = 6,
                 cell_cap: int = 64, exp: str = "cityscapes") -> ModelSpec:
    """The :class:`ModelSpec` of ``get_symbol_duc_hdc``'s arguments (the released network's backbone)."""
    return get_spec("resnet101_duc_hdc_released", num_classes=label_num, bn_use_global_stats=bn_use_global_stats,
                    aspp=aspp_num, aspp_stride=aspp_stride, cell_width=cell_width_of(cell_cap),
                    head_name=f"fc1_{exp}")


def get_symbol_duc_hdc(label_num: int = 19, ignore_label: int = 255, bn_use_global_stats: bool = True,
                       aspp_num: int = 4, aspp_stride: int = 6, cell_cap: int = 64,
                       exp: str = "cityscapes") -> mx.sym.Symbol:
    """The original's ResNet-101-DUC-HDC training symbol.

    Parameters
    ----------
    label_num : number of classes L.
    ignore_label : label value ignored by ``SoftmaxOutput``.
    bn_use_global_stats : frozen BatchNorm statistics.
    aspp_num, aspp_stride : ASPP branches; branch i has dilation ``(i + 1) * aspp_stride``.
    cell_cap : channels per class of a DUC cell, ``(8 / cell_width) ** 2``.
    exp : experiment name in the head's parameter names (``fc1_<exp>_c<i>_weight``).

    Returns
    -------
    ``SoftmaxOutput`` symbol: inputs ``data`` (N, 3, H, W) and ``seg_loss_label``
    (N, cell_cap * H/8 * W/8), output (N, L, cell_cap * H/8 * W/8) probabilities.
    """
    spec = duc_hdc_spec(label_num, bn_use_global_stats, aspp_num, aspp_stride, cell_cap, exp)
    return training_symbol(get_model(spec), ignore_label=ignore_label)
