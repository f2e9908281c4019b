"""The default spec is the released protocol: whole image, mean-colour padding, crop, resize, argmax."""
from pathlib import Path

import tusimple_duc  # noqa: F401  (before mxnet: sets the thread count)
import cv2
import mxnet as mx
import numpy as np
import pytest

from inference_toys import (PositionalNet, ProbeNet, colour_probabilities, make_colour_net, make_tiny_conv_net,
                            positional_probabilities, random_image)
from tusimple_duc.config import load_test_config
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.inference import (PAPER_MULTI_SCALES, RELEASED_MULTI_SCALE_SPEC, RELEASED_SPEC, CRFParams,
                                    InferenceSpec, Predictor, spec_from_config)

RELEASED_TEST_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "test" / "test_full_image.cfg")


def cv2_resize(probabilities: np.ndarray, out_shape) -> np.ndarray:
    """(L, h, w) -> (L, H, W) with cv2's bilinear resize, all channels at once."""
    hwc = np.ascontiguousarray(probabilities.transpose(1, 2, 0).astype(np.float32))
    resized = cv2.resize(hwc, (out_shape[1], out_shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized.reshape(out_shape[0], out_shape[1], -1).transpose(2, 0, 1)


def test_released_spec_values():
    assert RELEASED_SPEC.mode == "whole" and RELEASED_SPEC.scales == (1.0,)
    assert not RELEASED_SPEC.flip and RELEASED_SPEC.crf is None
    assert RELEASED_SPEC.rgb_mean == (122.675, 116.669, 104.008)
    assert RELEASED_MULTI_SCALE_SPEC.scales == (0.5, 0.75, 1.0, 1.25, 1.5, 2.0) == PAPER_MULTI_SCALES


def test_padding_is_the_mean_colour_bottom_right():
    image = random_image(42, 50)
    probe = ProbeNet(PositionalNet(2))
    Predictor(probe, RELEASED_SPEC).predict(image)
    (batch,) = probe.inputs
    assert batch.shape == (1, 3, 48, 56)
    mean = np.array(RELEASED_SPEC.rgb_mean, dtype=np.float64)[:, None, None]
    np.testing.assert_allclose(batch[0, :, :42, :50], image.transpose(2, 0, 1) - mean, atol=1e-4)
    assert not batch[0, :, 42:, :].any() and not batch[0, :, :, 50:].any()


def test_padding_is_cropped_at_prediction_resolution():
    """42x50 -> padded 48x56 -> prediction 24x28 -> crop 21x25 -> bilinear to 42x50."""
    prediction = Predictor(PositionalNet(2), RELEASED_SPEC).predict(random_image(42, 50))
    expected = cv2_resize(positional_probabilities(21, 25), (42, 50))
    assert prediction.probabilities.shape == (3, 42, 50) and prediction.probabilities.dtype == np.float32
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    # Resizing the uncropped 24x28 map instead would be visibly different:
    assert np.abs(cv2_resize(positional_probabilities(24, 28), (42, 50)) - expected).max() > 1e-3


def test_odd_size_crop_keeps_the_exact_geometry():
    """37 rows at stride 2 cover 18.5 prediction rows: result row y samples prediction row y/2 - 0.25."""
    prediction = Predictor(PositionalNet(2), RELEASED_SPEC).predict(random_image(37, 50))
    full = positional_probabilities(20, 25)
    positions = np.clip((np.arange(37) + 0.5) / 2 - 0.5, 0, 18)
    for label in range(3):
        columns = cv2_resize(full[label:label + 1], (20, 50))[0]     # columns: integral extent 25 -> 50
        expected = np.stack([np.interp(positions, np.arange(20), columns[:, x]) for x in range(50)], axis=1)
        np.testing.assert_allclose(prediction.probabilities[label], expected, atol=1e-5)


def test_result_shape_resizes_to_the_requested_size():
    spec = InferenceSpec(result_shape=(84, 100))
    prediction = Predictor(PositionalNet(2), spec).predict(random_image(42, 50))
    np.testing.assert_allclose(prediction.probabilities, cv2_resize(positional_probabilities(21, 25), (84, 100)),
                               atol=1e-5)


def test_labels_and_confidence():
    net = make_tiny_conv_net([mx.cpu()])
    prediction = Predictor(net).predict(random_image(40, 48))
    probabilities = prediction.probabilities.astype(np.float64)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert prediction.labels.dtype == np.uint8 and prediction.labels.shape == (40, 48)
    winners = np.take_along_axis(probabilities, prediction.labels[None].astype(int), axis=0)[0]
    np.testing.assert_array_equal(winners, probabilities.max(axis=0))
    assert prediction.confidence == pytest.approx(np.mean(np.max(probabilities, axis=0)), abs=1e-6)


@pytest.mark.parametrize("image", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8),
                                   np.zeros((8, 8, 4), np.uint8), np.zeros((0, 8, 3), np.uint8)])
