"""Multi-level features of the existing :class:`~tusimple_duc.models.resnet.ResNetBackbone`.

PSPNet needs stage 4 (auxiliary head) and stage 5 of the dilated ResNet; RefineNet needs
stages 2-5 of the *undilated* ResNet at strides 4, 8, 16 and 32. ``ResNetBackbone`` (whose
code is not changed here) reaches output stride 16 at most, so for stride 32 this wrapper
subsamples stage 4's output by 2 (``x[:, :, ::2, ::2]``) before stage 5: with the stride on
the 1x1 convs (``stride_in_1x1=True``, the MSRA ResNet RefineNet starts from), a stride-2 1x1
conv is exactly a stride-1 1x1 conv on the subsampled map, and stage 5's first block has
only 1x1 convs (reduce, projection) before its 3x3. So the parameters, their names and the
ImageNet initialisation are the backbone's own.
"""
from __future__ import annotations

from typing import Sequence, Tuple

from mxnet.gluon import HybridBlock

from tusimple_duc.models.resnet import STAGES, ResNetBackbone


class ResNetFeatures(HybridBlock):
    """``(N, 3, H, W) -> tuple`` of the outputs of ``stages`` (each 2..5, increasing).

    Parameters
    ----------
    backbone : the ResNet; its parameters keep their names (this block has prefix ``''``).
    stages : which stage outputs to return, e.g. ``(4, 5)`` (PSPNet), ``(2, 3, 4, 5)``.
    stage5_stride : 2 to run stage 5 at twice the backbone's output stride (RefineNet:
        output stride 16 with every rate 1 and ``stride_in_1x1`` -> stage 5 at 1/32).

    Attributes: ``stage_channels`` and ``stage_strides`` (input pixels per cell) of the
    returned maps; ``output_stride`` = the last one's stride.
    """

    def __init__(self, backbone: ResNetBackbone, stages: Sequence[int] = (4, 5),
                 stage5_stride: int = 1) -> None:
        super().__init__(prefix="")
        stages = tuple(stages)
        if not stages or any(s not in STAGES for s in stages) or list(stages) != sorted(set(stages)):
            raise ValueError(f"stages must be increasing values of {STAGES}, got {stages}")
        config = backbone.config
        if stage5_stride not in (1, 2):
            raise ValueError(f"stage5_stride must be 1 or 2, got {stage5_stride}")
        if stage5_stride == 2 and (not config.stride_in_1x1 or config.output_stride != 16
                                   or set(backbone.rates[5]) != {1}):
            raise ValueError("stage5_stride 2 needs output_stride 16, stride_in_1x1 and rate 1 "
                             "in stage 5")
        self.stages = stages
        self.stage5_stride = stage5_stride
        self.stage_channels: Tuple[int, ...] = tuple(
            4 * config.stage_mid_channels(s) for s in stages)
        stride = {2: 4, 3: 4 * config.stage_strides()[3]}
        stride[4] = stride[3] * config.stage_strides()[4]
        stride[5] = stride[4] * stage5_stride
        self.stage_strides: Tuple[int, ...] = tuple(stride[s] for s in stages)
        self.output_stride = self.stage_strides[-1]
        with self.name_scope():
            self.backbone = backbone

    def hybrid_forward(self, F, x):
        x = self.backbone.stem(x)
        outputs = []
        for stage, block in zip(STAGES, self.backbone.stages()):
            if stage > self.stages[-1]:
                break
            if stage == 5 and self.stage5_stride == 2:
                x = F.slice(x, begin=(None, None, None, None), end=(None, None, None, None),
                            step=(1, 1, 2, 2))
            x = block(x)
            if stage in self.stages:
                outputs.append(x)
        return tuple(outputs)
