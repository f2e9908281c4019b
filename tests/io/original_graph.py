"""The original network code's graph, restated with ``mx.sym`` independently of the package.

A restatement of ``get_symbol_duc_hdc`` over ``get_resnet_hdc`` of TuSimple-DUC
(``tusimple_duc/networks/network_duc_hdc.py`` and ``resnet.py``): the same layers, node
names, input order and attribute values, written out from the released facts only.
"""
from __future__ import annotations

import json
from typing import List, Tuple

import mxnet as mx

STAGE4_RATES = (2, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5)
STAGE5_RATES = (5, 9, 17)
BN_EPS = 1e-6
BN_MOMENTUM = 0.9995


def _conv_bn(x, name: str, filters: int, kernel: int, global_stats: bool, stride: int = 1,
             pad: int = 0, dilate: int = 1, relu: bool = True):
    conv = mx.sym.Convolution(data=x, num_filter=filters, kernel=(kernel, kernel), stride=(stride, stride),
                              pad=(pad, pad), dilate=(dilate, dilate), no_bias=True, name=name,
                              workspace=4096)
    bn = mx.sym.BatchNorm(data=conv, name=name + "/bn", eps=BN_EPS, use_global_stats=global_stats,
                          momentum=BN_MOMENTUM, fix_gamma=False)
    return mx.sym.Activation(data=bn, act_type="relu", name=name + "/relu") if relu else bn


def _block(x, tag: str, mid: int, rate: int, kind: str, global_stats: bool):
    """kind: 'o' projection stride 1 (sum 'conv<tag>'), 'd' projection stride 2, 'x' identity."""
    stride = 2 if kind == "d" else 1
    proj = None
    if kind in "od":
        proj = _conv_bn(x, f"conv{tag}_1x1_proj", 4 * mid, 1, global_stats, stride=stride, relu=False)
    y = _conv_bn(x, f"conv{tag}_1x1_reduce", mid, 1, global_stats, stride=stride)
    y = _conv_bn(y, f"conv{tag}_3x3", mid, 3, global_stats, pad=rate, dilate=rate)
    y = _conv_bn(y, f"conv{tag}_1x1_increase", 4 * mid, 1, global_stats, relu=False)
    if kind == "x":
        total = mx.sym.ElementWiseSum(*[x, y], name=f"res{tag}")
    else:
        total = mx.sym.ElementWiseSum(*[y, proj], name=("conv" if kind == "o" else "res") + tag)
    return mx.sym.Activation(data=total, act_type="relu", name=f"res{tag}_relu")


def original_symbol(label_num: int = 19, ignore_label: int = 255, bn_use_global_stats: bool = True,
                    aspp_num: int = 4, aspp_stride: int = 6, cell_cap: int = 16,
                    exp: str = "cityscapes") -> mx.sym.Symbol:
    """The released training graph (defaults: the released checkpoint)."""
    g = bn_use_global_stats
    x = mx.sym.Variable(name="data")
    x = _conv_bn(x, "conv1_1_3x3_s2", 64, 3, g, stride=2, pad=1)
    x = _conv_bn(x, "conv1_2_3x3", 64, 3, g, pad=1)
    x = _conv_bn(x, "conv1_3_3x3", 128, 3, g, pad=1)
    x = mx.sym.Pooling(data=x, pool_type="max", kernel=(3, 3), stride=(2, 2), name="pool1_3x3_s2")
    stages: List[Tuple[int, int, Tuple[int, ...], str]] = [
        (2, 64, (1, 1, 1), "o"), (3, 128, (1, 1, 1, 1), "d"), (4, 256, STAGE4_RATES, "o"),
        (5, 512, STAGE5_RATES, "o")]
    for stage, mid, rates, first in stages:
        for index, rate in enumerate(rates):
            x = _block(x, f"{stage}_{index + 1}", mid, rate, first if index == 0 else "x", g)
    branches = []
    for i in range(aspp_num):
        rate = (i + 1) * aspp_stride
        branches.append(mx.sym.Convolution(data=x, num_filter=cell_cap * label_num, kernel=(3, 3),
                                           pad=(rate, rate), dilate=(rate, rate),
                                           name=f"fc1_{exp}_c{i}", workspace=8192))
    total = mx.sym.ElementWiseSum(*branches, name=f"fc1_{exp}")
    scores = mx.sym.Reshape(data=total, shape=(0, label_num, -1), name="cls_score_reshape")
    return mx.sym.SoftmaxOutput(data=scores, multi_output=True, normalization="valid", use_ignore=True,
                                ignore_label=ignore_label, name="seg_loss")


def as_mxnet_011_json(symbol: mx.sym.Symbol) -> str:
    """The JSON as the released fork wrote it: node attributes under ``attr`` and a BatchNorm
    attribute ``fix_linear_trans`` that MXNet >= 1.0 rejects."""
    graph = json.loads(symbol.tojson())
    for node in graph["nodes"]:
        attrs = node.pop("attrs", None)
        if attrs is not None:
            node["attr"] = attrs
        if node["op"] == "BatchNorm":
            node["attr"]["fix_linear_trans"] = "False"
    graph["attrs"] = {"mxnet_version": ["int", 1100]}
    return json.dumps(graph, indent=2)
