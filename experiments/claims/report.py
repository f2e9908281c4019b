"""Claims 2-3 in the report: paired comparisons over seeds, their Markdown sections and figures.

Two variants trained with the same seeds are compared seed by seed: the difference of a
quantity (e.g. DUC minus bilinear IoU of "pole") has a mean and a spread over seeds, and a
two-sided paired t-test (:func:`scipy.stats.ttest_rel`) gives the p-value of "no difference".
The verdict is worded from the sign of the mean difference and p < 0.05, nothing else.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from tusimple_duc.data.readers import LabelCodec, read_rgb_image
from experiments.claims.training import (THIN_CLASSES, Experiment, RunResult, Spread, Variant, spread)
from tusimple_duc.pipelines.segment import output_name
from tusimple_duc.viz.colorize import colorize, mosaic, write_rgb_png
from tusimple_duc.viz.plots import save_figure

Quantity = Callable[[RunResult], float]
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Comparison:
    """``a - b`` per seed: the differences, how many seeds favour ``a``, the paired t-test p-value."""

    differences: Spread
    wins: int
    p_value: float

    @property
    def n(self) -> int:
        return len(self.differences.values)


def compare(a: Sequence[RunResult], b: Sequence[RunResult], quantity: Quantity) -> Comparison:
    """Pair the runs of two variants by seed and compare ``quantity`` (NaN p-value below 2 seeds)."""
    first, second = spread(a, quantity), spread(b, quantity)
    if [r.seed for r in sorted(a, key=lambda r: r.seed)] != [r.seed for r in sorted(b, key=lambda r: r.seed)]:
        raise ValueError("compare needs runs of the same seeds")
    differences = Spread(tuple(x - y for x, y in zip(first.values, second.values)))
    p_value = float("nan")
    if differences.std > 0:
        p_value = float(stats.ttest_rel(first.values, second.values).pvalue)
    elif len(differences.values) > 1:
        p_value = 0.0 if differences.mean != 0 else 1.0
    return Comparison(differences, sum(d > 0 for d in differences.values), p_value)


def verdict(comparison: Comparison, expected: str) -> str:
    """How a comparison relates to the paper's ``expected`` direction (a phrase like "DUC better")."""
    mean, p = comparison.differences.mean, comparison.p_value
    if comparison.n < 2 or math.isnan(p):
        direction = "same direction as" if mean > 0 else "not the direction of"
        return f"one seed, no test: {direction} the paper ({expected})"
    if mean == 0:
        return f"no difference (paper: {expected})"
    if mean > 0:
        return (f"as in the paper ({expected}), significant (p = {p:.3f})" if p < SIGNIFICANCE
                else f"same direction as the paper ({expected}), not significant (p = {p:.2f})")
    return (f"contradicts the paper ({expected}), significant (p = {p:.3f})" if p < SIGNIFICANCE
            else f"opposite direction (paper: {expected}), not significant (p = {p:.2f})")


def percent(value: Spread) -> str:
    """``mean ± std`` in percent points (std omitted for one seed)."""
    if len(value.values) < 2:
        return f"{100 * value.mean:.1f}"
    return f"{100 * value.mean:.1f} ± {100 * value.std:.1f}"


def per_seed(value: Spread, scale: float = 100.0, digits: int = 1) -> str:
    """The per-seed values, ``a / b / c``."""
    return " / ".join(f"{scale * v:.{digits}f}" for v in value.values)


def iou_of(name: str) -> Quantity:
    return lambda result: result.class_iou[name]


def miou(result: RunResult) -> float:
    return result.miou


def gridding(result: RunResult) -> float:
    return result.gridding


# ---------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Panel:
    """One panel of :func:`comparison_figure`: ``quantities`` as grouped bars, values times ``scale``,
    optionally a horizontal ``reference`` line ``(label, value)``."""

    title: str
    ylabel: str
    quantities: Sequence[Tuple[str, Quantity]]
    scale: float = 100.0
    reference: Optional[Tuple[str, float]] = None


