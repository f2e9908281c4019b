"""Measures of claims 2-3: the upsampling ceiling, the thin-structure band IoU, the gridding ratio.

Upsampling ceiling (claim 2)
----------------------------
The best a network predicting at 1/s resolution can do, whatever it learns: its probabilities
are the ``s x s`` block averages of the one-hot ground truth (the exact class fractions of each
cell), resized to full resolution as test.py does (bilinear, :func:`~tusimple_duc.inference.scales.add_resized`)
and arg-maxed (:func:`ceiling_labels`). With the bilinear head s = 8 (the output stride), with
DUC s = the cell width (2 here). Objects narrower than s lose most of their area.

Thin-structure band IoU (claim 2)
---------------------------------
A trimap measure: the pixels within ``k`` px (Chebyshev distance, a ``(2k+1)^2`` square) of any
ground-truth pixel of a thin class (pole, traffic light, traffic sign) form the band; the confusion
of prediction against ground truth is counted on the band only, and the band IoU is the mean IoU
over the classes present there (:func:`band_confusion`, :func:`band_iou`). It scores the thin
objects *and* the background right next to them: a head that smears a 3-px pole over 8 px loses
on both sides.

Gridding ratio (claim 3)
------------------------
Constant dilation (rates 2 in stage 4, 4 in stage 5) computes neighbouring feature pixels from
disjoint inputs (claim 1): the features oscillate with a period of 2 (and 4) feature px, the
checkerboard of the paper's Figure 5. On large uniform regions (road, building, sky: the ground
truth is one class over a whole window) the features should be smooth, so any energy at those
periods is the artefact. :func:`gridding_spectrum` takes every ``w x w`` window (``w`` = 8 feature
px, stride ``w / 2``) of the last backbone features that lies inside one such region, removes each
channel's least-squares plane in the window (the mean and the linear shading of road and sky, whose
harmonics would otherwise fall on the period-4 bins) and sums ``|DFT2|^2`` over channels and
windows: an (w, w) power spectrum.
:func:`gridding_ratio` is the share of its non-DC energy in the bins of the dilation periods, the
frequencies 0, 1/4, 1/2 cycles per px along both axes (DFT indices multiple of ``w / 4``, not both 0:
15 of 63 bins; white noise gives 15/63 = 0.238).
"""
from __future__ import annotations

from typing import Iterable, Sequence, Tuple

import cv2
import numpy as np

from tusimple_duc.evaluation.confusion import confusion_matrix
from tusimple_duc.inference.scales import add_resized

#: Window side of the gridding spectrum, feature px (a multiple of 4: periods 2 and 4 fall on bins).
SPECTRUM_WINDOW = 8


def block_means(maps: np.ndarray, cell: int) -> np.ndarray:
    """Mean of every ``cell x cell`` block: (L, H, W) -> (L, H // cell, W // cell) float64
    (rows and columns beyond the last whole block are dropped)."""
    maps = np.asarray(maps, dtype=np.float64)
    channels, height, width = maps.shape
    rows, cols = height // cell, width // cell
    if rows == 0 or cols == 0:
        raise ValueError(f"maps of {height}x{width} are smaller than one {cell}x{cell} cell")
    trimmed = maps[:, :rows * cell, :cols * cell]
    return trimmed.reshape(channels, rows, cell, cols, cell).mean(axis=(2, 4))


def one_hot(train_ids: np.ndarray, num_classes: int, ignore_label: int = 255) -> np.ndarray:
    """(H, W) trainIds -> (L, H, W) float32 one-hot; ignored pixels are all zero."""
    train_ids = np.asarray(train_ids)
    maps = np.zeros((num_classes,) + train_ids.shape, dtype=np.float32)
    for class_id in range(num_classes):
        maps[class_id] = train_ids == class_id
    return maps


