"""Multiply-add counts: hand-computed single layers, and whole networks against a second count
taken from the traced MXNet graph (shapes inferred by MXNet, not by ``flops``)."""
from __future__ import annotations

import json
from typing import Dict

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
import mxnet as mx
import pytest

from tusimple_duc.models import get_model, get_spec
from tusimple_duc.models.flops import (conv_macs, conv_output_size, count_macs, pool_output_size,
                                       taps_inside)


def brute_force_conv_macs(in_channels, out_channels, size, kernel, stride, padding, dilation):
    """Count the multiply-adds of a dense conv by visiting every output pixel and kernel tap."""
    count = 0
    out_row = 0
    while out_row * stride - padding + dilation * (kernel - 1) <= size[0] - 1 + padding:
        out_col = 0
        while out_col * stride - padding + dilation * (kernel - 1) <= size[1] - 1 + padding:
            for _tap in range(kernel * kernel):
                count += in_channels * out_channels
            out_col += 1
        out_row += 1
    return count


def test_single_conv_hand_computed():
    # 3 -> 8 channels, 3x3, stride 2, pad 1 on 10x12: output 5x6, 8*3*9*30 = 6480 MACs.
    assert conv_output_size(10, 3, 2, 1) == 5
    assert conv_output_size(12, 3, 2, 1) == 6
    assert conv_macs(3, 8, 3, 5, 6) == 6480
    assert brute_force_conv_macs(3, 8, (10, 12), 3, 2, 1, 1) == 6480


def test_dilated_conv_hand_computed():
    # 4 -> 5, 3x3 on 9x9. dilation 2 with padding 2 keeps 9x9: 5*4*9*81 = 14580, the same as
    # dilation 1 with padding 1; dilation 2 with padding 1 shrinks to 7x7: 5*4*9*49 = 8820.
    assert conv_output_size(9, 3, 1, 2, 2) == 9
    assert conv_output_size(9, 3, 1, 1, 2) == 7
    assert conv_macs(4, 5, 3, 9, 9) == 14580
    assert brute_force_conv_macs(4, 5, (9, 9), 3, 1, 2, 2) == 14580
    assert brute_force_conv_macs(4, 5, (9, 9), 3, 1, 1, 1) == 14580
    assert brute_force_conv_macs(4, 5, (9, 9), 3, 1, 1, 2) == 8820


def brute_force_taps_inside(positions, extent, kernel, stride, padding, dilation):
    return sum(1 for i in range(positions) for k in range(kernel)
               if 0 <= i * stride - padding + k * dilation < extent)


def test_taps_inside_the_image():
    # 3x3, pad 1, on 3x3: per axis the outer taps miss one of the 3 positions: 2 + 3 + 2 = 7,
    # so 49 of the 81 taps read the image.
    assert taps_inside(3, 3, 3, 1, 1, 1) == 7
    # rate 24 on 64 rows (the released head at 512x1024): 40 + 64 + 40 = 144 of 192
    assert taps_inside(64, 64, 3, 1, 24, 24) == 144
    for args in [(5, 10, 3, 2, 1, 1), (9, 9, 3, 1, 5, 5), (7, 9, 3, 1, 1, 2), (16, 32, 4, 2, 1, 1),
                 (4, 32, 16, 8, 4, 1), (1, 3, 3, 1, 1, 1), (6, 6, 3, 1, 30, 30)]:
        assert taps_inside(*args) == brute_force_taps_inside(*args), args


def test_sizes_agree_with_mxnet_operators():
    x = mx.nd.zeros((1, 2, 23, 17))
    for kernel, stride, padding, dilation in [(3, 2, 1, 1), (3, 1, 5, 5), (1, 2, 0, 1), (7, 2, 3, 1)]:
        w = mx.nd.zeros((1, 2, kernel, kernel))
        y = mx.nd.Convolution(x, w, kernel=(kernel, kernel), stride=(stride, stride),
                              pad=(padding, padding), dilate=(dilation, dilation), num_filter=1,
                              no_bias=True)
        assert y.shape[2:] == (conv_output_size(23, kernel, stride, padding, dilation),
                               conv_output_size(17, kernel, stride, padding, dilation))
    for padding, convention in [(0, "valid"), (1, "valid"), (0, "full")]:
        y = mx.nd.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(padding, padding),
                          pool_type="max", pooling_convention=convention)
        ceil = convention == "full"
        assert y.shape[2:] == (pool_output_size(23, 3, 2, padding, ceil),
                               pool_output_size(17, 3, 2, padding, ceil))


def _ints(text: str):
    return [int(v) for v in text.strip("()").split(",") if v.strip()]


