"""Label tables of the three datasets: ids, training ids, names, colours.

Cityscapes follows the official table (the one in ``cityscapesscripts.helpers.labels``;
``tests/data/test_labels.py`` checks every field against it). The 19 evaluated classes
have trainIds 0..18; every other id maps to 255 (ignored).
"""
from __future__ import annotations

from typing import List, NamedTuple, Tuple

import numpy as np

IGNORE_LABEL = 255


class CityscapesLabel(NamedTuple):
    """One row of the official Cityscapes label table."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: Tuple[int, int, int]


CITYSCAPES_LABELS: List[CityscapesLabel] = [
    CityscapesLabel("unlabeled", 0, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("rectification border", 2, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("out of roi", 3, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("static", 4, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("dynamic", 5, 255, "void", 0, False, True, (111, 74, 0)),
    CityscapesLabel("ground", 6, 255, "void", 0, False, True, (81, 0, 81)),
    CityscapesLabel("road", 7, 0, "flat", 1, False, False, (128, 64, 128)),
    CityscapesLabel("sidewalk", 8, 1, "flat", 1, False, False, (244, 35, 232)),
    CityscapesLabel("parking", 9, 255, "flat", 1, False, True, (250, 170, 160)),
    CityscapesLabel("rail track", 10, 255, "flat", 1, False, True, (230, 150, 140)),
    CityscapesLabel("building", 11, 2, "construction", 2, False, False, (70, 70, 70)),
    CityscapesLabel("wall", 12, 3, "construction", 2, False, False, (102, 102, 156)),
    CityscapesLabel("fence", 13, 4, "construction", 2, False, False, (190, 153, 153)),
    CityscapesLabel("guard rail", 14, 255, "construction", 2, False, True, (180, 165, 180)),
    CityscapesLabel("bridge", 15, 255, "construction", 2, False, True, (150, 100, 100)),
    CityscapesLabel("tunnel", 16, 255, "construction", 2, False, True, (150, 120, 90)),
    CityscapesLabel("pole", 17, 5, "object", 3, False, False, (153, 153, 153)),
    CityscapesLabel("polegroup", 18, 255, "object", 3, False, True, (153, 153, 153)),
    CityscapesLabel("traffic light", 19, 6, "object", 3, False, False, (250, 170, 30)),
    CityscapesLabel("traffic sign", 20, 7, "object", 3, False, False, (220, 220, 0)),
    CityscapesLabel("vegetation", 21, 8, "nature", 4, False, False, (107, 142, 35)),
    CityscapesLabel("terrain", 22, 9, "nature", 4, False, False, (152, 251, 152)),
    CityscapesLabel("sky", 23, 10, "sky", 5, False, False, (70, 130, 180)),
    CityscapesLabel("person", 24, 11, "human", 6, True, False, (220, 20, 60)),
    CityscapesLabel("rider", 25, 12, "human", 6, True, False, (255, 0, 0)),
    CityscapesLabel("car", 26, 13, "vehicle", 7, True, False, (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, "vehicle", 7, True, False, (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, "vehicle", 7, True, False, (0, 60, 100)),
    CityscapesLabel("caravan", 29, 255, "vehicle", 7, True, True, (0, 0, 90)),
    CityscapesLabel("trailer", 30, 255, "vehicle", 7, True, True, (0, 0, 110)),
    CityscapesLabel("train", 31, 16, "vehicle", 7, True, False, (0, 80, 100)),
    CityscapesLabel("motorcycle", 32, 17, "vehicle", 7, True, False, (0, 0, 230)),
    CityscapesLabel("bicycle", 33, 18, "vehicle", 7, True, False, (119, 11, 32)),
    CityscapesLabel("license plate", -1, -1, "vehicle", 7, False, True, (0, 0, 142)),
]

#: Number of evaluated Cityscapes classes (trainIds 0..18).
CITYSCAPES_NUM_CLASSES = 19
#: The labelIds that may appear in a ``*_gtFine_labelIds.png`` (0..33).
CITYSCAPES_VALID_IDS = frozenset(label.id for label in CITYSCAPES_LABELS if label.id >= 0)


def _id_to_train_id_table() -> np.ndarray:
    table = np.full(256, IGNORE_LABEL, dtype=np.uint8)
    for label in CITYSCAPES_LABELS:
        if label.id >= 0 and 0 <= label.train_id < 255:
            table[label.id] = label.train_id
    return table


#: ``CITYSCAPES_ID_TO_TRAINID[label_id]`` -> trainId (255 for ignored ids), uint8[256].
CITYSCAPES_ID_TO_TRAINID: np.ndarray = _id_to_train_id_table()
#: ``CITYSCAPES_TRAINID_TO_ID[train_id]`` -> labelId for 0..18, 0 ("unlabeled") elsewhere, uint8[256].
CITYSCAPES_TRAINID_TO_ID: np.ndarray = np.zeros(256, dtype=np.uint8)
for _label in CITYSCAPES_LABELS:
    if 0 <= _label.train_id < CITYSCAPES_NUM_CLASSES:
        CITYSCAPES_TRAINID_TO_ID[_label.train_id] = _label.id
#: Names of the 19 classes in trainId order.
CITYSCAPES_CLASS_NAMES: List[str] = [
    next(l.name for l in CITYSCAPES_LABELS if l.train_id == t) for t in range(CITYSCAPES_NUM_CLASSES)
]
#: RGB colour of each trainId 0..18 and black for 255, uint8[256, 3].
CITYSCAPES_TRAINID_PALETTE: np.ndarray = np.zeros((256, 3), dtype=np.uint8)
#: RGB colour of each labelId 0..33 (the ``*_gtFine_color.png`` colours), uint8[256, 3].
CITYSCAPES_ID_PALETTE: np.ndarray = np.zeros((256, 3), dtype=np.uint8)
for _label in CITYSCAPES_LABELS:
    if 0 <= _label.train_id < CITYSCAPES_NUM_CLASSES:
        CITYSCAPES_TRAINID_PALETTE[_label.train_id] = _label.color
    if _label.id >= 0:
        CITYSCAPES_ID_PALETTE[_label.id] = _label.color
del _label


def cityscapes_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelId map (H, W) of integers 0..255 to trainIds (H, W) uint8 (255 = ignore)."""
    return CITYSCAPES_ID_TO_TRAINID[np.asarray(label_ids, dtype=np.uint8)]


