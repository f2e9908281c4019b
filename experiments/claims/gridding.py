"""Claim 1, gridding (paper section 3.2, Figure 2): exactly which inputs reach one output pixel.

Everything here is exact counting, no training:

* **3x3 stacks**: one 3x3 conv of rate 2 (the paper's "9 out of 25 pixels"), three convs of
  rates 2, 2, 2 (Figure 2 a) and 1, 2, 3 (Figure 2 b), by :func:`~tusimple_duc.models.gridding.coverage_pattern`;
* **backbones**: every named dilation schedule on the ResNet-101 backbone and on the tiny
  backbone trained by claims 2-3, by :func:`~tusimple_duc.models.gridding.backbone_coverage` (stages
  4-5, in feature pixels at stride 8), with the paper's rule (:func:`~tusimple_duc.models.hdc.schedule_report`);
* **cross-checks**: for the schedules named in ``gradient_checks``, the same pattern measured by
  MXNet autograd (:func:`~tusimple_duc.models.gridding.gradient_coverage`) must be identical.

A row's ``covered`` / ``total`` counts the offsets inside the receptive-field square
``(2 * radius + 1)^2`` that influence the centre output; ``holes`` = total - covered.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from tusimple_duc.models.gridding import Coverage, backbone_coverage, coverage_pattern, gradient_coverage
from tusimple_duc.models.hdc import NAMED_SCHEDULES, schedule_report
from tusimple_duc.models.presets import get_spec
from tusimple_duc.models.resnet import BackboneConfig
from tusimple_duc.viz.plots import save_figure

#: Backbones whose schedules are counted: (label, preset giving blocks/stem/output stride).
BACKBONES: Tuple[Tuple[str, str], ...] = (("ResNet-101", "resnet101_duc_hdc_released"),
                                          ("tiny (blocks 1/1/4/3)", "tiny_duc_hdc"))
#: The 3x3 stacks of section 3.2 / Figure 2.
STACKS: Tuple[Tuple[str, Tuple[int, ...]], ...] = (
    ("one 3x3, r=2", (2,)), ("Fig. 2a: r=2,2,2", (2, 2, 2)), ("Fig. 2b: r=1,2,3", (1, 2, 3)))
#: (preset, schedule) pairs cross-checked with autograd by default.
DEFAULT_GRADIENT_CHECKS: Tuple[Tuple[str, str], ...] = (
    ("resnet101_duc_hdc_released", "deeplab"), ("resnet101_duc_hdc_released", "released"),
    ("tiny_duc_hdc", "deeplab"), ("tiny_duc_hdc", "dilation-bigger"), ("tiny_duc_hdc", "released"))
STACK_FIGURE = "gridding_figure2.png"
BACKBONE_FIGURE = "gridding_backbones.png"
_COLOURS = ListedColormap(["#f4f4f4", "#3b75af"])


@dataclass(frozen=True)
class CoverageRow:
    """One counted configuration.

    Attributes
    ----------
    group : ``"stack"`` or a backbone label (``"ResNet-101"``).
    name : the stack or schedule name.
    rates : the dilation rates, as printed (stacks: all; backbones: stage 4 | stage 5).
    coverage : the exact pattern.
    flagged_groups : ``(flagged, groups)``: groups of the schedule the paper's rule (Eq. 2:
        ``M_2 > 3`` or a common factor) flags, out of all its groups (None for stacks).
    gradient_agrees : autograd measured the same pattern (None: not measured).
    """

    group: str
    name: str
    rates: str
    coverage: Coverage = field(repr=False)
    flagged_groups: Optional[Tuple[int, int]] = None
    gradient_agrees: Optional[bool] = None

    @property
    def side(self) -> int:
        return 2 * self.coverage.radius + 1

    @property
    def nearest_hole(self) -> Optional[int]:
        """Chebyshev distance from the centre of the closest offset that does not reach it (None: no hole)."""
        rows, cols = np.nonzero(~self.coverage.pattern)
        if rows.size == 0:
            return None
        radius = self.coverage.radius
        return int(np.maximum(np.abs(rows - radius), np.abs(cols - radius)).min())


@dataclass
class GriddingResult:
    """Rows of claim 1 and the figures written (paths relative to the output folder)."""

    rows: List[CoverageRow]
    figures: List[str]

    def row(self, group: str, name: str) -> CoverageRow:
        """The row of ``group`` called ``name`` (KeyError if none)."""
        for row in self.rows:
            if row.group == group and row.name == name:
                return row
        raise KeyError((group, name))


def stack_rows() -> List[CoverageRow]:
    """The 3x3 stacks of :data:`STACKS`."""
    return [CoverageRow("stack", name, ",".join(map(str, rates)), coverage_pattern(rates))
            for name, rates in STACKS]


def backbone_config(preset: str, schedule: str) -> BackboneConfig:
    """The backbone of ``preset`` with the dilation schedule ``schedule``."""
    return get_spec(preset, dilation_schedule=schedule).backbone_config()


def format_rates(rates: Sequence[int]) -> str:
    """Rates with runs of one value shortened: ``2x23`` for 23 twos, ``1,2,5,9,...``."""
    parts: List[str] = []
    index = 0
    while index < len(rates):
        run = 1
        while index + run < len(rates) and rates[index + run] == rates[index]:
            run += 1
        parts.append(f"{rates[index]}x{run}" if run > 2 else ",".join([str(rates[index])] * run))
        index += run
    return ",".join(parts)


def backbone_rows(label: str, preset: str, gradient_checks: Sequence[Tuple[str, str]] = ()) -> List[CoverageRow]:
    """Every named schedule on the backbone of ``preset`` (stages 4-5); autograd cross-check of
    the ``(preset, schedule)`` pairs listed in ``gradient_checks``."""
    rows = []
    for schedule in NAMED_SCHEDULES:
        config = backbone_config(preset, schedule)
        coverage = backbone_coverage(config, start_stage=4)
        rates = config.rates()
        groups = schedule_report(schedule, config.blocks_per_stage, config.output_stride, stages=(4, 5))
        agrees = None
        if (preset, schedule) in gradient_checks:
            agrees = bool(np.array_equal(gradient_coverage(config, 4, width=1).pattern, coverage.pattern))
        rows.append(CoverageRow(label, schedule, f"{format_rates(rates[4])} | {format_rates(rates[5])}",
                                coverage, (sum(g.check.grids for g in groups), len(groups)), agrees))
    return rows


def figure2(path: str) -> None:
    """Figure 2 redrawn: rows (a) r = 2, 2, 2 and (b) r = 1, 2, 3; column k shows the inputs
    reaching the centre output through the first k layers, all on the 13 x 13 grid of three layers."""
    stacks = [("(a) r = 2, 2, 2", (2, 2, 2)), ("(b) r = 1, 2, 3", (1, 2, 3))]
    figure = Figure(figsize=(9.0, 7.2), dpi=100)
    FigureCanvasAgg(figure)
    side = 2 * 6 + 1
    for row, (title, rates) in enumerate(stacks):
        for layers in range(1, 4):
            coverage = coverage_pattern(rates[:layers])
            grid = np.zeros((side, side), dtype=int)
            offset = (side - coverage.pattern.shape[0]) // 2
            grid[offset:offset + coverage.pattern.shape[0], offset:offset + coverage.pattern.shape[1]] = \
                coverage.pattern
            axes = figure.add_subplot(2, 3, 3 * row + layers)
            _draw_pattern(axes, grid)
            axes.set_title(f"{title}: layer {layers}\n{coverage.covered} of {coverage.total} in its "
                           f"{coverage.pattern.shape[0]}x{coverage.pattern.shape[0]} field", fontsize=8)
    figure.suptitle("Inputs (blue) reaching the centre output (red) of stacked 3x3 dilated convs", fontsize=10)
    figure.tight_layout(h_pad=2.0)
    save_figure(figure, path)


def backbone_figure(rows: Sequence[CoverageRow], path: str, zoom: int = 12) -> None:
    """The centre ``(2 zoom + 1)^2`` of every backbone row's pattern (one panel each), with counts."""
    backbones = list(dict.fromkeys(row.group for row in rows))
    figure = Figure(figsize=(2.1 * len(NAMED_SCHEDULES), 2.6 * len(backbones)), dpi=100)
    FigureCanvasAgg(figure)
    for b, group in enumerate(backbones):
        for s, row in enumerate(r for r in rows if r.group == group):
            pattern, radius = row.coverage.pattern, row.coverage.radius
            crop = np.zeros((2 * zoom + 1, 2 * zoom + 1), dtype=int)
            keep = min(zoom, radius)
            crop[zoom - keep:zoom + keep + 1, zoom - keep:zoom + keep + 1] = \
                pattern[radius - keep:radius + keep + 1, radius - keep:radius + keep + 1]
            axes = figure.add_subplot(len(backbones), len(NAMED_SCHEDULES), b * len(NAMED_SCHEDULES) + s + 1)
            _draw_pattern(axes, crop)
            axes.set_title(f"{group}\n{row.name}: {100 * row.coverage.covered / row.coverage.total:.1f}% "
                           f"of {row.side}x{row.side}", fontsize=7)
    figure.suptitle(f"Stages 4-5: the centre {2 * zoom + 1}x{2 * zoom + 1} feature pixels of the field of one "
                    f"output pixel (blue = reaches it; percentages over the whole field)", fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)


