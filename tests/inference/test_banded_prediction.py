"""Whole-image results assembled in horizontal bands (resize, average, argmax, max per band)
equal the results computed whole, bit for bit, whatever the band height."""
import numpy as np
import pytest

from inference_toys import initialised_preset, random_image
from tusimple_duc.inference.predictor import InferenceSpec, Predictor


@pytest.mark.parametrize("spec", [InferenceSpec(), InferenceSpec(scales=(0.75, 1.25), flip=True),
                                  InferenceSpec(result_shape=(45, 70))])
def test_banded_prediction_equals_the_whole_one_bit_for_bit(spec):
    net = initialised_preset()
    image = random_image(56, 88, seed=4)
    predictor = Predictor(net, spec)
    whole = predictor.predict(image, rows_per_band=10 ** 6)
    expected = predictor.probabilities(image)
    np.testing.assert_array_equal(whole.probabilities, expected)
    for rows in (1, 7, 16):
        banded = predictor.predict(image, rows_per_band=rows)
        np.testing.assert_array_equal(banded.probabilities, expected)
        np.testing.assert_array_equal(banded.labels, expected.argmax(axis=0))
        np.testing.assert_array_equal(banded.top_probability, expected.max(axis=0))
        assert banded.confidence == float(expected.max(axis=0).mean())
    compact = predictor.predict(image, keep_probabilities=False, rows_per_band=7)
    assert compact.probabilities is None
    np.testing.assert_array_equal(compact.labels, whole.labels)
    assert compact.confidence == whole.confidence
