"""PyTorch eager implementation of a DUC network, for the CPU benchmark only (not part of the package).

The network is built from the same :class:`~tusimple_duc.models.presets.ModelSpec` as the Gluon
model (DUC head only) and loads the same weights **by name**: every convolution and BatchNorm
carries its released name (``conv4_23_3x3``, ``conv4_23_3x3/bn``, ``fc1_cityscapes_c0``) and
:func:`load_named_arrays` fills them from a ``{name: array}`` mapping whose keys are checkpoint
keys (``arg:conv4_23_3x3_weight``, ``aux:conv1_1_3x3_s2/bn_moving_mean``) or Gluon parameter names
(``conv1_1_3x3_s2/bn_running_mean``). Loading is strict: a missing, unexpected or differently
shaped array raises ``ValueError``.

``TorchDUC(spec)(x)``: ``x`` (N, 3, H, W) float32 mean-subtracted RGB -> class scores
``(N, L, H/c, W/c)``; the DUC rearrangement is ``pixel_shuffle``, whose channel order
``l*r*r + dy*r + dx`` is the DUC layout of :mod:`tusimple_duc.layout`.

Requires ``torch`` (the ``bench`` extra of setup.py).
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Mapping, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tusimple_duc.models.heads import aspp_rates
from tusimple_duc.models.presets import ModelSpec, get_spec
from tusimple_duc.models.resnet import STAGES, BackboneConfig

_STAT_SUFFIXES = {"_running_mean": "_moving_mean", "_running_var": "_moving_var"}


class NamedConv(nn.Conv2d):
    """``nn.Conv2d`` that knows its released name (weights ``<name>_weight``, ``<name>_bias``)."""

    def __init__(self, name: str, in_channels: int, channels: int, kernel: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = False) -> None:
        super().__init__(in_channels, channels, kernel, stride, padding, dilation, bias=bias)
        self.released_name = name

    def named_arrays(self) -> Dict[str, torch.Tensor]:
        """``{released array name: tensor}``."""
        arrays = {f"{self.released_name}_weight": self.weight}
        if self.bias is not None:
            arrays[f"{self.released_name}_bias"] = self.bias
        return arrays


class NamedBatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` named ``<conv>/bn`` (``_gamma``, ``_beta``, ``_moving_mean``, ``_moving_var``)."""

    def __init__(self, name: str, channels: int, eps: float) -> None:
        super().__init__(channels, eps=eps)
        self.released_name = name

    def named_arrays(self) -> Dict[str, torch.Tensor]:
        """``{released array name: tensor}``."""
        n = self.released_name
        return {f"{n}_gamma": self.weight, f"{n}_beta": self.bias,
                f"{n}_moving_mean": self.running_mean, f"{n}_moving_var": self.running_var}


