"""Small synthetic PASCAL VOC 2012 dataset in the file layout of the real release.

PASCAL VOC (``write_synthetic_voc``), blobs of the 20 classes on a textured background::

    VOC2012/JPEGImages/{id}.jpg
    VOC2012/SegmentationClass/{id}.png         palette ('P') PNG, VOC colour map, 255 = boundary band
    VOC2012/SegmentationClassAug/{id}.png      8-bit grey class indices (SBD style)
    VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    VOC2012/ImageSets/SegmentationAug/train_aug.txt

Ids look like ``2007_000100``. Aug-only images (SBD extras) are only in SegmentationClassAug and
train_aug, without boundaries; VOC images' Aug PNGs are their class indices including the 255
boundaries. train_aug = train + aug-only (never val). No Annotations or SegmentationObject.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

from tusimple_duc.data.labels import VOC_NUM_CLASSES, VOC_PALETTE
from tusimple_duc.data.png import write_palette_png
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.synthetic.camera import ellipse_points, pixel_polygon, smooth_jitter
from tusimple_duc.synthetic.cityscapes import check_count, check_image_size, write_image
from tusimple_duc.synthetic.render import paint_image
from tusimple_duc.synthetic.street_objects import Layer

#: Relative path of the train_aug list in a VOC2012 folder.
VOC_TRAIN_AUG_LIST = os.path.join("ImageSets", "SegmentationAug", "train_aug.txt")


@dataclass(frozen=True)
class VocSummary:
    """Image ids written by :func:`write_synthetic_voc` (each list sorted)."""

    root: str
    train_ids: List[str]
    val_ids: List[str]
    aug_only_ids: List[str]


def _voc_sample(rng: np.random.Generator, image_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """One VOC-like image (H, W, 3) uint8 RGB and its class map (H, W) uint8 without boundaries."""
    height, width = image_size
    full = pixel_polygon(np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]]), width, height)
    background = np.clip(rng.normal(120.0, 40.0, size=3), 0, 255)
    layers = [Layer((full,), tuple(background), 14.0)]
    labels = np.zeros(image_size, dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        class_index = int(rng.integers(1, VOC_NUM_CLASSES))
        radius = rng.uniform(0.12, 0.35, size=2) * min(height, width)
        centre = rng.uniform(0.2, 0.8, size=2) * (width, height)
        outline = ellipse_points(centre[0], centre[1], radius[0], radius[1], 20, smooth_jitter(rng, 20, 0.3))
        polygon = pixel_polygon(outline, width, height)
        if polygon is None:
            continue
        colour = np.clip(0.5 * VOC_PALETTE[class_index] + 0.5 * rng.uniform(0, 255, size=3), 0, 255)
        layers.append(Layer((polygon,), tuple(colour), 10.0))
        cv2.fillPoly(labels, [polygon], class_index)
    return paint_image(layers, image_size, rng), labels


def _with_boundaries(labels: np.ndarray) -> np.ndarray:
    """Class map with 255 on every pixel whose neighbourhood holds another class (VOC "void" band)."""
    reach = max(1, round(min(labels.shape) / 150))
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    marked = labels.copy()
    marked[cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)] = 255
    return marked


def write_synthetic_voc(root: str, n_images: int = 6, n_aug_only: int = 2,
                        image_size: Tuple[int, int] = (120, 160), seed: int = 0) -> VocSummary:
    """Write a synthetic VOC 2012 (+ SBD-style Aug) under ``root`` (layout: module docstring).

    Every third VOC image (``i % 3 == 2``) is val, the rest train; ``n_aug_only`` more images
    exist only in the Aug set. Image ``i`` is drawn from ``np.random.default_rng([seed, 20, i])``.
    """
    check_count("n_images", n_images)
    check_count("n_aug_only", n_aug_only)
    check_image_size(image_size)
    root = os.path.abspath(root)
    voc = os.path.join(root, "VOC2012")
    train, val, aug_only = [], [], []
    for index in range(n_images + n_aug_only):
        image_id = f"{2007 + index % 5}_{100 + 7 * index:06d}"
        image, labels = _voc_sample(np.random.default_rng([seed, 20, index]), image_size)
        write_image(os.path.join(voc, "JPEGImages", f"{image_id}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if index >= n_images:
            aug_only.append(image_id)
            write_image(os.path.join(voc, "SegmentationClassAug", f"{image_id}.png"), labels)
            continue
        (val if index % 3 == 2 else train).append(image_id)
        marked = _with_boundaries(labels)
        write_palette_png(os.path.join(voc, "SegmentationClass", f"{image_id}.png"), marked, VOC_PALETTE)
        write_image(os.path.join(voc, "SegmentationClassAug", f"{image_id}.png"), marked)
    lists = {os.path.join("ImageSets", "Segmentation", f"{name}.txt"): ids
             for name, ids in (("train", train), ("val", val), ("trainval", train + val))}
    lists[VOC_TRAIN_AUG_LIST] = train + aug_only
    for relative, ids in lists.items():
        atomic_write_text(os.path.join(voc, relative), "".join(f"{i}\n" for i in sorted(ids)))
    return VocSummary(root, sorted(train), sorted(val), sorted(aug_only))