def _draw_pattern(axes, grid: np.ndarray) -> None:
    centre = grid.shape[0] // 2
    axes.imshow(grid, cmap=_COLOURS, vmin=0, vmax=1, interpolation="nearest")
    axes.add_patch(_square(centre, "#d62728"))
    axes.set_xticks(np.arange(-0.5, grid.shape[1], 1), minor=True)
    axes.set_yticks(np.arange(-0.5, grid.shape[0], 1), minor=True)
    axes.grid(which="minor", color="white", linewidth=0.5)
    axes.tick_params(which="both", length=0, labelbottom=False, labelleft=False)


def _square(centre: int, colour: str):
    from matplotlib.patches import Rectangle

    return Rectangle((centre - 0.5, centre - 0.5), 1, 1, facecolor=colour, edgecolor="none")


def run_gridding(out_dir: str, gradient_checks: Sequence[Tuple[str, str]] = DEFAULT_GRADIENT_CHECKS,
                 backbones: Sequence[Tuple[str, str]] = BACKBONES) -> GriddingResult:
    """Count every configuration of claim 1 and draw its figures into ``out_dir``."""
    rows = stack_rows()
    for label, preset in backbones:
        rows += backbone_rows(label, preset, gradient_checks)
    figure2(os.path.join(out_dir, STACK_FIGURE))
    backbone_figure([row for row in rows if row.group != "stack"], os.path.join(out_dir, BACKBONE_FIGURE))
    return GriddingResult(rows, [STACK_FIGURE, BACKBONE_FIGURE])