def traced_macs(preset: str, height: int, width: int, **overrides) -> Dict[str, Dict[str, tuple]]:
    """``{kind: {layer: (MACs, MACs of taps inside the image)}}`` from the network's own MXNet
    graph: every Convolution, Deconvolution and BatchNorm node, shapes inferred by MXNet for a
    1x3xHxW input, taps inside the image counted one by one."""
    net = get_model(preset, **overrides)
    sym = net(mx.sym.var("data"))
    internals = sym.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=(1, 3, height, width))
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    weights = dict(zip(internals.list_arguments(), arg_shapes))
    nodes = json.loads(sym.tojson())["nodes"]
    counts: Dict[str, Dict[str, tuple]] = {"conv": {}, "deconv": {}, "batchnorm": {}}
    for node in nodes:
        op, name = node["op"], node["name"]
        if op not in ("Convolution", "Deconvolution", "BatchNorm"):
            continue
        layer = name[: -len("_fwd")]
        out = shapes[name + "_output"]
        if op == "BatchNorm":
            counts["batchnorm"][layer] = (out[1] * out[2] * out[3],) * 2
            continue
        source = nodes[node["inputs"][0][0]]["name"]
        x = shapes[source if source == "data" else source + "_output"]
        w = weights[layer + "_weight"]
        attrs = node["attrs"]
        kernel, stride = _ints(attrs["kernel"]), _ints(attrs.get("stride", "(1, 1)"))
        pad, dilate = _ints(attrs.get("pad", "(0, 0)")), _ints(attrs.get("dilate", "(1, 1)"))
        macs = w[0] * w[1] * w[2] * w[3]
        if op == "Convolution":   # w (C_out, C_in, k, k): every tap at every output pixel
            macs *= out[2] * out[3]
            valid = w[0] * w[1] * brute_force_taps_inside(out[2], x[2], kernel[0], stride[0], pad[0], dilate[0]) \
                * brute_force_taps_inside(out[3], x[3], kernel[1], stride[1], pad[1], dilate[1])
            counts["conv"][layer] = (macs, valid)
        else:                     # w (C_in, C_out, k, k): every tap at every input pixel
            macs *= x[2] * x[3]
            valid = w[0] * w[1] * brute_force_taps_inside(x[2], out[2], kernel[0], stride[0], pad[0], 1) \
                * brute_force_taps_inside(x[3], out[3], kernel[1], stride[1], pad[1], 1)
            counts["deconv"][layer] = (macs, valid)
    return counts


@pytest.mark.parametrize("preset,size,overrides", [
    ("tiny_duc_hdc", (64, 96), {}),
    ("tiny_baseline", (48, 80), {}),
    ("tiny_deconv", (64, 64), {}),
    ("tiny_deconv", (64, 64), {"deconv_mode": "two-step"}),
    ("tiny_duc_hdc", (64, 96), {"output_stride": 4, "cell_width": 1}),
    ("tiny_duc_hdc", (96, 64), {"output_stride": 16, "stride_in_1x1": False, "aspp": 0}),
])
def test_tiny_networks_match_traced_graph(preset, size, overrides):
    count = count_macs(get_spec(preset, **overrides), *size)
    traced = traced_macs(preset, *size, **overrides)
    for kind in ("conv", "deconv", "batchnorm"):
        ours = {layer.name: (layer.macs, layer.valid_macs) for layer in count.layers if layer.kind == kind}
        assert ours == traced[kind]
    assert count.gemm == sum(m for kind in ("conv", "deconv") for m, _ in traced[kind].values())
    assert count.gemm_valid == sum(v for kind in ("conv", "deconv") for _, v in traced[kind].values())
    assert count.total == count.gemm + sum(m for m, _ in traced["batchnorm"].values())


def test_released_network_at_1024x2048():
    count = count_macs("resnet101_duc_hdc_released", 1024, 2048)
    traced = traced_macs("resnet101_duc_hdc_released", 1024, 2048)
    assert count.gemm == sum(m for m, _ in traced["conv"].values())
    assert count.gemm_valid == sum(v for _, v in traced["conv"].values())
    assert count.of_kind("batchnorm") == sum(m for m, _ in traced["batchnorm"].values())
    by_name = {layer.name: layer.macs for layer in count.layers}
    # hand-computed: first conv 3 -> 64, 3x3, output 512x1024; one ASPP branch 2048 -> 304,
    # 3x3, on 128x256
    assert by_name["conv1_1_3x3_s2"] == 64 * 3 * 9 * 512 * 1024 == 905_969_664
    assert by_name["fc1_cityscapes_c3"] == 304 * 2048 * 9 * 128 * 256 == 183_609_851_904
    assert 2.15e12 < count.gemm < 2.25e12          # "about 2.2 T multiply-adds"
    assert count.output_shape == (304, 128, 256)
