"""Window geometry: padded input sizes and sliding-window origins.

Every window fed to the network has the same size (MXNet's dilated convolutions
re-plan, slowly, whenever the input shape changes). The image, already resized to
the test scale, is padded bottom/right with the mean colour to a multiple of the
pad multiple (the network's output stride), and further up to the window size when
it is smaller than the window. Windows then start every ``stride`` pixels; the last
window of a row or column is shifted back so that it ends exactly at the padded
border instead of being shrunk.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

Shape = Tuple[int, int]


def round_up(size: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is ``>= size``."""
    return -(-size // multiple) * multiple


def padded_shape(image_shape: Shape, pad_multiple: int, window: Shape | None = None) -> Shape:
    """Size ``(rows, cols)`` the image is padded to before windows are cut.

    Parameters
    ----------
    image_shape : (h, w) of the (scaled) image, pixels.
    pad_multiple : both sides are rounded up to a multiple of this (the output stride).
    window : (rows, cols) of the sliding window; a side smaller than the window is
        padded up to it. ``None`` for whole-image inference.
    """
    rows, cols = (round_up(side, pad_multiple) for side in image_shape)
    if window is not None:
        rows, cols = max(rows, window[0]), max(cols, window[1])
    return rows, cols


def window_starts(size: int, window: int, stride: int) -> List[int]:
    """Start offsets along one axis: ``0, stride, 2*stride, ...`` and ``size - window`` last.

    ``size >= window`` (the input was padded to at least the window). Starts are
    distinct and increasing; windows cover ``[0, size)`` when ``stride <= window``.
    """
    last = size - window
    starts = list(range(0, last, stride))
    starts.append(last)
    return starts


def window_origins(shape: Shape, window: Shape, stride: Shape) -> List[Shape]:
    """Top-left corners ``(row, col)`` of all windows over a padded input of ``shape``, row-major."""
    rows = window_starts(shape[0], window[0], stride[0])
    cols = window_starts(shape[1], window[1], stride[1])
    return [(row, col) for row in rows for col in cols]


def network_input(image: np.ndarray, rgb_mean: Tuple[float, float, float], shape: Shape) -> np.ndarray:
    """Mean-subtracted, padded network input.

    Parameters
    ----------
    image : (h, w, 3) uint8 RGB.
    rgb_mean : per-channel mean subtracted from the image (no std division).
    shape : (rows, cols) padded size, ``>= (h, w)``.

    Returns
    -------
    (3, rows, cols) float32; the image at the top left, zeros (the mean colour
    after subtraction) in the padding at the bottom and right.
    """
    height, width = image.shape[:2]
    data = np.zeros((3, shape[0], shape[1]), dtype=np.float32)
    for channel in range(3):
        np.subtract(image[:, :, channel], np.float32(rgb_mean[channel]), out=data[channel, :height, :width],
                    dtype=np.float32)
    return data
