"""What the pretrained-weight loaders share (``io.pretrained``, ``io.pretrained_pspnet``).

:class:`PretrainedReport` (what a loader did), :func:`locate_model_file` (GluonCV's download
naming), :func:`resnet_backbone` (the ResNet of a DUC network or of a ResNet comparison system),
:func:`map_v1s_layer` (GluonCV ResNetV1s structural layer keys -> our layer names) and the exact
adjustments :func:`rescale_input_channels` (ImageNet-normalised input -> this project's ``x - mean``
in 0..255) and :func:`batchnorm_eps` (to compensate another BatchNorm eps in the variance).
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np
from mxnet.gluon import nn

from tusimple_duc.errors import CheckpointError

IMAGENET_STD = (0.229, 0.224, 0.225)   # RGB, of x / 255
PIXEL_RANGE = 255.0
_STEM_V1S = {"conv1.0": "conv1_1_3x3_s2", "conv1.1": "conv1_1_3x3_s2/bn",
             "conv1.3": "conv1_2_3x3", "conv1.4": "conv1_2_3x3/bn",
             "conv1.6": "conv1_3_3x3", "bn1": "conv1_3_3x3/bn"}
_BLOCK_V1S = {"conv1": "1x1_reduce", "bn1": "1x1_reduce/bn", "conv2": "3x3", "bn2": "3x3/bn",
              "conv3": "1x1_increase", "bn3": "1x1_increase/bn",
              "downsample.0": "1x1_proj", "downsample.1": "1x1_proj/bn"}


@dataclass(frozen=True)
class PretrainedReport:
    """What :func:`load_imagenet_pretrained` did.

    source, path: the source name and file. mapping: ``{source key: our parameter name}``.
    dropped: source keys not used (the classifier). untouched: our parameters not set (the head).
    """

    source: str
    path: str
    mapping: Dict[str, str]
    dropped: Tuple[str, ...]
    untouched: Tuple[str, ...]


def locate_model_file(source: str, root: Optional[str] = None) -> str:
    """The one ``<root>/<source>-<hash>.params`` (or ``<source>.params``) file."""
    root = os.path.expanduser(root or os.path.join(os.environ.get("MXNET_HOME", "~/.mxnet"), "models"))
    found = sorted(glob.glob(os.path.join(glob.escape(root), f"{source}-*.params"))
                   + glob.glob(os.path.join(glob.escape(root), f"{source}.params")))
    if not found:
        raise CheckpointError(f"{root}: no {source}-<hash>.params (download it with GluonCV, "
                              f"or pass the file's path)")
    if len(found) > 1:
        raise CheckpointError(f"{root}: several {source} files ({', '.join(map(os.path.basename, found))}); "
                              f"pass the file's path")
    return found[0]


def resnet_backbone(net: Any) -> Any:
    """The ResNet of a ``SegmentationNet`` (``net.backbone``) or of a ResNet comparison system
    (``net.encoder.backbone``); None when the net has none."""
    backbone = getattr(net, "backbone", None)
    return backbone if backbone is not None else getattr(getattr(net, "encoder", None), "backbone", None)


def map_v1s_layer(layer: str) -> Optional[str]:
    """Our layer name of a GluonCV ResNetV1s structural layer key (``layer3.0.conv2`` ->
    ``conv4_1_3x3``), None when it has none (see the module docstring's table)."""
    if layer in _STEM_V1S:
        return _STEM_V1S[layer]
    match = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", layer)
    if match and match[3] in _BLOCK_V1S:
        return f"conv{int(match[1]) + 1}_{int(match[2]) + 1}_{_BLOCK_V1S[match[3]]}"
    return None


def rescale_input_channels(values: Dict[str, np.ndarray], first_conv: str) -> None:
    """Divide the first conv's input channel c by ``255 * std_c`` (ImageNet input -> ours)."""
    if first_conv not in values:
        return  # reported as missing by the caller's comparison
    scale = np.array([PIXEL_RANGE * s for s in IMAGENET_STD], dtype=np.float64)
    weight = values[first_conv]
    values[first_conv] = (weight / scale[None, :, None, None]).astype(weight.dtype)


def batchnorm_eps(block: nn.HybridBlock) -> Dict[str, float]:
    """``{running_var parameter name: eps}`` of every BatchNorm inside ``block``."""
    found: Dict[str, float] = {}

    def visit(child: nn.HybridBlock) -> None:
        if isinstance(child, nn.BatchNorm):
            found[child.running_var.name] = float(child._kwargs["eps"])

    block.apply(visit)
    return found
