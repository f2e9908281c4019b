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
"""
from __future__ import annotations

import numpy as np


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


def duc_layout_to_label(flat: np.ndarray, ratio: int, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`label_to_duc_layout`: ``(r*r*h*w,) -> (height, width)``."""
    h, w = height // ratio, width // ratio
    return cells_to_pixels(flat.reshape(ratio * ratio, h, w), ratio)
