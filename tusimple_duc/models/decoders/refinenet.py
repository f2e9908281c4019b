"""RefineNet (Lin et al., CVPR 2017), the 4-cascaded decoder on ResNet stages 2-5.

Input: the outputs of stages 2, 3, 4, 5 at strides 4, 8, 16, 32
(:class:`~tusimple_duc.models.features.ResNetFeatures` with output stride 16, every rate 1,
``stage5_stride=2``). Each is first reduced by a 3x3 conv ``adapt{stage}`` (stage 5 to 512
channels, the others to 256, as the authors' ResNet-101 model). Then four RefineNet blocks,
coarse to fine: ``refine4`` on stage 5 alone, ``refine3`` on (``refine4``, stage 4), ``refine2``
on (``refine3``, stage 3), ``refine1`` on (``refine2``, stage 2). A block:

1. adaptive convs: two residual conv units (RCU: ``x + conv(relu(conv(relu(x))))``, 3x3
   convs with bias) on every input path;
2. multi-resolution fusion (more than one path): a 3x3 conv per path to the block's width,
   bilinear upsampling (half-pixel centres) of the coarser path to the finest size, sum;
3. chained residual pooling: ``x = relu(x)``, then ``pool_blocks`` (4: the authors' code,
   ``refine_config.chained_pool_num = 4`` in ``gen_net_opts_model_type1.m``, and its public
   ports; the paper's figure draws 2) times ``p = conv3x3(maxpool5x5/1(p))``, ``x = x + p``
   (chained from ``p = x``);
4. output conv: one RCU.

Then two more RCUs (``final_rcu1``, ``final_rcu2``), dropout 0.5 and the 1x1 classifier
``score``: ``(N, L, ceil(H/4), ceil(W/4))`` for the classic stem, prediction stride 4.
Block widths: ``refine4`` 512, the others 256 (``block_channels``). ResNet-101, 21 classes:
118.0 M parameters.

Differences from the authors' MatConvNet code (``guosheng/refinenet``, ``main/``), listed in
docs/systems/SYSTEMS.md: their chained pooling runs the conv before the pool
(``do_gen_block_convbeforepool``, "improved version"; the paper and the ports pool first);
their 3x3 convs have no bias except the first of each RCU (here every conv has one: +256 or
+512 per conv, under 0.01 % of the parameters); their classifier is a 3x3 conv
(``gen_network_loss_group.m``), here 1x1.
"""
from __future__ import annotations

from typing import Sequence

from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.decoders.base import SystemDecoder


def conv3x3(name: str, in_channels: int, channels: int) -> nn.Conv2D:
    """3x3 conv with bias, padding 1, parameters ``{name}_weight|bias``."""
    return nn.Conv2D(channels, 3, padding=1, in_channels=in_channels, prefix=f"{name}_")


class ResidualConvUnit(HybridBlock):
    """``x + conv2(relu(conv1(relu(x))))``, shape-preserving ``(N, C, h, w)``."""

    def __init__(self, name: str, channels: int) -> None:
        super().__init__(prefix="")
        with self.name_scope():
            self.conv1 = conv3x3(f"{name}_conv1", channels, channels)
            self.conv2 = conv3x3(f"{name}_conv2", channels, channels)

    def hybrid_forward(self, F, x):
        # ``F.relu``, not ``Activation``: when ``x`` is a conv output, MXNet 1.9's oneDNN
        # subgraph pass (mx.mod.Module) would fuse that ReLU into the conv and feed the
        # rectified map to the residual sum as well.
        y = self.conv1(F.relu(x))
        return x + self.conv2(F.Activation(y, act_type="relu"))


