"""The sample pipeline equals a restatement of the released ``get_single_image_duc`` for every draw.

``released_sample`` below restates TuSimple-DUC's ``tusimple_duc/core/utils.py``
``get_single_image_duc`` (+ ``replace_city_labels``) in Python 3, with the random draws
(scale, row / column jitter, mirror) as arguments instead of calls to ``random``. Our sample
for the same draws must equal it: labels exactly, images exactly (the original subtracts the
mean in float64; MXNet's batch turns that into float32).
"""
from __future__ import annotations

import itertools
import logging
import math
import os
from typing import Sequence, Tuple

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cityscapes_table
from PIL import Image

from tusimple_duc.data.iterator import SegmentationDataset
from tusimple_duc.data.lists import ListEntry, read_list
from tusimple_duc.data.sample import (Draws, SamplingSpec, crop_window, draw_augmentation, make_sample,
                                      make_sample_into, read_pair, render_sample)
from tusimple_duc.errors import DataError

MEAN = (122.675, 116.669, 104.008)
SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)
RANDOM_BOUND = (30, 40)


def city_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """replace_city_labels: every id to its trainId with the official table, anything else 255."""
    converted = np.ones(label_ids.shape, dtype=np.float64) * 255
    for entry in cityscapes_table:
        converted[label_ids == entry.id] = entry.trainId
    return converted