def comparison_figure(groups: Sequence[Tuple[str, Sequence[RunResult]]], panels: Sequence[Panel], path: str) -> None:
    """Bars of the mean of each quantity per variant, one dot per seed, one panel per :class:`Panel`."""
    widths = [1.2 + 0.9 * len(panel.quantities) * len(groups) for panel in panels]
    figure = Figure(figsize=(max(5.0, sum(widths)), 3.8), dpi=100)
    FigureCanvasAgg(figure)
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        width = 0.8 / len(groups)
        for g, (label, results) in enumerate(groups):
            positions = np.arange(len(panel.quantities)) + (g - (len(groups) - 1) / 2) * width
            means = [panel.scale * spread(results, q).mean for _, q in panel.quantities]
            axes.bar(positions, means, width=width * 0.9, label=label, alpha=0.75)
            for position, (_, quantity) in zip(positions, panel.quantities):
                values = [panel.scale * v for v in spread(results, quantity).values]
                axes.plot([position] * len(values), values, "k.", markersize=5)
        if panel.reference is not None:
            axes.axhline(panel.scale * panel.reference[1], color="tab:red", linestyle="--", linewidth=1,
                         label=panel.reference[0])
        axes.set_xticks(np.arange(len(panel.quantities)))
        axes.set_xticklabels([name for name, _ in panel.quantities], fontsize=8)
        axes.set_ylabel(panel.ylabel)
        axes.set_title(panel.title, fontsize=9)
        axes.legend(fontsize=7, loc="best")
        axes.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)


def predictions_figure(experiment: Experiment, variants: Sequence[Variant], seed: int, path: str,
                       image_index: int = 0) -> None:
    """``image | ground truth | one prediction per variant`` for one val image and seed."""
    codec = LabelCodec("cityscapes")
    frame = experiment.summary.frames["val"][image_index]
    name = output_name(frame.image, frame.files["gtFine_labelIds"])
    panels = [read_rgb_image(frame.image), colorize(codec.read(frame.files["gtFine_labelIds"]), "cityscapes_label_ids")]
    titles = ["image", "ground truth"]
    for variant in variants:
        result = experiment.results[(variant.key, seed)]
        panels.append(colorize(codec.read(os.path.join(result.result_dir, "score", name)), "cityscapes_label_ids"))
        titles.append(variant.short)
    top, bottom = panels[:3], panels[3:]
    rows = [mosaic(top, titles[:3])]
    if bottom:
        blank = np.zeros_like(panels[0])
        rows.append(mosaic(bottom + [blank] * (3 - len(bottom)), titles[3:] + [""] * (3 - len(bottom))))
    write_rgb_png(path, np.concatenate(rows, axis=0))


def confidence_figure(experiment: Experiment, variants: Sequence[Variant], seed: int, path: str,
                      image_index: int = 0) -> None:
    """The max class probability of one val image per variant, side by side (grey, white = 1):
    gridding shows up as a pattern repeating every 2 feature cells (16 px)."""
    frame = experiment.summary.frames["val"][image_index]
    name = os.path.splitext(output_name(frame.image, frame.files["gtFine_labelIds"]))[0] + ".npz"
    panels = []
    for variant in variants:
        with np.load(os.path.join(experiment.results[(variant.key, seed)].result_dir, "prob", name)) as archive:
            confidence = archive["probabilities"].astype(np.float32).max(axis=0)
        panels.append(np.clip(np.rint(255 * confidence), 0, 255).astype(np.uint8))
    write_rgb_png(path, mosaic(panels, [f"max probability, {variant.short}" for variant in variants]))


# ---------------------------------------------------------------------------- tables
def metric_rows(groups: Sequence[Tuple[str, Sequence[RunResult]]], quantities: Sequence[Tuple[str, Quantity]],
                scale: float = 100.0, digits: int = 1) -> List[str]:
    """Markdown rows: one per quantity, a ``mean ± std (per seed)`` cell per variant."""
    rows = []
    for name, quantity in quantities:
        cells = []
        for _, results in groups:
            value = spread(results, quantity)
            mean = f"{scale * value.mean:.{digits}f}"
            if len(value.values) > 1:
                mean += f" ± {scale * value.std:.{digits}f}"
            cells.append(f"{mean} ({per_seed(value, scale, digits)})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def comparison_rows(a: Sequence[RunResult], b: Sequence[RunResult], quantities: Sequence[Tuple[str, Quantity]],
                    expected: str, scale: float = 100.0, digits: int = 1) -> List[str]:
    """Markdown rows of the paired differences ``a - b`` and their verdicts."""
    rows = []
    for name, quantity in quantities:
        result = compare(a, b, quantity)
        diff = result.differences
        std = f" ± {scale * diff.std:.{digits}f}" if result.n > 1 else ""
        rows.append(f"| {name} | {scale * diff.mean:+.{digits}f}{std} ({per_seed(diff, scale, digits)}) | "
                    f"{result.wins} of {result.n} | {'' if math.isnan(result.p_value) else f'{result.p_value:.3f}'} | "
                    f"{verdict(result, expected)} |")
    return rows


THIN_QUANTITIES: List[Tuple[str, Quantity]] = [(name, iou_of(name)) for name in THIN_CLASSES]
MIOU_QUANTITY: Tuple[str, Quantity] = ("mIoU", miou)


def thin_mean(result: RunResult) -> float:
    """Mean IoU of the thin classes."""
    return float(np.mean([result.class_iou[name] for name in THIN_CLASSES]))
