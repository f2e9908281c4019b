"""Segmentation heads on the backbone features ``(N, C, h, w)``, ``h = H/d``.

All three share one interface (:class:`SegmentationHead`): ``head(features)`` returns class
scores ``(N, L, H/s, W/s)`` with ``s = head.prediction_stride``; ``head.raw_scores(features)``
returns the head's raw output (DUC: ``(N, L*r*r, h, w)`` before the rearrangement).

* ``duc`` (the paper, the released model): ASPP = sum of ``aspp`` parallel 3x3 convs with
  bias, dilation = padding = ``aspp_stride * (i + 1)`` (released: 6, 12, 18, 24), each with
  ``L * r * r`` outputs, ``r = d / c`` (cell width c); ``aspp = 0`` is a single 3x3 conv with
  dilation 1. No BN, ReLU or dropout. Then the DUC rearrangement to ``(N, L, H/c, W/c)``.
* ``bilinear`` (DeepLab-v2 baseline, Table 1 rows 1-2): the same ASPP to ``L`` channels;
  prediction at ``H/d`` (training labels are downsampled by d, inference upsamples bilinearly).
* ``deconv`` (section 4.1.2 "Compared with Deconvolution"): ASPP to ``C`` channels then
  transposed convs (kernel ``2f``, stride ``f``, padding ``f/2``, with bias) upsampling by d in
  one step (``one-step``: C -> L, x d) or two (``two-step``: C -> C x2, then C -> L x d/2).
  "We design the deconv network to have approximately the same number of parameters as DUC":
  ``C`` defaults to the value whose parameter count is closest to the DUC head with the same
  ASPP and cell width (:func:`matched_deconv_channels`). For ResNet-101, ASPP 6, cell 2, 19
  classes (the paper's reference "bigger patch" DUC model, whose head has 33.62 M parameters):
  one-step C = 291 (33.60 M), two-step C = 289 (33.65 M). Like DUC, the decoders are linear
  (no nonlinearity) so that only the upsampling operator differs.

Parameter names: ``{name}_c{i}_weight|bias`` (ASPP branch i, from 0) and
``{name}_deconv{j}_weight|bias`` (j from 1); ``name`` is e.g. ``fc1_cityscapes``.
"""
from __future__ import annotations

from typing import Sequence, Tuple

from mxnet.gluon import HybridBlock, nn

from tusimple_duc.config import HEADS
from tusimple_duc.layout import duc_ratio
from tusimple_duc.models.duc import DUCRearrange

DECONV_MODES: Tuple[str, ...] = ("one-step", "two-step")


def aspp_rates(branches: int, stride: int) -> Tuple[int, ...]:
    """Dilations of the ASPP branches (``()`` for no ASPP = one 3x3 conv, dilation 1)."""
    return tuple(stride * (i + 1) for i in range(branches))


