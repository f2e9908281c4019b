"""ResNet v1 bottleneck backbone with dilation (HDC) as Gluon HybridBlocks.

Architecture
------------
``stem -> stage2 -> stage3 -> stage4 -> stage5``; input ``(N, 3, H, W)``, output
``(N, 32 * width, H / d, W / d)`` (2048 channels for ``width`` 64), d = output stride.

* stem ``deep`` (released model, the paper's "better network" of Table 4): 3x3/s2 conv
  ``width`` -> BN -> ReLU -> 3x3 conv ``width`` -> BN -> ReLU -> 3x3 conv ``2*width`` -> BN ->
  ReLU -> max-pool 3x3/s2 without padding (``stem_pool_padded``: padding 1), floor rounding. For ``H = 8k`` this gives
  ``4k -> 2k - 1`` (the pool drops the last row) and the stride-2 first block of stage 3 gives
  exactly ``k = H/8`` (800 -> 400 -> 199 -> 100; 880 -> 110; 1024 -> 128), with the stride on
  the 1x1 (no padding) or on the 3x3 (padding 1) alike. Every H that is a multiple of the
  output stride works for output strides 8 and 16. At output stride 4 nothing follows the
  pool to absorb the lost row, so there the pool rounds up ("full" convention, ``2k``).
  With ``stem_pool_padded`` the pool pads 1 (PSPNet's prototxt, GluonCV's ResNetV1s):
  ``4k -> 2k`` at every output stride.
* stem ``classic`` (original ResNet, used for the paper's Tables 1-3): 7x7/s2 pad 3 conv
  ``width`` -> BN -> ReLU -> max-pool 3x3/s2 pad 1; any H that is a multiple of 4 gives H/4.
* stages 2-5: ``blocks_per_stage`` bottleneck v1 blocks of widths ``width * (1, 2, 4, 8)``
  (reduce/3x3) and 4x that (increase). The first block of every stage has a 1x1
  projection shortcut. Stage 3 (and stage 4 at output stride 16) is strided: stride 2 on the
  first block's 1x1 reduce conv and its projection (``stride_in_1x1=True``, the released and
  original MSRA model) or on its 3x3 conv (``False``, GluonCV v1b style). Strides removed to
  reach output stride 8 or 4 become dilation; every 3x3 conv has padding = dilation; the
  per-block rates come from :mod:`tusimple_duc.models.hdc`.
* every conv has no bias and is followed by BatchNorm(``bn_eps``, gamma used unless
  ``bn_fix_gamma``, frozen statistics if ``bn_use_global_stats``, running statistics
  updated as ``s <- bn_momentum * s + (1 - bn_momentum) * batch`` when not frozen; the
  original network code uses eps 1e-6 and momentum 0.9995).

Parameter names (root prefix ``''``; containers have prefix ``''``, leaves explicit names)
---------------------------------------------------------------------------------------
``<conv>_weight``, ``<conv>/bn_gamma``, ``<conv>/bn_beta``, ``<conv>/bn_running_mean``,
``<conv>/bn_running_var`` (the checkpoint's ``aux:<conv>/bn_moving_mean|var``) where
``<conv>`` is ``conv1_1_3x3_s2``, ``conv1_2_3x3``, ``conv1_3_3x3`` (deep stem),
``conv1_7x7_s2`` (classic stem) or ``conv{stage}_{block}_{1x1_reduce|3x3|1x1_increase|1x1_proj}``
with stages 2-5 and blocks counted from 1 (``conv4_23_3x3``, ``conv4_36_3x3`` for depth 152).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.hdc import Layer, Rates, Schedule, resolve_schedule

DEPTH_BLOCKS: Dict[int, Tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
STEMS: Tuple[str, ...] = ("deep", "classic")
STAGES: Tuple[int, ...] = (2, 3, 4, 5)


@dataclass(frozen=True)
class BackboneConfig:
    """Everything that defines the backbone (see the module docstring)."""

    blocks_per_stage: Tuple[int, int, int, int] = DEPTH_BLOCKS[101]
    width: int = 64
    stem: str = "deep"
    stride_in_1x1: bool = True
    output_stride: int = 8
    dilation_schedule: Schedule = "released"
    bn_eps: float = 1e-6
    bn_use_global_stats: bool = True
    bn_fix_gamma: bool = False
    bn_momentum: float = 0.9995
    stem_pool_padded: bool = False

    def rates(self) -> Dict[int, Rates]:
        """Per-block dilation of the 3x3 convs, ``{stage: rates}`` for stages 2..5."""
        return resolve_schedule(self.dilation_schedule, self.blocks_per_stage, self.output_stride)

    def stage_strides(self) -> Dict[int, int]:
        """Stride of the first block of each stage (1 where it was replaced by dilation)."""
        return {2: 1, 3: 2 if self.output_stride >= 8 else 1,
                4: 2 if self.output_stride >= 16 else 1, 5: 1}

    @property
    def stem_channels(self) -> Tuple[int, ...]:
        """Output channels of the stem convs."""
        w = self.width
        return (w, w, 2 * w) if self.stem == "deep" else (w,)

    def stage_mid_channels(self, stage: int) -> int:
        """Width of the reduce and 3x3 convs of ``stage``."""
        return self.width * 2 ** (stage - 2)

    def stage_in_channels(self, stage: int) -> int:
        """Channels entering ``stage`` (2..5)."""
        return self.stem_channels[-1] if stage == 2 else 4 * self.stage_mid_channels(stage - 1)

    @property
    def out_channels(self) -> int:
        """Channels of the backbone output (stage 5)."""
        return 4 * self.stage_mid_channels(5)

    def stem_pool_ceil(self) -> bool:
        """Whether the stem max-pool rounds up (unpadded deep stem at output stride 4 only)."""
        return self.stem == "deep" and not self.stem_pool_padded and self.output_stride == 4

    def stem_pool_padding(self) -> int:
        """Padding of the stem max-pool: 1 (classic stem, or ``stem_pool_padded``), else 0."""
        return 1 if self.stem == "classic" or self.stem_pool_padded else 0

    def main_path_layers(self, start_stage: int = 4) -> List[Layer]:
        """``(kernel, dilation, stride)`` of the main-path convs of stages ``start_stage``..5."""
        if start_stage not in STAGES:
            raise ValueError(f"start_stage must be one of {STAGES}, got {start_stage}")
        rates, strides = self.rates(), self.stage_strides()
        layers: List[Layer] = []
        for stage in range(start_stage, 6):
            for i, rate in enumerate(rates[stage]):
                stride = strides[stage] if i == 0 else 1
                s1, s3 = (stride, 1) if self.stride_in_1x1 else (1, stride)
                layers += [(1, 1, s1), (3, rate, s3), (1, 1, 1)]
        return layers


class ConvBN(HybridBlock):
    """Bias-free conv named ``name`` + BatchNorm ``name/bn`` (+ ReLU).

    ``(N, in_channels, H, W) -> (N, channels, H', W')`` with the usual conv arithmetic.
    """

    def __init__(self, name: str, in_channels: int, channels: int, kernel: int,
                 config: BackboneConfig, stride: int = 1, padding: int = 0,
                 dilation: int = 1, relu: bool = True) -> None:
        super().__init__(prefix="")
        self.relu = relu
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel, strides=stride, padding=padding,
                                  dilation=dilation, use_bias=False, in_channels=in_channels,
                                  prefix=f"{name}_")
            self.bn = nn.BatchNorm(momentum=config.bn_momentum, epsilon=config.bn_eps,
                                   scale=not config.bn_fix_gamma,
                                   use_global_stats=config.bn_use_global_stats,
                                   in_channels=channels, prefix=f"{name}/bn_")

    def hybrid_forward(self, F, x):
        y = self.bn(self.conv(x))
        return F.Activation(y, act_type="relu") if self.relu else y


class Bottleneck(HybridBlock):
    """ResNet v1 bottleneck ``relu(increase(3x3(reduce(x))) + shortcut(x))``.

    ``(N, in_channels, H, W) -> (N, 4 * mid, H / stride, W / stride)`` (ceil for odd H).
    """

    def __init__(self, name: str, in_channels: int, mid: int, config: BackboneConfig,
                 stride: int = 1, dilation: int = 1, projection: bool = False) -> None:
        super().__init__(prefix="")
        s1, s3 = (stride, 1) if config.stride_in_1x1 else (1, stride)
        with self.name_scope():
            self.reduce = ConvBN(f"{name}_1x1_reduce", in_channels, mid, 1, config, stride=s1)
            self.conv3x3 = ConvBN(f"{name}_3x3", mid, mid, 3, config, stride=s3,
                                  padding=dilation, dilation=dilation)
            self.increase = ConvBN(f"{name}_1x1_increase", mid, 4 * mid, 1, config, relu=False)
            self.proj = (ConvBN(f"{name}_1x1_proj", in_channels, 4 * mid, 1, config,
                                stride=stride, relu=False) if projection else None)

    def hybrid_forward(self, F, x):
        shortcut = self.proj(x) if self.proj is not None else x
        return F.Activation(self.increase(self.conv3x3(self.reduce(x))) + shortcut, act_type="relu")


class Stem(HybridBlock):
    """Deep (three 3x3) or classic (7x7) stem + 3x3/s2 max-pool: ``(N, 3, H, W) -> (N, C, H/4,
    W/4)`` (unpadded deep stem at output stride >= 8: ``H/4 - 1``, see the module docstring)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__(prefix="")
        c = config.stem_channels
        with self.name_scope():
            self.convs = nn.HybridSequential(prefix="")
            with self.convs.name_scope():
                if config.stem == "deep":
                    self.convs.add(ConvBN("conv1_1_3x3_s2", 3, c[0], 3, config, stride=2, padding=1),
                                   ConvBN("conv1_2_3x3", c[0], c[1], 3, config, padding=1),
                                   ConvBN("conv1_3_3x3", c[1], c[2], 3, config, padding=1))
                else:
                    self.convs.add(ConvBN("conv1_7x7_s2", 3, c[0], 7, config, stride=2, padding=3))
            self.pool = nn.MaxPool2D(pool_size=3, strides=2, padding=config.stem_pool_padding(),
                                     ceil_mode=config.stem_pool_ceil(), prefix="pool1_3x3_s2_")

    def hybrid_forward(self, F, x):
        return self.pool(self.convs(x))


