"""Figures of claims 2-3, drawn from the saved runs (:mod:`.runs` result dicts).

* :func:`learning_curves`: training loss, val mIoU, thin-class and band IoU per epoch, per variant
  (mean over seeds, thin lines: seeds);
* :func:`paired_figure`: one panel per quantity, each seed's pair of values joined by a line;
* :func:`thin_crops`: crops around thin structures, image | ground truth | one prediction per variant;
* :func:`spectra_figure`: the gridding spectrum of the last features per variant (mean over seeds).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tusimple_duc.viz.colorize import colorize, mosaic, write_rgb_png
from tusimple_duc.viz.plots import save_figure
from experiments.claims.measures import gridding_ratio, period_bins
from experiments.claims.runs import THIN_IDS, ClaimsData, Variant

Run = Dict
Quantity = Callable[[Run], float]
_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def learning_curves(groups: Sequence[Tuple[Variant, Sequence[Run]]], path: str) -> None:
    """Loss, mIoU, thin-class IoU and band IoU per epoch; one colour per variant."""
    panels = (("training loss (mean per epoch)", "loss", 1.0), ("val mIoU (%)", "miou", 100.0),
              ("val thin-class IoU (%)", "thin_iou", 100.0), ("val thin-structure band IoU (%)", "band_iou", 100.0))
    figure = Figure(figsize=(16.0, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, key, scale) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for colour, (variant, runs) in zip(_COLOURS, groups):
            curves = np.array([[scale * row[key] for row in run["curve"]] for run in runs])
            epochs = np.arange(1, curves.shape[1] + 1)
            for curve in curves:
                axes.plot(epochs, curve, color=colour, alpha=0.25, linewidth=0.8)
            axes.plot(epochs, np.nanmean(curves, axis=0), color=colour, linewidth=2, label=variant.short)
        axes.set_xlabel("epoch")
        axes.set_title(title, fontsize=9)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def paired_figure(panels: Sequence[Tuple[str, Sequence[float], Sequence[float]]], labels: Tuple[str, str],
                  path: str) -> None:
    """One panel per ``(title, values of a, values of b)``: a seed's two values joined by a line."""
    figure = Figure(figsize=(3.2 * len(panels), 3.6), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, first, second) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for a, b in zip(first, second):
            axes.plot([0, 1], [a, b], color="grey", linewidth=0.8, marker="o", markersize=4)
        axes.plot([0, 1], [np.mean(first), np.mean(second)], color="black", linewidth=2.5, label="mean")
        axes.set_xticks([0, 1])
        axes.set_xticklabels(labels, fontsize=8)
        axes.set_xlim(-0.4, 1.4)
        axes.set_title(title, fontsize=9)
        axes.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)


def thin_window(labels: np.ndarray, size: int) -> Tuple[int, int]:
    """Top-left (row, col) of the ``size x size`` window (inside the map) holding the most thin-class pixels."""
    thin = np.isin(labels, THIN_IDS).astype(np.float64)
    height, width = thin.shape
    size = min(size, height, width)
    integral = np.pad(thin.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
    row, col = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(row), int(col)


def thin_crops(data: ClaimsData, predictions: Sequence[Tuple[str, Sequence[np.ndarray]]], path: str,
               size: int = 96, zoom: int = 3) -> None:
    """For each kept val image: the ``size`` px window with the most thin-class pixels, enlarged
    ``zoom`` times (nearest): image | ground truth | one prediction per ``(title, label maps)``."""
    val = data.split("val")
    images, labels = data.images[val], data.labels[val]
    count = min(len(maps) for _, maps in predictions)
    size = min(size, *labels.shape[1:])
    rows = []
    for index in range(count):
        row, col = thin_window(labels[index], size)
        window = (slice(row, row + size), slice(col, col + size))

        def enlarge(panel: np.ndarray) -> np.ndarray:
            return np.repeat(np.repeat(panel[window], zoom, axis=0), zoom, axis=1)

        panels = [enlarge(images[index]), enlarge(colorize(labels[index], "cityscapes"))]
        panels += [enlarge(colorize(np.asarray(maps[index], dtype=np.uint8), "cityscapes")) for _, maps in predictions]
        rows.append(mosaic(panels, ["image", "ground truth"] + [title for title, _ in predictions]))
    write_rgb_png(path, np.concatenate(rows, axis=0))


def mean_spectrum(runs: Sequence[Run]) -> np.ndarray:
    """The seeds' spectra, each normalised to unit non-DC energy, averaged; DC set to 0; (w, w) (zeros if none)."""
    spectra = [np.zeros_like(np.array(runs[0]["spectrum"], dtype=np.float64))]
    for run in runs:
        spectrum = np.array(run["spectrum"], dtype=np.float64)
        spectrum[0, 0] = 0.0
        if spectrum.sum() > 0:  # a run without a uniform window has no spectrum
            spectra.append(spectrum / spectrum.sum())
    return np.mean(spectra[1:], axis=0) if len(spectra) > 1 else spectra[0]


def spectra_figure(groups: Sequence[Tuple[Variant, Sequence[Run]]], path: str) -> None:
    """Per variant the mean normalised spectrum (DFT bins, centred; period bins outlined), and the
    gridding ratio per seed."""
    figure = Figure(figsize=(4.0 * (len(groups) + 1), 3.8), dpi=100)
    FigureCanvasAgg(figure)
    spectra = [mean_spectrum(runs) for _, runs in groups]
    top = max(float(s.max()) for s in spectra)
    for index, ((variant, runs), spectrum) in enumerate(zip(groups, spectra)):
        axes = figure.add_subplot(1, len(groups) + 1, index + 1)
        window = spectrum.shape[0]
        shown = axes.imshow(np.fft.fftshift(spectrum), cmap="viridis", vmin=0, vmax=top)
        ticks = np.arange(window)
        frequencies = np.fft.fftshift(np.fft.fftfreq(window))
        axes.set_xticks(ticks)
        axes.set_xticklabels([f"{f:g}" for f in frequencies], fontsize=6)
        axes.set_yticks(ticks)
        axes.set_yticklabels([f"{f:g}" for f in frequencies], fontsize=6)
        marked = np.argwhere(np.fft.fftshift(period_bins(window)))
        axes.plot(marked[:, 1], marked[:, 0], "s", markerfacecolor="none", markeredgecolor="red", markersize=9)
        axes.set_title(f"{variant.short}: share at the periods {gridding_ratio(spectrum):.3f}", fontsize=8)
        axes.set_xlabel("cycles per feature px (x)", fontsize=7)
        figure.colorbar(shown, ax=axes, fraction=0.046)
    axes = figure.add_subplot(1, len(groups) + 1, len(groups) + 1)
    for index, (variant, runs) in enumerate(groups):
        ratios = [gridding_ratio(np.array(run["spectrum"])) for run in runs]
        axes.plot([index] * len(ratios), ratios, "o", color=_COLOURS[index])
        axes.plot([index - 0.2, index + 0.2], [np.mean(ratios)] * 2, color="black")
    axes.axhline(period_bins(8).sum() / 63.0, color="grey", linestyle="--", linewidth=1, label="white noise")
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels([variant.short for variant, _ in groups], fontsize=8)
    axes.set_title("gridding ratio per seed", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def values(runs: Sequence[Run], quantity: Quantity) -> List[float]:
    return [float(quantity(run)) for run in runs]
