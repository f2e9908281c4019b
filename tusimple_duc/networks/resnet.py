"""``get_resnet_hdc``: the original's ResNet-101-HDC backbone symbol, from the package's Gluon network.

The symbol is the backbone part of :func:`~tusimple_duc.io.symbol.training_symbol` of the
released network (same variable and node names as the released checkpoint), ending at the
last residual block's ReLU: (N, 3, H, W) -> (N, 2048, H/8, W/8). The original's layer
helpers (``Conv``, ``Conv_BN_AC``, ``ResidualFactory_*``) are not provided: the Gluon
blocks of :mod:`tusimple_duc.models.resnet` are the one definition of those layers.
"""
from __future__ import annotations

import json

import mxnet as mx

from tusimple_duc.io.symbol import training_symbol
from tusimple_duc.models.presets import get_model


def backbone_output(symbol: mx.sym.Symbol, head_name: str) -> mx.sym.Symbol:
    """The input of the first head convolution ``<head_name>_c0`` (or ``<head_name>``) of a training symbol."""
    nodes = json.loads(symbol.tojson())["nodes"]
    by_name = {node["name"]: node for node in nodes}
    head = by_name.get(f"{head_name}_c0") or by_name.get(head_name)
    if head is None:
        raise ValueError(f"symbol has no head convolution named {head_name}_c0 or {head_name}")
    source = nodes[head["inputs"][0][0]]["name"]
    return symbol.get_internals()[source + "_output"]


def get_resnet_hdc(bn_use_global_stats: bool = True) -> mx.sym.Symbol:
    """ResNet-101 with the released hybrid dilated convolutions (output stride 8), as a symbol.

    Parameters
    ----------
    bn_use_global_stats : frozen BatchNorm statistics (the original's module-level switch).

    Returns
    -------
    Symbol with input ``data`` (N, 3, H, W) and output (N, 2048, H/8, W/8).
    """
    net = get_model("resnet101_duc_hdc_released", bn_use_global_stats=bn_use_global_stats)
    return backbone_output(training_symbol(net), net.spec.head_name)
