"""tusimple_duc.core: CityLoader, get_single_image_duc, PolyScheduler and the metrics, against
restatements of the original's code and hand computations."""
import os
import random

import cv2
import mxnet as mx
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as official_labels

from tusimple_duc.core import utils
from tusimple_duc.core.cityscapes_loader import CityLoader
from tusimple_duc.core.lr_scheduler import PolyScheduler
from tusimple_duc.core.metrics import AccWithIgnoreMetric, CompositeEvalMetric, IoUMetric, SoftmaxLoss
from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter
from tusimple_duc.errors import ConfigError

MEAN = (122.675, 116.669, 104.008)


def _input_args(root, crop=32, **extra):
    args = {
        "data_path": root, "label_path": root, "rgb_mean": MEAN, "batch_size": 2, "scale_factors": [1],
        "data_name": ["data"], "label_name": ["seg_loss_label"], "data_shape": [(2, 3, crop, crop)],
        "label_shape": [(2, crop * crop // 4)], "use_random_crop": False, "use_mirror": False, "ds_rate": 8,
        "convert_label": True, "multi_thread": False, "cell_width": 2, "random_bound": (8, 8),
    }
    args.update(extra)
    return args


def _original_centre_crop(root, item, crop, cell_width, ds_rate=8, scale=1.0, jitter=(0, 0), flip=False):
    """The original get_single_image_duc (square crop) for the given draws, restated."""
    image = cv2.imread(os.path.join(root, item[0]))[:, :, ::-1]
    label_ids = cv2.imread(os.path.join(root, item[1]), cv2.IMREAD_UNCHANGED)
    size = (int(image.shape[1] * scale), int(image.shape[0] * scale))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR).astype(np.float64)
    label_ids = cv2.resize(label_ids, size, interpolation=cv2.INTER_NEAREST).astype(np.float64)
    x0 = int(int(item[2][0]) * scale) + jitter[0] - crop // 2
    y0 = int(int(item[2][1]) * scale) + jitter[1] - crop // 2
    x1, y1 = x0 + crop, y0 + crop
    pads = (max(-x0, 0), max(x1 - image.shape[0], 0), max(-y0, 0), max(y1 - image.shape[1], 0))
    image = cv2.copyMakeBorder(image, *pads, cv2.BORDER_CONSTANT, value=list(MEAN))
    label_ids = cv2.copyMakeBorder(label_ids, *pads, cv2.BORDER_CONSTANT, value=255)
    x0, x1, y0, y1 = x0 + pads[0], x1 + pads[0], y0 + pads[2], y1 + pads[2]
    data = image[x0:x1, y0:y1].transpose(2, 0, 1) - np.array(MEAN)[:, None, None]
    label = label_ids[x0:x1, y0:y1]
    if cell_width > 1:
        label = cv2.resize(label, (crop // cell_width, crop // cell_width), interpolation=cv2.INTER_NEAREST)
    if flip:
        data, label = data[:, :, ::-1], label[:, ::-1]
    converted = np.full(label.shape, 255.0)
    for row in official_labels:
        converted[label == row.id] = row.trainId
    feat, ratio = crop // ds_rate, ds_rate // cell_width
    flat = converted.reshape(feat, ratio, feat, ratio).transpose(1, 3, 0, 2).reshape(-1)
    return data, flat


@pytest.mark.parametrize("cell_width", [1, 2])
def test_single_image_is_the_original_centre_crop(cityscapes_root, cell_width):
    list_path = os.path.join(cityscapes_root, "lists", "train_7fold.lst")
    items = CityLoader.read_data(list_path)
    assert len(items) == 14 and len(items[0]) == 3
    for item in (items[0], items[6]):           # 48x48 crops padded on the left / on the right
        expected_data, expected_label = _original_centre_crop(cityscapes_root, item, 48, cell_width)
        args = _input_args(cityscapes_root, crop=48, cell_width=cell_width)
        [data], [label] = utils.get_single_image_duc(item, args)
        np.testing.assert_allclose(data, expected_data, atol=1e-4)
        np.testing.assert_array_equal(label, expected_label)


def test_random_augmentation_follows_pythons_random_seed(cityscapes_root):
    item = CityLoader.read_data(os.path.join(cityscapes_root, "lists", "train_7fold.lst"))[3]
    args = _input_args(cityscapes_root, use_random_crop=True, use_mirror=True, scale_factors=[0.5, 1, 1.5])
    random.seed(4)
    first = utils.get_single_image_duc(item, args)
    random.seed(4)
    again = utils.get_single_image_duc(item, args)
    different = [utils.get_single_image_duc(item, args)[0][0] for _ in range(4)]
    np.testing.assert_array_equal(first[0][0], again[0][0])
    np.testing.assert_array_equal(first[1][0], again[1][0])
    assert any(not np.array_equal(first[0][0], other) for other in different)


def test_random_augmentation_is_the_originals_draws_after_the_same_seed(cityscapes_root):
    """After random.seed(k) the original drew random.choice(scale_factors), random.randint of the row
    and the column jitter (bound int(random_bound * scale)) and random.randint(0, 1) for the flip."""
    items = CityLoader.read_data(os.path.join(cityscapes_root, "lists", "train_7fold.lst"))
    scales, bound = [0.5, 1.0, 1.5], (8, 8)
    args = _input_args(cityscapes_root, crop=48, use_random_crop=True, use_mirror=True, scale_factors=scales,
                       random_bound=bound)
    flips = set()
    for seed, item in enumerate(items[:6]):
        random.seed(seed)
        scale = random.choice(scales)
        jitter = (random.randint(-int(bound[0] * scale), int(bound[0] * scale)),
                  random.randint(-int(bound[1] * scale), int(bound[1] * scale)))
        flip = random.randint(0, 1) == 1
        flips.add(flip)
        expected_data, expected_label = _original_centre_crop(cityscapes_root, item, 48, 2, scale=scale,
                                                              jitter=jitter, flip=flip)
        random.seed(seed)
        [data], [label] = utils.get_single_image_duc(item, args)
        np.testing.assert_allclose(data, expected_data, atol=1e-4)
        np.testing.assert_array_equal(label, expected_label)
    assert flips == {True, False}


def test_city_loader_batches_are_the_package_iterators(cityscapes_root):
    list_path = os.path.join(cityscapes_root, "lists", "train_7fold.lst")
    args = _input_args(cityscapes_root, use_random_crop=True, use_mirror=True, scale_factors=[0.75, 1, 1.25], seed=5)
    loader = CityLoader(list_path, args)
    loader.reset()
    assert [tuple(d) for d in loader.provide_data] == [("data", (2, 3, 32, 32))]
    assert [tuple(d) for d in loader.provide_label] == [("seg_loss_label", (2, 256))]
    package = SegmentationIter(SegmentationDataset(list_path, utils.sampling_spec_from_input_args(args),
                                                   cityscapes_root, cityscapes_root, 5), 2)
    batches = list(loader)
    expected = list(package)
    assert len(batches) == len(expected) == 7 and loader.get_batch_size() == 2
    for got, want in zip(batches, expected):
        np.testing.assert_array_equal(got.data[0].asnumpy(), want.data[0].asnumpy())
        np.testing.assert_array_equal(got.label[0].asnumpy(), want.label[0].asnumpy())
    loader.reset()
    second_epoch = next(iter(loader))
    assert not np.array_equal(second_epoch.data[0].asnumpy(), batches[0].data[0].asnumpy())
    loader.shutdown()


def test_city_loader_rejects_a_declared_shape_it_does_not_produce(cityscapes_root):
    args = _input_args(cityscapes_root, label_shape=[(2, 1024)])
    with pytest.raises(ConfigError, match="label_shape"):
        CityLoader(os.path.join(cityscapes_root, "lists", "train_7fold.lst"), args)


class _OriginalPoly:
    """The original PolyScheduler.__call__, restated (no logging)."""

    def __init__(self, origin_lr, max_samples, show_num=10, factor=1, stop_factor_lr=1e-8):
        self.origin_lr, self.base_lr, self.max_samples = origin_lr, origin_lr, max_samples
        self.show_num, self.factor, self.stop, self.count = show_num, factor, stop_factor_lr, 0

    def __call__(self, num_update):
        if num_update > self.count:
            self.base_lr = self.origin_lr * pow((1 - 1.0 * num_update / self.max_samples), self.factor)
            if self.base_lr < self.stop:
                self.base_lr = self.stop
            elif num_update % self.show_num == 0:
                self.count = num_update
        return self.base_lr


def test_poly_scheduler_is_the_original_formula():
    ours, original = PolyScheduler(2.5e-4, 1000, factor=0.9), _OriginalPoly(2.5e-4, 1000, factor=0.9)
    updates = [1, 2, 3, 9, 10, 10, 11, 10, 15, 20, 500, 999, 1000]
    assert [ours(n) for n in updates] == pytest.approx([original(n) for n in updates], rel=1e-12)
    assert PolyScheduler(2.5e-4, 1000, factor=0.9)(500) == pytest.approx(2.5e-4 * 0.5 ** 0.9, rel=1e-12)
    assert PolyScheduler(0.01, 10)(1000) == 1e-8


def test_poly_scheduler_rejects_what_the_original_rejected():
    with pytest.raises(ValueError):
        PolyScheduler(0.01, 0)
    with pytest.raises(ValueError):
        PolyScheduler(0.01, 10, factor=1.5)


def test_poly_scheduler_drives_mxnet_sgd():
    optimizer = mx.optimizer.SGD(learning_rate=0.1, lr_scheduler=PolyScheduler(0.1, 4, factor=1))
    weight, grad = mx.nd.zeros(1), mx.nd.ones(1)
    state = optimizer.create_state(0, weight)
    for _ in range(3):
        optimizer.update(0, weight, grad, state)
    # lr after n updates: 0.1 * (1 - n/4) for n = 1, 2, 3 (MXNet counts the update before asking)
    assert weight.asscalar() == pytest.approx(-(0.075 + 0.05 + 0.025))


def _hand_case():
    # 2 images x 4 pixels, 3 classes; probabilities (N, L, K)
    probabilities = np.array([
        [[0.7, 0.1, 0.2, 0.3], [0.2, 0.8, 0.3, 0.3], [0.1, 0.1, 0.5, 0.4]],
        [[0.1, 0.6, 0.3, 0.2], [0.1, 0.3, 0.3, 0.2], [0.8, 0.1, 0.4, 0.6]],
    ])
    # argmax: [0, 1, 2, 2], [2, 0, 2, 2]
    labels = np.array([[0, 1, 1, 255], [2, 0, 255, 1]], dtype=np.float64)
    return [mx.nd.array(labels)], [mx.nd.array(probabilities)], probabilities, labels


def test_metrics_against_a_hand_computation():
    labels, preds, probabilities, label_values = _hand_case()
    accuracy, iou, loss = AccWithIgnoreMetric(255, name="acc_ignore"), IoUMetric(255, 3), SoftmaxLoss(255, 3)
    composite = CompositeEvalMetric(metrics=[accuracy, iou, loss])
    composite.update(labels, preds)
    # 6 labelled pixels; correct: (0,0) (0,1) (1,0) (1,1) -> 4/6
    # class 0: tp 2, pred-or-gt 2 -> 1; class 1: tp 1, gt {01, 02, 13} pred {01} -> 1/3;
    # class 2: tp 1, gt {10}, pred {02, 10, 13} (12 ignored) -> 1/3
    expected_iou = (1 / (2 + 1e-6) * 2 + 1 / (3 + 1e-6) + 1 / (3 + 1e-6)) / 3
    picked = [0.7, 0.8, 0.3, 0.8, 0.6, 0.2]
    expected_loss = -np.log(np.array(picked) + 1e-6).sum() / 6
    names, values = composite.get()
    assert names == ["acc_ignore", "IoU", "OverallSoftmaxLoss"]
    assert values == pytest.approx([4 / 6, expected_iou, expected_loss], rel=1e-6)
    composite.update(labels, preds)     # running: the same again gives the same ratios
    assert composite.get()[1] == pytest.approx([4 / 6, expected_iou, expected_loss], rel=1e-6)
    composite.reset()
    assert np.isnan(iou.get()[1]) and np.isnan(accuracy.get()[1])


def test_metric_length_mismatch_is_an_error():
    labels, preds, _, _ = _hand_case()
    with pytest.raises(ValueError, match="does not match"):
        AccWithIgnoreMetric(255).update(labels * 2, preds)


def test_label_helpers_match_the_official_table():
    ids = np.arange(40, dtype=np.uint8).reshape(5, 8)
    expected = np.full(ids.shape, 255.0)
    for row in official_labels:
        if 0 <= row.id < 40:
            expected[ids == row.id] = row.trainId if row.trainId >= 0 else 255
    np.testing.assert_array_equal(utils.replace_city_labels(ids), expected)
    palette = utils.get_palette()
    assert len(palette) == 768 and palette[:3] == [128, 64, 128] and palette[255 * 3:] == [0, 0, 0]


def test_do_checkpoint_writes_a_module_loadable_checkpoint(tmp_path):
    data = mx.sym.var("data")
    symbol = mx.sym.FullyConnected(data, num_hidden=2, name="fc")
    args = {"fc_weight": mx.nd.ones((2, 3)), "fc_bias": mx.nd.array([1, 2])}
    callback = utils.do_checkpoint(str(tmp_path / "net"), 2)
    callback(0, symbol, args, {})
    assert not (tmp_path / "net-0001.params").exists()
    callback(1, symbol, args, {})
    loaded_symbol, arg_params, aux_params = mx.model.load_checkpoint(str(tmp_path / "net"), 2)
    assert loaded_symbol.tojson() == symbol.tojson() and aux_params == {}
    np.testing.assert_array_equal(arg_params["fc_bias"].asnumpy(), [1, 2])
