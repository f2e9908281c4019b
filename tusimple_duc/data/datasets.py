"""Lists of the three datasets, generated from their folders (layouts in ``data_lists/README.md``).

Every function returns ``{list name: entries}``; paths are relative to the dataset root
given (use it as both ``data_dir`` and ``label_dir``), the index column is the line
number. Image sizes are read from the file headers, and an image whose label is missing
or of a different size is a :class:`~tusimple_duc.errors.DataError`.
"""
from __future__ import annotations

import glob
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tusimple_duc.data.lists import (ListEntry, numbered, seven_fold_centres, sliding_patch_centres,
                                     twelve_fold_centres, with_centres, write_list)
from tusimple_duc.data.readers import read_image_size
from tusimple_duc.errors import DataError

Lists = Dict[str, List[ListEntry]]
Pair = Tuple[str, str]


def checked_size(root: str, image: str, label: str) -> Tuple[int, int]:
    """Size of the image of a pair; the label must exist and have the same size."""
    image_path, label_path = os.path.join(root, image), os.path.join(root, label)
    if not os.path.isfile(label_path):
        raise DataError(f"{label_path}: label of {image_path} not found")
    size = read_image_size(image_path)
    label_size = read_image_size(label_path)
    if size != label_size:
        raise DataError(f"{label_path}: label is {label_size[0]}x{label_size[1]} but image {image_path} is "
                        f"{size[0]}x{size[1]}")
    return size


def _require_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise DataError(f"{path}: folder not found ({what})")


def whole_image_entries(pairs: Sequence[Pair]) -> List[ListEntry]:
    """Test-format entries (no centre) of image/label pairs."""
    return numbered(ListEntry(0, image, label) for image, label in pairs)


def patch_entries(root: str, pairs: Sequence[Pair], centres: Callable[[int, int], List[Tuple[int, int]]]
                  ) -> List[ListEntry]:
    """Training entries: one per centre that ``centres(height, width)`` gives for each pair."""
    entries: List[ListEntry] = []
    for image, label in pairs:
        entries += with_centres(image, label, centres(*checked_size(root, image, label)))
    return numbered(entries)


# ------------------------------------------------------------------ Cityscapes
def cityscapes_pairs(root: str, split: str, annotation: str = "gtFine") -> List[Pair]:
    """``(leftImg8bit/split/city/X_leftImg8bit.png, annotation/split/city/X_<annotation>_labelIds.png)``."""
    image_dir = os.path.join(root, "leftImg8bit", split)
    _require_dir(image_dir, f"Cityscapes {split} images")
    _require_dir(os.path.join(root, annotation, split), f"Cityscapes {split} {annotation} labels")
    pairs = []
    suffix = "_leftImg8bit.png"
    for path in sorted(glob.glob(os.path.join(image_dir, "*", "*" + suffix))):
        city = os.path.basename(os.path.dirname(path))
        stem = os.path.basename(path)[: -len(suffix)]
        pairs.append((f"leftImg8bit/{split}/{city}/{stem}{suffix}",
                      f"{annotation}/{split}/{city}/{stem}_{annotation}_labelIds.png"))
    if not pairs:
        raise DataError(f"{image_dir}: no *{suffix} images")
    return pairs


def cityscapes_lists(root: str, coarse: bool = False, patch: int = 800) -> Lists:
    """Cityscapes lists of the splits present under ``leftImg8bit/``: ``train_7fold``, ``train_12fold``,
    ``train``; ``val``, ``val_7fold``; ``test``; with ``coarse`` also ``train_extra_7fold``,
    ``train_extra_12fold``, ``train_extra`` (``gtCoarse``).

    Parameters
    ----------
    root : the dataset folder holding ``leftImg8bit/``, ``gtFine/`` (and ``gtCoarse/``).
    coarse : add the train_extra lists.
    patch : 12-fold patch size, pixels.
    """
    _require_dir(os.path.join(root, "leftImg8bit"), "not a Cityscapes root")

    def twelve(height: int, width: int) -> List[Tuple[int, int]]:
        return twelve_fold_centres(height, width, patch)

    splits = [(split, "gtFine") for split in ("train", "val", "test")
              if os.path.isdir(os.path.join(root, "leftImg8bit", split))]
    if not splits:
        raise DataError(f"{os.path.join(root, 'leftImg8bit')}: no train, val or test folder")
    if coarse:
        splits.append(("train_extra", "gtCoarse"))
    lists: Lists = {}
    for split, annotation in splits:
        pairs = cityscapes_pairs(root, split, annotation)
        lists[split] = whole_image_entries(pairs)
        if split != "test":
            lists[f"{split}_7fold"] = patch_entries(root, pairs, seven_fold_centres)
        if split in ("train", "train_extra"):
            lists[f"{split}_12fold"] = patch_entries(root, pairs, twelve)
    return lists


