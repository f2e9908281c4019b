"""Exact multiply-add (MAC) count of a :class:`~tusimple_duc.models.presets.ModelSpec`.

Computed from the spec alone (no network is built), layer by layer, with the same size
arithmetic as MXNet's operators. Any other built network (the comparison systems of
``models.systems``) is counted from its symbolic graph by :func:`count_network_macs`.

Conventions
-----------
* **Convolution**: ``C_out * C_in * k * k`` MACs per output pixel, every kernel tap counted,
  including taps that fall on zero padding (what a dense implementation executes).
  Dilation changes which inputs a tap reads, not how many taps there are: it changes the
  count only through the output size (``floor((H + 2p - d(k-1) - 1) / s) + 1``).
* **Transposed convolution** (deconv head): ``C_in * C_out * k * k`` MACs per *input* pixel
  (each input pixel scatters a ``k x k`` kernel to every output channel), i.e. the count of
  the convolution it is the transpose of; taps cropped by the padding are counted.
* **BatchNorm** is counted separately (``kind == 'batchnorm'``): at inference it is an affine
  ``y = a * x + b`` with folded constants, one MAC per output element. oneDNN fuses it into
  the preceding convolution, so :attr:`MacCount.gemm` (convolutions + deconvolutions) is the
  work the achieved GFLOP/s of a benchmark refers to.
* Biases, ReLU, residual and ASPP sums, pooling, the DUC rearrangement and the softmax are
  not multiply-adds and are not counted.
* ``valid_macs`` counts only the taps that read inside the input (convolution) or write inside
  the output (transposed convolution): what a kernel that skips padding computes. It matters for
  the head's large dilations (rate 24 on a 64 x 128 feature map leaves a third of the taps
  outside); throughput against ``macs`` is the conventional figure.

For the released network at 1024 x 2048: 2.206 T conv MACs (4.41 TFLOP) plus 2.0 G BatchNorm MACs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Tuple, Union

import mxnet as mx

from tusimple_duc.models.heads import aspp_rates, deconv_factors, matched_deconv_channels
from tusimple_duc.models.presets import ModelSpec, get_spec
from tusimple_duc.models.resnet import STAGES, BackboneConfig

Shape = Tuple[int, int, int]  # (C, H, W)
KINDS: Tuple[str, ...] = ("conv", "deconv", "batchnorm")


@dataclass(frozen=True)
class LayerCost:
    """One counted layer: ``name`` (the parameter-name stem, e.g. ``conv4_23_3x3``), ``kind``
    (``conv``, ``deconv``, ``batchnorm``), input and output shapes (C, H, W) of one image,
    ``macs`` and ``valid_macs`` (taps inside the image only) for one image."""

    name: str
    kind: str
    in_shape: Shape
    out_shape: Shape
    macs: int
    valid_macs: int


@dataclass(frozen=True)
class MacCount:
    """Per-layer MACs of a network on one ``(3, height, width)`` input."""

    height: int
    width: int
    layers: Tuple[LayerCost, ...]

    def of_kind(self, kind: str) -> int:
        """Total MACs of the layers of ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return sum(layer.macs for layer in self.layers if layer.kind == kind)

    @property
    def gemm(self) -> int:
        """Convolution + transposed-convolution MACs (BatchNorm excluded: folded by oneDNN)."""
        return self.of_kind("conv") + self.of_kind("deconv")

    @property
    def gemm_valid(self) -> int:
        """:attr:`gemm` counting only taps inside the image (``LayerCost.valid_macs``)."""
        return sum(layer.valid_macs for layer in self.layers if layer.kind in ("conv", "deconv"))

    @property
    def total(self) -> int:
        """All counted MACs, BatchNorm included."""
        return sum(layer.macs for layer in self.layers)

    @property
    def output_shape(self) -> Shape:
        """(C, H, W) of the last counted layer (the head's raw output)."""
        return self.layers[-1].out_shape


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """MXNet convolution output size: ``floor((size + 2p - d(k-1) - 1) / s) + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, padding: int, ceil: bool) -> int:
    """MXNet pooling output size ('valid' floor or 'full' ceil convention)."""
    span = size + 2 * padding - kernel
    return (-(-span // stride) if ceil else span // stride) + 1


def conv_macs(in_channels: int, out_channels: int, kernel: int, out_height: int,
              out_width: int) -> int:
    """``C_out * C_in * k^2 * H_out * W_out``."""
    return out_channels * in_channels * kernel * kernel * out_height * out_width


def taps_inside(positions: int, extent: int, kernel: int, stride: int = 1, padding: int = 0,
                dilation: int = 1) -> int:
    """Along one axis: pairs (position ``i`` in ``[0, positions)``, tap ``k``) whose target
    ``i * stride - padding + k * dilation`` lies in ``[0, extent)``.

    A convolution's output positions reading its input (``positions`` = output size, ``extent``
    = input size), or a transposed convolution's input positions writing its output.
    """
    total = 0
    for k in range(kernel):
        offset = k * dilation - padding
        first = max(0, -(offset // stride))                     # ceil(-offset / stride)
        last = min(positions - 1, (extent - 1 - offset) // stride)
        total += max(0, last - first + 1)
    return total


class _Counter:
    """Walks layers in forward order, appending :class:`LayerCost` entries."""

    def __init__(self, batchnorm: bool) -> None:
        self.layers: List[LayerCost] = []
        self.batchnorm = batchnorm

    def conv(self, name: str, x: Shape, channels: int, kernel: int, stride: int = 1,
             padding: int = 0, dilation: int = 1) -> Shape:
        """A convolution (+ its BatchNorm when counting a backbone layer)."""
        height = conv_output_size(x[1], kernel, stride, padding, dilation)
        width = conv_output_size(x[2], kernel, stride, padding, dilation)
        out = (channels, height, width)
        valid = (channels * x[0] * taps_inside(height, x[1], kernel, stride, padding, dilation)
                 * taps_inside(width, x[2], kernel, stride, padding, dilation))
        self.layers.append(LayerCost(name, "conv", x, out,
                                     conv_macs(x[0], channels, kernel, height, width), valid))
        if self.batchnorm:
            elements = channels * height * width
            self.layers.append(LayerCost(f"{name}/bn", "batchnorm", out, out, elements, elements))
        return out

    def deconv(self, name: str, x: Shape, channels: int, factor: int) -> Shape:
        """Transposed conv, kernel ``2f``, stride ``f``, padding ``f/2``: ``H -> f * H``."""
        kernel, padding = 2 * factor, factor // 2
        out = (channels, x[1] * factor, x[2] * factor)
        valid = (x[0] * channels * taps_inside(x[1], out[1], kernel, factor, padding)
                 * taps_inside(x[2], out[2], kernel, factor, padding))
        self.layers.append(LayerCost(name, "deconv", x, out,
                                     x[0] * channels * kernel * kernel * x[1] * x[2], valid))
        return out


def _stem(counter: _Counter, config: BackboneConfig, x: Shape) -> Shape:
    c = config.stem_channels
    if config.stem == "deep":
        x = counter.conv("conv1_1_3x3_s2", x, c[0], 3, stride=2, padding=1)
        x = counter.conv("conv1_2_3x3", x, c[1], 3, padding=1)
        x = counter.conv("conv1_3_3x3", x, c[2], 3, padding=1)
    else:
        x = counter.conv("conv1_7x7_s2", x, c[0], 7, stride=2, padding=3)
    padding, ceil = config.stem_pool_padding(), config.stem_pool_ceil()
    return (x[0], pool_output_size(x[1], 3, 2, padding, ceil),
            pool_output_size(x[2], 3, 2, padding, ceil))


def _stages(counter: _Counter, config: BackboneConfig, x: Shape) -> Shape:
    rates, strides = config.rates(), config.stage_strides()
    for stage in STAGES:
        mid = config.stage_mid_channels(stage)
        for i, rate in enumerate(rates[stage]):
            stride = strides[stage] if i == 0 else 1
            s1, s3 = (stride, 1) if config.stride_in_1x1 else (1, stride)
            name = f"conv{stage}_{i + 1}"
            y = counter.conv(f"{name}_1x1_reduce", x, mid, 1, stride=s1)
            y = counter.conv(f"{name}_3x3", y, mid, 3, stride=s3, padding=rate, dilation=rate)
            y = counter.conv(f"{name}_1x1_increase", y, 4 * mid, 1)
            if i == 0:
                counter.conv(f"{name}_1x1_proj", x, 4 * mid, 1, stride=stride)
            x = y
    return x


def _head(counter: _Counter, spec: ModelSpec, x: Shape) -> Shape:
    rates = aspp_rates(spec.aspp, spec.aspp_stride) or (1,)
    ratio = spec.output_stride // spec.cell_width
    if spec.head == "duc":
        channels = spec.num_classes * ratio * ratio
    elif spec.head == "bilinear":
        channels = spec.num_classes
    else:
        channels = spec.deconv_channels or matched_deconv_channels(
            x[0], spec.num_classes, spec.output_stride, spec.cell_width, spec.aspp,
            spec.deconv_mode)
    out = x
    for i, rate in enumerate(rates):
        out = counter.conv(f"{spec.head_name}_c{i}", x, channels, 3, padding=rate, dilation=rate)
    if spec.head == "deconv":
        factors = deconv_factors(spec.output_stride, spec.deconv_mode)
        for j, factor in enumerate(factors):
            width = spec.num_classes if j == len(factors) - 1 else channels
            out = counter.deconv(f"{spec.head_name}_deconv{j + 1}", out, width, factor)
    return out


def count_macs(spec: Union[str, ModelSpec], height: int, width: int) -> MacCount:
    """Per-layer multiply-adds of the network of ``spec`` on one ``(3, height, width)`` image.

    Parameters
    ----------
    spec : a preset name or a :class:`ModelSpec`.
    height, width : input size in pixels (multiples of the output stride).

    Returns
    -------
    :class:`MacCount`; ``.gemm`` = conv + deconv MACs, ``.gemm_valid`` the same without taps
    outside the image, ``.of_kind('batchnorm')`` = BN MACs.
    """
    spec = get_spec(spec)
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    counter = _Counter(batchnorm=True)
    config = spec.backbone_config()
    x = _stages(counter, config, _stem(counter, config, (3, height, width)))
    counter.batchnorm = False  # the head has biases, no BatchNorm
    _head(counter, spec, x)
    return MacCount(height, width, tuple(counter.layers))


def achieved_gflops(macs: int, seconds: float) -> float:
    """``2 * macs / seconds / 1e9`` (one multiply-add = 2 floating-point operations)."""
    return 2.0 * macs / seconds / 1e9


def count_network_macs(net: Any, height: int, width: int) -> MacCount:
    """Per-layer multiply-adds of any built network on one ``(3, height, width)`` image, read
    from its symbolic graph (the comparison systems, which have no :class:`ModelSpec`).

    Same conventions as :func:`count_macs` (every tap counted; ``valid_macs`` equals ``macs``
    here, the graph does not tell padding apart): a ``Convolution`` costs ``C_out * C_in/groups
    * kh * kw`` per output pixel, a ``Deconvolution`` its weight's size per input pixel, a
    ``BatchNorm`` one per element. Layers are named after their weight (``conv1_1``,
    ``upscore8``) and listed in graph order; the network must accept that input size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    symbol = net(mx.sym.var("data"))
    if isinstance(symbol, (list, tuple)):
        symbol = mx.sym.Group(list(symbol))
    internals = symbol.get_internals()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=(1, 3, height, width))
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    shapes.update(zip(internals.list_arguments(), arg_shapes))
    shapes.update(zip(internals.list_auxiliary_states(), aux_shapes))
    nodes = json.loads(symbol.tojson())["nodes"]

    def output_name(index: int) -> str:
        node = nodes[index]
        return node["name"] if node["op"] == "null" else f"{node['name']}_output"

    layers: List[LayerCost] = []
    for node in nodes:
        if node["op"] not in ("Convolution", "Deconvolution", "BatchNorm"):
            continue
        data_shape, weight_name = shapes[output_name(node["inputs"][0][0])], output_name(node["inputs"][1][0])
        out_shape = shapes[f"{node['name']}_output"]
        weight = shapes[weight_name]
        if node["op"] == "Convolution":
            kind, macs = "conv", out_shape[1] * out_shape[2] * out_shape[3] * weight[1] * weight[2] * weight[3]
        elif node["op"] == "Deconvolution":
            kind, macs = "deconv", data_shape[2] * data_shape[3] * weight[0] * weight[1] * weight[2] * weight[3]
        else:
            kind, macs = "batchnorm", out_shape[1] * out_shape[2] * out_shape[3]
        name = weight_name.rsplit("_", 1)[0]
        layers.append(LayerCost(name, kind, tuple(data_shape[1:]), tuple(out_shape[1:]), macs, macs))
    return MacCount(height, width, tuple(layers))