def deconv_factors(output_stride: int, mode: str) -> Tuple[int, ...]:
    """Upsampling factor of each transposed conv (their product is ``output_stride``)."""
    if mode not in DECONV_MODES:
        raise ValueError(f"deconv mode must be one of {DECONV_MODES}, got {mode!r}")
    return (output_stride,) if mode == "one-step" else (2, output_stride // 2)


class ASPP(HybridBlock):
    """Sum of parallel dilated 3x3 convs with bias: ``(N, C_in, h, w) -> (N, C_out, h, w)``."""

    def __init__(self, name: str, in_channels: int, out_channels: int,
                 rates: Sequence[int]) -> None:
        super().__init__(prefix="")
        self.rates = tuple(rates) or (1,)
        with self.name_scope():
            self.branches = nn.HybridSequential(prefix="")
            with self.branches.name_scope():
                for i, rate in enumerate(self.rates):
                    self.branches.add(nn.Conv2D(out_channels, 3, padding=rate, dilation=rate,
                                                use_bias=True, in_channels=in_channels,
                                                prefix=f"{name}_c{i}_"))

    def hybrid_forward(self, F, x):
        outputs = [branch(x) for branch in self.branches]
        return outputs[0] if len(outputs) == 1 else F.add_n(*outputs)


class SegmentationHead(HybridBlock):
    """Common interface. Attributes: ``num_classes``, ``prediction_stride``,
    ``raw_channels`` (channels of :meth:`raw_scores`), ``kind``."""

    kind = ""

    def __init__(self, num_classes: int, prediction_stride: int, raw_channels: int) -> None:
        super().__init__(prefix="")
        self.num_classes = num_classes
        self.prediction_stride = prediction_stride
        self.raw_channels = raw_channels

    def raw_scores(self, features):
        """The head's raw output (default: the scores themselves)."""
        return self(features)


class DUCHead(SegmentationHead):
    """ASPP to ``L*r*r`` channels + DUC: ``(N, C, h, w) -> (N, L, h*r, w*r)``, ``r = d/c``."""

    kind = "duc"

    def __init__(self, name: str, in_channels: int, num_classes: int, output_stride: int,
                 cell_width: int, rates: Sequence[int]) -> None:
        ratio = duc_ratio(output_stride, cell_width)
        super().__init__(num_classes, cell_width, num_classes * ratio ** 2)
        self.ratio = ratio
        with self.name_scope():
            self.aspp = ASPP(name, in_channels, self.raw_channels, rates)
            self.rearrange = DUCRearrange(self.ratio)

    def raw_scores(self, features):
        """``(N, C, h, w) -> (N, L*r*r, h, w)`` (before the rearrangement)."""
        return self.aspp(features)

    def hybrid_forward(self, F, x):
        return self.rearrange(self.aspp(x))


class BilinearHead(SegmentationHead):
    """ASPP to ``L`` channels: ``(N, C, h, w) -> (N, L, h, w)``, prediction stride d."""

    kind = "bilinear"

    def __init__(self, name: str, in_channels: int, num_classes: int, output_stride: int,
                 rates: Sequence[int]) -> None:
        super().__init__(num_classes, output_stride, num_classes)
        with self.name_scope():
            self.aspp = ASPP(name, in_channels, num_classes, rates)

    def hybrid_forward(self, F, x):
        return self.aspp(x)


class DeconvHead(SegmentationHead):
    """ASPP to ``channels`` + transposed convs: ``(N, C, h, w) -> (N, L, h*d, w*d)``."""

    kind = "deconv"

    def __init__(self, name: str, in_channels: int, num_classes: int, output_stride: int,
                 rates: Sequence[int], channels: int, mode: str) -> None:
        super().__init__(num_classes, 1, num_classes)
        self.mode = mode
        self.channels = channels
        factors = deconv_factors(output_stride, mode)
        with self.name_scope():
            self.aspp = ASPP(name, in_channels, channels, rates)
            self.upsample = nn.HybridSequential(prefix="")
            with self.upsample.name_scope():
                for j, f in enumerate(factors):
                    out = num_classes if j == len(factors) - 1 else channels
                    self.upsample.add(nn.Conv2DTranspose(
                        out, 2 * f, strides=f, padding=f // 2, in_channels=channels,
                        use_bias=True, prefix=f"{name}_deconv{j + 1}_"))

    def hybrid_forward(self, F, x):
        return self.upsample(self.aspp(x))


def duc_head_parameters(in_channels: int, num_classes: int, output_stride: int,
                        cell_width: int, branches: int) -> int:
    """Parameter count of a DUC head (weights + biases)."""
    out = num_classes * (output_stride // cell_width) ** 2
    return max(branches, 1) * (in_channels * out * 9 + out)


def deconv_head_parameters(in_channels: int, num_classes: int, output_stride: int,
                           branches: int, channels: int, mode: str) -> int:
    """Parameter count of a deconv head with ``channels`` intermediate channels."""
    total = max(branches, 1) * (in_channels * channels * 9 + channels)
    factors = deconv_factors(output_stride, mode)
    for j, f in enumerate(factors):
        out = num_classes if j == len(factors) - 1 else channels
        total += channels * out * (2 * f) ** 2 + out
    return total


def matched_deconv_channels(in_channels: int, num_classes: int, output_stride: int,
                            cell_width: int, branches: int, mode: str) -> int:
    """Intermediate channels making the deconv head about as large as the DUC head."""
    target = duc_head_parameters(in_channels, num_classes, output_stride, cell_width, branches)
    count = lambda c: deconv_head_parameters(in_channels, num_classes, output_stride,  # noqa: E731
                                             branches, c, mode)
    lo, hi = 1, 1
    while count(hi) < target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # count is increasing in c: bisect for the crossing
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda c: abs(count(c) - target))


def build_head(kind: str, name: str, in_channels: int, num_classes: int, output_stride: int,
               aspp: int = 4, aspp_stride: int = 6, cell_width: int = 2,
               deconv_mode: str = "one-step", deconv_channels: int = 0) -> SegmentationHead:
    """Build a head by kind (``duc``, ``bilinear``, ``deconv``); ``deconv_channels`` 0 = matched."""
    rates = aspp_rates(aspp, aspp_stride)
    if kind == "duc":
        return DUCHead(name, in_channels, num_classes, output_stride, cell_width, rates)
    if kind == "bilinear":
        return BilinearHead(name, in_channels, num_classes, output_stride, rates)
    if kind == "deconv":
        channels = deconv_channels or matched_deconv_channels(
            in_channels, num_classes, output_stride, cell_width, aspp, deconv_mode)
        return DeconvHead(name, in_channels, num_classes, output_stride, rates, channels,
                          deconv_mode)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
