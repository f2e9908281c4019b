"""SegNet decoder (Badrinarayanan et al.): unpooling with the encoder's max-pooling indices.

MXNet has no max-unpooling operator. :func:`max_pool_with_argmax` computes a 2x2/2 max-pool
(rounding up, like Caffe) together with a one-hot "switch" of the argmax position in each
window: the map is padded by one row and column of ``-inf``, cut to even size, rearranged
with ``space_to_depth`` into the 4 window positions, and ``argmax`` over them picks the first
maximum in row-major order (Caffe's strict ``>``). :func:`unpool` multiplies the values by the
switch and rearranges back with ``depth_to_space``, cropped to the pre-pool size: every value
lands where its window's maximum was, zeros elsewhere. Only reshapes, splits and stacks, so both
hybridize and export to a symbol JSON and to ONNX. The switch is piecewise constant (no
gradient through it); the decoder computes the pooled values of stage 5 only (the other stages
unpool the decoder's own maps).

Decoder (SegNet, VGG-16): for each stage 5..1, unpool with that stage's switches, then the
mirrored convs ``conv{s}_{i}_D`` (3x3, BN ``conv{s}_{i}_D_bn``, ReLU), i from the stage's
conv count down to 1; each stage keeps its width except its last conv, which outputs the next
stage's width (512, 512, 256, 128, 64); ``conv1_1_D`` is the classifier (3x3 to L with bias,
no BN or ReLU). Output ``(N, L, H, W)`` for any H, W (prediction stride 1).
"""
from __future__ import annotations

from typing import Sequence

from mxnet.gluon import nn

from tusimple_duc.models.decoders.base import SystemDecoder
from tusimple_duc.models.vgg import STAGE_CONVS


def _window_positions(F, x):
    """``(N, C, H, W) ->`` 4 maps ``(N, C, h, w)``, ``h = ceil(H/2)``: the positions ``k = 2*dy + dx``
    of every 2x2/2 window, ``-inf`` beyond the bottom and right borders."""
    pooled_size = F.slice(x, begin=(None, None, None, None), end=(None, None, None, None),
                          step=(1, 1, 2, 2))                           # (N, C, h, w)
    even_size = F.UpSampling(pooled_size, scale=2, sample_type="nearest")  # (N, C, 2h, 2w)
    padded = F.pad(x, mode="constant", constant_value=float("-inf"),
                   pad_width=(0, 0, 0, 0, 0, 1, 0, 1))
    windows = F.space_to_depth(F.slice_like(padded, even_size, axes=(2, 3)), block_size=2)
    return F.split(windows, num_outputs=4, axis=1)                     # (N, 4C, h, w) position-major


def max_pool_switch(F, x):
    """The one-hot switch ``(N, 4, C, h, w)`` of the 2x2/2 max-pool of ``x (N, C, H, W)``:
    ``switch[:, k]`` is 1 where window position ``k = 2*dy + dx`` holds the (first) maximum.

    Computed on ``BlockGrad(x)``: the switch is piecewise constant, and MXNet 1.9's imperative
    backward of ``slice_like`` crashes (segmentation fault) when no gradient reaches its output."""
    positions = F.stack(*_window_positions(F, F.BlockGrad(x)), axis=1)   # (N, 4, C, h, w)
    switch = F.one_hot(F.argmax(positions, axis=1), depth=4)             # (N, C, h, w, 4)
    return F.transpose(switch, axes=(0, 4, 1, 2, 3))


def max_pool_with_argmax(F, x):
    """2x2/2 max-pool rounding up: ``(N, C, H, W) -> (pooled (N, C, h, w), switch (N, 4, C,
    h, w))``, ``h = ceil(H/2)`` (switch: :func:`max_pool_switch`). The maximum is taken pairwise,
    not by ``F.max`` (mx2onnx writes an invalid ``ReduceMax`` for it)."""
    first, second, third, fourth = _window_positions(F, x)
    pooled = F.maximum(F.maximum(first, second), F.maximum(third, fourth))
    return pooled, max_pool_switch(F, x)


def unpool(F, values, switch, like):
    """``values (N, C, h, w)`` placed at the argmax positions of ``switch`` -> ``(N, C, H, W)``
    with ``(H, W)`` of ``like`` (the pre-pool map), zeros elsewhere."""
    spread = F.broadcast_mul(switch, F.expand_dims(values, axis=1))     # (N, 4, C, h, w)
    # (N, 1, 4C, h, w), position-major as space_to_depth; not split(squeeze) + concat, which
    # OpenVINO 2026's SplitSqueezeConcatFusion cannot compile at dynamic sizes
    stacked = F.concat(*F.split(spread, num_outputs=4, axis=1), dim=2)
    full = F.depth_to_space(F.squeeze(stacked, axis=1), block_size=2)  # (N, C, 2h, 2w)
    return F.slice_like(full, like, axes=(2, 3))


class SegNetDecoder(SystemDecoder):
    """``(conv1_2, conv2_2, conv3_3, conv4_3, conv5_3) -> (N, L, H, W)``.

    ``in_channels``: the five encoder widths (``VGG16Backbone("segnet").endpoint_channels``).
    """

    kind = "segnet"

    def __init__(self, num_classes: int, in_channels: Sequence[int]) -> None:
        super().__init__(num_classes, 1)
        widths = list(in_channels)
        with self.name_scope():
            self.stages = nn.HybridSequential(prefix="")
            with self.stages.name_scope():
                for s in range(5, 0, -1):
                    self.stages.add(self._stage(s, widths))

    def _stage(self, s: int, widths: Sequence[int]) -> nn.HybridSequential:
        stage = nn.HybridSequential(prefix="")
        width = widths[s - 1]
        with stage.name_scope():
            for i in range(STAGE_CONVS[s - 1], 0, -1):
                name = f"conv{s}_{i}_D"
                if s == 1 and i == 1:
                    stage.add(nn.Conv2D(self.num_classes, 3, padding=1, in_channels=width,
                                        prefix=f"{name}_"))
                    continue
                out = widths[s - 2] if i == 1 else width
                stage.add(nn.Conv2D(out, 3, padding=1, in_channels=width, prefix=f"{name}_"),
                          nn.BatchNorm(in_channels=out, prefix=f"{name}_bn_"),
                          nn.Activation("relu"))
        return stage

    def hybrid_forward(self, F, conv1_2, conv2_2, conv3_3, conv4_3, conv5_3):
        encoder = (conv5_3, conv4_3, conv3_3, conv2_2, conv1_2)
        x = None
        for prepool, stage in zip(encoder, self.stages):
            if x is None:
                x, switch = max_pool_with_argmax(F, prepool)
            else:
                switch = max_pool_switch(F, prepool)
            x = stage(unpool(F, x, switch, prepool))
        return x