def released_sample(image_path: str, label_path: str, centre: Tuple[int, int], crop: Tuple[int, int],
                    scale: float, jitter: Tuple[int, int], mirror: bool, cell_width: int,
                    ds_rate: int = 8) -> Tuple[np.ndarray, np.ndarray]:
    """get_single_image_duc with convert_label, rgb_mean MEAN, use_random_crop and use_mirror on.

    ``crop`` is (rows, cols): the original took ``crop_sz = (data_shape[-1], data_shape[-2])``
    and used ``crop_sz[0]`` for the rows, the same thing for the square crops it could handle.
    Its loader never passed ``ignore_label``, so the label padding is its default 255.
    """
    im = cv2.imread(image_path)[:, :, [2, 1, 0]]
    scaled_shape = (int(im.shape[0] * scale), int(im.shape[1] * scale))
    crop_coor = [int(int(c) * scale) for c in centre]
    x0 = crop_coor[0] + jitter[0] - crop[0] // 2
    y0 = crop_coor[1] + jitter[1] - crop[1] // 2
    x1, y1 = x0 + crop[0], y0 + crop[1]
    scaled_img = cv2.resize(im, (scaled_shape[1], scaled_shape[0]), interpolation=cv2.INTER_LINEAR)

    pad_w_left, pad_w_right = max(0 - y0, 0), max(y1 - scaled_shape[1], 0)
    pad_h_up, pad_h_bottom = max(0 - x0, 0), max(x1 - scaled_shape[0], 0)
    x0, x1 = x0 + pad_h_up, x1 + pad_h_up
    y0, y1 = y0 + pad_w_left, y1 + pad_w_left

    img_data = np.array(scaled_img, dtype=np.float64)
    img_data = cv2.copyMakeBorder(img_data, pad_h_up, pad_h_bottom, pad_w_left, pad_w_right, cv2.BORDER_CONSTANT,
                                  value=list(MEAN))
    img_data = np.transpose(img_data[x0:x1, y0:y1, :], (2, 0, 1))
    for i in range(3):
        img_data[i] -= MEAN[i]

    img_label = np.array(Image.open(label_path))
    img_label = cv2.resize(img_label, (scaled_shape[1], scaled_shape[0]), interpolation=cv2.INTER_NEAREST)
    img_label = np.array(img_label, dtype=np.float64)
    img_label = cv2.copyMakeBorder(img_label, pad_h_up, pad_h_bottom, pad_w_left, pad_w_right, cv2.BORDER_CONSTANT,
                                   value=255)
    img_label = img_label[x0:x1, y0:y1]
    if cell_width > 1:
        img_label = cv2.resize(img_label, (crop[1] // cell_width, crop[0] // cell_width),
                               interpolation=cv2.INTER_NEAREST)
    if mirror:
        img_data = img_data[:, :, ::-1]
        img_label = img_label[:, ::-1]
    img_label = city_train_ids(img_label)

    feat_height, feat_width = math.ceil(crop[0] / ds_rate), math.ceil(crop[1] / ds_rate)
    ratio = ds_rate // cell_width
    img_label = img_label.reshape((feat_height, ratio, feat_width, ratio)).transpose((1, 3, 0, 2)).reshape(-1)
    return img_data.astype(np.float32), img_label.astype(np.float32)


def noise_pair(folder: str, shape: Tuple[int, int], seed: int) -> Tuple[str, str]:
    """A random RGB image and a random Cityscapes labelId map (ids 0..33) of ``shape``, as PNGs."""
    rng = np.random.default_rng(seed)
    image_path = os.path.join(folder, f"image_{shape[0]}x{shape[1]}.png")
    label_path = os.path.join(folder, f"label_{shape[0]}x{shape[1]}.png")
    assert cv2.imwrite(image_path, rng.integers(0, 256, shape + (3,), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 34, shape, dtype=np.uint8), mode="L").save(label_path)
    return image_path, label_path


@pytest.fixture(scope="module")
def odd_pairs(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("released"))
    return [noise_pair(folder, shape, seed) for seed, shape in enumerate([(77, 131), (61, 45)])]


def spec_of(crop: Tuple[int, int], cell_width: int, **options) -> SamplingSpec:
    return SamplingSpec(crop_shape=crop, scale_factors=SCALES, random_bound=RANDOM_BOUND, rgb_mean=MEAN,
                        cell_width=cell_width, ds_rate=8, **options)


def centres_of(shape: Tuple[int, int]) -> Sequence[Tuple[int, int]]:
    """Middle, the four corners and a point near the right border."""
    height, width = shape
    return [(height // 2, width // 2), (0, 0), (height - 1, width - 1), (0, width - 1), (height - 1, 0),
            (5, width - 7)]


def ours(image_path: str, label_path: str, centre, spec: SamplingSpec, draws: Draws):
    entry = ListEntry(0, image_path, label_path, centre, "test.lst line 1")
    image, label = read_pair(entry, spec)
    data = np.empty(spec.image_shape, np.float32)
    flat = np.empty(spec.label_shape, np.float32)
    render_sample(image, label, crop_window(image.shape[:2], centre, spec, draws), spec, data, flat)
    return data, flat


@pytest.mark.parametrize("scale", SCALES + (1.1,))
@pytest.mark.parametrize("cell_width", [1, 2])
@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("crop", [(48, 48), (40, 56)])
def test_sample_equals_the_released_get_single_image_duc(odd_pairs, scale, cell_width, mirror, crop):
    spec = spec_of(crop, cell_width)
    padded = 0
    for image_path, label_path in odd_pairs:
        shape = cv2.imread(image_path).shape[:2]
        bounds = [int(b * scale) for b in RANDOM_BOUND]
        for centre in centres_of(shape):
            for jitter in itertools.product((-bounds[0], 0, bounds[0]), (-bounds[1], -bounds[1] // 3, 0, bounds[1])):
                draws = Draws(scale, jitter[0], jitter[1], mirror)
                data, flat = ours(image_path, label_path, centre, spec, draws)
                want_data, want_flat = released_sample(image_path, label_path, centre, crop, scale, jitter,
                                                       mirror, cell_width)
                np.testing.assert_array_equal(flat, want_flat, err_msg=f"label {centre} {jitter}")
                np.testing.assert_array_equal(data, want_data, err_msg=f"image {centre} {jitter}")
                padded += bool((want_flat == 255).any())
    assert padded > 20  # the grid reaches beyond every border


def test_drawn_samples_equal_the_released_function_with_the_same_draws(odd_pairs):
    image_path, label_path = odd_pairs[0]
    spec = spec_of((48, 48), 2)
    entry = ListEntry(0, image_path, label_path, (70, 9), "test.lst line 1")
    seen = set()
    for seed in range(40):
        draws = draw_augmentation(spec, np.random.default_rng(seed))
        data, flat = make_sample(entry, np.random.default_rng(seed), spec)
        want = released_sample(image_path, label_path, entry.centre, (48, 48), draws.scale,
                               (draws.jitter_row, draws.jitter_col), draws.flip, 2)
        np.testing.assert_array_equal(flat, want[1])
        np.testing.assert_array_equal(data, want[0])
        seen.add((draws.scale, draws.flip))
    assert len(seen) >= 8


def test_draws_are_in_the_released_ranges_and_skipped_when_off():
    spec = spec_of((48, 48), 2)
    rng = np.random.default_rng(7)
    extremes = {s: [set(), set()] for s in SCALES}
    flips = []
    for _ in range(4000):
        draws = draw_augmentation(spec, rng)
        bounds = [int(b * draws.scale) for b in RANDOM_BOUND]
        for axis, value in enumerate((draws.jitter_row, draws.jitter_col)):
            assert -bounds[axis] <= value <= bounds[axis]
            extremes[draws.scale][axis].add(abs(value) == bounds[axis])
        flips.append(draws.flip)
    assert all(True in axes[0] and True in axes[1] for axes in extremes.values())  # randint's bound is inclusive
    assert 0.45 < np.mean(flips) < 0.55
    still = SamplingSpec(crop_shape=(48, 48), scale_factors=(1.25,), use_random_crop=False, use_mirror=False)
    assert draw_augmentation(still, np.random.default_rng(0)) == Draws(1.25, 0, 0, False)


def test_a_flipped_label_cell_takes_the_pixel_left_in_its_cell():
    # Hand-made: label column j holds j; crop 8 x 16, cell width 2: the cell grid before the flip holds the
    # even columns 0, 2, ..., 14; flipped, 14, 12, ..., 0 (not the odd columns 15, 13, ..., 1).
    spec = SamplingSpec(crop_shape=(8, 16), scale_factors=(1.0,), use_random_crop=False, convert_label="none",
                        num_classes=20, cell_width=2, label_layout="map")
    image = np.zeros((8, 16, 3), np.uint8)
    label = np.tile(np.arange(16, dtype=np.uint8), (8, 1))
    data = np.empty(spec.image_shape, np.float32)
    out = np.empty(spec.label_shape, np.float32)
    render_sample(image, label, crop_window((8, 16), None, spec, Draws(1.0, flip=True)), spec, data, out)
    np.testing.assert_array_equal(out, np.tile(np.arange(14, -1, -2), (4, 1)))


def test_map_label_is_the_released_duc_label_unflattened(odd_pairs):
    image_path, label_path = odd_pairs[0]
    duc, flat_map = spec_of((48, 48), 2), spec_of((48, 48), 2, label_layout="map")
    for seed in range(6):
        _, flat = make_sample(ListEntry(0, image_path, label_path, (40, 60)), seed, duc)
        _, label_map = make_sample(ListEntry(0, image_path, label_path, (40, 60)), seed, flat_map)
        # released layout (h, r, w, r) -> (r, r, h, w) -> flat, undone: r = 4, h = w = 6
        np.testing.assert_array_equal(label_map, flat.reshape(4, 4, 6, 6).transpose(2, 0, 3, 1).reshape(24, 24))


def test_pad_and_void_take_the_configured_ignore_label(odd_pairs):
    # The released loader padded (and mapped void ids) to 255 whatever [network] ignore_label: kept fixed.
    image_path, label_path = odd_pairs[1]
    spec = spec_of((48, 48), 2, ignore_label=100)
    draws = Draws(0.75, 22, -30, True)
    _, flat = ours(image_path, label_path, (60, 44), spec, draws)
    _, released = released_sample(image_path, label_path, (60, 44), (48, 48), 0.75, (22, -30), True, 2)
    assert (released == 255).sum() > 100
    np.testing.assert_array_equal(flat, np.where(released == 255, 100, released))


# ------------------------------------------------------------------ bad geometry (centres, small images)
@pytest.mark.parametrize("centre", [(61, 10), (10, 45), (-1, 3), (3, -0.5)])
def test_centre_outside_the_image_is_an_error_naming_the_line(odd_pairs, centre):
    image_path, label_path = odd_pairs[1]  # 61 x 45
    entry = ListEntry(0, image_path, label_path, centre, "train.lst line 4")
    with pytest.raises(DataError, match=r"^train\.lst line 4: crop centre .* outside the 61x45 image") as caught:
        make_sample(entry, 0, spec_of((48, 48), 2))
    assert "\n" not in str(caught.value)


def test_centre_on_the_last_pixel_is_accepted(odd_pairs):
    image_path, label_path = odd_pairs[1]
    make_sample(ListEntry(0, image_path, label_path, (60, 44), "train.lst line 1"), 0, spec_of((48, 48), 2))


def test_dataset_rejects_a_centre_outside_at_once(odd_pairs, write_list_file):
    image_path, label_path = odd_pairs[1]
    path = write_list_file([f"0\t{image_path}\t{label_path}\t30\t20",
                            f"1\t{image_path}\t{label_path}\t512\t1024"], name="half.lst")
    with pytest.raises(DataError, match=rf"^{path} line 2: crop centre \(row 512, col 1024\) is outside"):
        SegmentationDataset(path, spec_of((48, 48), 2))


def test_crop_larger_than_the_image_warns_once_naming_the_line(odd_pairs, write_list_file, caplog):
    big, small = odd_pairs  # 77 x 131 and 61 x 45
    lines = [f"{i}\t{image}\t{label}\t30\t20" for i, (image, label) in enumerate([big, small, small, big, small])]
    path = write_list_file(lines, name="mixed.lst")
    spec = SamplingSpec(crop_shape=(64, 64), scale_factors=(1.0,), use_random_crop=False, use_mirror=False,
                        rgb_mean=MEAN, cell_width=2, label_layout="map")
    with caplog.at_level(logging.WARNING, logger="tusimple_duc.data.geometry_checks"):
        dataset = SegmentationDataset(read_list(path), spec)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"{path} line 2: crop 64x64 is larger than the 61x45 image {small[0]}")
    assert "(and 2 more list lines)" in warnings[0]
    image, label = dataset[1]  # still used, padded as the original did: crop rows -2..61, cols -12..51
    assert np.all(image[:, :, :12] == 0) and np.all(image[:, :, 57:] == 0) and np.all(image[:, :2] == 0)
    assert np.all(label[:, :6] == 255) and np.all(label[:, 29:] == 255) and np.all(label[:1] == 255)
    assert np.any(label[1:31, 6:29] < 255)


def test_no_warning_when_every_image_holds_the_crop(odd_pairs, write_list_file, caplog):
    image, label = odd_pairs[0]
    path = write_list_file([f"0\t{image}\t{label}\t30\t20"], name="ok.lst")
    with caplog.at_level(logging.WARNING, logger="tusimple_duc.data.geometry_checks"):
        SegmentationDataset(path, spec_of((48, 48), 2))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_drawn_window_matches_make_sample_into(odd_pairs):
    image_path, label_path = odd_pairs[0]
    spec = spec_of((48, 48), 1)
    entry = ListEntry(0, image_path, label_path, (76, 130))
    data, flat = np.empty(spec.image_shape, np.float32), np.empty(spec.label_shape, np.float32)
    window = make_sample_into(entry, np.random.default_rng(3), spec, data, flat)
    assert window == crop_window((77, 131), (76, 130), spec, draw_augmentation(spec, np.random.default_rng(3)))


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    """A 16-bit grey, an RGBA and a grey image, and a palette label holding ids outside the table."""
    folder = tmp_path_factory.mktemp("odd_files")
    rng = np.random.default_rng(7)
    shape = (61, 45)
    images = {"grey16.png": rng.integers(0, 65536, shape, dtype=np.uint16),
              "rgba.png": rng.integers(0, 256, shape + (4,), dtype=np.uint8),
              "grey.png": rng.integers(0, 256, shape, dtype=np.uint8)}
    for name, array in images.items():
        assert cv2.imwrite(str(folder / name), array)
    ids = rng.integers(0, 40, shape).astype(np.uint8)  # 34..39 are outside the labelId table
    ids[0, :4] = 200
    label = Image.fromarray(ids, mode="P")
    label.putpalette(rng.integers(0, 256, 768).tolist())
    label.save(str(folder / "palette_ids.png"))
    return [(str(folder / name), str(folder / "palette_ids.png")) for name in images]


@pytest.mark.parametrize("scale, jitter, mirror", [(1.0, (0, 0), False), (0.75, (3, -4), True), (1.25, (-9, 5), False)])
def test_converted_images_and_palette_labels_give_the_released_sample(odd_files, scale, jitter, mirror):
    """Images decoded as the original's cv.imread, labels as its PIL (palette indices, ids outside
    the table -> 255 with convert_label), for 16-bit, RGBA and grey images."""
    spec = spec_of((40, 56), 2)
    for image_path, label_path in odd_files:
        for centre in ((30, 22), (0, 44)):
            data, flat = ours(image_path, label_path, centre, spec, Draws(scale, jitter[0], jitter[1], mirror))
            want_data, want_flat = released_sample(image_path, label_path, centre, (40, 56), scale, jitter, mirror, 2)
            np.testing.assert_array_equal(flat, want_flat, err_msg=f"{image_path} label {centre}")
            np.testing.assert_array_equal(data, want_data, err_msg=f"{image_path} image {centre}")
