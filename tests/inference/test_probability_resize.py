"""Resizing probabilities back to the result shape: against cv2.resize and a np.interp reference."""
import cv2
import numpy as np
import pytest

from tusimple_duc.inference.scales import add_resized, scale_image, scaled_shape


def interp_resize(plane: np.ndarray, extent, out_shape) -> np.ndarray:
    """Reference: separable np.interp with half-pixel centres, clamped at the valid border."""
    def along(values, size, ext):
        valid = int(np.ceil(ext))
        positions = (np.arange(size) + 0.5) * ext / size - 0.5
        return np.interp(positions, np.arange(valid), values[:valid])
    columns = np.stack([along(row, out_shape[1], extent[1]) for row in plane])
    return np.stack([along(col, out_shape[0], extent[0]) for col in columns.T], axis=1)


def test_integral_extent_equals_cv2_resize_of_the_crop():
    rng = np.random.RandomState(0)
    padded = rng.rand(3, 24, 28).astype(np.float32)
    accumulator = np.zeros((3, 42, 50), dtype=np.float32)
    add_resized(padded, (21, 25), accumulator)
    crop = np.ascontiguousarray(padded[:, :21, :25].transpose(1, 2, 0))
    expected = cv2.resize(crop, (50, 42), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    np.testing.assert_allclose(accumulator, expected, atol=1e-6)


@pytest.mark.parametrize("extent", [(21, 25), (18.5, 25), (18.5, 12.25), (3.0, 1.5)])
def test_resize_matches_the_interp_reference(extent):
    rng = np.random.RandomState(1)
    padded = rng.rand(2, 24, 28).astype(np.float32)
    out_shape = (37, 50)
    accumulator = np.zeros((2,) + out_shape, dtype=np.float32)
    add_resized(padded, extent, accumulator)
    for label in range(2):
        np.testing.assert_allclose(accumulator[label], interp_resize(padded[label], extent, out_shape), atol=1e-5)


@pytest.mark.parametrize("extent", [(21, 25), (18.5, 12.25)])
def test_mirror_adds_the_left_right_flipped_resize(extent):
    rng = np.random.RandomState(2)
    padded = rng.rand(2, 24, 28).astype(np.float32)
    start = rng.rand(2, 37, 50).astype(np.float32)
    accumulator = start.copy()
    add_resized(padded, extent, accumulator, mirror=True)
    for label in range(2):
        expected = start[label] + interp_resize(padded[label], extent, (37, 50))[:, ::-1]
        np.testing.assert_allclose(accumulator[label], expected, atol=1e-5)


def test_scaled_shape_and_image_resize():
    assert scaled_shape((1024, 2048), 0.75) == (768, 1536)
    assert scaled_shape((1024, 2048), 1.25) == (1280, 2560)
    assert scaled_shape((37, 50), 0.5) == (18, 25)
    assert scaled_shape((100, 61), 0.29) == (29, 17)
    image = np.random.RandomState(0).randint(0, 256, (40, 60, 3)).astype(np.uint8)
    assert scale_image(image, 1.0) is image
    half = scale_image(image, 0.5)
    np.testing.assert_array_equal(half, cv2.resize(image, (30, 20), interpolation=cv2.INTER_LINEAR))
