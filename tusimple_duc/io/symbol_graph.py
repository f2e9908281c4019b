"""The network of a :class:`~tusimple_duc.models.presets.ModelSpec` as the original's MXNet graph.

:func:`head_scores_symbol` writes, with ``mx.sym``, the graph the original network code
(``get_symbol_duc_hdc`` over ``get_resnet_hdc``) builds for the released model, node for node:
the same node names, ops, input order and attribute values. The other presets (depths,
classic stem, output strides, schedules, heads) extend it with the same rules. Numbers and
rates come from the spec's own helpers (``BackboneConfig.rates`` etc.), so the graph and the
Gluon network are the same architecture; a test runs both on the same weights.

Node names (``<c>`` a conv name, ``<t>`` = ``{stage}_{block}``, blocks from 1):

=====================================  ==============================================================
``<c>``, ``<c>/bn``, ``<c>/relu``      Convolution (no bias, workspace 4096), BatchNorm (eps, momentum,
                                       fix_gamma, use_global_stats), ReLU (after the stem convs and
                                       the reduce and 3x3 convs of every block)
``conv1_1_3x3_s2`` .. ``conv1_3_3x3``  deep stem; ``conv1_7x7_s2`` classic stem
``pool1_3x3_s2``                       max-pool 3x3/s2 (``pad`` only for the classic stem,
                                       ``pooling_convention`` only when ``full``)
``conv<t>_1x1_proj``, ``_1x1_reduce``,  a block's convolutions (projection first, as the original)
``_3x3``, ``_1x1_increase``
``res<t>``                             ElementWiseSum ``(input, increase)`` of an identity block,
                                       ``(increase, proj)`` of a strided first block
``conv<t>``                            ElementWiseSum ``(increase, proj)`` of an unstrided first block
``res<t>_relu``                        the block's output
``<head>_c<i>``                        ASPP branch i: 3x3 Convolution with bias, pad = dilate
                                       (workspace 8192)
``<head>``                             ElementWiseSum of the branches (absent with no ASPP)
``<head>_deconv<j>``                   deconv head: Deconvolution j with bias (kernel 2f, stride f,
                                       pad f/2)
=====================================  ==============================================================

Users pick internal outputs by name, e.g. ``symbol.get_internals()['conv4_23_3x3/relu_output']``.
"""
from __future__ import annotations

from typing import Optional

import mxnet as mx

from tusimple_duc.models.heads import aspp_rates, deconv_factors, matched_deconv_channels
from tusimple_duc.models.presets import ModelSpec
from tusimple_duc.models.resnet import STAGES, BackboneConfig

BACKBONE_WORKSPACE = 4096
HEAD_WORKSPACE = 8192


def _conv_bn(x: mx.sym.Symbol, config: BackboneConfig, name: str, channels: int, kernel: int,
             stride: int = 1, pad: int = 0, dilate: int = 1, relu: bool = True) -> mx.sym.Symbol:
    """``<name>`` -> ``<name>/bn`` (-> ``<name>/relu``)."""
    conv = mx.sym.Convolution(data=x, num_filter=channels, kernel=(kernel, kernel), stride=(stride, stride),
                              pad=(pad, pad), dilate=(dilate, dilate), no_bias=True, name=name,
                              workspace=BACKBONE_WORKSPACE)
    bn = mx.sym.BatchNorm(data=conv, name=f"{name}/bn", eps=config.bn_eps,
                          use_global_stats=config.bn_use_global_stats, momentum=config.bn_momentum,
                          fix_gamma=config.bn_fix_gamma)
    return mx.sym.Activation(data=bn, act_type="relu", name=f"{name}/relu") if relu else bn


def _stem(x: mx.sym.Symbol, config: BackboneConfig) -> mx.sym.Symbol:
    channels = config.stem_channels
    if config.stem == "deep":
        x = _conv_bn(x, config, "conv1_1_3x3_s2", channels[0], 3, stride=2, pad=1)
        x = _conv_bn(x, config, "conv1_2_3x3", channels[1], 3, pad=1)
        x = _conv_bn(x, config, "conv1_3_3x3", channels[2], 3, pad=1)
        pool_pad = {}
    else:
        x = _conv_bn(x, config, "conv1_7x7_s2", channels[0], 7, stride=2, pad=3)
        pool_pad = {"pad": (1, 1)}
    convention = {"pooling_convention": "full"} if config.stem_pool_ceil() else {}
    return mx.sym.Pooling(data=x, pool_type="max", kernel=(3, 3), stride=(2, 2), name="pool1_3x3_s2",
                          **pool_pad, **convention)