def cityscapes_train_ids_to_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map trainIds (H, W) to labelIds (H, W) uint8 for the official evaluator (255 -> 0)."""
    return CITYSCAPES_TRAINID_TO_ID[np.asarray(train_ids, dtype=np.uint8)]


# ---------------------------------------------------------------- KITTI road
#: KITTI road binary classes: 0 = not road, 1 = road; 255 = don't care.
KITTI_CLASS_NAMES: List[str] = ["not road", "road"]
KITTI_NUM_CLASSES = 2
#: The KITTI road categories (file name prefixes): urban marked, urban multiple marked, urban unmarked.
KITTI_ROAD_CATEGORIES: Tuple[str, ...] = ("um", "umm", "uu")
#: Colours of the ``gt_image_2/*_road_*.png`` files (RGB).
KITTI_GT_COLORS = {"road": (255, 0, 255), "not road": (255, 0, 0), "dont care": (0, 0, 0)}
KITTI_PALETTE: np.ndarray = np.zeros((256, 3), dtype=np.uint8)
KITTI_PALETTE[0] = (255, 0, 0)
KITTI_PALETTE[1] = (255, 0, 255)


def kitti_gt_to_labels(gt_rgb: np.ndarray) -> np.ndarray:
    """KITTI road ground truth (H, W, 3) RGB -> labels (H, W) uint8: 1 road, 0 not road, 255 don't care.

    As the official devkit: road = blue channel > 0, valid = red channel > 0.
    """
    gt_rgb = np.asarray(gt_rgb)
    road = gt_rgb[..., 2] > 0
    valid = gt_rgb[..., 0] > 0
    labels = np.full(gt_rgb.shape[:2], IGNORE_LABEL, dtype=np.uint8)
    labels[valid] = road[valid].astype(np.uint8)
    return labels


# ---------------------------------------------------------------- PASCAL VOC
VOC_CLASS_NAMES: List[str] = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]
VOC_NUM_CLASSES = 21


def _voc_palette() -> np.ndarray:
    """The VOC colour map: bits of the class index spread over R, G, B from the high bit down."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (r, g, b)
    return palette


#: RGB colour of every VOC palette index (0..20 classes, 255 boundary), uint8[256, 3].
VOC_PALETTE: np.ndarray = _voc_palette()
