"""List format, patch geometry and the generated dataset lists."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from tusimple_duc.cli import run_cli
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.datasets.kitti_road import kitti_road_lists
from tusimple_duc.datasets.voc import voc_lists
from tusimple_duc.data.lists import (ListEntry, read_list, resolve, seven_fold_centres, sliding_patch_centres,
                                     twelve_fold_centres, write_list)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_make_lists():
    spec = importlib.util.spec_from_file_location("make_lists_tool", os.path.join(REPO, "tools", "make_lists.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coverage(height, width, centres, patch):
    """How many patches cover each pixel, and whether every patch lies inside the image."""
    counts = np.zeros((height, width), dtype=int)
    inside = True
    for row, col in centres:
        top, left = row - patch[0] // 2, col - patch[1] // 2
        inside &= top >= 0 and left >= 0 and top + patch[0] <= height and left + patch[1] <= width
        counts[max(top, 0):top + patch[0], max(left, 0):left + patch[1]] += 1
    return counts, inside


# ------------------------------------------------------------------ format
def test_round_trip_keeps_fields_and_order(tmp_path):
    entries = [ListEntry(0, "a/b.png", "c/d.png", (512, 256)), ListEntry(7, "/abs/x.png", "y.png", (10.5, 3))]
    path = str(tmp_path / "train.lst")
    assert write_list(path, entries) == 2
    with open(path) as handle:
        assert handle.read() == "0\ta/b.png\tc/d.png\t512\t256\n7\t/abs/x.png\ty.png\t10.5\t3\n"
    back = read_list(path)
    assert [(e.index, e.image, e.label, e.centre) for e in back] == [
        (0, "a/b.png", "c/d.png", (512.0, 256.0)), (7, "/abs/x.png", "y.png", (10.5, 3.0))]
    assert back[1].where == f"{path} line 2"


def test_test_format_and_blank_lines(write_list_file):
    path = write_list_file(["", "3\timg.png\tlab.png", "   ", "4\timg2.png\tlab2.png", ""])
    entries = read_list(path)
    assert [(e.index, e.image, e.label, e.centre) for e in entries] == [
        (3, "img.png", "lab.png", None), (4, "img2.png", "lab2.png", None)]
    assert entries[1].where == f"{path} line 4"


def test_resolve_keeps_absolute_paths():
    assert resolve("/data/cityscapes", "/mnt/other/x.png") == "/mnt/other/x.png"
    assert resolve("/data/cityscapes", "leftImg8bit/x.png") == "/data/cityscapes/leftImg8bit/x.png"
    assert resolve("", "leftImg8bit/x.png") == "leftImg8bit/x.png"


# ------------------------------------------------------------------ geometry
def test_seven_fold_centres_are_the_released_ones():
    assert seven_fold_centres(1024, 2048) == [(512, 256), (512, 512), (512, 768), (512, 1024), (512, 1280),
                                              (512, 1536), (512, 1792)]
    assert seven_fold_centres(64, 128) == [(32, 16 * i) for i in range(1, 8)]


def test_twelve_fold_centres_cover_the_cityscapes_image():
    centres = twelve_fold_centres(1024, 2048)
    # hand-computed: rows 400 + k*224, columns 400 + round(k*1248/5)
    assert centres == [(r, c) for r in (400, 624) for c in (400, 650, 899, 1149, 1398, 1648)]
    counts, inside = coverage(1024, 2048, centres, (800, 800))
    assert inside
    assert counts.min() >= 1


@pytest.mark.parametrize("shape", [(1000, 1900), (801, 4000), (1024, 2048)])
def test_twelve_fold_patches_inside_and_covering(shape):
    centres = twelve_fold_centres(*shape, patch=800)
    assert len(centres) == 12
    counts, inside = coverage(*shape, centres, (800, 800))
    assert inside and counts.min() >= 1


def test_kitti_patches_stride_100_last_flush():
    centres = sliding_patch_centres(375, 1242, 320, 100)
    rows = sorted({r for r, _ in centres})
    cols = sorted({c for _, c in centres})
    assert rows == [160, 215]
    assert cols == [160 + 100 * k for k in range(10)] + [1242 - 160]
    counts, inside = coverage(375, 1242, centres, (320, 320))
    assert inside and counts.min() >= 1 and len(centres) == 22


def test_patch_larger_than_axis_is_centred():
    assert sliding_patch_centres(200, 1000, 320, 100)[0][0] == 100
    assert all(row == 300 for row, _ in twelve_fold_centres(600, 2048, 800))


# ------------------------------------------------------------------ dataset lists
def test_cityscapes_lists(cityscapes_root, toys):
    lists = cityscapes_lists(cityscapes_root, patch=48)
    assert sorted(lists) == ["train", "train_12fold", "train_7fold", "val", "val_7fold"]
    assert [len(lists[name]) for name in ("train", "train_7fold", "train_12fold", "val", "val_7fold")] == \
        [3, 21, 36, 2, 14]
    first = lists["train"][0]
    assert first.image == "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    assert first.label == "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    seven = lists["train_7fold"]
    assert [e.index for e in seven] == list(range(21))
    assert [e.centre for e in seven[:7]] == [(32, 16 * i) for i in range(1, 8)]
    assert {e.image for e in seven[7:14]} == {"leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png"}
    height, width = toys.CITYSCAPES_SHAPE
    twelve = [e.centre for e in lists["train_12fold"][:12]]
    assert twelve == [(r, c) for r in (24, 40) for c in (24, 40, 56, 72, 88, 104)]
    assert coverage(height, width, twelve, (48, 48))[0].min() >= 1
    for entry in lists["val"]:
        assert os.path.isfile(os.path.join(cityscapes_root, entry.image))
        assert os.path.isfile(os.path.join(cityscapes_root, entry.label))


def test_cityscapes_coarse_lists(cityscapes_coarse_root):
    lists = cityscapes_lists(cityscapes_coarse_root, coarse=True)
    assert {"train_extra", "train_extra_7fold", "train_extra_12fold"} <= set(lists)
    assert lists["train_extra"][0].label == "gtCoarse/train_extra/erlangen/erlangen_000000_000019_gtCoarse_labelIds.png"
    assert len(lists["train_extra_7fold"]) == 7 and len(lists["train_extra_12fold"]) == 12


def test_kitti_lists(kitti_root, toys):
    lists = kitti_road_lists(kitti_root, patch=32, stride=20)
    assert [e.image for e in lists["train"]] == [f"training/image_2/{name}" for name in sorted(toys.KITTI_IMAGES)]
    assert lists["train"][0].label == "training/gt_image_2/um_road_000000.png"
    assert lists["train"][1].label == "training/gt_image_2/umm_road_000003.png"
    expected = 0
    for name, (height, width) in sorted(toys.KITTI_IMAGES.items()):
        expected += len(sliding_patch_centres(height, width, 32, 20))
    patches = lists["train_patches"]
    assert len(patches) == expected
    um = [e.centre for e in patches if e.image.endswith("um_000000.png")]
    assert sorted({r for r, _ in um}) == [16, 50 - 16]  # starts 0 and 18 (flush)
    assert coverage(50, 130, um, (32, 32))[0].min() >= 1


def test_voc_lists(voc_root, toys):
    lists = voc_lists(voc_root)
    assert [e.image for e in lists["train"]] == [f"VOC2012/JPEGImages/{n}.jpg" for n in toys.VOC_NAMES["train"]]
    assert lists["val"][0].label == f"VOC2012/SegmentationClass/{toys.VOC_NAMES['val'][0]}.png"
    assert len(lists["trainval"]) == 3
    aug = [os.path.basename(e.label) for e in lists["train_aug"]]
    assert aug == sorted(f"{n}.png" for n in toys.VOC_NAMES["train"] + toys.VOC_AUG_ONLY)
    assert all(e.label.startswith("VOC2012/SegmentationClassAug/") for e in lists["train_aug"])
    assert len(lists["trainval_aug"]) == len(aug) + 1
    assert [e.index for e in lists["trainval_aug"]] == list(range(len(aug) + 1))


def test_voc_train_aug_from_deeplab_list(voc_root, tmp_path):
    listed = os.path.join(voc_root, "VOC2012", "ImageSets", "Segmentation", "train_aug.txt")
    with open(listed, "w") as handle:
        handle.write("/JPEGImages/2008_000003.jpg /SegmentationClassAug/2008_000003.png\n")
    try:
        lists = voc_lists(os.path.join(voc_root, "VOC2012"))
    finally:
        os.remove(listed)
    assert [(e.image, e.label) for e in lists["train_aug"]] == [
        ("JPEGImages/2008_000003.jpg", "SegmentationClassAug/2008_000003.png")]


# ------------------------------------------------------------------ tool
def test_make_lists_tool_writes_and_counts(cityscapes_root, tmp_path, capsys):
    out = str(tmp_path / "lists")
    assert run_cli(load_make_lists().main, ["cityscapes", cityscapes_root, "--out", out, "--patch", "48"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}/train_7fold.lst: 21 lines" in printed
    assert sorted(os.listdir(out)) == ["train.lst", "train_12fold.lst", "train_7fold.lst", "val.lst", "val_7fold.lst"]
    assert len(read_list(os.path.join(out, "train_12fold.lst"))) == 36


def test_make_lists_tool_bad_root_exits_2(tmp_path, capsys):
    assert run_cli(load_make_lists().main, ["kitti", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing/training/image_2" in err
    assert not os.path.exists(tmp_path / "o")