def gridding_markdown(result: GriddingResult) -> str:
    """The report section of claim 1."""
    single = result.row("stack", STACKS[0][0]).coverage
    constant = result.row("stack", STACKS[1][0]).coverage
    hybrid = result.row("stack", STACKS[2][0]).coverage
    lines = [
        "## 1. Gridding (section 3.2, Figure 2): exact coverage",
        "",
        "Which input offsets influence the centre output, counted exactly (binary dilation of the "
        "kernel taps, `tusimple_duc.models.gridding.coverage_pattern` / `backbone_coverage`). "
        "*covered / total* counts the offsets of the receptive-field square that reach the output.",
        "",
        f"- One 3x3 conv with r = 2 uses **{single.covered} of {single.total}** pixels of its "
        f"{2 * single.radius + 1}x{2 * single.radius + 1} region (the paper's \"9 out of 25\").",
        f"- Three such convs (r = 2, 2, 2) reach **{constant.covered} of {constant.total}** "
        f"({100 * constant.covered / constant.total:.1f}%): only offsets with even coordinates, a holed "
        f"checkerboard (Figure 2 a). With r = 1, 2, 3 the same 13x13 field is covered completely: "
        f"**{hybrid.covered} of {hybrid.total}** (Figure 2 b).",
        "",
        f"![Figure 2 redrawn]({STACK_FIGURE})",
        "",
        "| configuration | rates (stage 4 \\| stage 5) | field | covered / total | holes | nearest hole | "
        "groups the rule flags | autograd agrees |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result.rows:
        cov = row.coverage
        rule = "" if row.flagged_groups is None else "{} of {}".format(*row.flagged_groups)
        grad = "" if row.gradient_agrees is None else ("yes" if row.gradient_agrees else "**NO**")
        name = row.name if row.group == "stack" else f"{row.group} `{row.name}`"
        nearest = "-" if row.nearest_hole is None else f"{row.nearest_hole} of {cov.radius}"
        lines.append(f"| {name} | {_escape_pipes(row.rates)} | {row.side}x{row.side} | {cov.covered} / {cov.total} "
                     f"({100 * cov.covered / cov.total:.1f}%) | {cov.holes} | {nearest} | {rule} | {grad} |")
    backbone = [r for r in result.rows if r.group != "stack"]
    holed = [f"{r.group} `{r.name}` ({r.coverage.holes} holes, the nearest {r.nearest_hole} of {r.coverage.radius} "
             f"feature pixels from the centre)" for r in backbone if not r.coverage.full]
    complete = [f"{r.group} `{r.name}`" for r in backbone if r.coverage.full]
    lines += [
        "",
        "Backbones: stages 4-5, in feature pixels at output stride 8. *Nearest hole*: the Chebyshev distance from "
        "the centre of the closest offset that does not reach it, out of the field's radius; *groups the rule "
        "flags*: groups of rates (as the schedule defines them) that fail the paper's rule (Eq. 2, M2 <= 3, and "
        "no common factor); *autograd agrees*: the pattern measured as the non-zero gradient of the centre "
        "output of a width-1 copy of the backbone (`tusimple_duc.models.gridding.gradient_coverage`) is identical.",
        "",
        f"- Holes: {'; '.join(holed) if holed else 'none'}.",
        f"- Complete coverage: {', '.join(complete) if complete else 'none'}.",
        "- Constant rates leave holes right next to the centre (the checkerboard of Figure 2 a) for any depth. "
        "The per-group rule is stricter than the exact count: a group it flags (a lone remainder rate such as the "
        "final 2 of `dilation-rf`'s stage 4) does no harm when a neighbouring group contains rate 1.",
        "",
        f"![Coverage of the backbone schedules]({BACKBONE_FIGURE})",
        "",
    ]
    return "\n".join(lines)


def _escape_pipes(text: str) -> str:
    """``text`` usable inside a Markdown table cell."""
    return text.replace("|", "\\|")


def coverage_summary(result: GriddingResult) -> Dict[str, str]:
    """One-line findings for the report's summary."""
    constant = result.row("stack", STACKS[1][0]).coverage
    hybrid = result.row("stack", STACKS[2][0]).coverage
    deeplab = result.row(BACKBONES[0][0], "deeplab").coverage
    return {
        "gridding": f"r=2,2,2 reaches {constant.covered}/{constant.total} inputs, r=1,2,3 {hybrid.covered}/"
                    f"{hybrid.total}; ResNet-101 constant rates {deeplab.covered}/{deeplab.total}, every HDC "
                    f"schedule 100%",
    }
