"""VGG-16 backbone for the systems the paper compares with (FCN, SegNet, Dilation, DeepLab v1).

The layer layout is the one of Gluon's model zoo ``mxnet.gluon.model_zoo.vision.vgg16``
(13 3x3 convs with bias in five stages of 2, 2, 3, 3, 3 convs, widths 64/128/256/512/512,
then fc6/fc7 of 4096), so its ImageNet file ``vgg16-*.params`` (and ``vgg16_bn`` for
``segnet``) maps onto this backbone by :func:`vgg16_model_zoo_arrays`. fc6/fc7 are
convolutions ("convolutionalised", FCN section 3.1). Input ``(N, 3, H, W)`` mean-subtracted
RGB; every conv is followed by ReLU.

Variants (``VGG16Backbone(variant)``), each with its system's own geometry:

=========== ================================================================ ===============
variant     what differs from the classification network                      endpoints
=========== ================================================================ ===============
``fcn``     FCN (Long et al.): conv1_1 padding 100, five 2x2/2 max-pools       pool3, pool4,
            rounding up (Caffe), fc6 7x7 without padding, fc7 1x1, 4096 each,  fc7
            dropout 0.5 after both. The decoder crops back to H x W.
``dilated`` Yu & Koltun front-end: pool4 and pool5 removed, conv5 dilation 2,  fc7
            fc6 7x7 dilation 4, fc7 1x1 (4096), dropout 0.5. Output
            ``ceil(H/8)`` (three 2x2/2 pools rounding up). The original pads the
            input by 186 px (reflection) and uses unpadded convs; here every
            conv is zero-padded to keep its size ("same").
``largefov`` DeepLab v1 LargeFOV: pools 1-3 3x3/2 padding 1, pools 4-5 3x3/1   fc7
            padding 1 (all rounding up, Caffe), conv5 dilation 2, fc6 3x3
            dilation 12 with 1024 channels, fc7 1x1 1024, dropout 0.5. Output
            ``floor(H/2) + 1`` three times (321 -> 161 -> 81 -> 41).
``segnet``  SegNet encoder: BatchNorm after every conv (``<conv>_bn``), five     conv1_2,
            2x2/2 max-pools rounding up, no fc layers. The endpoints are the    conv2_2,
            maps *before* each pool: the decoder pools them itself and keeps     conv3_3,
            the argmax positions (:mod:`~tusimple_duc.models.decoders.segnet`).  conv4_3,
                                                                                conv5_3
=========== ================================================================ ===============

``width`` scales the conv widths (64: 64/128/256/512/512) and ``fc_channels`` the fc layers
(0: the variant's 4096 or 1024), for tiny test networks.

Parameter names (root prefix ``''``): ``conv{s}_{i}_weight|bias``, ``fc6_weight|bias``,
``fc7_weight|bias`` (the Caffe / model-zoo names), ``conv{s}_{i}_bn_gamma|beta|running_mean|
running_var`` (``segnet``, SegNet's Caffe names).
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Tuple

import numpy as np
from mxnet.gluon import HybridBlock, nn

VARIANTS: Tuple[str, ...] = ("fcn", "dilated", "largefov", "segnet")
STAGE_CONVS: Tuple[int, ...] = (2, 2, 3, 3, 3)
STAGE_WIDTH_FACTORS: Tuple[int, ...] = (1, 2, 4, 8, 8)
ENDPOINTS: Dict[str, Tuple[str, ...]] = {
    "fcn": ("pool3", "pool4", "fc7"), "dilated": ("fc7",), "largefov": ("fc7",),
    "segnet": ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")}
FC_CHANNELS: Dict[str, int] = {"fcn": 4096, "dilated": 4096, "largefov": 1024, "segnet": 0}
#: fc6 as (kernel, dilation, padding) per variant.
FC6_GEOMETRY: Dict[str, Tuple[int, int, int]] = {
    "fcn": (7, 1, 0), "dilated": (7, 4, 12), "largefov": (3, 12, 12)}


class VGG16Backbone(HybridBlock):
    """VGG-16 variant: ``(N, 3, H, W) -> tuple of endpoint maps`` (see the module docstring).

    Attributes: ``variant``, ``endpoint_names``, ``endpoint_channels`` (channels of each
    endpoint, same order), ``output_stride`` (stride of the last endpoint: fcn 32, dilated
    and largefov 8, segnet 16 for conv5_3).
    """

    def __init__(self, variant: str = "fcn", width: int = 64, fc_channels: int = 0) -> None:
        super().__init__(prefix="")
        if variant not in VARIANTS:
            raise ValueError(f"VGG-16 variant must be one of {VARIANTS}, got {variant!r}")
        if width < 1 or fc_channels < 0:
            raise ValueError(f"width must be >= 1 and fc_channels >= 0, got {width}, {fc_channels}")
        self.variant = variant
        self.endpoint_names = ENDPOINTS[variant]
        widths = [width * f for f in STAGE_WIDTH_FACTORS]
        fc = fc_channels or FC_CHANNELS[variant]
        channels = {f"conv{s + 1}_{STAGE_CONVS[s]}": widths[s] for s in range(5)}
        channels.update({f"pool{s + 1}": widths[s] for s in range(5)}, fc7=fc)
        self.endpoint_channels = tuple(channels[name] for name in self.endpoint_names)
        self.output_stride = {"fcn": 32, "dilated": 8, "largefov": 8, "segnet": 16}[variant]
        with self.name_scope():
            self.stages = nn.HybridSequential(prefix="")
            with self.stages.name_scope():
                in_channels = 3
                for s in range(5):
                    self.stages.add(self._stage(s, in_channels, widths[s]))
                    in_channels = widths[s]
            self.fc = None if variant == "segnet" else self._fc_layers(in_channels, fc)

    def _stage(self, s: int, in_channels: int, channels: int) -> nn.HybridSequential:
        """Stage ``s + 1``: its convs (+ BN) + ReLU; the pool is applied in the forward."""
        dilation = 2 if s == 4 and self.variant in ("dilated", "largefov") else 1
        stage = nn.HybridSequential(prefix="")
        with stage.name_scope():
            for i in range(STAGE_CONVS[s]):
                name = f"conv{s + 1}_{i + 1}"
                padding = 100 if self.variant == "fcn" and name == "conv1_1" else dilation
                stage.add(nn.Conv2D(channels, 3, padding=padding, dilation=dilation,
                                    in_channels=in_channels if i == 0 else channels,
                                    prefix=f"{name}_"))
                if self.variant == "segnet":
                    stage.add(nn.BatchNorm(in_channels=channels, prefix=f"{name}_bn_"))
                stage.add(nn.Activation("relu"))
        return stage

    def _fc_layers(self, in_channels: int, fc: int) -> nn.HybridSequential:
        kernel, dilation, padding = FC6_GEOMETRY[self.variant]
        layers = nn.HybridSequential(prefix="")
        with layers.name_scope():
            layers.add(nn.Conv2D(fc, kernel, padding=padding, dilation=dilation,
                                 in_channels=in_channels, prefix="fc6_"),
                       nn.Activation("relu"), nn.Dropout(0.5),
                       nn.Conv2D(fc, 1, in_channels=fc, prefix="fc7_"),
                       nn.Activation("relu"), nn.Dropout(0.5))
        return layers

    def _pool(self, F, x, s: int):
        """Pool after stage ``s + 1`` (None: removed in this variant)."""
        if self.variant == "largefov":
            stride = 2 if s < 3 else 1
            return F.Pooling(x, kernel=(3, 3), stride=(stride, stride), pad=(1, 1),
                             pool_type="max", pooling_convention="full")
        if self.variant == "dilated" and s >= 3:
            return x
        return F.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max",
                         pooling_convention="full")

    def hybrid_forward(self, F, x):
        found = {}
        for s, stage in enumerate(self.stages):
            x = stage(x)
            found[f"conv{s + 1}_{STAGE_CONVS[s]}"] = x
            if s == 4 and self.fc is None:
                break  # segnet: no pool5 (unused; too small to pool at small inputs)
            x = self._pool(F, x, s)
            found[f"pool{s + 1}"] = x
        if self.fc is not None:
            found["fc7"] = self.fc(x)
        return tuple(found[name] for name in self.endpoint_names)


def output_size(variant: str, size: int) -> int:
    """Spatial size of the last endpoint for an input side ``size`` (pixels).

    fcn: ``size + 198`` through five ceil 2x2/2 pools, then fc6 7x7 valid (-6); dilated:
    ``ceil(size/8)``; largefov: ``floor(s/2) + 1`` three times; segnet: four ceil halvings.
    """
    ceil_half = lambda s: -(-s // 2)  # noqa: E731
    if variant == "fcn":
        s = size + 198
        for _ in range(5):
            s = ceil_half(s)
        return s - 6
    if variant == "largefov":
        for _ in range(3):
            size = size // 2 + 1
        return size
    halvings = {"dilated": 3, "segnet": 4}[variant]
    for _ in range(halvings):
        size = ceil_half(size)
    return size


# ------------------------------------------------------------------ ImageNet (model zoo)
_STRUCTURAL = re.compile(r"features\.(\d+)\.(\w+)$")
_LEGACY = re.compile(r"vgg\d+_(conv|batchnorm|dense)(\d+)_(\w+)$")


def _model_zoo_layers(arrays: Mapping[str, object]) -> Tuple[List[Dict[str, object]],
                                                             List[Dict[str, object]],
                                                             List[Dict[str, object]]]:
    """Group a model-zoo VGG file into (convs, batchnorms, denses), each in network order.

    Accepts the structural keys of ``save_parameters`` (``features.0.weight``) and the legacy
    parameter names (``vgg0_conv0_weight``); the classifier (``output.*``) is left out.
    """
    groups: Dict[Tuple[int, str], Dict[str, object]] = {}
    for key, value in arrays.items():
        structural, legacy = _STRUCTURAL.match(key), _LEGACY.search(key)
        if structural:
            order, leaf = int(structural.group(1)), structural.group(2)
            groups.setdefault((order, ""), {})[leaf] = value
        elif legacy:
            kind, order, leaf = legacy.group(1), int(legacy.group(2)), legacy.group(3)
            groups.setdefault((order, kind), {})[leaf] = value
    convs, norms, denses = [], [], []
    for key in sorted(groups, key=lambda k: (k[1] != "", k[1], k[0])):
        layer = groups[key]
        if "gamma" in layer:
            norms.append(layer)
        elif "weight" in layer:
            (convs if len(np.shape(layer["weight"])) == 4 else denses).append(layer)
    return convs, norms, denses


def vgg16_model_zoo_arrays(arrays: Mapping[str, object], backbone: VGG16Backbone
                           ) -> Dict[str, np.ndarray]:
    """Map a Gluon model-zoo ``vgg16`` (``vgg16_bn`` for ``segnet``) file onto ``backbone``.

    ``arrays``: ``{key: NDArray or ndarray}`` as ``mx.nd.load`` returns it. Returns
    ``{our parameter name: ndarray}``. Convs (and BatchNorms) map in order; fc6/fc7 become
    convolutions: fcn/dilated reshape fc6 ``(4096, 25088)`` to ``(4096, 512, 7, 7)``;
    largefov decimates like DeepLab (fc6: every 4th filter and every 3rd tap, ``(1024, 512,
    3, 3)``; fc7: every 4th filter and input, ``(1024, 1024, 1, 1)``). Shapes must match the
    backbone's (full width); the classifier is dropped. The input scaling of the first conv
    (model zoo: ``(x/255 - mean)/std``) is the caller's.
    """
    convs, norms, denses = _model_zoo_layers(arrays)
    as_np = lambda v: v.asnumpy() if hasattr(v, "asnumpy") else np.asarray(v)  # noqa: E731
    names = [f"conv{s + 1}_{i + 1}" for s in range(5) for i in range(STAGE_CONVS[s])]
    if len(convs) != len(names):
        raise ValueError(f"expected {len(names)} VGG-16 convs in the file, found {len(convs)}")
    out: Dict[str, np.ndarray] = {}
    for name, layer in zip(names, convs):
        out[f"{name}_weight"] = as_np(layer["weight"])
        out[f"{name}_bias"] = as_np(layer["bias"])
    if backbone.variant == "segnet":
        if len(norms) != len(names):
            raise ValueError(f"segnet needs the vgg16_bn file: {len(norms)} BatchNorms found")
        for name, layer in zip(names, norms):
            for leaf in ("gamma", "beta", "running_mean", "running_var"):
                out[f"{name}_bn_{leaf}"] = as_np(layer[leaf])
        return out
    if len(denses) < 2:
        raise ValueError(f"expected the fc6 and fc7 dense layers in the file, found {len(denses)}")
    fc6_w, fc7_w = as_np(denses[0]["weight"]), as_np(denses[1]["weight"])
    fc6_b, fc7_b = as_np(denses[0]["bias"]), as_np(denses[1]["bias"])
    fc6_w = fc6_w.reshape(fc6_w.shape[0], -1, 7, 7)
    if backbone.variant == "largefov":
        fc6_w, fc6_b = fc6_w[::4, :, ::3, ::3], fc6_b[::4]
        fc7_w, fc7_b = fc7_w[::4, ::4], fc7_b[::4]
    out.update(fc6_weight=np.ascontiguousarray(fc6_w), fc6_bias=fc6_b,
               fc7_weight=np.ascontiguousarray(fc7_w.reshape(*fc7_w.shape, 1, 1)), fc7_bias=fc7_b)
    return out
