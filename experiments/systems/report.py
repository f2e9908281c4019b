"""The comparison's Markdown table and figures, the publications' numbers beside the measured ones."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tusimple_duc.data.labels import CITYSCAPES_CLASS_NAMES  # noqa: E402
from tusimple_duc.io.atomic import atomic_write_with  # noqa: E402
from tusimple_duc.models.systems import published_for  # noqa: E402
from tusimple_duc.runtime import physical_core_count  # noqa: E402
from experiments.systems.entries import SystemEntry  # noqa: E402
from experiments.systems.run import Budget, Cost, Trained  # noqa: E402


@dataclass(frozen=True)
class Row:
    """One system: its entry, training scores, costs and the 1-minute load average of the CPUs
    when its costs were measured (NaN: unknown)."""

    entry: SystemEntry
    trained: Trained
    cost: Cost
    load_average: float = float("nan")


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def _whole(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def published_text(preset: str) -> str:
    """``62.2 (VOC 2012 test); 65.3 (Cityscapes test)`` for a preset, ``-`` when none."""
    rows = published_for(preset)
    return "; ".join(f"{r.miou:.1f} ({r.dataset}{', ' + r.note if r.note else ''})" for r in rows) or "-"


#: full-size presets whose training config is not named after them
PRESET_CONFIGS = {
    "resnet101_duc_hdc_released": "train_cityscapes.cfg",  # the released example config
    "resnet101_baseline_ds8": "table1_row1_baseline_ds8.cfg",  # the paper's Table 1, row 1
}


def config_text(preset: str) -> str:
    """The training config of a full-size preset as a Markdown link (``-`` when there is none)."""
    path = os.path.join("configs", "train", PRESET_CONFIGS.get(preset, f"{preset}.cfg"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return f"[`{path}`](../../{path})" if os.path.exists(os.path.join(root, path)) else "-"


def machine_text(rows: Sequence[Row], cpu: str) -> str:
    """Where the costs were measured: the CPU and the range of load averages at the time."""
    loads = [row.load_average for row in rows if not math.isnan(row.load_average)]
    load = (f"1-minute load average {min(loads):.1f}-{max(loads):.1f} just before the costs were measured "
            "(the measuring process itself adds up to the number of cores; more means other jobs)"
            ) if loads else "load at measurement not recorded"
    return f"Machine: {cpu}, {physical_core_count()} cores; {load}."


def markdown(rows: Sequence[Row], budget: Budget, cpu: str = "unknown CPU") -> str:
    """The report: setup, the table, the figures and what the miniature does not show."""
    h, w = budget.image_size
    ch, cw = budget.cost_size
    size = "full-size" if budget.full else "tiny (quick budget)"
    lines = [
        "# Segmentation systems compared in miniature",
        "",
        f"Budget `{budget.name}`: {budget.train_images} training and {budget.val_images} validation synthetic "
        f"street scenes of {h}x{w} (19 Cityscapes classes), {budget.epochs} epochs of batch {budget.batch_size}, "
        "tiny networks trained from scratch with the same engine, data, order and number of updates. "
        f"Costs: {size} networks on one {ch}x{cw} image, CPU, median of {budget.cost_repeats} forward passes "
        "after a warm-up; memory is the peak resident size above the process's size before building the network.",
        "",
        machine_text(rows, cpu),
        "",
        f"| system | mIoU % | thin IoU % | train s | params (M) | GMACs {ch}x{cw} | latency s | peak MiB "
        "| published mIoU % | full-size preset, config |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        t, c = row.trained, row.cost
        lines.append(f"| {row.entry.title} | {_percent(t.miou)} | {_percent(t.thin_iou)} | {_whole(t.seconds)} "
                     f"| {c.parameters / 1e6:.2f} | {c.gmacs:.3g} | {c.latency:.3f} | {_whole(c.peak_mb)} "
                     f"| {published_text(row.entry.full)} | `{row.entry.full}`, {config_text(row.entry.full)} |")
    lines += [
        "",
        "Thin IoU: mean IoU of pole, traffic light and traffic sign. Train s: wall-clock seconds of training, "
        "which other jobs on the machine lengthen (compare them only within a run made alone). Published numbers are the publications' "
        "full-size results on real data (`tusimple_duc.models.systems.PUBLISHED`); the miniature compares "
        "architectures under one small budget and is not expected to reproduce their order.",
        "",
        "![mIoU and cost](systems_miou_cost.png)",
        "",
        "![training loss](systems_loss.png)",
        "",
        "![per-class IoU](systems_class_iou.png)",
        "",
        "Simplifications, the same for every system: one joint training stage (no FCN 32s -> 16s -> 8s or "
        "Dilation front-end -> context staging), no ImageNet initialisation, no CRF, no test-time scales.",
    ]
    return "\n".join(lines) + "\n"


#: updates averaged per point of the loss curves (single updates are noisy)
LOSS_WINDOW = 20


def running_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Means of every ``window`` consecutive values (``len(values) - window + 1`` of them; all
    values' mean when there are fewer than ``window``)."""
    data = np.asarray(values, dtype=float)
    if len(data) < window:
        return data.mean(keepdims=True) if len(data) else data
    sums = np.cumsum(np.concatenate([[0.0], data]))
    return (sums[window:] - sums[:-window]) / window


