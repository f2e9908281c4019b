"""Figures of evaluation results: the row-normalised confusion matrix and per-class IoU bars.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global
backend switch); written as PNG atomically.
"""
from __future__ import annotations

import math
import os
from typing import List, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tusimple_duc.evaluation.report import EvaluationResult
from tusimple_duc.io.atomic import atomic_open

CONFUSION_FIGURE = "confusion_matrix.png"
CLASS_IOU_FIGURE = "class_iou.png"


def row_normalise(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (float64); rows that sum to 0 stay 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def confusion_figure(matrix: np.ndarray, row_names: Sequence[str], column_names: Sequence[str],
                     title: str = "confusion matrix (rows: ground truth, normalised)") -> Figure:
    """A heat map of the row-normalised (K, K') confusion matrix, with the fraction in every cell."""
    fractions = row_normalise(matrix)
    rows, columns = fractions.shape
    figure = Figure(figsize=(max(4.0, 0.5 * columns + 2.5), max(3.5, 0.45 * rows + 2.0)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(columns))
    axes.set_xticklabels(column_names, rotation=90, fontsize=7)
    axes.set_yticks(range(rows))
    axes.set_yticklabels(row_names, fontsize=7)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    axes.set_title(title, fontsize=9)
    for row in range(rows):
        for column in range(columns):
            value = fractions[row, column]
            if value >= 0.005:
                axes.text(column, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=5,
                          color="white" if value > 0.5 else "black")
    figure.tight_layout()
    return figure


def class_iou_figure(names: Sequence[str], iou: Sequence[float], title: str = "per-class IoU") -> Figure:
    """Horizontal bars of the per-class IoU (NaN classes are marked "n/a"), with the mean as a line."""
    values = np.asarray(iou, dtype=np.float64)
    figure = Figure(figsize=(6.0, max(2.5, 0.3 * len(names) + 1.2)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(names))
    axes.barh(positions, np.nan_to_num(values, nan=0.0), color="tab:blue")
    for position, value in zip(positions, values):
        if math.isnan(value):
            axes.text(0.01, position, "n/a", va="center", fontsize=7)
        else:
            axes.text(min(value, 0.88) + 0.01, position, f"{100 * value:.1f}", va="center", fontsize=7)
    present = values[~np.isnan(values)]
    if present.size:
        axes.axvline(present.mean(), color="tab:red", linestyle="--", linewidth=1,
                     label=f"mean {100 * present.mean():.1f}")
        axes.legend(loc="lower right", fontsize=7)
    axes.set_yticks(positions)
    axes.set_yticklabels(names, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("IoU")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: str) -> None:
    """Write ``figure`` to ``path`` as PNG, atomically."""
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")


def write_result_figures(result: EvaluationResult, folder: str) -> List[str]:
    """Write the confusion matrix (if the result has one) and the IoU bars of the first table
    (if it has an IoU column) into ``folder``; return the paths written."""
    written = []
    if result.confusion is not None:
        path = os.path.join(folder, CONFUSION_FIGURE)
        save_figure(confusion_figure(result.confusion, result.confusion_rows, result.confusion_columns,
                                     title=f"{result.dataset}: confusion matrix (rows normalised)"), path)
        written.append(path)
    classes = result.tables[0]
    if "IoU" in classes.columns:
        path = os.path.join(folder, CLASS_IOU_FIGURE)
        save_figure(class_iou_figure(classes.names, classes.columns["IoU"], title=f"{result.dataset}: IoU per class"),
                    path)
        written.append(path)
    return written
