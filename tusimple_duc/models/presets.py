"""Model specifications, the paper's and the released presets, and ``get_model``.

A :class:`ModelSpec` fixes every architecture setting; its defaults are the released
checkpoint (ResNet-101, deep stem, "released" HDC schedule, DUC with ASPP 4 and cell 2,
19 classes). ``get_model("resnet101_duc_hdc_released")`` builds that network with exactly
the checkpoint's parameter names and shapes (65,038,464 arg parameters).

Paper presets (Tables 1-3) use the *classic* 7x7 stem: the three-3x3 "deep" stem is the
"better network" the paper introduces only for its final Table 4 entry, which is the
released model. Where the paper leaves the head open:

* Table 2 and Table 3 (HDC, deconv) start from "the best ResNet-DUC model", Table 1's last
  row + bigger patches: ASPP 6, cell width 2. (The released model has ASPP 4: override
  ``aspp=4`` for that head.)
* deconv presets match the DUC head of that model in parameter count (see ``heads``).

The paper's numbers (:data:`PAPER_ROWS`) are Cityscapes *val* mIoU (%) without CRF unless stated.
Table rows that differ only in data (augmentation, patch size, coarse labels, CRF) share a
preset; :data:`PAPER_ROWS` maps every row to its preset.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

from mxnet.gluon import HybridBlock

from tusimple_duc.config import HEADS
from tusimple_duc.errors import ConfigError
from tusimple_duc.layout import CELL_WIDTHS, OUTPUT_STRIDES, duc_ratio
from tusimple_duc.models.hdc import NAMED_SCHEDULES, Schedule, ScheduleError, resolve_schedule
from tusimple_duc.models.heads import DECONV_MODES, build_head
from tusimple_duc.models.resnet import DEPTH_BLOCKS, STEMS, BackboneConfig, ResNetBackbone
from tusimple_duc.models.segnet import SegmentationNet
from tusimple_duc.models.systems import SYSTEM_PRESETS, SystemSpec, build_system, get_system_spec


class ModelSpecError(ConfigError, ValueError):
    """A :class:`ModelSpec` field is invalid (message names the field)."""


@dataclass(frozen=True)
class ModelSpec:
    """All architecture settings of a :class:`SegmentationNet` (defaults: the released model).

    depth: 50, 101 or 152; selects ``blocks_per_stage`` when that is None.
    blocks_per_stage: blocks of stages 2-5 (overrides ``depth``; tiny networks).
    width: base channels (64: stage widths 64/128/256/512, x4 after expansion; stem scales).
    stem: ``deep`` (three 3x3 convs, released) or ``classic`` (7x7).
    stride_in_1x1: stride 2 on the 1x1 reduce conv (released) instead of the 3x3.
    output_stride: 4, 8 or 16 (d).
    dilation_schedule: a name of ``hdc.NAMED_SCHEDULES`` or explicit per-block rate lists.
    head: ``duc``, ``bilinear`` or ``deconv``.
    aspp, aspp_stride: number of ASPP branches (0 = one 3x3 conv) and their rate step.
    cell_width: DUC cell width c (1, 2, 4); deconv: the DUC head it is matched to.
    deconv_mode: ``one-step`` (x d) or ``two-step`` (x2 then x d/2).
    deconv_channels: deconv intermediate channels, 0 = match the DUC parameter count.
    num_classes: L. head_name: prefix of head parameter names (``fc1_cityscapes``).
    bn_eps, bn_use_global_stats, bn_fix_gamma, bn_momentum: backbone BatchNorm settings
        (momentum of the running statistics: 0.9995 as in the original network code).
    """

    depth: int = 101
    blocks_per_stage: Optional[Tuple[int, int, int, int]] = None
    width: int = 64
    stem: str = "deep"
    stride_in_1x1: bool = True
    output_stride: int = 8
    dilation_schedule: Schedule = "released"
    head: str = "duc"
    aspp: int = 4
    aspp_stride: int = 6
    cell_width: int = 2
    deconv_mode: str = "one-step"
    deconv_channels: int = 0
    num_classes: int = 19
    head_name: str = "fc1_cityscapes"
    bn_eps: float = 1e-6
    bn_use_global_stats: bool = True
    bn_fix_gamma: bool = False
    bn_momentum: float = 0.9995

    def __post_init__(self) -> None:
        if self.blocks_per_stage is not None:
            object.__setattr__(self, "blocks_per_stage", _int_tuple(self, "blocks_per_stage"))
        if not isinstance(self.dilation_schedule, str):
            try:
                rates = tuple(tuple(int(r) for r in s) for s in self.dilation_schedule)
            except (TypeError, ValueError):
                _fail("dilation_schedule", f"must be a name or lists of rates, got "
                                           f"{self.dilation_schedule!r}")
            object.__setattr__(self, "dilation_schedule", rates)
        _validate(self)

    @property
    def blocks(self) -> Tuple[int, int, int, int]:
        """Blocks of stages 2-5 (``blocks_per_stage`` or the depth's)."""
        return self.blocks_per_stage or DEPTH_BLOCKS[self.depth]

    @property
    def prediction_stride(self) -> int:
        """s: DUC c, bilinear d, deconv 1."""
        return {"duc": self.cell_width, "bilinear": self.output_stride, "deconv": 1}[self.head]

    def backbone_config(self) -> BackboneConfig:
        """The backbone part of this spec."""
        return BackboneConfig(self.blocks, self.width, self.stem, self.stride_in_1x1,
                              self.output_stride, self.dilation_schedule, self.bn_eps,
                              self.bn_use_global_stats, self.bn_fix_gamma, self.bn_momentum)


def _fail(field: str, problem: str) -> None:
    raise ModelSpecError(f"ModelSpec.{field}: {problem}")


def _int_tuple(spec: ModelSpec, field: str) -> Tuple[int, ...]:
    value = getattr(spec, field)
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        _fail(field, f"must be a sequence of integers, got {value!r}")
    if len(out) != 4 or min(out) < 1:
        _fail(field, f"must be 4 positive block counts (stages 2-5), got {value!r}")
    return out


def _check_int(spec: ModelSpec, field: str, allowed=None, minimum: Optional[int] = None) -> None:
    value = getattr(spec, field)
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(field, f"must be an integer, got {value!r}")
    if allowed is not None and value not in allowed:
        _fail(field, f"must be one of {', '.join(map(str, allowed))}, got {value!r}")
    if minimum is not None and value < minimum:
        _fail(field, f"must be >= {minimum}, got {value!r}")


def _check_choice(spec: ModelSpec, field: str, allowed: Tuple[str, ...]) -> None:
    value = getattr(spec, field)
    if value not in allowed:
        _fail(field, f"must be one of {', '.join(allowed)}, got {value!r}")


def _validate(spec: ModelSpec) -> None:
    if spec.blocks_per_stage is None:
        _check_int(spec, "depth", allowed=tuple(DEPTH_BLOCKS))
    _check_int(spec, "width", minimum=1)
    _check_choice(spec, "stem", STEMS)
    _check_int(spec, "output_stride", allowed=OUTPUT_STRIDES)
    _check_choice(spec, "head", HEADS)
    _check_int(spec, "aspp", minimum=0)
    _check_int(spec, "aspp_stride", minimum=1)
    _check_int(spec, "cell_width", allowed=CELL_WIDTHS)
    try:
        duc_ratio(spec.output_stride, spec.cell_width)
    except ValueError as err:
        _fail("cell_width", str(err))
    _check_choice(spec, "deconv_mode", DECONV_MODES)
    _check_int(spec, "deconv_channels", minimum=0)
    _check_int(spec, "num_classes", minimum=1)
    if not isinstance(spec.head_name, str) or not re.fullmatch(r"[A-Za-z_]\w*", spec.head_name):
        _fail("head_name", f"must be an identifier-like string, got {spec.head_name!r}")
    if not isinstance(spec.bn_eps, (int, float)) or isinstance(spec.bn_eps, bool) or spec.bn_eps <= 0:
        _fail("bn_eps", f"must be a positive number, got {spec.bn_eps!r}")
    if (not isinstance(spec.bn_momentum, (int, float)) or isinstance(spec.bn_momentum, bool)
            or not 0 <= spec.bn_momentum <= 1):
        _fail("bn_momentum", f"must be a number in [0, 1], got {spec.bn_momentum!r}")
    for field in ("stride_in_1x1", "bn_use_global_stats", "bn_fix_gamma"):
        if not isinstance(getattr(spec, field), bool):
            _fail(field, f"must be True or False, got {getattr(spec, field)!r}")
    if isinstance(spec.dilation_schedule, str) and spec.dilation_schedule not in NAMED_SCHEDULES:
        _fail("dilation_schedule", f"unknown schedule {spec.dilation_schedule!r} "
                                   f"(known: {', '.join(NAMED_SCHEDULES)}, or explicit rate lists)")
    try:
        resolve_schedule(spec.dilation_schedule, spec.blocks, spec.output_stride)
    except ScheduleError as err:
        _fail("dilation_schedule", str(err))


# ---------------------------------------------------------------------------- presets
_PAPER = dict(stem="classic", dilation_schedule="deeplab")          # Tables 1-3 backbone
_BEST_DUC = dict(_PAPER, head="duc", aspp=6, cell_width=2)          # Table 1 last row
_TINY = dict(blocks_per_stage=(1, 1, 4, 3), width=8)                # tests and CPU demo

PRESETS: Dict[str, ModelSpec] = {
    # Released checkpoint = Table 4 "ResNet-DUC-HDC-Coarse (better network)".
    "resnet101_duc_hdc_released": ModelSpec(),
    # Table 1 (ResNet-101, classic stem, DeepLab dilation 2/4).
    "resnet101_baseline_ds8": ModelSpec(**_PAPER, head="bilinear", aspp=4),
    "resnet101_baseline_ds4": ModelSpec(**_PAPER, head="bilinear", aspp=4, output_stride=4),
    "resnet101_duc_ds8_aspp0_cell1": ModelSpec(**_PAPER, head="duc", aspp=0, cell_width=1),
    "resnet101_duc_ds8_aspp4_cell1": ModelSpec(**_PAPER, head="duc", aspp=4, cell_width=1),
    "resnet101_duc_ds4_aspp4_cell1": ModelSpec(**_PAPER, head="duc", aspp=4, cell_width=1,
                                               output_stride=4),
    "resnet101_duc_ds8_aspp6_cell1": ModelSpec(**_PAPER, head="duc", aspp=6, cell_width=1),
    "resnet101_duc_ds8_aspp6_cell2": ModelSpec(**_BEST_DUC),
    # Section 4.1.2 "Compared with Deconvolution" (and Table 3 row 1).
    "resnet101_deconv_one_step": ModelSpec(**dict(_BEST_DUC, head="deconv", deconv_mode="one-step")),
    "resnet101_deconv_two_step": ModelSpec(**dict(_BEST_DUC, head="deconv", deconv_mode="two-step")),
    # Table 2: HDC variants of the best ResNet-DUC model.
    "resnet101_duc_hdc_none": ModelSpec(**dict(_BEST_DUC, dilation_schedule="none")),
    "resnet101_duc_hdc_conv": ModelSpec(**dict(_BEST_DUC, dilation_schedule="dilation-conv")),
    "resnet101_duc_hdc_rf": ModelSpec(**dict(_BEST_DUC, dilation_schedule="dilation-rf")),
    "resnet101_duc_hdc_bigger": ModelSpec(**dict(_BEST_DUC, dilation_schedule="dilation-bigger")),
    # Table 3: ResNet-152.
    "resnet152_deconv": ModelSpec(**dict(_BEST_DUC, depth=152, head="deconv")),
    "resnet152_duc_hdc": ModelSpec(**dict(_BEST_DUC, depth=152, dilation_schedule="dilation-bigger")),
    # Tiny family (same code paths, width 8, blocks 1/1/4/3): tests and the CPU demo.
    "tiny_duc_hdc": ModelSpec(**_TINY),
    "tiny_baseline": ModelSpec(**dict(_TINY, **_PAPER, head="bilinear")),
    "tiny_deconv": ModelSpec(**dict(_TINY, **_PAPER, head="deconv", aspp=6)),
}

#: what each preset is; :func:`describe_preset` adds the paper's numbers (:data:`PAPER_ROWS`)
PRESET_DESCRIPTIONS: Dict[str, str] = {
    "resnet101_duc_hdc_released": "released checkpoint: deep stem, released HDC, DUC ASPP4 cell 2, "
                                  "Table 4 better network",
    "resnet101_baseline_ds8": "Table 1 row 1: DeepLab-v2 baseline, DS 8, ASPP 4, bilinear",
    "resnet101_baseline_ds4": "Table 1 row 2: baseline, DS 4, ASPP 4, bilinear",
    "resnet101_duc_ds8_aspp0_cell1": "Table 1 row 3: DUC, DS 8, no ASPP, cell 1, no aug.",
    "resnet101_duc_ds8_aspp4_cell1": "Table 1 rows 4-5: DUC, DS 8, ASPP 4, cell 1",
    "resnet101_duc_ds4_aspp4_cell1": "Table 1 row 6: DUC, DS 4, ASPP 4, cell 1",
    "resnet101_duc_ds8_aspp6_cell1": "Table 1 row 7: DUC, DS 8, ASPP 6, cell 1",
    "resnet101_duc_ds8_aspp6_cell2": "Table 1 row 8: DUC, DS 8, ASPP 6, cell 2",
    "resnet101_deconv_one_step": "Sec. 4.1.2 / Table 3 row 1: one x8 deconv, DUC-matched size",
    "resnet101_deconv_two_step": "Sec. 4.1.2: x2 then x4 deconv, DUC-matched size",
    "resnet101_duc_hdc_none": "Table 2: No dilation",
    "resnet101_duc_hdc_conv": "Table 2: Dilation-conv",
    "resnet101_duc_hdc_rf": "Table 2: Dilation-RF",
    "resnet101_duc_hdc_bigger": "Table 2: Dilation-bigger = Table 3 rows 2-3",
    "resnet152_deconv": "Table 3 row 4: ResNet-152, one-step deconv",
    "resnet152_duc_hdc": "Table 3 rows 5-6: ResNet-152 DUC+HDC Dilation-bigger",
    "tiny_duc_hdc": "tiny released-like net (deep stem, released HDC, DUC ASPP4 cell 2) for tests/demo",
    "tiny_baseline": "tiny classic-stem DeepLab bilinear baseline for tests/demo",
    "tiny_deconv": "tiny classic-stem one-step deconv decoder for tests/demo",
}


class PaperRow(NamedTuple):
    """One result row of the paper and the preset that reproduces its architecture."""

    table: str
    row: str
    miou: float
    preset: str


PAPER_ROWS: Tuple[PaperRow, ...] = (
    PaperRow("1", "Baseline DS8 ASPP4 aug", 72.3, "resnet101_baseline_ds8"),
    PaperRow("1", "Baseline DS4 ASPP4 aug", 70.9, "resnet101_baseline_ds4"),
    PaperRow("1", "DUC DS8 no ASPP no aug cell1", 71.9, "resnet101_duc_ds8_aspp0_cell1"),
    PaperRow("1", "DUC DS8 ASPP4 no aug cell1", 72.8, "resnet101_duc_ds8_aspp4_cell1"),
    PaperRow("1", "DUC DS8 ASPP4 aug cell1", 74.3, "resnet101_duc_ds8_aspp4_cell1"),
    PaperRow("1", "DUC DS4 ASPP4 aug cell1", 73.7, "resnet101_duc_ds4_aspp4_cell1"),
    PaperRow("1", "DUC DS8 ASPP6 aug cell1", 74.5, "resnet101_duc_ds8_aspp6_cell1"),
    PaperRow("1", "DUC DS8 ASPP6 aug cell2", 74.7, "resnet101_duc_ds8_aspp6_cell2"),
    PaperRow("4.1.2", "bigger patch 880x880", 75.7, "resnet101_duc_ds8_aspp6_cell2"),
    PaperRow("4.1.2", "bigger patch 880x880 + CRF", 76.7, "resnet101_duc_ds8_aspp6_cell2"),
    PaperRow("4.1.2", "deconv x8", 75.1, "resnet101_deconv_one_step"),
    PaperRow("4.1.2", "deconv x2 then x4", 75.0, "resnet101_deconv_two_step"),
    PaperRow("2", "No dilation", 72.9, "resnet101_duc_hdc_none"),
    PaperRow("2", "Dilation-conv", 75.0, "resnet101_duc_hdc_conv"),
    PaperRow("2", "Dilation-RF", 75.4, "resnet101_duc_hdc_rf"),
    PaperRow("2", "Dilation-bigger", 76.4, "resnet101_duc_hdc_bigger"),
    PaperRow("3", "ResNet-101 Deconv fine", 75.1, "resnet101_deconv_one_step"),
    PaperRow("3", "ResNet-101 DUC+HDC fine", 76.4, "resnet101_duc_hdc_bigger"),
    PaperRow("3", "ResNet-101 DUC+HDC fine+coarse", 76.2, "resnet101_duc_hdc_bigger"),
    PaperRow("3", "ResNet-152 Deconv fine", 76.4, "resnet152_deconv"),
    PaperRow("3", "ResNet-152 DUC+HDC fine", 76.7, "resnet152_duc_hdc"),
    PaperRow("3", "ResNet-152 DUC+HDC fine+coarse", 77.1, "resnet152_duc_hdc"),
    # Table 4 (Cityscapes test server): the released model.
    PaperRow("4", "ResNet-DUC-HDC-Coarse (better network), test", 80.1, "resnet101_duc_hdc_released"),
    # Sections 4.2 and 4.3 (test servers): KITTI road URBAN_ROAD MaxF (in the miou field), VOC 2012 mIoU.
    PaperRow("5", "KITTI road URBAN_ROAD MaxF", 96.41, "resnet101_duc_ds8_aspp6_cell2"),
    PaperRow("6", "VOC 2012 ResNet-152-DUC", 83.1, "resnet152_duc_hdc"),
)


def paper_miou(table: str, row: str) -> float:
    """The paper's number (%) of :data:`PAPER_ROWS` row ``row`` of table ``table``."""
    for paper_row in PAPER_ROWS:
        if (paper_row.table, paper_row.row) == (table, row):
            return paper_row.miou
    raise KeyError(f"no paper row {row!r} in table {table!r}")


def list_presets() -> List[str]:
    """Names of all presets, in definition order."""
    return list(PRESETS)


def describe_preset(name: str) -> str:
    """One-line description of a preset with the paper's numbers of its rows (:data:`PAPER_ROWS`)."""
    get_spec(name)
    numbers = "; ".join(f"{row.row} {row.miou}" for row in PAPER_ROWS if row.preset == name)
    return f"{PRESET_DESCRIPTIONS[name]} ({numbers})" if numbers else PRESET_DESCRIPTIONS[name]


def get_spec(name_or_spec: Union[str, ModelSpec], **overrides) -> ModelSpec:
    """A preset (by name) or spec with fields replaced by ``overrides``."""
    if isinstance(name_or_spec, ModelSpec):
        spec = name_or_spec
    elif name_or_spec in PRESETS:
        spec = PRESETS[name_or_spec]
    else:
        raise ModelSpecError(f"unknown model preset {name_or_spec!r} "
                             f"(known: {', '.join(PRESETS)})")
    fields = [f.name for f in dataclasses.fields(ModelSpec)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ModelSpecError(f"unknown ModelSpec field(s) {', '.join(unknown)} "
                             f"(known: {', '.join(fields)})")
    return dataclasses.replace(spec, **overrides) if overrides else spec


def build_model(spec: ModelSpec) -> SegmentationNet:
    """Build the (uninitialised) network of ``spec``."""
    backbone = ResNetBackbone(spec.backbone_config())
    head = build_head(spec.head, spec.head_name, backbone.out_channels, spec.num_classes,
                      spec.output_stride, aspp=spec.aspp, aspp_stride=spec.aspp_stride,
                      cell_width=spec.cell_width, deconv_mode=spec.deconv_mode,
                      deconv_channels=spec.deconv_channels)
    return SegmentationNet(backbone, head, spec)


def get_model(name_or_spec: Union[str, ModelSpec, SystemSpec], **overrides) -> HybridBlock:
    """Build a preset or spec with field overrides, e.g.
    ``get_model("tiny_duc_hdc", num_classes=3, cell_width=1)``. Parameters are not
    initialised (``net.initialize(...)``; the head alone: ``net.head.collect_params()``).

    The comparison systems' presets and specs (``models.systems``: ``fcn8s_vgg16``,
    ``pspnet_resnet101``, ``tiny_unet``...) build an ``EncoderDecoderNet`` with
    :class:`~tusimple_duc.models.systems.SystemSpec` fields as ``overrides``."""
    if isinstance(name_or_spec, SystemSpec) or name_or_spec in SYSTEM_PRESETS:
        return build_system(get_system_spec(name_or_spec, **overrides))
    return build_model(get_spec(name_or_spec, **overrides))
