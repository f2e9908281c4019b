"""Multi-scale and flip: averaged passes, each resized back to the result shape."""
import tusimple_duc  # noqa: F401  (before mxnet: sets the thread count)
import cv2
import mxnet as mx
import numpy as np
import pytest

from inference_toys import (PositionalNet, ProbeNet, colour_probabilities, make_colour_net, make_tiny_conv_net,
                            positional_probabilities, random_image)
from tusimple_duc.inference import RELEASED_RGB_MEAN, InferenceSpec, Predictor


def cv2_resize(probabilities: np.ndarray, out_shape) -> np.ndarray:
    hwc = np.ascontiguousarray(probabilities.transpose(1, 2, 0).astype(np.float32))
    return cv2.resize(hwc, (out_shape[1], out_shape[0]), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)


def smooth_image(height: int, width: int) -> np.ndarray:
    """Slowly varying colours, so that resizing (nearly) commutes with a pointwise function of colour."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = [128 + 100 * np.sin(2 * np.pi * x / 64), 128 + 100 * np.cos(2 * np.pi * y / 48),
           128 + 60 * np.sin(2 * np.pi * (x + y) / 80)]
    return np.clip(np.round(np.stack(rgb, axis=-1)), 0, 255).astype(np.uint8)


def colour_net_at_scale(image: np.ndarray, scale: float) -> np.ndarray:
    """Independent expectation for one scale: resize the image (released: cv2, floor), apply the
    pointwise net, resize the probabilities back with cv2."""
    height, width = image.shape[:2]
    size = (int(width * scale), int(height * scale))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if size != (width, height) else image
    return cv2_resize(colour_probabilities(scaled, RELEASED_RGB_MEAN), (height, width))


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.25, 2.0])
def test_single_scale_values(scale):
    image = smooth_image(72, 100)
    predictor = Predictor(make_colour_net([mx.cpu()]), InferenceSpec(scales=(scale,)))
    probabilities = predictor.predict(image).probabilities
    assert probabilities.shape == (3, 72, 100)
    np.testing.assert_allclose(probabilities, colour_net_at_scale(image, scale), atol=1e-5)
    # Resizing commutes approximately with the pointwise net: close to the full-resolution answer,
    # much closer than a one-pixel misalignment would be.
    direct = colour_probabilities(image, RELEASED_RGB_MEAN)
    assert np.abs(probabilities - direct).mean() < 0.01
    assert np.abs(np.roll(direct, 1, axis=2) - direct).mean() > 0.02


def test_scaled_input_has_the_scaled_padded_size():
    probe = ProbeNet(make_colour_net([mx.cpu()]))
    Predictor(probe, InferenceSpec(scales=(0.5, 1.25, 2.0))).predict(smooth_image(72, 100))
    assert [batch.shape[2:] for batch in probe.inputs] == [(40, 56), (96, 128), (144, 200)]


def test_multi_scale_is_the_mean_of_the_scales():
    image = smooth_image(72, 100)
    scales = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    probabilities = Predictor(make_colour_net([mx.cpu()]), InferenceSpec(scales=scales)).predict(image).probabilities
    expected = np.mean([colour_net_at_scale(image, scale) for scale in scales], axis=0)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_scale_one_is_single_scale():
    net = make_tiny_conv_net([mx.cpu()])
    image = random_image(40, 48, seed=4)
    default = Predictor(net).predict(image).probabilities
    np.testing.assert_array_equal(Predictor(net, InferenceSpec(scales=[1])).predict(image).probabilities, default)
    np.testing.assert_allclose(Predictor(net, InferenceSpec(scales=[1, 1])).predict(image).probabilities, default,
                               atol=1e-7)


def test_flip_averages_the_mirrored_back_prediction():
    """Positional net, 42x50 image: each pass gives R = resize(crop(P)); the flip pass gives R mirrored."""
    prediction = Predictor(PositionalNet(2), InferenceSpec(flip=True)).predict(random_image(42, 50))
    single = cv2_resize(positional_probabilities(21, 25), (42, 50))
    np.testing.assert_allclose(prediction.probabilities, 0.5 * (single + single[:, :, ::-1]), atol=1e-6)
    assert np.abs(single - single[:, :, ::-1]).max() > 1e-2


def test_flip_of_a_content_dependent_net():
    """For a pointwise net, the flip pass sees the mirrored image: flipping back gives the same map."""
    image = smooth_image(40, 56)
    probabilities = Predictor(make_colour_net([mx.cpu()]), InferenceSpec(flip=True)).predict(image).probabilities
    np.testing.assert_allclose(probabilities, colour_probabilities(image, RELEASED_RGB_MEAN), atol=1e-5)


def test_sliding_multi_scale_flip_combination():
    """Every pass is one (scale, mirror) sliding-window prediction; the result is their mean."""
    net = make_tiny_conv_net([mx.cpu()])
    image = random_image(45, 70, seed=5)
    common = dict(mode="sliding", window=(32, 32), stride=(16, 24), batch_windows=3)
    combined = Predictor(net, InferenceSpec(scales=(0.75, 1.5), flip=True, **common)).predict(image).probabilities
    passes = []
    for scale in (0.75, 1.5):
        single = Predictor(net, InferenceSpec(scales=(scale,), **common))
        passes.append(single.predict(image).probabilities)
        passes.append(single.predict(np.ascontiguousarray(image[:, ::-1])).probabilities[:, :, ::-1])
    np.testing.assert_allclose(combined, np.mean(passes, axis=0), atol=1e-6)
