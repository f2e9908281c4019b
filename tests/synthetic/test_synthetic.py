"""Synthetic datasets: the real file layouts, checked with cityscapesscripts and the official tables."""
from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import re

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.csHelpers import getCsFileInfo
from cityscapesscripts.helpers.labels import id2label, labels as cs_labels, name2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image

from tusimple_duc.cli import run_cli
from tusimple_duc.data import labels as duc_labels
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes
from tusimple_duc.synthetic.kitti_road import write_synthetic_kitti_road
from tusimple_duc.synthetic.voc import write_synthetic_voc
from tusimple_duc.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = (256, 512)
OFFICIAL_IDS = {label.id for label in cs_labels if label.id >= 0}
TRAIN_ID = np.full(256, 255, dtype=np.int64)
COLOUR = np.zeros((256, 3), dtype=np.uint8)
for _label in cs_labels:
    if _label.id >= 0:
        TRAIN_ID[_label.id] = _label.trainId if 0 <= _label.trainId < 19 else 255
        COLOUR[_label.id] = _label.color
FILE_PATTERN = re.compile(
    r"^(?:leftImg8bit/(?P<s1>train|val|test|train_extra)/(?P<c1>[a-z-]+)/(?P=c1)_\d{6}_\d{6}_leftImg8bit\.png"
    r"|gtFine/(?:train|val|test)/(?P<c2>[a-z-]+)/(?P=c2)_\d{6}_\d{6}_gtFine_(?:labelIds|instanceIds|color)\.png"
    r"|gtFine/(?:train|val|test)/(?P<c3>[a-z-]+)/(?P=c3)_\d{6}_\d{6}_gtFine_polygons\.json"
    r"|gtCoarse/(?:train|val|train_extra)/(?P<c4>[a-z-]+)/(?P=c4)_\d{6}_\d{6}_gtCoarse_"
    r"(?:labelIds|instanceIds|color)\.png"
    r"|gtCoarse/(?:train|val|train_extra)/(?P<c5>[a-z-]+)/(?P=c5)_\d{6}_\d{6}_gtCoarse_polygons\.json)$")


