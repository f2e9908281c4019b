"""The segmentation systems the paper compares with, as presets of one model family.

A :class:`SystemSpec` names a system and its sizes; :func:`build_system` assembles it from the
building blocks (``models.vgg``, ``models.features``, ``models.decoders``) into an
:class:`~tusimple_duc.models.decoders.base.EncoderDecoderNet`. DeepLab v2 is the project's own
``resnet101_baseline_ds8`` (ASPP-sum, bilinear), listed in :data:`PUBLISHED` beside the others.

==================  ============================================  =============================
system              encoder                                       decoder
==================  ============================================  =============================
``fcn``             VGG-16 ``fcn`` (pad 100, fc6 7x7)             FCN-32s/16s/8s skips, crops
``segnet``          VGG-16 ``segnet`` (BatchNorm, no fc)          unpooling with the indices
``dilation``        VGG-16 ``dilated`` (front-end, stride 8)      ``fc_final`` + context module
``deeplab_v1``      VGG-16 ``largefov`` (fc6 3x3 rate 12)         ``fc8``
``deeplab_v3``      ResNet, ``deeplab`` rates, output stride 16/8 ASPP + image pooling
``refinenet``       ResNet stages 2-5, strides 4-32 (no dilation) RefineNet blocks, stride 4
``pspnet``          deep-stem ResNet stages 4-5, stride 8         pyramid pooling (+ auxiliary)
``unet``            U-Net contracting path                        expanding path, crops
==================  ============================================  =============================

DeepLab v3 and RefineNet use the classic 7x7 stem with the stride on the 1x1 convs (Gluon's
``resnet101_v1`` ImageNet file; RefineNet's stride-32 stage 5 is exact only with it). PSPNet is
its authors' ``pspnet101_cityscapes_713.prototxt``: the deep stem (3x3/s2 64, 3x3 64, 3x3 128,
max-pool 3x3/s2 pad 1), the stride on the 3x3 conv of the bottleneck, BatchNorm eps 1e-5, every
block of stage 4 at rate 2 and of stage 5 at rate 4 (``dilation_schedule = deeplab``); with
``dilation_schedule = gluoncv`` it is GluonCV's ``PSPNet`` (whose first block of stages 4 and 5
runs at rate 1 and 2) and loads its model-zoo files (:mod:`tusimple_duc.io.pretrained_pspnet`).
``auxiliary`` builds PSPNet's training network (forward ``(scores, auxiliary_scores)``, loss
weights ``(1, aux_loss_weight)``); both networks have the same parameters.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Tuple, Union

from tusimple_duc.errors import ConfigError
from tusimple_duc.models.decoders.base import EncoderDecoderNet
from tusimple_duc.models.decoders.context import DilationDecoder
from tusimple_duc.models.decoders.deeplab import ASPPv3Decoder, LargeFOVDecoder
from tusimple_duc.models.decoders.fcn import FCN_VARIANTS, FCNDecoder
from tusimple_duc.models.decoders.pspnet import AUXILIARY_WEIGHT, PSPDecoder
from tusimple_duc.models.decoders.refinenet import RefineNetDecoder
from tusimple_duc.models.decoders.segnet import SegNetDecoder
from tusimple_duc.models.decoders.unet import UNetDecoder, UNetEncoder
from tusimple_duc.models.features import ResNetFeatures
from tusimple_duc.models.resnet import DEPTH_BLOCKS, BackboneConfig, ResNetBackbone
from tusimple_duc.models.vgg import VGG16Backbone

SYSTEMS: Tuple[str, ...] = ("fcn", "segnet", "dilation", "deeplab_v1", "deeplab_v3", "refinenet",
                            "pspnet", "unet")
VGG_VARIANT: Dict[str, str] = {"fcn": "fcn", "segnet": "segnet", "dilation": "dilated",
                               "deeplab_v1": "largefov"}
CONTEXTS: Tuple[str, ...] = ("none", "basic", "large", "basic10")
#: Output stride of the ResNet encoder per system (deeplab_v3: ``output_stride`` 16 or 8).
RESNET_STRIDE: Dict[str, int] = {"refinenet": 16, "pspnet": 8}
#: Dilation schedules (``models.hdc``) of the dilated ResNet systems (pspnet, deeplab_v3).
RESNET_SCHEDULES: Tuple[str, ...] = ("deeplab", "gluoncv")
#: BatchNorm eps of PSPNet's encoder (the authors' Caffe BN layer and GluonCV: 1e-5).
PSPNET_BN_EPS = 1e-5


class SystemSpecError(ConfigError, ValueError):
    """A :class:`SystemSpec` field is invalid (message names the field)."""


@dataclass(frozen=True)
class SystemSpec:
    """Architecture of a comparison system (defaults: full size, 19 classes).

    system: one of :data:`SYSTEMS`. num_classes: L.
    vgg_width, fc_channels: VGG-16 conv width (64) and fc6/fc7 channels (0: the variant's).
    fcn_variant: ``32s``, ``16s``, ``8s``. context: Dilation's module ``none``/``basic``/``large``
        (Dilation8's) or ``basic10`` (Dilation10's, extended for Cityscapes).
    depth, blocks_per_stage, width: ResNet size (``blocks_per_stage`` overrides ``depth``).
    output_stride: DeepLab v3's (16 or 8); the other systems have a fixed one.
    decoder_channels: 0 = the system's width (v3 256, PSPNet 512, RefineNet 256/256/256/512);
        else every decoder width (RefineNet: the last block twice that).
    unet_width, unet_depth, unet_padded: U-Net's first width, pooling levels, "same" convs.
    auxiliary, aux_loss_weight: PSPNet's auxiliary output in the forward, and its loss weight.
    bn_use_global_stats, bn_momentum: the ResNet encoder's BatchNorm (frozen statistics, as
        ``ModelSpec``; from-scratch training lets them learn).
    dilation_schedule: rates of the dilated ResNet (pspnet, deeplab_v3), one of
        :data:`RESNET_SCHEDULES`: ``deeplab`` (the authors') or ``gluoncv`` (GluonCV's layout).
    """

    system: str
    num_classes: int = 19
    vgg_width: int = 64
    fc_channels: int = 0
    fcn_variant: str = "8s"
    context: str = "basic"
    depth: int = 101
    blocks_per_stage: Optional[Tuple[int, int, int, int]] = None
    width: int = 64
    output_stride: int = 16
    decoder_channels: int = 0
    unet_width: int = 64
    unet_depth: int = 4
    unet_padded: bool = False
    auxiliary: bool = False
    aux_loss_weight: float = AUXILIARY_WEIGHT
    bn_use_global_stats: bool = True
    bn_momentum: float = 0.9995
    dilation_schedule: str = "deeplab"

    def __post_init__(self) -> None:
        checks = [("system", self.system in SYSTEMS, f"one of {', '.join(SYSTEMS)}"),
                  ("fcn_variant", self.fcn_variant in FCN_VARIANTS, f"one of {', '.join(FCN_VARIANTS)}"),
                  ("context", self.context in CONTEXTS, f"one of {', '.join(CONTEXTS)}"),
                  ("depth", self.depth in DEPTH_BLOCKS, f"one of {', '.join(map(str, DEPTH_BLOCKS))}"),
                  ("output_stride", self.output_stride in (8, 16), "8 or 16"),
                  ("aux_loss_weight", self.aux_loss_weight >= 0, "a number >= 0"),
                  ("bn_use_global_stats", isinstance(self.bn_use_global_stats, bool), "True or False"),
                  ("bn_momentum", 0 <= self.bn_momentum <= 1, "a number in [0, 1]"),
                  ("dilation_schedule", self.dilation_schedule in RESNET_SCHEDULES
                   and (self.system in ("pspnet", "deeplab_v3") or self.dilation_schedule == "deeplab"),
                   f"one of {', '.join(RESNET_SCHEDULES)} (pspnet, deeplab_v3; the others: deeplab)")]
        checks += [(name, isinstance(getattr(self, name), int) and getattr(self, name) >= low, f"an integer >= {low}")
                   for name, low in (("num_classes", 1), ("vgg_width", 1), ("fc_channels", 0), ("width", 1),
                                     ("decoder_channels", 0), ("unet_width", 1), ("unet_depth", 1))]
        if self.blocks_per_stage is not None:
            blocks = tuple(self.blocks_per_stage)
            checks.append(("blocks_per_stage", len(blocks) == 4 and min(blocks) >= 1, "4 block counts >= 1"))
            object.__setattr__(self, "blocks_per_stage", blocks)
        for name, ok, expected in checks:
            if not ok:
                raise SystemSpecError(f"SystemSpec.{name}: must be {expected}, got {getattr(self, name)!r}")

    @property
    def prediction_stride(self) -> int:
        """s of the scores ``(N, L, H/s, W/s)``: 1 (fcn, segnet, unet), 8, 4 (refinenet) or v3's stride."""
        strides = {"fcn": 1, "segnet": 1, "unet": 1, "dilation": 8, "deeplab_v1": 8, "pspnet": 8,
                   "refinenet": 4, "deeplab_v3": self.output_stride}
        return strides[self.system]

    def backbone_config(self) -> BackboneConfig:
        """The ResNet encoder of ``deeplab_v3``, ``refinenet`` and ``pspnet`` (see the module docstring)."""
        stride = RESNET_STRIDE.get(self.system, self.output_stride)
        common = dict(blocks_per_stage=self.blocks_per_stage or DEPTH_BLOCKS[self.depth], width=self.width,
                      output_stride=stride, bn_use_global_stats=self.bn_use_global_stats,
                      bn_momentum=self.bn_momentum)
        if self.system == "pspnet":
            return BackboneConfig(stem="deep", stem_pool_padded=True, stride_in_1x1=False, bn_eps=PSPNET_BN_EPS,
                                  dilation_schedule=self.dilation_schedule, **common)
        return BackboneConfig(stem="classic", stride_in_1x1=True,
                              dilation_schedule="none" if self.system == "refinenet" else self.dilation_schedule,
                              **common)