class ConvBN(nn.Module):
    """Bias-free conv + BatchNorm (+ ReLU), as ``tusimple_duc.models.resnet.ConvBN``."""

    def __init__(self, name: str, in_channels: int, channels: int, kernel: int,
                 config: BackboneConfig, stride: int = 1, padding: int = 0, dilation: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = NamedConv(name, in_channels, channels, kernel, stride, padding, dilation)
        self.bn = NamedBatchNorm(f"{name}/bn", channels, config.bn_eps)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return F.relu(y, inplace=True) if self.relu else y


class Bottleneck(nn.Module):
    """ResNet v1 bottleneck ``relu(increase(3x3(reduce(x))) + shortcut(x))``."""

    def __init__(self, name: str, in_channels: int, mid: int, config: BackboneConfig,
                 stride: int, dilation: int, projection: bool) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if config.stride_in_1x1 else (1, stride)
        self.reduce = ConvBN(f"{name}_1x1_reduce", in_channels, mid, 1, config, stride=s1)
        self.conv3x3 = ConvBN(f"{name}_3x3", mid, mid, 3, config, stride=s3, padding=dilation,
                              dilation=dilation)
        self.increase = ConvBN(f"{name}_1x1_increase", mid, 4 * mid, 1, config, relu=False)
        self.proj = (ConvBN(f"{name}_1x1_proj", in_channels, 4 * mid, 1, config, stride=stride,
                            relu=False) if projection else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.proj(x) if self.proj is not None else x
        return F.relu(self.increase(self.conv3x3(self.reduce(x))) + shortcut, inplace=True)


class TorchDUC(nn.Module):
    """Dilated ResNet + ASPP + DUC of a :class:`ModelSpec` (``head == 'duc'``), in eval mode."""

    def __init__(self, spec: "ModelSpec | str") -> None:
        super().__init__()
        spec = get_spec(spec)
        if spec.head != "duc":
            raise ValueError(f"TorchDUC implements the DUC head only, not {spec.head!r}")
        config = spec.backbone_config()
        self.ratio = spec.output_stride // spec.cell_width
        self.num_classes = spec.num_classes
        c = config.stem_channels
        if config.stem == "deep":
            stem: List[nn.Module] = [
                ConvBN("conv1_1_3x3_s2", 3, c[0], 3, config, stride=2, padding=1),
                ConvBN("conv1_2_3x3", c[0], c[1], 3, config, padding=1),
                ConvBN("conv1_3_3x3", c[1], c[2], 3, config, padding=1),
                nn.MaxPool2d(3, 2, padding=0, ceil_mode=config.stem_pool_ceil())]
        else:
            stem = [ConvBN("conv1_7x7_s2", 3, c[0], 7, config, stride=2, padding=3),
                    nn.MaxPool2d(3, 2, padding=1)]
        self.stem = nn.Sequential(*stem)
        rates, strides = config.rates(), config.stage_strides()
        stages = []
        for stage in STAGES:
            mid = config.stage_mid_channels(stage)
            blocks = [Bottleneck(f"conv{stage}_{i + 1}",
                                 config.stage_in_channels(stage) if i == 0 else 4 * mid, mid, config,
                                 stride=strides[stage] if i == 0 else 1, dilation=rate,
                                 projection=i == 0)
                      for i, rate in enumerate(rates[stage])]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        raw = spec.num_classes * self.ratio ** 2
        self.aspp = nn.ModuleList(
            NamedConv(f"{spec.head_name}_c{i}", config.out_channels, raw, 3, padding=rate,
                      dilation=rate, bias=True)
            for i, rate in enumerate(aspp_rates(spec.aspp, spec.aspp_stride) or (1,)))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))
        scores = self.aspp[0](features)
        for branch in self.aspp[1:]:
            scores = scores + branch(features)
        return F.pixel_shuffle(scores, self.ratio)

    def named_arrays(self) -> Iterator[Tuple[str, torch.Tensor]]:
        """``(released array name, tensor)`` of every weight and BatchNorm statistic."""
        for module in self.modules():
            if isinstance(module, (NamedConv, NamedBatchNorm)):
                yield from module.named_arrays().items()


def released_array_name(key: str) -> str:
    """``arg:``/``aux:`` checkpoint key or Gluon parameter name -> released array name."""
    name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
    for gluon_suffix, released_suffix in _STAT_SUFFIXES.items():
        if name.endswith(gluon_suffix):
            return name[: -len(gluon_suffix)] + released_suffix
    return name


def load_named_arrays(model: TorchDUC, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy ``arrays`` (checkpoint keys or Gluon names -> float32 arrays) into ``model``, strictly."""
    by_name = {released_array_name(key): value for key, value in arrays.items()}
    targets = dict(model.named_arrays())
    missing = sorted(targets.keys() - by_name.keys())
    unexpected = sorted(by_name.keys() - targets.keys())
    if missing or unexpected:
        raise ValueError(f"weights do not match the network: {len(missing)} missing "
                         f"({', '.join(missing[:3])}), {len(unexpected)} unexpected "
                         f"({', '.join(unexpected[:3])})")
    with torch.no_grad():
        for name, tensor in targets.items():
            value = np.asarray(by_name[name], dtype=np.float32)
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"weights do not match the network: {name} has shape "
                                 f"{value.shape}, expected {tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(value))
