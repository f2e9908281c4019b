"""Measures of claims 2-3: the upsampling ceiling of a prediction stride, and the gridding index.

Upsampling ceiling (claim 2)
----------------------------
The best a network predicting at 1/s resolution can do, whatever it learns: its probabilities
are the ``s x s`` block averages of the one-hot ground truth (the exact class fractions of each
cell), resized to full resolution as test.py does (bilinear, :func:`~tusimple_duc.inference.scales.add_resized`)
and arg-maxed (:func:`ceiling_labels`). With the bilinear head s = 8 (the output stride), with
DUC s = the cell width (2 here). Objects narrower than s lose most of their area.

Gridding index (claim 3)
------------------------
How much a prediction oscillates with a period of 2 feature cells.

With a constant dilation rate r = 2 (and 4) in stages 4-5, an output feature cell only
sees input cells of its own parity (claim 1): neighbouring cells are computed from disjoint
inputs, and nothing forces them to agree. The artefact is a pattern of period 2 on the
feature grid (paper Figure 5). We measure it on test.py's class-probability maps:

1. **feature grid**: average the (L, H, W) probabilities over the ``d x d`` blocks of the
   output stride d (8), giving ``q`` of shape (L, H/d, W/d): one value per feature cell and class;
2. **differences at distance 1 and 2**: ``D_k = mean over classes, cells and both axes of
   (q[c, y, x + k] - q[c, y, x])^2`` (and the same along y);
3. **gridding index** ``G = D_1 / D_2``.

In the Fourier domain ``D_k = sum over frequencies w of |Q(w)|^2 4 sin^2(k w / 2)`` (per axis), so
``G`` weighs each frequency by ``sin^2(w / 2) / sin^2(w)``: a smooth ramp gives 1/4, an isolated step
edge 1/2, and energy at the period-2 frequency (w = pi, where ``D_2`` vanishes) pushes G above 1/2
without bound. Larger G = more gridding. The one-hot ground truth, averaged the same way, is
the reference of a prediction without any artefact. Sums over images are accumulated before
the ratio (images weigh by their cell count).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from tusimple_duc.inference.scales import add_resized


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


@dataclass
class DifferenceEnergy:
    """Running sums of squared differences at distance 1 (``near``) and 2 (``far``) with their counts."""

    near: float = 0.0
    near_count: int = 0
    far: float = 0.0
    far_count: int = 0

    def add(self, grid: np.ndarray) -> None:
        """Add the differences along both axes of a (L, h, w) feature-grid map (h, w >= 3)."""
        for axis in (1, 2):
            if grid.shape[axis] < 3:
                raise ValueError(f"need at least 3 cells along each axis, got {grid.shape[1:]}")
            near = np.diff(grid, n=1, axis=axis)
            far = _distance_two(grid, axis)
            self.near += float(np.square(near).sum())
            self.near_count += near.size
            self.far += float(np.square(far).sum())
            self.far_count += far.size

    @property
    def index(self) -> float:
        """``G = D_1 / D_2`` (NaN when nothing varies at distance 2)."""
        if self.far == 0.0 or self.near_count == 0:
            return float("nan")
        return (self.near / self.near_count) / (self.far / self.far_count)


def _distance_two(grid: np.ndarray, axis: int) -> np.ndarray:
    if axis == 1:
        return grid[:, 2:, :] - grid[:, :-2, :]
    return grid[:, :, 2:] - grid[:, :, :-2]


def gridding_index(probability_maps: Iterable[np.ndarray], cell: int) -> float:
    """G (module docstring) over images of (L, H, W) class probabilities, on the ``cell`` grid."""
    energy = DifferenceEnergy()
    for maps in probability_maps:
        energy.add(block_means(maps, cell))
    return energy.index


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
