"""Window geometry: padded sizes, window origins (hand-listed), padded network input."""
import numpy as np

from inference_toys import random_image
from tusimple_duc.inference.windows import network_input, padded_shape, window_origins, window_starts


def test_padded_shape_rounds_up_to_the_pad_multiple():
    assert padded_shape((1024, 2048), 8) == (1024, 2048)
    assert padded_shape((1001, 2047), 8) == (1008, 2048)
    assert padded_shape((42, 50), 8) == (48, 56)


def test_padded_shape_pads_small_images_up_to_the_window():
    assert padded_shape((42, 50), 8, window=(64, 48)) == (64, 56)
    assert padded_shape((100, 30), 8, window=(64, 64)) == (104, 64)


def test_window_starts_end_with_a_window_flush_with_the_border():
    assert window_starts(40, 24, 16) == [0, 16]
    assert window_starts(56, 32, 16) == [0, 16, 24]
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(1024, 800, 600) == [0, 224]
    assert window_starts(2048, 800, 600) == [0, 600, 1200, 1248]
    assert window_starts(32, 32, 8) == [0]


def test_window_origins_are_row_major_and_cover_every_pixel():
    origins = window_origins((40, 56), (24, 32), (16, 16))
    assert origins == [(0, 0), (0, 16), (0, 24), (16, 0), (16, 16), (16, 24)]
    covered = np.zeros((40, 56), dtype=int)
    for r, c in origins:
        assert r + 24 <= 40 and c + 32 <= 56
        covered[r:r + 24, c:c + 32] += 1
    assert covered.min() >= 1


def test_network_input_subtracts_the_mean_and_pads_with_zeros():
    image = random_image(5, 7)
    mean = (122.675, 116.669, 104.008)
    data = network_input(image, mean, (8, 16))
    assert data.shape == (3, 8, 16) and data.dtype == np.float32
    for channel in range(3):
        expected = image[:, :, channel].astype(np.float64) - mean[channel]
        np.testing.assert_allclose(data[channel, :5, :7], expected, atol=1e-5)
    assert not data[:, 5:, :].any() and not data[:, :, 7:].any()


def test_network_input_accepts_a_mirrored_view():
    image = random_image(4, 6, seed=3)
    data = network_input(image[:, ::-1], (0.0, 0.0, 0.0), (8, 8))
    np.testing.assert_array_equal(data[:, :4, :6], image[:, ::-1].transpose(2, 0, 1).astype(np.float32))
