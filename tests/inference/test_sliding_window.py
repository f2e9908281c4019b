"""Sliding-window inference: equal-size windows, exact averaging of overlaps, batching."""
import tusimple_duc  # noqa: F401  (before mxnet: sets the thread count)
import cv2
import mxnet as mx
import numpy as np
import pytest

from inference_toys import PositionalNet, ProbeNet, make_tiny_conv_net, positional_probabilities, random_image
from tusimple_duc.inference import InferenceSpec, Predictor


def test_window_equal_to_the_image_is_the_whole_image_exactly():
    net = make_tiny_conv_net([mx.cpu()])
    image = random_image(48, 64, seed=1)
    whole = Predictor(net, InferenceSpec()).predict(image)
    sliding = Predictor(net, InferenceSpec(mode="sliding", window=(48, 64), stride=(16, 16))).predict(image)
    np.testing.assert_array_equal(sliding.probabilities, whole.probabilities)
    np.testing.assert_array_equal(sliding.labels, whole.labels)


def brute_force_overlap_average(shape, window, origins, stride):
    """Mean over the windows covering each prediction pixel of the positional net's probabilities."""
    rows, cols = shape[0] // stride, shape[1] // stride
    total = np.zeros((3, rows, cols))
    count = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            for r, c in origins:
                inside_rows = r // stride <= i < (r + window[0]) // stride
                inside_cols = c // stride <= j < (c + window[1]) // stride
                if inside_rows and inside_cols:
                    total[:, i, j] += positional_probabilities(1, 1, r // stride - i, c // stride - j)[:, 0, 0]
                    count[i, j] += 1
    assert count.min() >= 1
    return total / count


@pytest.mark.parametrize("prediction_stride", [1, 2])
def test_overlapping_windows_are_averaged(prediction_stride):
    """40x56 image, 24x32 windows, stride 16: rows start at 0, 16; columns at 0, 16, 24."""
    origins = [(0, 0), (0, 16), (0, 24), (16, 0), (16, 16), (16, 24)]
    expected = brute_force_overlap_average((40, 56), (24, 32), origins, prediction_stride)
    if prediction_stride != 1:
        hwc = np.ascontiguousarray(expected.transpose(1, 2, 0).astype(np.float32))
        expected = cv2.resize(hwc, (56, 40), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    spec = InferenceSpec(mode="sliding", window=(24, 32), stride=(16, 16), batch_windows=4)
    prediction = Predictor(PositionalNet(prediction_stride), spec).predict(random_image(40, 56))
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-6)
    # The test discriminates: one pass over the whole image gives a different map.
    whole = Predictor(PositionalNet(prediction_stride)).predict(random_image(40, 56)).probabilities
    assert np.abs(whole - expected).max() > 1e-2


def test_edge_windows_are_shifted_not_shrunk():
    probe = ProbeNet(PositionalNet(2))
    image = random_image(43, 61)  # padded to 48 x 64
    spec = InferenceSpec(mode="sliding", window=(32, 32), stride=(24, 24), batch_windows=1)
    Predictor(probe, spec).predict(image)
    shapes = {batch.shape for batch in probe.inputs}
    assert shapes == {(1, 3, 32, 32)}
    assert len(probe.inputs) == 2 * 3  # rows start at 0, 16; columns at 0, 24, 32
    mean = np.array(spec.rgb_mean)[:, None, None]
    last = probe.inputs[-1][0]  # origin (16, 32): image rows 16..42, columns 32..60, then padding
    np.testing.assert_allclose(last[:, :27, :29], image[16:, 32:].transpose(2, 0, 1) - mean, atol=1e-4)
    assert not last[:, 27:, :].any() and not last[:, :, 29:].any()


def test_image_smaller_than_the_window_is_padded_with_the_mean_colour():
    probe = ProbeNet(PositionalNet(2))
    image = random_image(20, 30)
    spec = InferenceSpec(mode="sliding", window=(32, 48), stride=(16, 16))
    prediction = Predictor(probe, spec).predict(image)
    (batch,) = probe.inputs
    assert batch.shape == (1, 3, 32, 48)
    assert not batch[0, :, 20:, :].any() and not batch[0, :, :, 30:].any()
    hwc = np.ascontiguousarray(positional_probabilities(10, 15).transpose(1, 2, 0).astype(np.float32))
    expected = cv2.resize(hwc, (30, 20), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-6)


def test_batch_size_does_not_change_the_result():
    net = make_tiny_conv_net([mx.cpu()])
    image = random_image(56, 72, seed=2)
    results = []
    for batch_windows in (1, 4):
        probe = ProbeNet(net)
        spec = InferenceSpec(mode="sliding", window=(32, 32), stride=(16, 16), batch_windows=batch_windows)
        results.append(Predictor(probe, spec).predict(image).probabilities)
        assert [len(batch) for batch in probe.inputs] == ([1] * 12 if batch_windows == 1 else [4, 4, 4])
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)