def _block(x: mx.sym.Symbol, config: BackboneConfig, tag: str, mid: int, rate: int, stride: int,
           projection: bool) -> mx.sym.Symbol:
    """One bottleneck ``res<tag>_relu``: (N, C, H, W) -> (N, 4 mid, H/stride, W/stride)."""
    s1, s3 = (stride, 1) if config.stride_in_1x1 else (1, stride)
    proj: Optional[mx.sym.Symbol] = None
    if projection:
        proj = _conv_bn(x, config, f"conv{tag}_1x1_proj", 4 * mid, 1, stride=stride, relu=False)
    y = _conv_bn(x, config, f"conv{tag}_1x1_reduce", mid, 1, stride=s1)
    y = _conv_bn(y, config, f"conv{tag}_3x3", mid, 3, stride=s3, pad=rate, dilate=rate)
    y = _conv_bn(y, config, f"conv{tag}_1x1_increase", 4 * mid, 1, relu=False)
    if proj is None:
        total = mx.sym.ElementWiseSum(*[x, y], name=f"res{tag}")
    else:
        total = mx.sym.ElementWiseSum(*[y, proj], name=("res" if stride > 1 else "conv") + tag)
    return mx.sym.Activation(data=total, act_type="relu", name=f"res{tag}_relu")


def backbone_symbol(config: BackboneConfig, data: mx.sym.Symbol) -> mx.sym.Symbol:
    """``data`` (N, 3, H, W) -> ``res5_<n>_relu`` (N, config.out_channels, H/d, W/d)."""
    rates, strides = config.rates(), config.stage_strides()
    x = _stem(data, config)
    for stage in STAGES:
        mid = config.stage_mid_channels(stage)
        for index, rate in enumerate(rates[stage]):
            first = index == 0
            x = _block(x, config, f"{stage}_{index + 1}", mid, rate, strides[stage] if first else 1, first)
    return x


def _aspp(x: mx.sym.Symbol, spec: ModelSpec, channels: int) -> mx.sym.Symbol:
    """Branches ``<head>_c<i>`` summed as ``<head>``; no ASPP: one rate-1 branch, no sum."""
    rates = aspp_rates(spec.aspp, spec.aspp_stride)
    branches = [mx.sym.Convolution(data=x, num_filter=channels, kernel=(3, 3), pad=(rate, rate),
                                   dilate=(rate, rate), name=f"{spec.head_name}_c{i}",
                                   workspace=HEAD_WORKSPACE)
                for i, rate in enumerate(rates or (1,))]
    return mx.sym.ElementWiseSum(*branches, name=spec.head_name) if rates else branches[0]


def head_scores_symbol(spec: ModelSpec, data: mx.sym.Symbol) -> mx.sym.Symbol:
    """The head's raw scores: DUC (N, L*r*r, H/d, W/d), bilinear (N, L, H/d, W/d),
    deconv (N, L, H, W); ``data`` (N, 3, H, W)."""
    config = spec.backbone_config()
    features = backbone_symbol(config, data)
    if spec.head == "duc":
        ratio = spec.output_stride // spec.cell_width
        return _aspp(features, spec, spec.num_classes * ratio * ratio)
    if spec.head == "bilinear":
        return _aspp(features, spec, spec.num_classes)
    channels = spec.deconv_channels or matched_deconv_channels(
        config.out_channels, spec.num_classes, spec.output_stride, spec.cell_width, spec.aspp,
        spec.deconv_mode)
    x = _aspp(features, spec, channels)
    factors = deconv_factors(spec.output_stride, spec.deconv_mode)
    for j, factor in enumerate(factors):
        out = spec.num_classes if j == len(factors) - 1 else channels
        x = mx.sym.Deconvolution(data=x, num_filter=out, kernel=(2 * factor, 2 * factor),
                                 stride=(factor, factor), pad=(factor // 2, factor // 2), no_bias=False,
                                 name=f"{spec.head_name}_deconv{j + 1}", workspace=HEAD_WORKSPACE)
    return x
