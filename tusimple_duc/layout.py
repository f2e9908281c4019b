"""The DUC layout: how a cell of the low-resolution map holds an r x r block of pixels.

This is the one definition of the layout used by the released checkpoint, shared by
the label pipeline (NumPy, here) and the network's rearrangement
(:mod:`tusimple_duc.models.duc`, which is tested against these functions).

With downsampling ratio ``r = d / c`` (d: output stride, c: cell width), channel
``l*r*r + dy*r + dx`` of feature cell ``(y, x)`` is the score of class ``l`` for
pixel ``(r*y + dy, r*x + dx)`` of the prediction map (size ``h*r x w*r``).

The released training label is the prediction-resolution label map laid out to
match ``reshape(scores, (N, L, r*r*h*w))``: ``(h*r, w*r) -> (h, r, w, r) ->
transpose to (r, r, h, w) -> flatten``.

The geometry constraints are checked here, once, for the config, the sampling, the
model specs and the heads: the cell width divides the output stride
(:func:`duc_ratio`), and network inputs are multiples of a stride
(:func:`sides_are_multiples`).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: output strides d of the backbones
OUTPUT_STRIDES: Tuple[int, ...] = (4, 8, 16)
#: DUC cell widths c
CELL_WIDTHS: Tuple[int, ...] = (1, 2, 4)


def duc_ratio(output_stride: int, cell_width: int) -> int:
    """r = d / c, pixels per cell side of the DUC layout.

    Raises ``ValueError`` (``cell width 3 does not divide output stride 8``) unless the
    cell width c divides the output stride d.
    """
    if cell_width < 1 or output_stride < 1 or output_stride % cell_width:
        raise ValueError(f"cell width {cell_width} does not divide output stride {output_stride}")
    return output_stride // cell_width


def sides_are_multiples(shape: Sequence[int], multiple: int) -> bool:
    """True if every side of ``shape`` (e.g. (rows, cols), pixels) is a positive multiple of
    ``multiple`` (a stride >= 1; False for a smaller one)."""
    return multiple >= 1 and all(side >= 1 and side % multiple == 0 for side in shape)


def pixels_to_cells(pixels: np.ndarray, ratio: int) -> np.ndarray:
    """Rearrange a map ``(..., h*r, w*r)`` into cells ``(..., r*r, h, w)``.

    Element ``[..., dy*r + dx, y, x]`` of the result is pixel ``[..., r*y+dy, r*x+dx]``.
    """
    *lead, height, width = pixels.shape
    if height % ratio or width % ratio:
        raise ValueError(f"map of size {height}x{width} is not a multiple of the DUC ratio {ratio}")
    h, w = height // ratio, width // ratio
    blocks = pixels.reshape(*lead, h, ratio, w, ratio)
    n = len(lead)
    order = list(range(n)) + [n + 1, n + 3, n, n + 2]
    return blocks.transpose(order).reshape(*lead, ratio * ratio, h, w)


def cells_to_pixels(cells: np.ndarray, ratio: int) -> np.ndarray:
    """Inverse of :func:`pixels_to_cells`: ``(..., r*r, h, w) -> (..., h*r, w*r)``."""
    *lead, depth, h, w = cells.shape
    if depth != ratio * ratio:
        raise ValueError(f"cell depth {depth} is not ratio^2 = {ratio * ratio}")
    n = len(lead)
    blocks = cells.reshape(*lead, ratio, ratio, h, w)
    order = list(range(n)) + [n + 2, n, n + 3, n + 1]
    return blocks.transpose(order).reshape(*lead, h * ratio, w * ratio)


def label_to_duc_layout(label: np.ndarray, ratio: int) -> np.ndarray:
    """Flatten a label map ``(h*r, w*r)`` into the released training layout ``(r*r*h*w,)``."""
    if label.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {label.shape}")
    return pixels_to_cells(label, ratio).reshape(-1)

