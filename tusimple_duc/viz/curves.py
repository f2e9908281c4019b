"""Training curves from the JSON-lines metrics log: loss, mIoU and learning rate vs. epochs."""
from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tusimple_duc.engine.logs import read_metrics  # noqa: E402
from tusimple_duc.errors import DUCError  # noqa: E402
from tusimple_duc.io.atomic import atomic_write_with  # noqa: E402

Series = Tuple[List[float], List[float]]


def curves(records: Sequence[Dict], kind: str, key: str) -> Series:
    """``(progress, value)`` of the records of ``kind`` that have a number under ``key``."""
    xs: List[float] = []
    ys: List[float] = []
    for record in records:
        value = record.get(key)
        if record.get("kind") == kind and isinstance(value, (int, float)) and "progress" in record:
            xs.append(float(record["progress"]))
            ys.append(float(value))
    return xs, ys


def plot_training_log(log_path: str, png_path: str, title: str = "") -> Dict[str, int]:
    """Draw loss, mIoU and lr curves of ``log_path`` into ``png_path`` (written atomically).

    Returns the number of points drawn per curve. Raises :class:`DUCError` when the log
    is missing or has no training record.
    """
    if not os.path.isfile(log_path):
        raise DUCError(f"{log_path}: metrics log not found")
    records = read_metrics(log_path)
    panels = [
        ("loss", [("train", "loss", "train (running)"), ("epoch", "loss", "train (epoch)"),
                  ("val", "loss", "validation")]),
        ("mean_iou (classes present)", [("train", "mean_iou", "train (running)"), ("epoch", "mean_iou", "train (epoch)"),
                  ("val", "mean_iou", "validation")]),
        ("learning rate", [("train", "lr", "lr")]),
    ]
    counts: Dict[str, int] = {}
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 9), sharex=True)
    for axis, (ylabel, series) in zip(axes, panels):
        for kind, key, label in series:
            xs, ys = curves(records, kind, key)
            counts[f"{kind}:{key}"] = len(xs)
            if xs:
                axis.plot(xs, ys, marker="o" if kind != "train" else None, markersize=3, label=label)
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        if axis.lines:
            axis.legend(loc="best", fontsize="small")
    if not counts.get("train:loss"):
        plt.close(figure)
        raise DUCError(f"{log_path}: no training record to plot")
    axes[-1].set_xlabel("epoch")
    axes[-1].set_yscale("log")
    figure.suptitle(title or os.path.basename(log_path))
    figure.tight_layout()
    try:
        atomic_write_with(png_path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(figure)
    return counts