def build_system(spec: SystemSpec) -> EncoderDecoderNet:
    """The uninitialised network of ``spec`` (see the module docstring)."""
    L, system, channels = spec.num_classes, spec.system, spec.decoder_channels
    if system in VGG_VARIANT:
        encoder = VGG16Backbone(VGG_VARIANT[system], spec.vgg_width, spec.fc_channels)
        ends = encoder.endpoint_channels
        decoder = {"fcn": lambda: FCNDecoder(L, ends, spec.fcn_variant),
                   "segnet": lambda: SegNetDecoder(L, ends),
                   "dilation": lambda: DilationDecoder(L, ends[0], None if spec.context == "none" else spec.context),
                   "deeplab_v1": lambda: LargeFOVDecoder(L, ends[0])}[system]()
    elif system == "unet":
        encoder = UNetEncoder(3, spec.unet_width, spec.unet_depth, spec.unet_padded)
        decoder = UNetDecoder(L, encoder.endpoint_channels, spec.unet_padded)
    else:
        backbone = ResNetBackbone(spec.backbone_config())
        stages = {"deeplab_v3": (5,), "pspnet": (4, 5), "refinenet": (2, 3, 4, 5)}[system]
        encoder = ResNetFeatures(backbone, stages, stage5_stride=2 if system == "refinenet" else 1)
        ends = encoder.stage_channels
        if system == "deeplab_v3":
            decoder = ASPPv3Decoder(L, ends[0], spec.output_stride, channels=channels or 256)
        elif system == "pspnet":
            decoder = PSPDecoder(L, ends, spec.auxiliary, channels=channels or 512)
            decoder.auxiliary_weight = spec.aux_loss_weight
        else:
            widths = (channels, channels, channels, 2 * channels) if channels else (256, 256, 256, 512)
            decoder = RefineNetDecoder(L, ends, widths)
    return EncoderDecoderNet(encoder, decoder, spec)


