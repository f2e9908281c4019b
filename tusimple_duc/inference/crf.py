"""Dense CRF post-processing (Kraehenbuehl & Koltun's fully connected CRF, via pydensecrf).

The paper (4.1.2) follows DeepLab's formulation: unary ``-log p`` from the network's
probabilities, a bilateral (appearance) kernel with weight ``w1`` and position /
colour sigmas ``sigma_alpha`` / ``sigma_beta``, and a Gaussian (smoothness) kernel with
weight ``w2`` and position sigma ``sigma_gamma``; Potts compatibility. Its grid-searched
values (``w1 = 3, sigma_alpha = 15, sigma_beta = 3, w2 = 3, sigma_gamma = 1``) are
the defaults. The released pipeline does not use a CRF.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydensecrf.densecrf as dcrf

from tusimple_duc.errors import ConfigError, DataError

# Probabilities are clipped to this before the log so that a zero gives a large but finite unary.
MIN_PROBABILITY = 1e-8


@dataclass(frozen=True)
class CRFParams:
    """Parameters of the dense CRF (defaults: the paper's).

    Attributes
    ----------
    bilateral_weight : w1, weight of the appearance kernel.
    bilateral_position_sigma : sigma_alpha, pixels.
    bilateral_colour_sigma : sigma_beta, RGB intensity units (0..255).
    gaussian_weight : w2, weight of the smoothness kernel.
    gaussian_position_sigma : sigma_gamma, pixels.
    iterations : mean-field iterations.
    """

    bilateral_weight: float = 3.0
    bilateral_position_sigma: float = 15.0
    bilateral_colour_sigma: float = 3.0
    gaussian_weight: float = 3.0
    gaussian_position_sigma: float = 1.0
    iterations: int = 10

    def __post_init__(self) -> None:
        for name in ("bilateral_position_sigma", "bilateral_colour_sigma", "gaussian_position_sigma"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"crf: {name} must be > 0, got {getattr(self, name)}")
        for name in ("bilateral_weight", "gaussian_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"crf: {name} must be >= 0, got {getattr(self, name)}")
        if not (isinstance(self.iterations, int) and self.iterations >= 1):
            raise ConfigError(f"crf: iterations must be an integer >= 1, got {self.iterations!r}")


def dense_crf(probabilities: np.ndarray, image: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Refine class probabilities with a dense CRF.

    Parameters
    ----------
    probabilities : (L, H, W) float32 class probabilities (each pixel sums to 1).
    image : (H, W, 3) uint8 RGB image at the same resolution.
    params : kernel weights, sigmas and iteration count.

    Returns
    -------
    (L, H, W) float32 refined probabilities (the CRF's marginals).
    """
    num_classes, height, width = probabilities.shape
    if image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise DataError(f"crf: image must be uint8 of shape {(height, width, 3)} to match the probabilities, "
                        f"got {image.dtype} {image.shape}")
    unary = np.maximum(probabilities.reshape(num_classes, height * width), np.float32(MIN_PROBABILITY))
    unary = np.ascontiguousarray(-np.log(unary), dtype=np.float32)
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.gaussian_position_sigma, compat=params.gaussian_weight)
    crf.addPairwiseBilateral(sxy=params.bilateral_position_sigma, srgb=params.bilateral_colour_sigma,
                             rgbim=np.ascontiguousarray(image), compat=params.bilateral_weight)
    marginals = crf.inference(params.iterations)
    return np.asarray(marginals, dtype=np.float32).reshape(num_classes, height, width)