def all_files(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


def max_run(mask):
    """Longest horizontal run of True in a (H, W) mask (brute force over rows)."""
    best = 0
    for row in mask:
        run = 0
        for value in row:
            run = run + 1 if value else 0
            best = max(best, run)
    return best


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic_cityscapes"))
    return write_synthetic_cityscapes(root, {"train": 4, "val": 2, "test": 1, "train_extra": 1}, SIZE, coarse=True)


def test_layout_names_and_cities(dataset):
    files = all_files(dataset.root)
    assert files == sorted(os.path.relpath(p, dataset.root) for split in dataset.frames for p in dataset.files(split))
    assert [f for f in files if not FILE_PATTERN.match(f)] == []
    assert len(files) == 4 * 9 + 2 * 9 + 1 * 5 + 1 * 5
    cities = {split: sorted({frame.city for frame in frames}) for split, frames in dataset.frames.items()}
    assert cities == {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"],
                      "train_extra": ["augsburg"]}
    for split, frames in dataset.frames.items():
        for frame in frames:
            for suffix, path in frame.files.items():
                info = getCsFileInfo(path)
                assert (info.city, info.sequenceNb, info.frameNb) == (frame.city, f"{frame.sequence:06d}", "000019")
                assert os.path.basename(path).startswith(frame.name + "_" + suffix)
                assert path.startswith(os.path.join(dataset.root, suffix.split("_")[0], split, frame.city) + os.sep)
            has_fine = "gtFine_labelIds" in frame.files
            assert has_fine == (split != "train_extra")
            assert ("gtCoarse_labelIds" in frame.files) == (split != "test")
    image = Image.open(dataset.frames["train"][0].image)
    assert (image.mode, image.size) == ("RGB", (SIZE[1], SIZE[0]))


def test_label_pngs_follow_the_official_encodings(dataset):
    seen_instances = 0
    for frames in dataset.frames.values():
        for frame in frames:
            for kind in ("gtFine", "gtCoarse"):
                if f"{kind}_labelIds" not in frame.files:
                    continue
                label_image = Image.open(frame.files[f"{kind}_labelIds"])
                instance_image = Image.open(frame.files[f"{kind}_instanceIds"])
                colour_image = Image.open(frame.files[f"{kind}_color"])
                assert (label_image.mode, instance_image.mode, colour_image.mode) == ("L", "I;16", "RGBA")
                label_ids = np.array(label_image)
                instance_ids = cv2.imread(frame.files[f"{kind}_instanceIds"], cv2.IMREAD_UNCHANGED)
                assert instance_ids.dtype == np.uint16
                assert set(np.unique(label_ids)) <= OFFICIAL_IDS
                is_instance = instance_ids >= 1000
                decoded = np.where(is_instance, instance_ids // 1000, instance_ids)
                np.testing.assert_array_equal(decoded, label_ids)
                assert all(id2label[int(v)].hasInstances for v in np.unique(instance_ids[is_instance] // 1000))
                assert not any(id2label[int(v)].hasInstances for v in np.unique(instance_ids[~is_instance]))
                seen_instances += len(np.unique(instance_ids[is_instance]))
                colour = np.array(colour_image)
                np.testing.assert_array_equal(colour[..., :3], COLOUR[label_ids])
                assert (colour[..., 3] == 255).all()
    assert seen_instances > 20


def test_polygons_are_official_json_and_rasterise_to_the_pngs(dataset):
    for split in ("train", "val", "test"):
        for frame in dataset.frames[split]:
            path = frame.files["gtFine_polygons"]
            with open(path) as handle:
                data = json.load(handle)
            assert set(data) == {"imgHeight", "imgWidth", "objects"}
            assert (data["imgHeight"], data["imgWidth"]) == SIZE
            for obj in data["objects"]:
                assert set(obj) == {"label", "polygon"} and obj["label"] in name2label
                points = np.array(obj["polygon"])
                assert points.dtype.kind == "i" and points.shape[1] == 2 and len(points) >= 3
                assert points.min() >= 0 and (points.max(axis=0) < (SIZE[1], SIZE[0])).all()
            annotation = Annotation()
            annotation.fromJsonFile(path)
            official_ids = np.array(createLabelImage(annotation, "ids"))
            official_instances = np.array(createInstanceImage(annotation, "ids"))
            label_ids = np.array(Image.open(frame.files["gtFine_labelIds"]))
            instance_ids = cv2.imread(frame.files["gtFine_instanceIds"], cv2.IMREAD_UNCHANGED)
            # PIL and OpenCV fill polygon edges slightly differently; everything else agrees.
            assert (official_ids == label_ids).mean() > 0.99
            assert (official_instances == instance_ids).mean() > 0.99


def test_test_split_has_ignore_only_labels_on_a_real_scene(dataset):
    frame = dataset.frames["test"][0]
    label_ids = np.array(Image.open(frame.files["gtFine_labelIds"]))
    assert set(np.unique(label_ids)) == {0, 1, 2, 3}
    assert (TRAIN_ID[label_ids] == 255).all()
    with open(frame.files["gtFine_polygons"]) as handle:
        names = {obj["label"] for obj in json.load(handle)["objects"]}
    assert names == {"ego vehicle", "rectification border", "out of roi"}
    assert np.array(Image.open(frame.image)).std() > 20


def test_every_evaluated_class_and_the_ignored_ids_appear(dataset):
    for split in ("train", "val"):
        ids = set()
        for frame in dataset.frames[split]:
            ids |= set(np.unique(np.array(Image.open(frame.files["gtFine_labelIds"]))).tolist())
        assert set(range(19)) <= {int(TRAIN_ID[i]) for i in ids}, split
        assert {1, 2, 3, 4, 6, 9, 10, 14, 18} <= ids, split
    label_ids = np.array(Image.open(dataset.frames["train"][0].files["gtFine_labelIds"]))
    rows = np.arange(SIZE[0])[:, None] * np.ones(SIZE[1], dtype=int)
    assert rows[label_ids == 23].mean() < 0.4 * SIZE[0] < 0.6 * SIZE[0] < rows[label_ids == 7].mean()
    assert rows[label_ids == 1].min() > 0.8 * SIZE[0]


def test_thin_classes_are_thin_at_the_default_size(dataset):
    for frame in dataset.frames["train"]:
        label_ids = np.array(Image.open(frame.files["gtFine_labelIds"]))
        for label_id in (17, 19, 20):
            assert 0 < max_run(label_ids == label_id) <= 6


def test_thin_classes_are_narrower_than_8_px_at_1024x2048(tmp_path):
    summary = write_synthetic_cityscapes(str(tmp_path), {"train": 1}, (1024, 2048))
    label_ids = np.array(Image.open(summary.frames["train"][0].files["gtFine_labelIds"]))
    for label_id in (17, 19, 20):
        mask = label_ids == label_id
        assert mask.any()
        runs = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
        starts, ends = np.nonzero(runs == 1), np.nonzero(runs == -1)
        assert (ends[0] == starts[0]).all()
        assert 2 <= (ends[1] - starts[1]).max() < 8


def test_coarse_is_an_eroded_subset_of_fine(dataset):
    for split in ("train", "val"):
        for frame in dataset.frames[split]:
            fine = np.array(Image.open(frame.files["gtFine_labelIds"]))
            coarse = np.array(Image.open(frame.files["gtCoarse_labelIds"]))
            labelled = coarse > 0
            np.testing.assert_array_equal(coarse[labelled], fine[labelled])
            assert (coarse == 0).mean() > (fine == 0).mean() + 0.1
    extra = dataset.frames["train_extra"][0]
    assert (np.array(Image.open(extra.files["gtCoarse_labelIds"])) == 0).mean() > 0.1


def test_summary_pixel_counts_match_the_files(dataset):
    for split, frames in dataset.frames.items():
        kind = "gtCoarse" if split == "train_extra" else "gtFine"
        counts = sum(np.bincount(np.array(Image.open(f.files[f"{kind}_labelIds"])).ravel(), minlength=34)
                     for f in frames)
        np.testing.assert_array_equal(dataset.label_id_pixel_counts[split], counts)
        by_train_id = np.bincount(TRAIN_ID[:34], weights=counts, minlength=256)[:19]
        np.testing.assert_array_equal(dataset.train_id_pixel_counts(split), by_train_id)


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path):
    splits = {"train": 2, "test": 1}
    first, second, third = (str(tmp_path / name) for name in ("a", "b", "c"))
    for root, seed in ((first, 5), (second, 5), (third, 6)):
        write_synthetic_cityscapes(root, splits, (64, 128), seed, coarse=True)
    files = all_files(first)
    assert files == all_files(second) == all_files(third)
    _, mismatch, errors = filecmp.cmpfiles(first, second, files, shallow=False)
    assert mismatch == [] and errors == []
    _, mismatch, _ = filecmp.cmpfiles(first, third, files, shallow=False)
    assert sorted(f for f in files if "leftImg8bit" in f) == sorted(f for f in mismatch if "leftImg8bit" in f)
    assert any("gtFine_labelIds" in f for f in mismatch)


@pytest.mark.parametrize("kwargs, key", [
    (dict(splits={"training": 1}), "splits"),
    (dict(splits={"train": -1}), "splits['train']"),
    (dict(splits={"train_extra": 1}), "splits"),
    (dict(image_size=(8, 64)), "image_size"),
    (dict(cities=["new_york"]), "cities"),
])
def test_bad_arguments_raise_a_one_line_config_error(tmp_path, kwargs, key):
    with pytest.raises(ConfigError) as info:
        write_synthetic_cityscapes(str(tmp_path), **kwargs)
    assert str(info.value).startswith(key + ":") and "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_kitti_road_layout_and_ground_truth_colours(tmp_path):
    summary = write_synthetic_kitti_road(str(tmp_path), n_train=4, n_test=3)
    files = all_files(str(tmp_path))
    assert [f for f in files if not re.match(
        r"^(?:training/image_2/(?:um|umm|uu)_\d{6}\.png|training/gt_image_2/(?:um|umm|uu)_road_\d{6}\.png"
        r"|training/gt_image_2/um_lane_\d{6}\.png|testing/image_2/(?:um|umm|uu)_\d{6}\.png)$", f)] == []
    assert sorted(f for f in files if f.startswith("training/image_2")) == [
        "training/image_2/um_000000.png", "training/image_2/um_000001.png",
        "training/image_2/umm_000000.png", "training/image_2/uu_000000.png"]
    assert len([f for f in files if "_lane_" in f]) == 2
    assert len([f for f in files if f.startswith("testing/image_2/")]) == 3
    official = {(255, 0, 255): 1, (255, 0, 0): 0, (0, 0, 0): 255}
    colours_seen = set()
    for image_path, gt_path in zip(summary.train_images, summary.train_road_gt):
        gt = np.array(Image.open(gt_path).convert("RGB"))
        assert gt.shape == np.array(Image.open(image_path)).shape == (96, 320, 3)
        colours = {tuple(c) for c in np.unique(gt.reshape(-1, 3), axis=0).tolist()}
        assert colours <= set(official)
        colours_seen |= colours
        expected = np.full(gt.shape[:2], 7, dtype=np.uint8)
        for colour, value in official.items():
            expected[(gt == colour).all(axis=2)] = value
        np.testing.assert_array_equal(duc_labels.kitti_gt_to_labels(gt), expected)
        assert (expected == 1).mean() > 0.05
    assert colours_seen == set(official)
    for lane_path in summary.train_lane_gt:
        lane = np.array(Image.open(lane_path).convert("RGB"))
        road = np.array(Image.open(lane_path.replace("_lane_", "_road_")).convert("RGB"))
        in_lane = (lane == (255, 0, 255)).all(axis=2)
        assert in_lane.any() and not (road[in_lane] == (255, 0, 0)).all(axis=1).any()


def test_voc_palette_boundaries_aug_and_lists(tmp_path):
    summary = write_synthetic_voc(str(tmp_path), n_images=6, n_aug_only=2)
    voc = os.path.join(str(tmp_path), "VOC2012")

    def read_list(relative):
        with open(os.path.join(voc, relative)) as handle:
            return handle.read().split()

    train, val = read_list("ImageSets/Segmentation/train.txt"), read_list("ImageSets/Segmentation/val.txt")
    assert (train, val) == (summary.train_ids, summary.val_ids) and (len(train), len(val)) == (4, 2)
    assert read_list("ImageSets/Segmentation/trainval.txt") == sorted(train + val)
    train_aug = read_list("ImageSets/SegmentationAug/train_aug.txt")
    assert train_aug == sorted(train + summary.aug_only_ids) and not set(train_aug) & set(val)
    assert all(re.match(r"^20(0[7-9]|1[01])_\d{6}$", i) for i in train_aug + val)
    for image_id in train + val:
        image = Image.open(os.path.join(voc, "JPEGImages", f"{image_id}.jpg"))
        label = Image.open(os.path.join(voc, "SegmentationClass", f"{image_id}.png"))
        assert (image.format, label.mode, label.size) == ("JPEG", "P", image.size)
        palette = np.array(label.getpalette()[:768]).reshape(256, 3)
        np.testing.assert_array_equal(palette, duc_labels.VOC_PALETTE)
        assert palette[1].tolist() == [128, 0, 0] and palette[15].tolist() == [192, 128, 128]
        assert palette[255].tolist() == [224, 224, 192]
        index = np.array(label)
        assert set(np.unique(index)) <= set(range(21)) | {255} and (index == 255).any()
        for a, b in ((index[:, 1:], index[:, :-1]), (index[1:], index[:-1])):
            touching = (a != 255) & (b != 255)
            assert (a[touching] == b[touching]).all()
        aug = Image.open(os.path.join(voc, "SegmentationClassAug", f"{image_id}.png"))
        assert aug.mode == "L"
        np.testing.assert_array_equal(np.array(aug), index)
    for image_id in summary.aug_only_ids:
        aug = np.array(Image.open(os.path.join(voc, "SegmentationClassAug", f"{image_id}.png")))
        assert aug.max() <= 20 and aug.max() > 0
        assert not os.path.exists(os.path.join(voc, "SegmentationClass", f"{image_id}.png"))


def test_tool_writes_and_reports_errors(tmp_path, capsys):
    path = os.path.join(REPO, "tools", "make_synthetic_cityscapes.py")
    spec = importlib.util.spec_from_file_location("make_synthetic", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = str(tmp_path / "cs")
    argv = [root, "--train", "2", "--val", "1", "--height", "32", "--width", "64", "--coarse", "--train-extra", "1"]
    assert run_cli(tool.main, argv) == 0
    out = capsys.readouterr().out
    assert "train: 2 images, 18 files, cities aachen" in out and "train_extra: 1 images, 5 files" in out
    assert len(all_files(root)) == 2 * 9 + 9 + 5
    assert run_cli(tool.main, [str(tmp_path / "bad"), "--height", "8"]) == 2
    assert capsys.readouterr().err.startswith("error: image_size:")