# ---------------------------------------------------------------------------- presets
_TINY_VGG = dict(vgg_width=4, fc_channels=16)
_TINY_RESNET = dict(blocks_per_stage=(1, 1, 2, 1), width=8, decoder_channels=16)

SYSTEM_PRESETS: Dict[str, SystemSpec] = {
    "fcn32s_vgg16": SystemSpec("fcn", fcn_variant="32s"),
    "fcn16s_vgg16": SystemSpec("fcn", fcn_variant="16s"),
    "fcn8s_vgg16": SystemSpec("fcn", fcn_variant="8s"),
    "segnet_vgg16": SystemSpec("segnet"),
    "dilation8_vgg16_frontend": SystemSpec("dilation", context="none"),
    "dilation8_vgg16_context": SystemSpec("dilation", context="basic"),
    "dilation8_vgg16_context_large": SystemSpec("dilation", context="large"),
    "dilation10_vgg16": SystemSpec("dilation", context="basic10"),
    "deeplabv1_largefov_vgg16": SystemSpec("deeplab_v1"),
    "deeplabv3_resnet101": SystemSpec("deeplab_v3", output_stride=16),
    "deeplabv3_resnet101_os8": SystemSpec("deeplab_v3", output_stride=8),
    "refinenet_resnet101": SystemSpec("refinenet"),
    "pspnet_resnet101": SystemSpec("pspnet"),
    "unet": SystemSpec("unet"),
    "unet_padded": SystemSpec("unet", unet_padded=True),
    # Tiny family (same code paths): tests and the comparison in miniature.
    "tiny_fcn8s": SystemSpec("fcn", **_TINY_VGG),
    "tiny_segnet": SystemSpec("segnet", vgg_width=4),
    "tiny_dilation": SystemSpec("dilation", **_TINY_VGG),
    "tiny_deeplabv1": SystemSpec("deeplab_v1", **_TINY_VGG),
    "tiny_deeplabv3": SystemSpec("deeplab_v3", output_stride=8, **_TINY_RESNET),
    "tiny_refinenet": SystemSpec("refinenet", **_TINY_RESNET),
    "tiny_pspnet": SystemSpec("pspnet", **_TINY_RESNET),
    "tiny_unet": SystemSpec("unet", unet_width=4, unet_padded=True),
}


