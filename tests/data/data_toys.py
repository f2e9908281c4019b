"""Tiny datasets in the real folder layouts, written with OpenCV / PIL for the data pipeline tests."""
from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Callable, Dict, List

import cv2
import numpy as np
import pytest
from PIL import Image

from tusimple_duc.data.labels import VOC_PALETTE

CITYSCAPES_SHAPE = (64, 128)
CITYSCAPES_SPLITS = {"train": {"aachen": 2, "bochum": 1}, "val": {"frankfurt": 2}}
KITTI_IMAGES = {"um_000000.png": (50, 130), "umm_000003.png": (50, 130), "uu_000001.png": (45, 120)}
VOC_NAMES = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033"]}
VOC_AUG_ONLY = ["2008_000002", "2008_000003"]


@pytest.fixture(scope="session")
def toys() -> ModuleType:
    """This module: its writers and the constants of the tiny datasets, for the tests to use."""
    return sys.modules[__name__]


def write_png(path: str, array: np.ndarray) -> str:
    """Write ``array`` (H, W) or (H, W, 3) in OpenCV's channel order to ``path`` (PNG or JPEG by extension)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, array)
    return path


def write_palette_png(path: str, index: np.ndarray) -> str:
    """Write a VOC palette PNG holding the class indices ``index`` (H, W) uint8."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(index.astype(np.uint8), mode="P")
    image.putpalette(VOC_PALETTE.reshape(-1).tolist())
    image.save(path)
    return path


def cityscapes_label_ids(shape, offset: int) -> np.ndarray:
    """A labelIds map using every id 0..33, in vertical stripes 4 px wide."""
    rows, cols = shape
    return np.broadcast_to(((np.arange(cols) // 4 + offset) % 34).astype(np.uint8), (rows, cols)).copy()


def _write_cityscapes(root: str, coarse: bool) -> None:
    rng = np.random.default_rng(7)
    splits: Dict[str, Dict[str, int]] = dict(CITYSCAPES_SPLITS)
    if coarse:
        splits["train_extra"] = {"erlangen": 1}
    for split, cities in splits.items():
        annotation = "gtCoarse" if split == "train_extra" else "gtFine"
        for city, count in cities.items():
            for number in range(count):
                stem = f"{city}_{number:06d}_000019"
                image = rng.integers(0, 256, CITYSCAPES_SHAPE + (3,), dtype=np.uint8)
                write_png(f"{root}/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", image)
                write_png(f"{root}/{annotation}/{split}/{city}/{stem}_{annotation}_labelIds.png",
                          cityscapes_label_ids(CITYSCAPES_SHAPE, number))


@pytest.fixture(scope="session")
def cityscapes_root(tmp_path_factory) -> str:
    """A Cityscapes folder: train (aachen x2, bochum x1), val (frankfurt x2), 64x128 images."""
    root = str(tmp_path_factory.mktemp("cityscapes"))
    _write_cityscapes(root, coarse=False)
    return root


@pytest.fixture(scope="session")
def cityscapes_coarse_root(tmp_path_factory) -> str:
    """As ``cityscapes_root`` plus leftImg8bit/train_extra and gtCoarse/train_extra (erlangen x1)."""
    root = str(tmp_path_factory.mktemp("cityscapes_coarse"))
    _write_cityscapes(root, coarse=True)
    return root


#: KITTI road ground-truth colours in OpenCV's BGR order.
KITTI_BGR = {"road": (255, 0, 255), "not road": (0, 0, 255), "dont care": (0, 0, 0)}


@pytest.fixture(scope="session")
def kitti_root(tmp_path_factory) -> str:
    """A KITTI road folder with three training images and their ``*_road_*`` ground truth."""
    root = str(tmp_path_factory.mktemp("kitti"))
    rng = np.random.default_rng(3)
    for name, shape in KITTI_IMAGES.items():
        category, _, number = name.rpartition("_")
        write_png(f"{root}/training/image_2/{name}", rng.integers(0, 256, shape + (3,), dtype=np.uint8))
        gt = np.zeros(shape + (3,), dtype=np.uint8)
        gt[shape[0] // 2:] = KITTI_BGR["road"]
        gt[: shape[0] // 2] = KITTI_BGR["not road"]
        gt[:, :5] = KITTI_BGR["dont care"]
        write_png(f"{root}/training/gt_image_2/{category}_road_{number}", gt)
        if category == "um":
            write_png(f"{root}/training/gt_image_2/{category}_lane_{number}", gt)
    return root


def voc_index(shape, seed: int) -> np.ndarray:
    """VOC class indices: background, a block of class 1 + seed % 20, and a 255 boundary."""
    index = np.zeros(shape, dtype=np.uint8)
    index[4:20, 6:30] = 1 + seed % 20
    index[3, 5:31] = 255
    return index


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory) -> str:
    """A VOCdevkit folder holding VOC2012/ with palette labels, an Aug folder and image sets."""
    devkit = str(tmp_path_factory.mktemp("voc"))
    root = os.path.join(devkit, "VOC2012")
    names: List[str] = VOC_NAMES["train"] + VOC_NAMES["val"]
    for seed, name in enumerate(names + VOC_AUG_ONLY):
        image = np.random.default_rng(seed).integers(0, 256, (40, 50, 3), dtype=np.uint8)
        write_png(f"{root}/JPEGImages/{name}.jpg", image)
        if name in names:
            write_palette_png(f"{root}/SegmentationClass/{name}.png", voc_index((40, 50), seed))
        write_png(f"{root}/SegmentationClassAug/{name}.png", voc_index((40, 50), seed))
    sets = f"{root}/ImageSets/Segmentation"
    os.makedirs(sets, exist_ok=True)
    for split, split_names in {**VOC_NAMES, "trainval": names}.items():
        with open(f"{sets}/{split}.txt", "w") as handle:
            handle.write("".join(name + "\n" for name in split_names))
    return devkit


@pytest.fixture
def write_list_file(tmp_path) -> Callable[[List[str], str], str]:
    """``write(lines, name='x.lst')`` -> path of a list file with those lines."""
    def write(lines: List[str], name: str = "x.lst") -> str:
        path = os.path.join(str(tmp_path), name)
        with open(path, "w") as handle:
            handle.write("".join(line + "\n" for line in lines))
        return path

    return write