def test_bad_images_raise_data_error(image):
    with pytest.raises(DataError, match="image must be a"):
        Predictor(PositionalNet(2)).predict(image)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="tiles"), "mode must be one of"),
    (dict(mode="sliding", window=(64, 64)), "needs both window and stride"),
    (dict(window=(64, 64), stride=(32, 32)), "only used in sliding mode"),
    (dict(mode="sliding", window=(64, 64), stride=(80, 32)), "leaves gaps"),
    (dict(mode="sliding", window=(64, -1), stride=(32, 32)), "window must be two positive integers"),
    (dict(scales=()), "scales must be"),
    (dict(scales=(1.0, 0.0)), "scales must be"),
    (dict(batch_windows=0), "batch_windows"),
    (dict(rgb_mean=(1.0, 2.0)), "rgb_mean"),
    (dict(result_shape=(10,)), "result_shape"),
])
def test_bad_specs_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        InferenceSpec(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="sliding", window=(60, 64), stride=(32, 32)), "window .* is not a multiple of the pad multiple 8"),
    (dict(mode="sliding", window=(64, 64), stride=(31, 32)), "stride .* prediction stride 2"),
    (dict(pad_multiple=12), "pad_multiple 12 is not a multiple of the network's output stride 8"),
])
def test_geometry_is_checked_against_the_network(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Predictor(PositionalNet(2), InferenceSpec(**kwargs))


def test_a_network_not_matching_its_declared_prediction_stride_is_reported():
    net = make_colour_net([mx.cpu()])
    net.prediction_stride = 2  # the 1x1 convolution really predicts at stride 1
    with pytest.raises(ValueError, match=r"network output \(1, 3, 48, 56\) .* expected \(1, 3, 24, 28\)"):
        Predictor(net).predict(random_image(42, 50))


def test_released_test_config_maps_to_the_released_spec():
    spec = spec_from_config(load_test_config(RELEASED_TEST_CONFIG))
    assert spec == InferenceSpec(result_shape=(1024, 2048), crop=(1024, 2048))
    own_size = spec_from_config(load_test_config(RELEASED_TEST_CONFIG, ["data.result_shape=None"]))
    assert own_size.crop is None and own_size.result_shape is None


def test_inference_section_maps_to_sliding_flip_crf():
    config = load_test_config(RELEASED_TEST_CONFIG, ["inference.mode=sliding", "inference.window=512,1024",
                                     "inference.stride=256,512", "inference.batch_windows=2", "inference.flip=true",
                                     "inference.crf=true", "inference.crf_w1=4", "inference.crf_sigma_alpha=20",
                                     "inference.crf_iterations=5", "data.test_scales=0.5,1.0"])
    spec = spec_from_config(config)
    assert (spec.mode, spec.window, spec.stride, spec.batch_windows, spec.flip) == \
        ("sliding", (512, 1024), (256, 512), 2, True)
    assert spec.scales == (0.5, 1.0)
    assert spec.crf == CRFParams(bilateral_weight=4.0, bilateral_position_sigma=20.0, iterations=5)


def test_test_shape_crop_follows_the_released_preprocess_at_every_scale():
    """tester.preprocess: resize the whole image by s, keep its top-left int(test_shape * s), predict,
    resize the probabilities to result_shape; a pointwise net makes the expectation exact."""
    image = random_image(40, 56, seed=3)
    net = make_colour_net([mx.cpu()])
    spec = InferenceSpec(scales=(0.5, 1.0), crop=(32, 48), result_shape=(32, 48))
    got = Predictor(net, spec).probabilities(image)
    expected = np.zeros((3, 32, 48))
    for scale in (0.5, 1.0):
        scaled = cv2.resize(image, (int(56 * scale), int(40 * scale)), interpolation=cv2.INTER_LINEAR)
        kept = scaled[:int(32 * scale), :int(48 * scale)]
        probabilities = colour_probabilities(kept, (122.675, 116.669, 104.008)).astype(np.float32).transpose(1, 2, 0)
        expected += cv2.resize(probabilities, (48, 32), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    np.testing.assert_allclose(got, expected / 2, atol=1e-5)