class Published(NamedTuple):
    """A published result of a system: ``dataset`` (``VOC 2012 test``, ``Cityscapes test``),
    mIoU (%), what it includes (``note``) and where it is quoted from (``source``). Only the
    numbers of the project's source material (the DUC paper and its related-systems facts):
    DeepLab v1 LargeFOV and DeepLab v3 have none there."""

    system: str
    preset: str
    dataset: str
    miou: float
    note: str
    source: str


PUBLISHED: Tuple[Published, ...] = (
    Published("FCN-8s", "fcn8s_vgg16", "VOC 2012 test", 62.2, "67.2 with more momentum", "FCN paper"),
    Published("FCN-8s", "fcn8s_vgg16", "Cityscapes test", 65.3, "", "DUC paper Table 4"),
    Published("SegNet", "segnet_vgg16", "VOC 2012 test", 59.9, "", "SegNet paper"),
    Published("Dilation front-end", "dilation8_vgg16_frontend", "VOC 2012 test", 71.3, "", "Dilation paper"),
    Published("Dilation + context", "dilation8_vgg16_context", "VOC 2012 test", 73.5,
              "74.7 + CRF, 75.3 + CRF-RNN", "Dilation paper"),
    Published("Dilation10", "dilation10_vgg16", "Cityscapes test", 67.1, "", "DUC paper Table 4"),
    Published("DeepLab v2", "resnet101_baseline_ds8", "VOC 2012 test", 79.7, "ResNet-101, ASPP, CRF",
              "DUC paper"),
    Published("DeepLab v2", "resnet101_baseline_ds8", "Cityscapes test", 70.4, "CRF", "DUC paper Table 4"),
    Published("RefineNet", "refinenet_resnet101", "VOC 2012 test", 84.2, "CRF, multi-scale, COCO",
              "RefineNet paper"),
    Published("RefineNet", "refinenet_resnet101", "Cityscapes test", 73.6, "", "RefineNet paper"),
    Published("PSPNet", "pspnet_resnet101", "VOC 2012 test", 85.4, "COCO, multi-scale; 82.6 without COCO",
              "PSPNet paper"),
    Published("PSPNet", "pspnet_resnet101", "Cityscapes test", 78.4, "fine only", "PSPNet paper"),
    Published("DUC-HDC", "resnet101_duc_hdc_released", "Cityscapes test", 80.1, "fine + coarse, better network",
              "DUC paper Table 4"),
)


def get_system_spec(name_or_spec: Union[str, SystemSpec], **overrides) -> SystemSpec:
    """A system preset (by name) or spec with fields replaced by ``overrides``."""
    if isinstance(name_or_spec, SystemSpec):
        spec = name_or_spec
    elif name_or_spec in SYSTEM_PRESETS:
        spec = SYSTEM_PRESETS[name_or_spec]
    else:
        raise SystemSpecError(f"unknown system preset {name_or_spec!r} (known: {', '.join(SYSTEM_PRESETS)})")
    fields = {f.name for f in dataclasses.fields(SystemSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise SystemSpecError(f"unknown SystemSpec field(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    return dataclasses.replace(spec, **overrides) if overrides else spec


def published_for(preset: str) -> Tuple[Published, ...]:
    """The published results of the system a preset builds (empty when none)."""
    return tuple(row for row in PUBLISHED if row.preset == preset)