def ceiling_labels(train_ids: np.ndarray, stride: int, num_classes: int) -> np.ndarray:
    """(H, W) trainIds -> the labels of the ideal stride-``stride`` predictor (module docstring), (H, W) uint8.

    H and W must be multiples of ``stride``; ignored pixels vote for no class.
    """
    height, width = train_ids.shape
    if height % stride or width % stride:
        raise ValueError(f"a {height}x{width} map is not a multiple of the stride {stride}")
    cells = block_means(one_hot(train_ids, num_classes), stride).astype(np.float32)
    full = np.zeros((num_classes, height, width), dtype=np.float32)
    add_resized(cells, (height // stride, width // stride), full)
    return full.argmax(axis=0).astype(np.uint8)


# ---------------------------------------------------------------------------- band IoU
def thin_band(train_ids: np.ndarray, thin_ids: Sequence[int], radius: int) -> np.ndarray:
    """(H, W) bool: pixels within ``radius`` px (Chebyshev) of a pixel of a class in ``thin_ids``."""
    thin = np.isin(np.asarray(train_ids), list(thin_ids)).astype(np.uint8)
    if radius == 0:
        return thin.astype(bool)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8)
    return cv2.dilate(thin, kernel).astype(bool)


def band_confusion(pred: np.ndarray, train_ids: np.ndarray, num_classes: int, thin_ids: Sequence[int],
                   radius: int, ignore_label: int = 255) -> np.ndarray:
    """(L, L) confusion (rows ground truth) of the pixels of :func:`thin_band` only."""
    gt = np.asarray(train_ids).copy()
    gt[~thin_band(gt, thin_ids, radius)] = ignore_label
    return confusion_matrix(pred, gt, num_classes, ignore_label)


def band_iou(matrix: np.ndarray) -> float:
    """Mean IoU of a band confusion over the classes with ground truth in the band (NaN if none)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    present = matrix.sum(axis=1) > 0
    return float(np.mean(true_positive[present] / union[present])) if present.any() else float("nan")


# ---------------------------------------------------------------------------- gridding
def uniform_cells(train_ids: np.ndarray, cell: int, uniform_ids: Sequence[int]) -> np.ndarray:
    """(H, W) trainIds -> (H // cell, W // cell) int: the class of every feature cell whose
    ``cell x cell`` pixels are all one class of ``uniform_ids``, else -1."""
    gt = np.asarray(train_ids)
    rows, cols = gt.shape[0] // cell, gt.shape[1] // cell
    blocks = gt[:rows * cell, :cols * cell].reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(rows, cols, cell * cell)
    first = blocks[..., 0].astype(np.int64)
    same = (blocks == blocks[..., :1]).all(axis=-1) & np.isin(first, list(uniform_ids))
    return np.where(same, first, -1)


def uniform_windows(cells: np.ndarray, window: int = SPECTRUM_WINDOW) -> Iterable[Tuple[int, int]]:
    """Top-left corners (row, col) of the ``window x window`` windows (stride ``window // 2``)
    whose cells are all one class of :func:`uniform_cells` (none is -1)."""
    step = max(window // 2, 1)
    for row in range(0, cells.shape[0] - window + 1, step):
        for col in range(0, cells.shape[1] - window + 1, step):
            patch = cells[row:row + window, col:col + window]
            if patch[0, 0] >= 0 and (patch == patch[0, 0]).all():
                yield row, col


def gridding_spectrum(features: np.ndarray, cells: np.ndarray, window: int = SPECTRUM_WINDOW) -> Tuple[np.ndarray, int]:
    """(C, h, w) features and their (h, w) :func:`uniform_cells` -> the (window, window) power
    spectrum summed over channels and uniform windows (each channel's least-squares plane in the
    window removed: smooth shading is not gridding), and the number of windows."""
    features = np.asarray(features, dtype=np.float64)
    spectrum = np.zeros((window, window))
    count = 0
    y, x = np.mgrid[0:window, 0:window]
    plane = np.stack([np.ones(window * window), y.ravel(), x.ravel()], axis=1)  # (w^2, 3)
    projector = plane @ np.linalg.pinv(plane)  # least-squares fit of a plane, (w^2, w^2)
    for row, col in uniform_windows(cells, window):
        patch = features[:, row:row + window, col:col + window].reshape(features.shape[0], -1)
        residual = (patch - patch @ projector.T).reshape(-1, window, window)
        spectrum += np.square(np.abs(np.fft.fft2(residual))).sum(axis=0)
        count += 1
    return spectrum, count


def period_bins(window: int = SPECTRUM_WINDOW) -> np.ndarray:
    """(window, window) bool: the DFT bins of periods 2 and 4 (and their mixes), not the DC bin."""
    if window % 4:
        raise ValueError(f"the spectrum window must be a multiple of 4, got {window}")
    index = np.arange(window) % (window // 4) == 0
    bins = index[:, None] & index[None, :]
    bins[0, 0] = False
    return bins


def gridding_ratio(spectrum: np.ndarray) -> float:
    """Share of the non-DC energy of a (w, w) power spectrum in :func:`period_bins` (NaN if no energy)."""
    spectrum = np.asarray(spectrum, dtype=np.float64)
    total = spectrum.sum() - spectrum[0, 0]
    return float(spectrum[period_bins(spectrum.shape[0])].sum() / total) if total > 0 else float("nan")
