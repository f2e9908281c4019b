"""Dense CRF: paper defaults, unary handling, and sharpening a blurred prediction of a synthetic scene."""
import tusimple_duc  # noqa: F401  (before mxnet: sets the thread count)
import cv2
import mxnet as mx
import numpy as np
import pytest

from inference_toys import make_colour_net
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.inference import CRFParams, InferenceSpec, Predictor, dense_crf

COLOURS = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 210]], dtype=np.uint8)


def synthetic_scene(height: int = 60, width: int = 80):
    """Ground truth with three regions (left, right half, a disc) and a noisy image of their colours."""
    truth = np.zeros((height, width), dtype=np.uint8)
    truth[:, width // 2:] = 1
    rows, cols = np.mgrid[0:height, 0:width]
    truth[(rows - height // 2) ** 2 + (cols - width // 3) ** 2 < 12 ** 2] = 2
    noise = np.random.RandomState(0).randint(-8, 9, size=(height, width, 3))
    image = np.clip(COLOURS[truth].astype(int) + noise, 0, 255).astype(np.uint8)
    return truth, image


def blurred_prediction(truth: np.ndarray, shift: int = 4, sigma: float = 4.0) -> np.ndarray:
    """One-hot ground truth shifted right by ``shift`` px, Gaussian-blurred, mixed with uniform."""
    one_hot = np.eye(3, dtype=np.float32)[np.roll(truth, shift, axis=1)].transpose(2, 0, 1)
    blurred = np.stack([cv2.GaussianBlur(plane, (0, 0), sigma) for plane in one_hot])
    blurred = 0.8 * blurred + 0.2 / 3
    return (blurred / blurred.sum(axis=0, keepdims=True)).astype(np.float32)


def mean_iou(labels: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([np.sum((labels == c) & (truth == c)) / np.sum((labels == c) | (truth == c))
                          for c in range(3)]))


def test_default_parameters_are_the_papers():
    params = CRFParams()
    assert (params.bilateral_weight, params.bilateral_position_sigma, params.bilateral_colour_sigma) == (3, 15, 3)
    assert (params.gaussian_weight, params.gaussian_position_sigma, params.iterations) == (3, 1, 10)


def test_crf_sharpens_a_blurred_prediction_towards_the_truth():
    truth, image = synthetic_scene()
    probabilities = blurred_prediction(truth)
    before = mean_iou(probabilities.argmax(axis=0), truth)
    refined = dense_crf(probabilities, image)
    after = mean_iou(refined.argmax(axis=0), truth)
    assert refined.shape == probabilities.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(axis=0), 1.0, atol=1e-4)
    assert before < 0.8
    assert after > before + 0.15


def test_without_pairwise_terms_the_crf_returns_the_unary_distribution():
    truth, image = synthetic_scene(20, 24)
    probabilities = blurred_prediction(truth, sigma=2.0)
    params = CRFParams(bilateral_weight=0.0, gaussian_weight=0.0, iterations=3)
    np.testing.assert_allclose(dense_crf(probabilities, image, params), probabilities, atol=1e-5)


def test_predictor_applies_the_crf_to_the_averaged_probabilities():
    truth, image = synthetic_scene(40, 48)
    net = make_colour_net([mx.cpu()])
    plain = Predictor(net, InferenceSpec(flip=True)).predict(image).probabilities
    with_crf = Predictor(net, InferenceSpec(flip=True, crf=CRFParams(iterations=5))).predict(image)
    np.testing.assert_allclose(with_crf.probabilities, dense_crf(plain, image, CRFParams(iterations=5)), atol=1e-6)
    assert np.abs(with_crf.probabilities - plain).max() > 1e-2


def test_predictor_runs_the_crf_on_the_image_resized_to_the_result_shape():
    truth, image = synthetic_scene(40, 48)
    net = make_colour_net([mx.cpu()])
    plain = Predictor(net, InferenceSpec(result_shape=(20, 24))).predict(image).probabilities
    refined = Predictor(net, InferenceSpec(result_shape=(20, 24), crf=CRFParams())).predict(image).probabilities
    small = cv2.resize(image, (24, 20), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(refined, dense_crf(plain, small), atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [(dict(iterations=0), "iterations"),
                                             (dict(bilateral_colour_sigma=0), "bilateral_colour_sigma"),
                                             (dict(gaussian_weight=-1), "gaussian_weight")])
def test_bad_parameters_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CRFParams(**kwargs)


def test_image_must_match_the_probabilities():
    truth, image = synthetic_scene(20, 24)
    with pytest.raises(DataError, match="crf: image must be uint8"):
        dense_crf(blurred_prediction(truth), image[:10])
