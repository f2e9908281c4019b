"""Small synthetic KITTI road and PASCAL VOC 2012 datasets in the file layouts of the real releases.

KITTI road (``write_synthetic_kitti_road``), street scenes from a KITTI-like camera (wide angle,
1.65 m high, no ego hood)::

    training/image_2/{um,umm,uu}_{i:06d}.png             8-bit RGB
    training/gt_image_2/{cat}_road_{i:06d}.png           RGB: (255,0,255) road, (255,0,0) not road,
                                                         (0,0,0) don't care
    training/gt_image_2/um_lane_{i:06d}.png              (um only) the ego lane, same colours
    testing/image_2/{cat}_{i:06d}.png

um: two marked lanes, umm: several marked lanes, uu: a narrow unmarked road; no rare kinds (no
rails, parking, trucks, ...). "Don't care" is a band along the road (or lane) border, 2 px wide
(the real ground truth rarely has any).
No ``calib`` folder is written.

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

import dataclasses
import os
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np
from PIL import Image

from tusimple_duc.data.labels import KITTI_GT_COLORS, VOC_NUM_CLASSES, VOC_PALETTE
from tusimple_duc.data.synthetic import check_count, check_image_size, write_image
from tusimple_duc.data.synthetic_geometry import ellipse_points, pixel_polygon, smooth_jitter
from tusimple_duc.data.synthetic_objects import Layer
from tusimple_duc.data.synthetic_render import paint_image, render_street_scene
from tusimple_duc.data.synthetic_scene import CITYSCAPES_STYLE
from tusimple_duc.io.atomic import atomic_write_text, atomic_write_with

#: The three KITTI road categories: urban marked, urban multiple marked, urban unmarked.
KITTI_CATEGORIES = ("um", "umm", "uu")
_KITTI_CAMERA = dict(focal_x=721 / 1242, focal_y=721 / 375, camera_height=1.65, horizon=(0.44, 0.5),
                     ego_vehicle=False, rare_probability=0.0, min_urban_sides=0)
KITTI_STYLES = {
    "um": dataclasses.replace(CITYSCAPES_STYLE, road_half_width=(3.0, 5.0), lane_markings=True,
                              urban_probability=0.8, **_KITTI_CAMERA),
    "umm": dataclasses.replace(CITYSCAPES_STYLE, road_half_width=(6.0, 10.0), lane_markings=True,
                               urban_probability=0.8, **_KITTI_CAMERA),
    "uu": dataclasses.replace(CITYSCAPES_STYLE, road_half_width=(2.5, 3.5), lane_markings=False,
                              urban_probability=0.3, **_KITTI_CAMERA),
}
_ROAD_ID = 7
#: Relative path of the train_aug list in a VOC2012 folder.
VOC_TRAIN_AUG_LIST = os.path.join("ImageSets", "SegmentationAug", "train_aug.txt")


@dataclass(frozen=True)
class KittiRoadSummary:
    """Paths written by :func:`write_synthetic_kitti_road` (training lists aligned by index)."""

    root: str
    train_images: List[str]
    train_road_gt: List[str]
    train_lane_gt: List[str]
    test_images: List[str]


@dataclass(frozen=True)
class VocSummary:
    """Image ids written by :func:`write_synthetic_voc` (each list sorted)."""

    root: str
    train_ids: List[str]
    val_ids: List[str]
    aug_only_ids: List[str]


def _kitti_gt(mask: np.ndarray) -> np.ndarray:
    """A KITTI ground-truth image (H, W, 3) RGB: mask magenta, rest red, a 2 px border band black."""
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.dilate(mask.astype(np.uint8), kernel) != cv2.erode(mask.astype(np.uint8), kernel)
    gt = np.empty(mask.shape + (3,), dtype=np.uint8)
    gt[...] = KITTI_GT_COLORS["not road"]
    gt[mask] = KITTI_GT_COLORS["road"]
    gt[band] = KITTI_GT_COLORS["dont care"]
    return gt


def write_synthetic_kitti_road(root: str, n_train: int = 3, n_test: int = 3,
                               image_size: Tuple[int, int] = (96, 320), seed: int = 0) -> KittiRoadSummary:
    """Write a synthetic KITTI road set under ``root`` (layout: module docstring).

    Images go round-robin over um, umm, uu, numbered per category from 0. Image ``i`` of
    training/testing is drawn from ``np.random.default_rng([seed, 10 + phase, i])``.
    """
    check_count("n_train", n_train)
    check_count("n_test", n_test)
    check_image_size(image_size)
    root = os.path.abspath(root)
    summary = KittiRoadSummary(root, [], [], [], [])
    for phase, (folder, count) in enumerate((("training", n_train), ("testing", n_test))):
        for index in range(count):
            category, number = KITTI_CATEGORIES[index % 3], index // 3
            rng = np.random.default_rng([seed, 10 + phase, index])
            scene = render_street_scene(rng, image_size, KITTI_STYLES[category])
            image_path = os.path.join(root, folder, "image_2", f"{category}_{number:06d}.png")
            write_image(image_path, cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
            if folder == "testing":
                summary.test_images.append(image_path)
                continue
            road = scene.annotation.label_ids == _ROAD_ID
            road_path = os.path.join(root, folder, "gt_image_2", f"{category}_road_{number:06d}.png")
            write_image(road_path, cv2.cvtColor(_kitti_gt(road), cv2.COLOR_RGB2BGR))
            summary.train_images.append(image_path)
            summary.train_road_gt.append(road_path)
            if category == "um":
                lane = np.zeros(image_size, dtype=np.uint8)
                if scene.ego_lane is not None:
                    cv2.fillPoly(lane, [scene.ego_lane], 1)
                lane_path = os.path.join(root, folder, "gt_image_2", f"um_lane_{number:06d}.png")
                write_image(lane_path, cv2.cvtColor(_kitti_gt(road & (lane > 0)), cv2.COLOR_RGB2BGR))
                summary.train_lane_gt.append(lane_path)
    return summary


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


def _write_palette_png(path: str, labels: np.ndarray) -> None:
    image = Image.fromarray(labels, mode="P")
    image.putpalette(VOC_PALETTE.ravel().tolist())
    atomic_write_with(path, image.save)


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
        _write_palette_png(os.path.join(voc, "SegmentationClass", f"{image_id}.png"), marked)
        write_image(os.path.join(voc, "SegmentationClassAug", f"{image_id}.png"), marked)
    lists = {os.path.join("ImageSets", "Segmentation", f"{name}.txt"): ids
             for name, ids in (("train", train), ("val", val), ("trainval", train + val))}
    lists[VOC_TRAIN_AUG_LIST] = train + aug_only
    for relative, ids in lists.items():
        atomic_write_text(os.path.join(voc, relative), "".join(f"{i}\n" for i in sorted(ids)))
    return VocSummary(root, sorted(train), sorted(val), sorted(aug_only))