# ------------------------------------------------------------------ KITTI road
def kitti_road_pairs(root: str) -> List[Pair]:
    """``(training/image_2/C_N.png, training/gt_image_2/C_road_N.png)`` for C in um, umm, uu."""
    image_dir = os.path.join(root, "training", "image_2")
    _require_dir(image_dir, "KITTI road training images")
    _require_dir(os.path.join(root, "training", "gt_image_2"), "KITTI road ground truth")
    pairs = []
    for path in sorted(glob.glob(os.path.join(image_dir, "*.png"))):
        name = os.path.basename(path)
        category, _, number = name.rpartition("_")
        if category not in ("um", "umm", "uu"):
            raise DataError(f"{path}: not a KITTI road image name (um_/umm_/uu_<number>.png)")
        pairs.append((f"training/image_2/{name}", f"training/gt_image_2/{category}_road_{number}"))
    if not pairs:
        raise DataError(f"{image_dir}: no .png images")
    return pairs


def kitti_road_lists(root: str, patch: int = 320, stride: int = 100) -> Lists:
    """KITTI road lists: ``train_patches`` (``patch``-px patches every ``stride`` px) and ``train``."""
    pairs = kitti_road_pairs(root)
    return {
        "train_patches": patch_entries(root, pairs, lambda h, w: sliding_patch_centres(h, w, patch, stride)),
        "train": whole_image_entries(pairs),
    }


# ------------------------------------------------------------------ PASCAL VOC
def voc_folder(root: str) -> Tuple[str, str]:
    """``(absolute VOC2012 folder, its path relative to root)``: ``root`` or ``root/VOC2012``."""
    for relative in ("", "VOC2012"):
        folder = os.path.join(root, relative)
        if os.path.isdir(os.path.join(folder, "JPEGImages")):
            return folder, relative
    raise DataError(f"{root}: neither it nor {os.path.join(root, 'VOC2012')} has a JPEGImages folder")


def read_image_set(path: str) -> List[str]:
    """Image names of an image-set file: one name per line, or DeepLab's ``/JPEGImages/X.jpg /... `` lines."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.split() for line in handle if line.strip()]
    except OSError as exc:
        raise DataError(f"{path}: cannot read image set ({exc.strerror})") from None
    names = [os.path.splitext(os.path.basename(fields[0]))[0] for fields in lines]
    if not names:
        raise DataError(f"{path}: image set is empty")
    return names


def voc_lists(root: str) -> Lists:
    """VOC 2012 lists ``train``, ``val``, ``trainval`` (``SegmentationClass``) and, with
    ``SegmentationClassAug``, ``train_aug`` and ``trainval_aug`` (= train_aug + val).

    ``train_aug`` comes from ``ImageSets/Segmentation/train_aug.txt`` or
    ``ImageSets/SegmentationAug/train_aug.txt`` when present, else it is every
    ``SegmentationClassAug`` label not in ``val`` (10,582 images with the SBD labels).
    """
    folder, relative = voc_folder(root)
    prefix = f"{relative}/" if relative else ""
    sets_dir = os.path.join(folder, "ImageSets", "Segmentation")
    _require_dir(sets_dir, "VOC segmentation image sets")

    def pairs(names: Sequence[str], label_folder: str) -> List[Pair]:
        found = []
        for name in names:
            image = f"{prefix}JPEGImages/{name}.jpg"
            label = f"{prefix}{label_folder}/{name}.png"
            for path in (image, label):
                if not os.path.isfile(os.path.join(root, path)):
                    raise DataError(f"{os.path.join(root, path)}: file of image-set name {name!r} not found")
            found.append((image, label))
        return found

    lists: Lists = {}
    for split in ("train", "val", "trainval"):
        lists[split] = whole_image_entries(pairs(read_image_set(os.path.join(sets_dir, f"{split}.txt")),
                                                 "SegmentationClass"))
    aug_dir = os.path.join(folder, "SegmentationClassAug")
    if os.path.isdir(aug_dir):
        train_aug = _train_aug_names(sets_dir, aug_dir, set(read_image_set(os.path.join(sets_dir, "val.txt"))))
        lists["train_aug"] = whole_image_entries(pairs(train_aug, "SegmentationClassAug"))
        lists["trainval_aug"] = numbered(lists["train_aug"] + lists["val"])
    return lists


#: Where distributions of the SBD-augmented set put their train_aug list, relative to ImageSets/.
TRAIN_AUG_LISTS = ("Segmentation/train_aug.txt", "SegmentationAug/train_aug.txt")


def _train_aug_names(sets_dir: str, aug_dir: str, val: set) -> List[str]:
    for relative in TRAIN_AUG_LISTS:
        listed = os.path.join(os.path.dirname(sets_dir), relative)
        if os.path.isfile(listed):
            return read_image_set(listed)
    names = sorted(os.path.splitext(name)[0] for name in os.listdir(aug_dir) if name.endswith(".png"))
    return [name for name in names if name not in val]


# ------------------------------------------------------------------ writing
def write_lists(lists: Lists, out_dir: str) -> Dict[str, int]:
    """Write every list to ``out_dir/<name>.lst`` atomically; returns the line counts."""
    return {name: write_list(os.path.join(out_dir, f"{name}.lst"), entries) for name, entries in lists.items()}


DATASETS: Dict[str, Callable[..., Lists]] = {
    "cityscapes": cityscapes_lists,
    "kitti": kitti_road_lists,
    "voc": voc_lists,
}


def dataset_lists(dataset: str, root: str, **options: Optional[object]) -> Lists:
    """The lists of ``dataset`` ('cityscapes', 'kitti', 'voc') under ``root``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[dataset](root, **options)
