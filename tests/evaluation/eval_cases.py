"""Small synthetic datasets in the official on-disk layouts, written with cv2 / PIL."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Tuple

import cv2
import numpy as np
import pytest
from PIL import Image

from tusimple_duc.data.labels import VOC_PALETTE

HEIGHT, WIDTH = 96, 160
#: (city, sequence, frame) of the synthetic val images.
CITYSCAPES_FRAMES = [("frankfurt", "000000", "000294"), ("frankfurt", "000001", "000019"),
                     ("munster", "000010", "000019")]
# Ground truth: every stuff id (ignored ones too) except wall (12) and terrain (22); every
# instance class (caravan 29 and trailer 30 too) except bus (28) and motorcycle (32).
GT_STUFF_IDS = [i for i in range(24) if i not in (12, 22)]
GT_INSTANCE_IDS = [24, 25, 26, 27, 29, 30, 31, 33]
# Predictions never use wall or bus: those two classes are absent from both (IoU NaN);
# terrain and motorcycle are predicted but absent from the ground truth (IoU 0).
PREDICTED_IDS = [i for i in range(34) if i not in (12, 28)]


def synthetic_cityscapes_gt(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(labelIds uint8, instanceIds uint16), both (HEIGHT, WIDTH): 16 px stuff blocks, then rectangles
    of instance classes, every third one a group (instanceId = labelId) rather than an instance."""
    blocks = rng.choice(GT_STUFF_IDS, size=(HEIGHT // 16, WIDTH // 16))
    label_ids = np.kron(blocks, np.ones((16, 16), dtype=np.int64)).astype(np.uint8)
    instance_ids = label_ids.astype(np.uint16)
    for k, class_id in enumerate(rng.choice(GT_INSTANCE_IDS, size=12)):
        y0, x0 = rng.integers(0, HEIGHT - 8), rng.integers(0, WIDTH - 8)
        y1, x1 = y0 + rng.integers(3, 40), x0 + rng.integers(3, 60)
        label_ids[y0:y1, x0:x1] = class_id
        instance_ids[y0:y1, x0:x1] = class_id if k % 3 == 2 else class_id * 1000 + k
    return label_ids, instance_ids


def synthetic_prediction(rng: np.random.Generator, label_ids: np.ndarray, noise: float = 0.3) -> np.ndarray:
    """The ground truth with a fraction ``noise`` of pixels replaced by random ids of PREDICTED_IDS."""
    pred = np.where(np.isin(label_ids, PREDICTED_IDS), label_ids, 0).astype(np.uint8)
    flip = rng.random(label_ids.shape) < noise
    pred[flip] = rng.choice(PREDICTED_IDS, size=int(flip.sum()))
    return pred


@dataclass
class CityscapesCase:
    gt_root: str
    pred_dir: str
    pred_paths: List[str] = field(default_factory=list)
    gt_paths: List[str] = field(default_factory=list)
    preds: List[np.ndarray] = field(default_factory=list)
    label_ids: List[np.ndarray] = field(default_factory=list)
    instance_ids: List[np.ndarray] = field(default_factory=list)


def write_cityscapes_case(root: str, seed: int = 0) -> CityscapesCase:
    """Ground truth in ``root/cityscapes/gtFine/val/{city}/``; predictions in ``root/pred``:
    frankfurt flat, munster in a city subfolder."""
    rng = np.random.default_rng(seed)
    case = CityscapesCase(os.path.join(root, "cityscapes"), os.path.join(root, "pred"))
    for city, sequence, frame in CITYSCAPES_FRAMES:
        key = f"{city}_{sequence}_{frame}"
        gt_dir = os.path.join(case.gt_root, "gtFine", "val", city)
        pred_dir = case.pred_dir if city == "frankfurt" else os.path.join(case.pred_dir, city)
        os.makedirs(gt_dir, exist_ok=True)
        os.makedirs(pred_dir, exist_ok=True)
        label_ids, instance_ids = synthetic_cityscapes_gt(rng)
        pred = synthetic_prediction(rng, label_ids)
        gt_path = os.path.join(gt_dir, key + "_gtFine_labelIds.png")
        pred_path = os.path.join(pred_dir, key + "_leftImg8bit.png")
        cv2.imwrite(gt_path, label_ids)
        cv2.imwrite(os.path.join(gt_dir, key + "_gtFine_instanceIds.png"), instance_ids)
        cv2.imwrite(pred_path, pred)
        case.pred_paths.append(pred_path)
        case.gt_paths.append(gt_path)
        case.preds.append(pred)
        case.label_ids.append(label_ids)
        case.instance_ids.append(instance_ids)
    return case


@pytest.fixture
def cityscapes_case(tmp_path) -> CityscapesCase:
    return write_cityscapes_case(str(tmp_path))


def save_palette_png(path: str, indices: np.ndarray) -> None:
    """Write (H, W) uint8 indices as a mode 'P' PNG with the VOC palette."""
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(VOC_PALETTE.ravel().tolist())
    image.save(path)


@dataclass
class VocCase:
    gt_root: str
    pred_dir: str
    preds: List[np.ndarray]
    gts: List[np.ndarray]


def write_voc_case(root: str, seed: int = 0) -> VocCase:
    """Three images in ``root/VOC2012`` (palette ground truth with 255 borders, a split list of
    four ids), predictions in ``root/pred``: two palette PNGs and one 8-bit index PNG."""
    rng = np.random.default_rng(seed)
    voc_root = os.path.join(root, "VOC2012")
    pred_dir = os.path.join(root, "pred")
    os.makedirs(os.path.join(voc_root, "SegmentationClass"))
    os.makedirs(os.path.join(voc_root, "ImageSets", "Segmentation"))
    os.makedirs(pred_dir)
    ids = ["2007_000033", "2007_000042", "2008_000123"]
    with open(os.path.join(voc_root, "ImageSets", "Segmentation", "val.txt"), "w") as handle:
        handle.write("\n".join(ids + ["2009_000001"]) + "\n")
    preds, gts = [], []
    for index, image_id in enumerate(ids):
        gt = rng.choice([0, 0, 0, 1, 5, 7, 12, 15, 20], size=(40, 56)).astype(np.uint8)
        gt[::7, :] = 255
        pred = np.where(rng.random(gt.shape) < 0.7, np.where(gt == 255, 0, gt),
                        rng.integers(0, 21, size=gt.shape)).astype(np.uint8)
        save_palette_png(os.path.join(voc_root, "SegmentationClass", image_id + ".png"), gt)
        if index == 2:
            cv2.imwrite(os.path.join(pred_dir, image_id + ".png"), pred)
        else:
            save_palette_png(os.path.join(pred_dir, image_id + ".png"), pred)
        preds.append(pred)
        gts.append(gt)
    return VocCase(root, pred_dir, preds, gts)


@pytest.fixture
def voc_case(tmp_path) -> VocCase:
    return write_voc_case(str(tmp_path))
