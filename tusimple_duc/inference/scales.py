"""Test-time scaling: resizing the image to a scale, and the probabilities back.

The image is resized with OpenCV's bilinear filter (as the released script did).
Probabilities are resized back with :func:`add_resized`, a separable bilinear
filter with an exact geometric mapping: output pixel ``y`` of a result with
``H`` rows samples the prediction map at row

    (y + 0.5) * extent / H - 0.5,      extent = h_scaled / prediction_stride,

clamped to the valid rows (OpenCV's ``INTER_LINEAR`` convention). ``extent`` is the
part of the prediction map covered by the unpadded scaled image, so the padding is
cropped away at prediction resolution. When ``h_scaled`` is a multiple of the
prediction stride this is ``cv2.resize`` of the cropped map (the released protocol; equal
to float rounding, 1e-7); otherwise it stays geometrically exact where an integer crop
could not. The result can be computed in horizontal bands (``first_row``), bit for bit
the same as whole.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

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
                mirror: bool = False, first_row: int = 0, result_rows: Optional[int] = None) -> None:
    """Resize the valid part of a prediction map and add rows of it to ``accumulator`` in place.

    Parameters
    ----------
    probabilities : (L, h, w) float32 prediction map, possibly with padding at the bottom/right.
    extent : (rows, cols) of the map covered by the image, in prediction pixels (may be fractional).
    accumulator : (L, B, W) float32: rows ``first_row .. first_row + B - 1`` of the
        result-resolution sum; ``W`` is the result width.
    mirror : add the map flipped left-right (undoes a horizontal flip of the input).
    first_row : the result row of ``accumulator[:, 0]``.
    result_rows : the result height ``H`` (default ``B``: the accumulator is the whole result).

    Separable bilinear taps (:func:`bilinear_taps`): columns first on the few prediction rows
    the band reads, then rows. Every result pixel is the same arithmetic whatever the band, so
    a result assembled band by band equals the one computed whole, bit for bit; the only
    temporaries are a few (L, B, W) arrays.
    """
    num_classes, band_rows, out_cols = accumulator.shape
    result_rows = band_rows if result_rows is None else result_rows
    rows = slice(first_row, first_row + band_rows)
    row_lo, row_hi, row_w = (taps[rows] for taps in bilinear_taps(result_rows, extent[0]))
    col_lo, col_hi, col_w = bilinear_taps(out_cols, extent[1])
    if mirror:
        col_lo, col_hi, col_w = col_lo[::-1], col_hi[::-1], col_w[::-1]
    top = int(row_lo.min())
    plane = probabilities[:, top:int(row_hi.max()) + 1]
    left = plane[:, :, col_lo]
    columns = left + (plane[:, :, col_hi] - left) * col_w
    upper = columns[:, row_lo - top]
    upper += (columns[:, row_hi - top] - upper) * row_w[:, None]
    accumulator += upper