def figures(rows: Sequence[Row], out_dir: str) -> List[str]:
    """``systems_miou_cost.png`` (mIoU and thin IoU bars; mIoU against multiply-adds),
    ``systems_loss.png`` (training loss per update) and ``systems_class_iou.png`` (IoU per system
    and class); returns their paths."""
    names = [row.entry.title for row in rows]
    miou = [100 * row.trained.miou for row in rows]
    thin = [100 * row.trained.thin_iou for row in rows]
    figure, (bars, scatter) = plt.subplots(1, 2, figsize=(13, 4.5))
    positions = range(len(rows))
    bars.bar([p - 0.2 for p in positions], miou, width=0.4, label="mIoU")
    bars.bar([p + 0.2 for p in positions], thin, width=0.4, label="thin-class IoU")
    bars.set_xticks(list(positions))
    bars.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
    bars.set_ylabel("%")
    bars.legend()
    bars.set_title("validation, synthetic scenes")
    scatter.scatter([row.cost.gmacs for row in rows], miou)
    for row, value in zip(rows, miou):
        scatter.annotate(row.entry.title, (row.cost.gmacs, value), fontsize=7)
    scatter.set_xscale("log")
    scatter.set_xlabel("GMACs per image")
    scatter.set_ylabel("mIoU %")
    scatter.set_title("accuracy against multiply-adds")
    figure.tight_layout()
    paths = [os.path.join(out_dir, "systems_miou_cost.png"), os.path.join(out_dir, "systems_loss.png")]
    atomic_write_with(paths[0], lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        smooth = running_mean(row.trained.losses, LOSS_WINDOW)
        axes.plot(range(LOSS_WINDOW, LOSS_WINDOW + len(smooth)), smooth, label=row.entry.title)
    axes.set_yscale("log")
    axes.set_xlabel("update")
    axes.set_ylabel(f"cross-entropy per pixel (mean of {LOSS_WINDOW} updates)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    atomic_write_with(paths[1], lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
    paths.append(class_iou_figure(rows, os.path.join(out_dir, "systems_class_iou.png")))
    return paths


def class_iou_figure(rows: Sequence[Row], path: str) -> str:
    """Heat map of the validation IoU (%) per system (rows) and class (columns), NaN (class absent
    from the validation images, or training diverged) blank; returns ``path``."""
    table = np.full((len(rows), len(CITYSCAPES_CLASS_NAMES)), np.nan)
    for k, row in enumerate(rows):
        if row.trained.iou:
            table[k] = 100 * np.asarray(row.trained.iou, dtype=float)
    figure, axes = plt.subplots(figsize=(12, 0.45 * len(rows) + 2))
    image = axes.imshow(np.ma.masked_invalid(table), vmin=0, vmax=100, cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(CITYSCAPES_CLASS_NAMES)))
    axes.set_xticklabels(CITYSCAPES_CLASS_NAMES, rotation=50, ha="right", fontsize=8)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([row.entry.title for row in rows], fontsize=8)
    for (k, c), value in np.ndenumerate(table):
        if not np.isnan(value):
            axes.text(c, k, f"{value:.0f}", ha="center", va="center", fontsize=6,
                      color="white" if value < 50 else "black")
    figure.colorbar(image, ax=axes, label="IoU %")
    axes.set_title("validation IoU per class")
    figure.tight_layout()
    atomic_write_with(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
    return path