class ResNetBackbone(HybridBlock):
    """Dilated ResNet v1: ``(N, 3, H, W) -> (N, config.out_channels, H/d, W/d)``.

    Children: ``stem``, ``stage2`` .. ``stage5`` (each a ``HybridSequential`` of
    :class:`Bottleneck`). Attributes: ``config``, ``output_stride``, ``out_channels``,
    ``rates`` (``{stage: per-block 3x3 dilation}``).
    """

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__(prefix="")
        self.config = config
        self.output_stride = config.output_stride
        self.out_channels = config.out_channels
        self.rates = config.rates()
        strides = config.stage_strides()
        with self.name_scope():
            self.stem = Stem(config)
            for stage in STAGES:
                setattr(self, f"stage{stage}", self._make_stage(stage, strides[stage]))

    def _make_stage(self, stage: int, stride: int) -> nn.HybridSequential:
        cfg = self.config
        mid = cfg.stage_mid_channels(stage)
        blocks = nn.HybridSequential(prefix="")
        with blocks.name_scope():
            for i, rate in enumerate(self.rates[stage]):
                first = i == 0
                blocks.add(Bottleneck(
                    f"conv{stage}_{i + 1}", cfg.stage_in_channels(stage) if first else 4 * mid,
                    mid, cfg, stride=stride if first else 1, dilation=rate, projection=first))
        return blocks

    def stages(self) -> List[nn.HybridSequential]:
        """``[stage2, stage3, stage4, stage5]``."""
        return [getattr(self, f"stage{s}") for s in STAGES]

    def forward_stages(self, x, start_stage: int = 2):
        """Run stages ``start_stage``..5 on a feature map entering ``start_stage``."""
        for stage, block in zip(STAGES, self.stages()):
            if stage >= start_stage:
                x = block(x)
        return x

    def hybrid_forward(self, F, x):
        x = self.stem(x)
        for block in self.stages():
            x = block(x)
        return x
