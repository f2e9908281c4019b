"""Colour label maps with the dataset palettes, blend them over images, lay out mosaics.

All images are RGB uint8 arrays (H, W, 3); :func:`write_rgb_png` writes one atomically.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import cv2
import numpy as np

from tusimple_duc.data.labels import (
    CITYSCAPES_ID_PALETTE, CITYSCAPES_TRAINID_PALETTE, KITTI_PALETTE, VOC_PALETTE)
from tusimple_duc.io.atomic import atomic_write_image

#: Palettes (256, 3) uint8 by the kind of label map they colour.
PALETTES: Dict[str, np.ndarray] = {
    "cityscapes": CITYSCAPES_TRAINID_PALETTE,
    "cityscapes_label_ids": CITYSCAPES_ID_PALETTE,
    "kitti": KITTI_PALETTE,
    "voc": VOC_PALETTE,
}


def colorize(label_map: np.ndarray, palette: Union[str, np.ndarray]) -> np.ndarray:
    """Look every label up in a palette.

    Parameters
    ----------
    label_map : np.ndarray
        (H, W) integer labels 0..255 (trainIds, labelIds, VOC or KITTI classes; 255 = ignore).
    palette : str or np.ndarray
        A key of :data:`PALETTES` or a (256, 3) uint8 RGB table.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB.
    """
    table = PALETTES[palette] if isinstance(palette, str) else np.asarray(palette, dtype=np.uint8)
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
        raise ValueError(f"expected an (H, W) integer label map, got {label_map.dtype} {label_map.shape}")
    if label_map.size and (label_map.min() < 0 or label_map.max() >= len(table)):
        raise ValueError(f"labels must lie in 0..{len(table) - 1}")
    return table[label_map]


_BLEND_ROWS = 256  # rows blended at once by overlay()


def overlay(image: np.ndarray, colour: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Alpha-blend ``colour`` over ``image``: ``round((1 - alpha) * image + alpha * colour)``.

    Both are (H, W, 3) uint8; ``alpha`` in [0, 1] is the weight of the colour map.
    """
    if image.shape != colour.shape:
        raise ValueError(f"image {image.shape} and colour map {colour.shape} differ in shape")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    result = np.empty_like(image)
    for first in range(0, image.shape[0], _BLEND_ROWS):  # bands: float temporaries of a few rows only
        rows = slice(first, first + _BLEND_ROWS)
        blended = (1.0 - alpha) * image[rows].astype(np.float32) + alpha * colour[rows].astype(np.float32)
        result[rows] = np.clip(np.rint(blended), 0, 255)
    return result


def _as_rgb(panel: np.ndarray) -> np.ndarray:
    panel = np.asarray(panel)
    if panel.dtype != np.uint8:
        raise ValueError(f"mosaic panels must be uint8, got {panel.dtype}")
    if panel.ndim == 2:
        return np.repeat(panel[:, :, None], 3, axis=2)
    if panel.ndim == 3 and panel.shape[2] == 3:
        return panel
    raise ValueError(f"mosaic panels must be (H, W) or (H, W, 3), got {panel.shape}")


def _title_strip(title: str, width: int, height: int) -> np.ndarray:
    strip = np.zeros((height, width, 3), dtype=np.uint8)
    scale = height / 40.0
    thickness = max(1, int(round(scale * 2)))
    (text_width, text_height), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = (max(0, (width - text_width) // 2), (height + text_height) // 2)
    cv2.putText(strip, title, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return strip


def mosaic(panels: Sequence[np.ndarray], titles: Optional[Sequence[str]] = None) -> np.ndarray:
    """Place panels of equal height side by side, e.g. image | ground truth | prediction.

    Parameters
    ----------
    panels : sequence of np.ndarray
        (H, W_i, 3) or (H, W_i) uint8 images (grey panels are repeated to RGB).
    titles : sequence of str, optional
        One title per panel, drawn in white on a black strip of height ``max(20, H // 16)``
        above it.

    Returns
    -------
    np.ndarray
        (H, sum W_i, 3) uint8 RGB, or (H + strip, sum W_i, 3) with titles.
    """
    rgb = [_as_rgb(panel) for panel in panels]
    if not rgb:
        raise ValueError("mosaic needs at least one panel")
    if len({panel.shape[0] for panel in rgb}) != 1:
        raise ValueError(f"mosaic panels differ in height: {[panel.shape[0] for panel in rgb]}")
    if titles is not None:
        if len(titles) != len(rgb):
            raise ValueError(f"{len(titles)} titles for {len(rgb)} panels")
        strip_height = max(20, rgb[0].shape[0] // 16)
        rgb = [np.concatenate([_title_strip(title, panel.shape[1], strip_height), panel], axis=0)
               for title, panel in zip(titles, rgb)]
    return np.concatenate(rgb, axis=1)


def segmentation_mosaic(image: np.ndarray, gt_labels: Optional[np.ndarray], pred_labels: np.ndarray,
                        palette: Union[str, np.ndarray], with_titles: bool = True) -> np.ndarray:
    """``image | ground truth | prediction``, the label maps coloured with ``palette``.

    ``image`` is (H, W, 3) uint8 RGB, the label maps (H, W) integers; the ground-truth panel
    is left out when ``gt_labels`` is None (test images). Titles name the panels.
    """
    panels, titles = [image], ["image"]
    if gt_labels is not None:
        panels.append(colorize(gt_labels, palette))
        titles.append("ground truth")
    panels.append(colorize(pred_labels, palette))
    titles.append("prediction")
    return mosaic(panels, titles if with_titles else None)


def write_rgb_png(path: str, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image (or (H, W) grey) to ``path`` as PNG, atomically."""
    rgb = np.asarray(rgb)
    atomic_write_image(path, rgb[:, :, ::-1] if rgb.ndim == 3 else rgb)
