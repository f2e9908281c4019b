"""One training sample: geometry, label conversion, DUC layout, flip, padding (the equality with the
released get_single_image_duc is in test_sample_released.py)."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from tusimple_duc.datasets import dataset_lists
from tusimple_duc.data.lists import ListEntry
from tusimple_duc.data.sample import SamplingSpec, make_sample, plan_crop
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes
from tusimple_duc.synthetic.kitti_road import write_synthetic_kitti_road
from tusimple_duc.synthetic.voc import write_synthetic_voc
from tusimple_duc.errors import ConfigError

MEAN = (122.675, 116.669, 104.008)


def fixed(**overrides) -> SamplingSpec:
    """Scale 1, no jitter, no flip, label map at full resolution, unless overridden."""
    options = dict(scale_factors=(1.0,), use_random_crop=False, use_mirror=False, label_layout="map",
                   label_stride=1, cell_width=1)
    options.update(overrides)
    return SamplingSpec(**options)


def write_pair(folder, image_bgr, label, name="x"):
    image_path, label_path = os.path.join(folder, f"{name}.png"), os.path.join(folder, f"{name}_label.png")
    assert cv2.imwrite(image_path, image_bgr) and cv2.imwrite(label_path, label)
    return image_path, label_path


def smooth_image(shape, seed):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (shape[0] // 8, shape[1] // 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).astype(int)
    return np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ labels
def test_train_ids_equal_cityscapesscripts_for_all_34_ids(tmp_path):
    ids = np.repeat(np.arange(34, dtype=np.uint8), 8)[None, :].repeat(8, axis=0)  # 8 x 272
    image = np.zeros(ids.shape + (3,), dtype=np.uint8)
    entry = ListEntry(0, *write_pair(str(tmp_path), image, ids))
    _, label = make_sample(entry, 0, fixed(crop_shape=(8, 272)))
    for label_id in range(34):
        official = id2label[label_id].trainId
        expected = 255 if official in (-1, 255) else official
        assert np.all(label[:, label_id * 8:(label_id + 1) * 8] == expected), label_id


def test_kitti_colours_become_road_labels(kitti_root):
    entry = ListEntry(0, "training/image_2/um_000000.png", "training/gt_image_2/um_road_000000.png")
    _, label = make_sample(entry, 0, fixed(crop_shape=(50, 130), convert_label="kitti", num_classes=2),
                           kitti_root, kitti_root)
    expected = np.zeros((50, 130))
    expected[25:] = 1  # magenta road in the lower half, red not-road above
    expected[:, :5] = 255  # black: don't care
    np.testing.assert_array_equal(label, expected)


def test_voc_label_is_the_palette_index_not_the_colour(voc_root, toys):
    entry = ListEntry(0, "VOC2012/JPEGImages/2007_000039.jpg", "VOC2012/SegmentationClass/2007_000039.png")
    _, label = make_sample(entry, 0, fixed(crop_shape=(40, 50), convert_label="voc", num_classes=21),
                           voc_root, voc_root)
    np.testing.assert_array_equal(label, toys.voc_index((40, 50), 1))
    assert label[3, 10] == 255 and label[10, 10] == 2


# ------------------------------------------------------------------ layout, flip, padding
def test_duc_label_layout_against_hand_built_pattern(tmp_path):
    # crop 16x32, d = 8, c = 2: the label at 1/2 is 8x16, r = 4, cells h x w = 2 x 4.
    rows, cols = np.mgrid[0:16, 0:32]
    label = ((rows // 2) * 16 + cols // 2).astype(np.uint8)  # pixel (2i, 2j) holds i*16 + j
    entry = ListEntry(0, *write_pair(str(tmp_path), np.zeros((16, 32, 3), np.uint8), label))
    spec = fixed(crop_shape=(16, 32), convert_label="none", num_classes=200, label_layout="duc",
                 label_stride=None, cell_width=2, ds_rate=8)
    _, flat = make_sample(entry, 0, spec)
    expected = np.zeros(16 * 2 * 4)
    for dy in range(4):
        for dx in range(4):
            for y in range(2):
                for x in range(4):
                    expected[(dy * 4 + dx) * 8 + y * 4 + x] = (4 * y + dy) * 16 + (4 * x + dx)
    np.testing.assert_array_equal(flat, expected)


def test_image_and_label_flip_together(tmp_path):
    columns = np.arange(160, dtype=np.uint8)
    image = np.zeros((8, 160, 3), dtype=np.uint8)
    image[:, :, 2] = columns  # red (BGR order on disk) = column
    label = np.broadcast_to(columns, (8, 160)).copy()
    entry = ListEntry(0, *write_pair(str(tmp_path), image, label))
    spec = fixed(crop_shape=(8, 160), use_mirror=True, convert_label="none", num_classes=200)
    flips = set()
    for seed in range(12):
        data, lab = make_sample(entry, np.random.default_rng(seed), spec)
        flipped = bool(plan_crop((8, 160), None, spec, np.random.default_rng(seed)).flip)
        flips.add(flipped)
        np.testing.assert_array_equal(data[0], (lab.astype(np.float64) - MEAN[0]).astype(np.float32))
        np.testing.assert_array_equal(lab[0], columns[::-1] if flipped else columns)
    assert flips == {True, False}


def test_padding_is_exactly_zero_and_ignore(tmp_path):
    image = smooth_image((16, 24), 1)
    label = np.full((16, 24), 26, dtype=np.uint8)  # car -> trainId 13
    entry = ListEntry(0, *write_pair(str(tmp_path), image, label), centre=(4, 20))
    data, lab = make_sample(entry, 0, fixed(crop_shape=(32, 48)))
    # crop rows -12..19, cols -4..43: image at rows 12..27, cols 4..27 of the crop
    inside = np.zeros((32, 48), dtype=bool)
    inside[12:28, 4:28] = True
    assert np.all(data[:, ~inside] == 0.0)
    assert np.all(lab[~inside] == 255) and np.all(lab[inside] == 13)
    rgb = image[:, :, ::-1].astype(np.float64)
    np.testing.assert_array_equal(data[:, 12:28, 4:28], (rgb - MEAN).transpose(2, 0, 1).astype(np.float32))


# ------------------------------------------------------------------ geometry
def test_centre_is_scaled_and_crop_size_is_not():
    spec = SamplingSpec(crop_shape=(800, 800), scale_factors=(0.75,), use_random_crop=False, use_mirror=False)
    window = plan_crop((1024, 2048), (512, 768), spec, np.random.default_rng(0))
    assert (window.scale, window.top, window.left, window.rows, window.cols) == (0.75, 384 - 400, 576 - 400, 800, 800)


@pytest.mark.parametrize("bound", [(120, 120), (80, 40)])
def test_seven_fold_jitter_stays_within_bound_times_scale(bound):
    spec = SamplingSpec(crop_shape=(880, 880), random_bound=bound)
    rng = np.random.default_rng(0)
    seen = {s: [0, 0] for s in spec.scale_factors}
    for _ in range(3000):
        window = plan_crop((1024, 2048), (512, 1280), spec, rng)
        s = window.scale
        offsets = (window.top + 440 - int(512 * s), window.left + 440 - int(1280 * s))
        for axis in range(2):
            assert abs(offsets[axis]) <= int(bound[axis] * s)
            seen[s][axis] = max(seen[s][axis], abs(offsets[axis]))
    for s, largest in seen.items():  # the jitter reaches (close to) its bound at every scale
        assert largest[0] >= 0.9 * bound[0] * s and largest[1] >= 0.9 * bound[1] * s


def test_twelve_fold_crop_stays_inside_the_scaled_patch():
    spec = SamplingSpec(crop_shape=(544, 544), patch_scheme="12fold", patch_shape=(800, 800))
    rng = np.random.default_rng(1)
    for _ in range(2000):
        window = plan_crop((1024, 2048), (400, 650), spec, rng)
        s = window.scale
        patch = int(800 * s)
        patch_top, patch_left = int(400 * s) - patch // 2, int(650 * s) - patch // 2
        if patch >= 544:
            assert patch_top <= window.top and window.top + 544 <= patch_top + patch
            assert patch_left <= window.left and window.left + 544 <= patch_left + patch
        else:  # scale 0.5: 400 px patch, the crop is centred on it
            assert (window.top, window.left) == (int(400 * s) - 272, int(650 * s) - 272)


# ------------------------------------------------------------------ spec
@pytest.mark.parametrize("options, key", [
    (dict(crop_shape=(804, 800)), "[data] crop_shape"),
    (dict(crop_shape=(36, 36), label_layout="map", label_stride=8), "[data] crop_shape"),
    (dict(cell_width=3), "[network] cell_width"),
    (dict(convert_label="ids"), "[data] convert_label"),
    (dict(scale_factors=()), "[data] scale_factors"),
    (dict(random_bound=(-1, 3)), "[data] random_bound"),
    (dict(label_layout="duc", label_stride=8), "label_stride"),
    (dict(patch_scheme="9fold"), "patch_scheme"),
])
def test_invalid_spec_names_the_key(options, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        SamplingSpec(**options)


def test_same_seed_same_sample_other_seed_other_sample(cityscapes_root):
    entry = ListEntry(0, "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png",
                      "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png", (32, 64))
    spec = SamplingSpec(crop_shape=(48, 48), random_bound=(16, 16))
    first = make_sample(entry, 3, spec, cityscapes_root, cityscapes_root)
    again = make_sample(entry, 3, spec, cityscapes_root, cityscapes_root)
    other = make_sample(entry, 4, spec, cityscapes_root, cityscapes_root)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (3, 48, 48) and first[0].dtype == np.float32
    assert first[1].shape == (24 * 24,) and first[1].dtype == np.float32


# ------------------------------------------------------------------ the synthetic datasets of the real layouts
@pytest.fixture(scope="module")
def synthetic_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    write_synthetic_cityscapes(str(base / "cityscapes"), splits={"train": 2}, image_size=(64, 128))
    write_synthetic_kitti_road(str(base / "kitti"), n_train=2, n_test=1, image_size=(48, 160))
    write_synthetic_voc(str(base / "voc"), n_images=3, n_aug_only=1, image_size=(40, 56))
    return {name: str(base / name) for name in ("cityscapes", "kitti", "voc")}


def independent_label(dataset, path):
    """The training label of a ground-truth file, computed without the package."""
    if dataset == "cityscapes":
        ids = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        table = {i: (255 if l.trainId in (-1, 255) else l.trainId) for i, l in id2label.items() if i >= 0}
        return np.vectorize(table.get)(ids)
    if dataset == "kitti":  # official devkit: road = blue > 0, valid = red > 0
        rgb = cv2.imread(path)[:, :, ::-1]
        return np.where(rgb[..., 0] > 0, (rgb[..., 2] > 0).astype(int), 255)
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("dataset, list_name", [("cityscapes", "train"), ("kitti", "train"), ("voc", "val"),
                                                ("voc", "train_aug")])
def test_synthetic_datasets_give_the_official_labels(synthetic_roots, dataset, list_name):
    root = synthetic_roots[dataset]
    for entry in dataset_lists(dataset, root)[list_name]:
        expected = independent_label(dataset, os.path.join(root, entry.label))
        spec = fixed(crop_shape=expected.shape, convert_label=dataset,
                     num_classes={"cityscapes": 19, "kitti": 2, "voc": 21}[dataset])
        image, label = make_sample(entry, 0, spec, root, root)
        np.testing.assert_array_equal(label, expected)
        rgb = cv2.imread(os.path.join(root, entry.image))[:, :, ::-1].astype(np.float64)
        np.testing.assert_array_equal(image, (rgb - MEAN).transpose(2, 0, 1).astype(np.float32))
