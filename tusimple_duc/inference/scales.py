"""Test-time scaling: resizing the image to a scale, and the probabilities back.

The image is resized with OpenCV's bilinear filter (as the released script did).
Probabilities are resized back with :func:`add_resized`, a separable bilinear
filter with an exact geometric mapping: output pixel ``y`` of a result with
``H`` rows samples the prediction map at row

    (y + 0.5) * extent / H - 0.5,      extent = h_scaled / prediction_stride,

clamped to the valid rows (OpenCV's ``INTER_LINEAR`` convention). ``extent`` is the
part of the prediction map covered by the unpadded scaled image, so the padding is
cropped away at prediction resolution. When ``h_scaled`` is a multiple of the
prediction stride this is exactly ``cv2.resize`` of the cropped map (the released
protocol); otherwise it stays geometrically exact where an integer crop could not.
"""
from __future__ import annotations

import math
from typing import Tuple

import cv2
import numpy as np

Shape = Tuple[int, int]


def scaled_shape(image_shape: Shape, scale: float) -> Shape:
    """(rows, cols) of an image of ``image_shape`` resized by ``scale``.

    Rounded down, as the released script did (``int(side * scale)``), with a tolerance
    for floating-point error (``0.29 * 100`` is 29), and at least 1.
    """
    return tuple(max(1, math.floor(side * scale + 1e-6)) for side in image_shape)


def scale_image(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize a (h, w, 3) uint8 image by ``scale`` with bilinear interpolation (unchanged at 1)."""
    return resize_image(image, scaled_shape(image.shape[:2], scale))


def resize_image(image: np.ndarray, shape: Shape) -> np.ndarray:
    """Resize a (h, w, 3) uint8 image to ``shape`` (rows, cols), bilinear; the same array if already that size."""
    if tuple(shape) == image.shape[:2]:
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def bilinear_taps(out_size: int, extent: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a 1-D bilinear resize of ``extent`` source pixels to ``out_size``.

    Returns ``(lower, upper, upper_weight)``: output pixel ``i`` is
    ``src[lower[i]] * (1 - upper_weight[i]) + src[upper[i]] * upper_weight[i]``.
    Only source pixels ``0 .. ceil(extent) - 1`` are read.
    """
    last = max(math.ceil(extent) - 1, 0)
    position = (np.arange(out_size, dtype=np.float64) + 0.5) * (extent / out_size) - 0.5
    position = np.clip(position, 0.0, last)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, last)
    upper_weight = (position - lower).astype(np.float32)
    return lower, upper, upper_weight


def add_resized(probabilities: np.ndarray, extent: Tuple[float, float], accumulator: np.ndarray,
                mirror: bool = False) -> None:
    """Resize the valid part of a prediction map and add it to ``accumulator`` in place.

    Parameters
    ----------
    probabilities : (L, h, w) float32 prediction map, possibly with padding at the bottom/right.
    extent : (rows, cols) of the map covered by the image, in prediction pixels (may be fractional).
    accumulator : (L, H, W) float32, the result-resolution sum; ``H, W`` set the output size.
    mirror : add the map flipped left-right (undoes a horizontal flip of the input).

    Works one class plane at a time: the only temporaries are a few (H, W) planes.
    An integral ``extent`` (the usual case) is a plain crop, resized by ``cv2.resize``
    (same mapping, ~10x faster); a fractional one goes through :func:`bilinear_taps`.
    """
    rows, cols = extent
    if float(rows).is_integer() and float(cols).is_integer():
        _add_resized_crop(probabilities[:, :int(rows), :int(cols)], accumulator, mirror)
    else:
        _add_resized_fractional(probabilities, extent, accumulator, mirror)


def _add_resized_crop(crop: np.ndarray, accumulator: np.ndarray, mirror: bool) -> None:
    """``accumulator[l] += resize(crop[l])`` (mirrored if asked) with OpenCV's bilinear resize."""
    num_classes, out_rows, out_cols = accumulator.shape
    resized = np.empty((out_rows, out_cols), dtype=np.float32)
    for label in range(num_classes):
        cv2.resize(crop[label], (out_cols, out_rows), dst=resized, interpolation=cv2.INTER_LINEAR)
        accumulator[label] += resized[:, ::-1] if mirror else resized


def _add_resized_fractional(probabilities: np.ndarray, extent: Tuple[float, float], accumulator: np.ndarray,
                            mirror: bool) -> None:
    """``accumulator[l] += resize(probabilities[l])`` for a fractional extent, with explicit taps."""
    num_classes, out_rows, out_cols = accumulator.shape
    row_lo, row_hi, row_w = bilinear_taps(out_rows, extent[0])
    col_lo, col_hi, col_w = bilinear_taps(out_cols, extent[1])
    if mirror:
        col_lo, col_hi, col_w = col_lo[::-1], col_hi[::-1], col_w[::-1]
    used_rows = int(row_hi.max()) + 1
    row_w = row_w[:, None]
    for label in range(num_classes):
        plane = probabilities[label, :used_rows]
        left = plane[:, col_lo]
        columns = left + (plane[:, col_hi] - left) * col_w
        top = columns[row_lo]
        top += (columns[row_hi] - top) * row_w
        accumulator[label] += top
