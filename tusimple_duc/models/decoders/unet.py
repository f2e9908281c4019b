"""U-Net (Ronneberger et al., MICCAI 2015): contracting path, expanding path, concatenated skips.

:class:`UNetEncoder`: ``depth + 1`` levels (5 for the paper); level l: two 3x3 convs with
bias + ReLU (``conv_d{l}a``, ``conv_d{l}b``) of ``width * 2^l`` channels (64 ... 1024), a 2x2/2
max-pool between levels (rounding down), dropout 0.5 on the deepest level ("drop-out layers at
the end of the contracting path"). Returns every level's output, finest first.

:class:`UNetDecoder`: from the deepest level up, a 2x2/2 transposed conv halving the channels
(``upconv_u{l}``, with bias, followed by ReLU as the authors' released net), the skip of level l
cropped to the upsampled size and concatenated before it, two 3x3 convs + ReLU (``conv_u{l}a``,
``conv_u{l}b``), and finally the 1x1 classifier ``score``.

``padded=False`` (the paper): unpadded convs, every level loses 4 pixels; the input side must
satisfy :func:`unet_valid_size` (572 -> 388, the paper's Figure 1); the skips are centre-cropped
at the constant offsets :func:`unet_crop_offsets` (4, 16, 40, 88 for depth 4). ``padded=True``
(the common variant): zero-padded convs, skips cropped at the top-left (a 1-pixel difference
after an odd size); the output side is ``2^depth * floor(H / 2^depth)``. Prediction stride 1.
"""
from __future__ import annotations

from typing import List, Tuple

from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.decoders.base import SystemDecoder


def _double_conv(name: str, in_channels: int, channels: int, padding: int) -> nn.HybridSequential:
    block = nn.HybridSequential(prefix="")
    for suffix, c_in in (("a", in_channels), ("b", channels)):
        block.add(nn.Conv2D(channels, 3, padding=padding, in_channels=c_in,
                            prefix=f"{name}{suffix}_"),
                  nn.Activation("relu"))
    return block


def _level_sizes(size: int, depth: int, padded: bool) -> Tuple[List[int], List[int]]:
    """(encoder level sizes, decoder up-sampled sizes deepest first) for input side ``size``."""
    loss = 0 if padded else 4
    encoder = [size - loss]
    for _ in range(depth):
        encoder.append(encoder[-1] // 2 - loss)
    up, x = [], encoder[-1]
    for _ in range(depth):
        up.append(2 * x)
        x = 2 * x - loss
    return encoder, up


def unet_valid_size(size: int, depth: int = 4) -> bool:
    """Whether an unpadded U-Net takes input side ``size`` (every pooled map even, >= 1)."""
    s = size - 4
    for _ in range(depth):
        if s < 2 or s % 2:
            return False
        s = s // 2 - 4
    return s >= 1


def unet_crop_offsets(depth: int = 4, padded: bool = False) -> Tuple[int, ...]:
    """Crop offset of each skip, deepest skip first (constant over valid input sizes)."""
    if padded:
        return (0,) * depth
    size = 1
    for _ in range(depth):  # smallest valid input: invert "pool then lose 4" from a 1-pixel bottom
        size = 2 * (size + 4)
    encoder, up = _level_sizes(size + 4, depth, padded)
    return tuple((encoder[depth - 1 - i] - up[i]) // 2 for i in range(depth))


def unet_output_size(size: int, depth: int = 4, padded: bool = False) -> int:
    """Output side for input side ``size``."""
    _, up = _level_sizes(size, depth, padded)
    return up[-1] - (0 if padded else 4)


class UNetEncoder(HybridBlock):
    """``(N, C_in, H, W) -> (level 0, ..., level depth)`` maps."""

    def __init__(self, in_channels: int = 3, width: int = 64, depth: int = 4,
                 padded: bool = False) -> None:
        super().__init__(prefix="")
        self.depth = depth
        self.padded = padded
        self.endpoint_channels = tuple(width * 2 ** l for l in range(depth + 1))
        self.output_stride = 2 ** depth
        with self.name_scope():
            self.levels = nn.HybridSequential(prefix="")
            c_in = in_channels
            for l, c in enumerate(self.endpoint_channels):
                self.levels.add(_double_conv(f"conv_d{l}", c_in, c, int(padded)))
                c_in = c
            self.dropout = nn.Dropout(0.5)

    def hybrid_forward(self, F, x):
        outputs = []
        for l, level in enumerate(self.levels):
            if l:
                x = F.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max")
            x = level(x)
            outputs.append(self.dropout(x) if l == self.depth else x)
        return tuple(outputs)


class UNetDecoder(SystemDecoder):
    """``(level 0, ..., level depth) -> (N, L, H', W')`` (sizes: :func:`unet_output_size`)."""

    kind = "unet"

    def __init__(self, num_classes: int, in_channels: Tuple[int, ...], padded: bool = False) -> None:
        super().__init__(num_classes, 1)
        depth = len(in_channels) - 1
        self.offsets = unet_crop_offsets(depth, padded)
        with self.name_scope():
            self.upconvs = nn.HybridSequential(prefix="")
            self.convs = nn.HybridSequential(prefix="")
            for l in range(depth - 1, -1, -1):
                c = in_channels[l]
                self.upconvs.add(nn.Conv2DTranspose(c, 2, strides=2, in_channels=in_channels[l + 1],
                                                    prefix=f"upconv_u{l}_"))
                self.convs.add(_double_conv(f"conv_u{l}", 2 * c, c, int(padded)))
            self.score = nn.Conv2D(num_classes, 1, in_channels=in_channels[0], prefix="score_")

    def hybrid_forward(self, F, *levels):
        x = levels[-1]
        skips = levels[-2::-1]
        for upconv, conv, skip, offset in zip(self.upconvs, self.convs, skips, self.offsets):
            x = F.Activation(upconv(x), act_type="relu")
            skip = F.slice(skip, begin=(None, None, offset, offset), end=(None, None, None, None))
            x = conv(F.concat(F.slice_like(skip, x, axes=(2, 3)), x, dim=1))
        return self.score(x)
