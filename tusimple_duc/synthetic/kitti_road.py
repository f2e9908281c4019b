"""Small synthetic KITTI road dataset in the file layout of the real release.


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
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

from tusimple_duc.data.labels import KITTI_GT_COLORS, KITTI_ROAD_CATEGORIES
from tusimple_duc.synthetic.cityscapes import check_count, check_image_size, write_image
from tusimple_duc.synthetic.render import render_street_scene
from tusimple_duc.synthetic.street_layout import CITYSCAPES_STYLE

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


@dataclass(frozen=True)
class KittiRoadSummary:
    """Paths written by :func:`write_synthetic_kitti_road` (training lists aligned by index)."""

    root: str
    train_images: List[str]
    train_road_gt: List[str]
    train_lane_gt: List[str]
    test_images: List[str]


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
            category, number = KITTI_ROAD_CATEGORIES[index % 3], index // 3
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