class ChainedResidualPooling(HybridBlock):
    """``relu(x)`` plus a chain of (5x5/1 max-pool, 3x3 conv) blocks, each added."""

    def __init__(self, name: str, channels: int, pool_blocks: int = 4) -> None:
        super().__init__(prefix="")
        with self.name_scope():
            self.convs = nn.HybridSequential(prefix="")
            with self.convs.name_scope():
                for i in range(pool_blocks):
                    self.convs.add(conv3x3(f"{name}_crp{i + 1}", channels, channels))

    def hybrid_forward(self, F, x):
        x = F.Activation(x, act_type="relu")
        path = x
        for conv in self.convs:
            path = conv(F.Pooling(path, kernel=(5, 5), stride=(1, 1), pad=(2, 2), pool_type="max"))
            x = x + path
        return x


class RefineNetBlock(HybridBlock):
    """``(coarser, finer...) -> (N, channels, h_finest, w_finest)``; inputs coarse to fine."""

    def __init__(self, name: str, in_channels: Sequence[int], channels: int,
                 pool_blocks: int = 4) -> None:
        super().__init__(prefix="")
        self.paths = len(in_channels)
        with self.name_scope():
            self.adaptive = nn.HybridSequential(prefix="")
            self.fusion = nn.HybridSequential(prefix="")
            for j, c in enumerate(in_channels):
                path = nn.HybridSequential(prefix="")
                path.add(ResidualConvUnit(f"{name}_in{j + 1}_rcu1", c),
                         ResidualConvUnit(f"{name}_in{j + 1}_rcu2", c))
                self.adaptive.add(path)
                if self.paths > 1:
                    self.fusion.add(conv3x3(f"{name}_mrf{j + 1}", c, channels))
            self.pooling = ChainedResidualPooling(name, channels, pool_blocks)
            self.output = ResidualConvUnit(f"{name}_out_rcu", channels)

    def hybrid_forward(self, F, *inputs):
        paths = [adapt(x) for adapt, x in zip(self.adaptive, inputs)]
        if self.paths == 1:
            fused = paths[0]
        else:
            finest = paths[-1]
            fused = self.fusion[self.paths - 1](finest)
            for conv, x in zip(self.fusion, paths[:-1]):
                fused = fused + F.contrib.BilinearResize2D(conv(x), finest, mode="like",
                                                           align_corners=False)
        return self.output(self.pooling(fused))


class RefineNetDecoder(SystemDecoder):
    """``(stage2, stage3, stage4, stage5) -> (N, L, h2, w2)`` (stage 2's size, stride 4).

    ``in_channels``: the four stage widths (``ResNetFeatures(...).stage_channels``).
    """

    kind = "refinenet"

    def __init__(self, num_classes: int, in_channels: Sequence[int],
                 block_channels: Sequence[int] = (256, 256, 256, 512), pool_blocks: int = 4) -> None:
        super().__init__(num_classes, 4)
        w1, w2, w3, w4 = block_channels
        with self.name_scope():
            self.adapt = nn.HybridSequential(prefix="")
            for stage, (c, w) in enumerate(zip(in_channels, block_channels), start=2):
                self.adapt.add(conv3x3(f"adapt{stage}", c, w))
            self.refine4 = RefineNetBlock("refine4", (w4,), w4, pool_blocks)
            self.refine3 = RefineNetBlock("refine3", (w4, w3), w3, pool_blocks)
            self.refine2 = RefineNetBlock("refine2", (w3, w2), w2, pool_blocks)
            self.refine1 = RefineNetBlock("refine1", (w2, w1), w1, pool_blocks)
            self.final = nn.HybridSequential(prefix="")
            self.final.add(ResidualConvUnit("final_rcu1", w1), ResidualConvUnit("final_rcu2", w1),
                           nn.Dropout(0.5))
            self.score = nn.Conv2D(num_classes, 1, in_channels=w1, prefix="score_")

    def hybrid_forward(self, F, stage2, stage3, stage4, stage5):
        c2, c3, c4, c5 = [adapt(x) for adapt, x in zip(self.adapt, (stage2, stage3, stage4, stage5))]
        x = self.refine4(c5)
        x = self.refine3(x, c4)
        x = self.refine2(x, c3)
        x = self.refine1(x, c2)
        return self.score(self.final(x))
