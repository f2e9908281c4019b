"""The systems compared, their tiny training networks and their full-size presets.

Every entry trains a tiny network of its family (``tiny_*`` presets) from scratch, BatchNorm
learning (momentum 0.9), and is costed (parameters, multiply-adds, latency, memory) at full size.
Training-time pieces as the publications: PSPNet with its auxiliary loss (weight 0.4), DeepLab v2
with multi-scale inputs (1, 0.75, 0.5; ``models.multi_scale``), FCN's fixed bilinear upsampling,
the context module's identity initialisation. Simplifications (same for all, documented in the
report): one joint training stage (no FCN 32s -> 16s -> 8s or front-end -> context staging), no
ImageNet initialisation, no CRF.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from tusimple_duc.models.multi_scale import DEEPLAB_SCALES, MultiScaleInput
from tusimple_duc.models.presets import PRESETS, get_model
from tusimple_duc.models.systems import build_system, get_system_spec

#: Overrides of every tiny network: BatchNorm learns (training from scratch).
LEARNING_BN = dict(bn_use_global_stats=False, bn_momentum=0.9)


@dataclass(frozen=True)
class SystemEntry:
    """One compared system: ``key``, ``title``, the tiny preset trained, the full-size preset
    costed (and whose published numbers are quoted), its learning rate, and the training-time
    pieces (``auxiliary``: PSPNet's loss; ``scales``: multi-scale input training)."""

    key: str
    title: str
    tiny: str
    full: str
    lr: float
    auxiliary: bool = False
    scales: Tuple[float, ...] = ()

    def build(self, num_classes: int, training: bool) -> Any:
        """The tiny network, uninitialised: the training network (auxiliary output, multi-scale
        wrapper) or the inference one (same parameter names)."""
        if self.tiny in PRESETS:
            net = get_model(self.tiny, num_classes=num_classes, **LEARNING_BN)
        else:
            overrides = dict(num_classes=num_classes, auxiliary=training and self.auxiliary)
            if get_system_spec(self.tiny).system in ("deeplab_v3", "refinenet", "pspnet"):
                overrides.update(LEARNING_BN)
            net = build_system(get_system_spec(self.tiny, **overrides))
        return MultiScaleInput(net, self.scales) if training and self.scales else net

    def build_full(self, num_classes: int) -> Any:
        """The full-size network of the publication's architecture."""
        if self.full in PRESETS:
            return get_model(self.full, num_classes=num_classes)
        return build_system(get_system_spec(self.full, num_classes=num_classes))


ENTRIES: Tuple[SystemEntry, ...] = (
    SystemEntry("fcn8s", "FCN-8s", "tiny_fcn8s", "fcn8s_vgg16", lr=0.02),
    SystemEntry("segnet", "SegNet", "tiny_segnet", "segnet_vgg16", lr=0.05),
    SystemEntry("dilation", "Dilation8 + context", "tiny_dilation", "dilation8_vgg16_context", lr=0.05),
    SystemEntry("deeplab_v1", "DeepLab v1 LargeFOV", "tiny_deeplabv1", "deeplabv1_largefov_vgg16", lr=0.05),
    SystemEntry("deeplab_v2", "DeepLab v2 (ASPP, MSC)", "tiny_baseline", "resnet101_baseline_ds8", lr=0.05,
                scales=DEEPLAB_SCALES),
    SystemEntry("deeplab_v3", "DeepLab v3", "tiny_deeplabv3", "deeplabv3_resnet101", lr=0.05),
    # RefineNet's decoder has no BatchNorm: at 0.05 its residual chains diverge within 3 updates, at 0.01 the
    # loss spikes to 200 and stalls near the class prior (2.0); a 3-epoch probe: 0.002 reaches 1.80, 0.0005 2.01
    SystemEntry("refinenet", "RefineNet", "tiny_refinenet", "refinenet_resnet101", lr=0.002),
    SystemEntry("pspnet", "PSPNet", "tiny_pspnet", "pspnet_resnet101", lr=0.05, auxiliary=True),
    # U-Net has no BatchNorm and learns slowly from scratch; a 3-epoch probe: 0.05 reaches 2.03, 0.01 2.68, 0.002 2.91
    SystemEntry("unet", "U-Net", "tiny_unet", "unet_padded", lr=0.05),
    SystemEntry("duc_hdc", "DUC + HDC (this paper)", "tiny_duc_hdc", "resnet101_duc_hdc_released", lr=0.05),
)


def entry(key: str) -> Optional[SystemEntry]:
    """The entry named ``key`` (None when there is none)."""
    return next((e for e in ENTRIES if e.key == key), None)

