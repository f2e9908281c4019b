"""The released test script's ``visualization/`` mosaic, panel by panel.

``predict_full_image.py`` of TuSimple-DUC drew, for every image, a (2H, 2W) RGB canvas
(H, W = the result shape), black where nothing is pasted:

| | left (columns 0..W) | right (columns W..2W) |
| --- | --- | --- |
| top | the input image, top-left corner (cut to the panel) | blend: ``cv2.addWeighted(image, 0.5, colour, 0.5, 0)`` |
| bottom | the prediction in the trainId palette | heat map of the confidence |

Two details are the original's and kept: the blend mixes the image in **BGR** order (the
script reversed its RGB array before ``addWeighted``) with the RGB colour map, so red and
blue of the photo look swapped in that panel; the heat map is
``applyColorMap(uint8(max_prob * 256 - 1), COLORMAP_JET)`` (truncation, JET from blue = 0
to red = 255). An image of another size than the result is resized (bilinear) for the blend,
where the original needed equal sizes.
"""
from __future__ import annotations

import cv2
import numpy as np

from tusimple_duc.inference.scales import resize_image


def confidence_heat_map(top_probability: np.ndarray) -> np.ndarray:
    """JET heat map of the max class probability, as the released tester drew it.

    Parameters
    ----------
    top_probability : (H, W) float32 max class probability of every pixel (``max_l p``).

    Returns
    -------
    (H, W, 3) uint8 RGB: ``COLORMAP_JET`` of ``uint8(max_l p * 256 - 1)`` (truncated).
    """
    heat = top_probability * np.float32(256) - np.float32(1)
    bgr = cv2.applyColorMap(heat.astype(np.uint8), cv2.COLORMAP_JET)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def released_mosaic(image: np.ndarray, colour: np.ndarray, heat_map: np.ndarray) -> np.ndarray:
    """The 2x2 ``visualization/`` canvas of the released script (see the module doc).

    Parameters
    ----------
    image : (h, w, 3) uint8 RGB input image, any size.
    colour : (H, W, 3) uint8 RGB prediction in the dataset palette, at the result shape.
    heat_map : (H, W, 3) uint8 RGB, :func:`confidence_heat_map`.

    Returns
    -------
    (2H, 2W, 3) uint8 RGB.
    """
    height, width = colour.shape[:2]
    if heat_map.shape != colour.shape:
        raise ValueError(f"heat map {heat_map.shape} and colour map {colour.shape} differ in shape")
    canvas = np.zeros((2 * height, 2 * width, 3), dtype=np.uint8)
    shown = image[:height, :width]
    canvas[:shown.shape[0], :shown.shape[1]] = shown
    canvas[height:, :width] = colour
    same_size = resize_image(image, (height, width))
    canvas[:height, width:] = cv2.addWeighted(np.ascontiguousarray(same_size[:, :, ::-1]), 0.5, colour, 0.5, 0)
    canvas[height:, width:] = heat_map
    return canvas
