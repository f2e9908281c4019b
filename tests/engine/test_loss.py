"""The masked cross-entropy against a per-pixel brute force, and the device split."""
import math

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from tusimple_duc.engine.batches import device_slices
from tusimple_duc.engine.loss import (device_objective, log_frequency_class_weights, masked_cross_entropy_sum,
                                      median_frequency_class_weights)

IGNORE = 255


def brute_force(scores, label, class_weights=None):
    """Sum of -log softmax (times the label's weight) over non-ignored pixels and their count, pixel by pixel."""
    total, valid = 0.0, 0
    n, classes, height, width = scores.shape
    for i in range(n):
        for y in range(height):
            for x in range(width):
                target = int(label[i, y, x])
                if target == IGNORE:
                    continue
                logits = [float(scores[i, c, y, x]) for c in range(classes)]
                top = max(logits)
                log_norm = top + math.log(sum(math.exp(v - top) for v in logits))
                weight = 1.0 if class_weights is None else float(class_weights[target])
                total += weight * (log_norm - logits[target])
                valid += 1
    return total, valid


def expected_gradient(scores, label, class_weights=None):
    """d/d scores of the summed (weighted) cross-entropy, pixel by pixel: (softmax - onehot) times the
    label's weight, 0 on ignored pixels."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected = exp / exp.sum(axis=1, keepdims=True)
    for i, y, x in np.ndindex(*label.shape):
        target = int(label[i, y, x])
        if target == IGNORE:
            expected[i, :, y, x] = 0
            continue
        expected[i, target, y, x] -= 1
        expected[i, :, y, x] *= 1.0 if class_weights is None else class_weights[target]
    return expected


def random_case(seed, shape=(3, 5, 4, 6)):
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 3, size=shape).astype(np.float32)
    label = rng.integers(0, shape[1], size=(shape[0],) + shape[2:]).astype(np.float32)
    label[rng.random(label.shape) < 0.3] = IGNORE
    return scores, label


def test_sum_and_count_match_brute_force():
    scores, label = random_case(0)
    total, valid = masked_cross_entropy_sum(mx.nd.array(scores), mx.nd.array(label), IGNORE)
    expected_total, expected_valid = brute_force(scores, label)
    assert valid.asscalar() == expected_valid
    assert total.asscalar() == pytest.approx(expected_total, rel=1e-5)


def test_gradient_is_softmax_minus_onehot_on_valid_pixels():
    scores, label = random_case(1)
    x = mx.nd.array(scores)
    x.attach_grad()
    with autograd.record():
        total, _ = masked_cross_entropy_sum(x, mx.nd.array(label), IGNORE)
    total.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), expected_gradient(scores, label), atol=1e-6)


def test_all_ignored_gives_zero():
    scores, label = random_case(2)
    label[:] = IGNORE
    total, valid = masked_cross_entropy_sum(mx.nd.array(scores), mx.nd.array(label), IGNORE)
    assert total.asscalar() == 0 and valid.asscalar() == 0


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="do not match"):
        masked_cross_entropy_sum(mx.nd.zeros((1, 2, 4, 4)), mx.nd.zeros((1, 4, 5)), IGNORE)


def test_device_slices_cover_the_batch_in_order():
    data = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    label = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    slices = device_slices(data, label, 2, IGNORE)
    assert [s[0].shape[0] for s in slices] == [2, 3]
    np.testing.assert_array_equal(np.concatenate([s[0] for s in slices]), data)
    np.testing.assert_array_equal(np.concatenate([s[1] for s in slices]), label)


def test_device_slices_fill_missing_devices_with_ignored_copies():
    data = np.ones((1, 3, 2, 2), dtype=np.float32)
    label = np.zeros((1, 2, 2), dtype=np.float32)
    slices = device_slices(data, label, 3, IGNORE)
    assert len(slices) == 3
    np.testing.assert_array_equal(slices[0][1], label)
    for filler_data, filler_label in slices[1:]:
        np.testing.assert_array_equal(filler_data, data)
        assert (filler_label == IGNORE).all()


def test_device_objective_divides_by_the_valid_count_clipped_to_one():
    scores, label = random_case(3)
    x = mx.nd.array(scores)
    x.attach_grad()
    with autograd.record():
        total, valid = masked_cross_entropy_sum(x, mx.nd.array(label), IGNORE)
        objective = device_objective(total, valid)
    objective.backward()
    expected_total, expected_valid = brute_force(scores, label)
    assert objective.asscalar() == pytest.approx(expected_total / expected_valid, rel=1e-5)
    label[:] = IGNORE  # SoftmaxOutput 'valid' divides by max(count, 1): zero loss, zero gradient
    with autograd.record():
        objective = device_objective(*masked_cross_entropy_sum(x, mx.nd.array(label), IGNORE))
    objective.backward()
    assert objective.asscalar() == 0 and not x.grad.asnumpy().any()


def test_class_weights_scale_each_pixel_by_its_label_weight():
    scores, label = random_case(4)
    weights = np.array([0.5, 2.0, 1.0, 3.0, 0.25], dtype=np.float32)
    x = mx.nd.array(scores)
    x.attach_grad()
    with autograd.record():
        total, valid = masked_cross_entropy_sum(x, mx.nd.array(label), IGNORE, mx.nd.array(weights))
    total.backward()
    expected_total, expected_valid = brute_force(scores, label, weights)
    assert valid.asscalar() == expected_valid  # still the pixel count, not the summed weights
    assert total.asscalar() == pytest.approx(expected_total, rel=1e-5)
    np.testing.assert_allclose(x.grad.asnumpy(), expected_gradient(scores, label, weights), atol=1e-6)


def test_class_weights_of_the_wrong_length_are_rejected():
    with pytest.raises(ValueError, match="one weight per class"):
        masked_cross_entropy_sum(mx.nd.zeros((1, 3, 2, 2)), mx.nd.zeros((1, 2, 2)), IGNORE, mx.nd.ones((4,)))


def test_log_frequency_weights_by_hand():
    # 6 labelled pixels: class 0 x3, class 1 x2, class 2 x1, class 3 absent; two ignored
    labels = np.array([[0, 0, 0, 1], [1, 2, IGNORE, IGNORE]])
    p = np.array([3, 2, 1, 0]) / 6
    raw = np.array([1 / math.log(1.02 + v) for v in p])
    expected = raw / (p * raw).sum()
    weights = log_frequency_class_weights(labels, 4, IGNORE)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert float((p * weights).sum()) == pytest.approx(1.0, rel=1e-6)
    assert weights[3] == pytest.approx(expected.max(), rel=1e-6)  # absent: the largest, 1 / ln(1.02)
    assert weights.dtype == np.float32


def test_median_frequency_weights_by_hand():
    # 10 labelled pixels: class 0 x6, class 1 x3, class 2 x1, class 3 absent; median of (0.6, 0.3, 0.1) = 0.3
    labels = np.array([[0] * 6 + [1] * 3 + [2] + [IGNORE] * 2])
    raw = np.array([0.3 / 0.6, 0.3 / 0.3, 0.3 / 0.1, 0.3 / 0.1])  # absent: the largest
    p = np.array([0.6, 0.3, 0.1, 0.0])
    expected = raw / (p * raw).sum()  # (0.3 + 0.3 + 0.3) = 0.9 -> mean 1 per pixel
    weights = median_frequency_class_weights(labels, 4, IGNORE)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    np.testing.assert_allclose(weights[:3], [0.5 / 0.9, 1 / 0.9, 3 / 0.9], rtol=1e-6)
    with pytest.raises(ValueError, match="no labelled pixel"):
        median_frequency_class_weights(np.full((2, 2), IGNORE), 4, IGNORE)


@pytest.mark.parametrize("labels, offset, message", [
    (np.array([[0, 5]]), 1.02, r"\[0, 4\)"),
    (np.array([[IGNORE]]), 1.02, "no labelled pixel"),
    (np.array([[0, 1]]), 1.0, "must be > 1"),
])
def test_log_frequency_weights_reject_bad_input(labels, offset, message):
    with pytest.raises(ValueError, match=message):
        log_frequency_class_weights(labels, 4, IGNORE, offset)
