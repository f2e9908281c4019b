"""Test-time inference: whole image (the released protocol) or sliding window, multi-scale, flip, dense CRF.

Typical use::

    predictor = Predictor(net, InferenceSpec(scales=PAPER_MULTI_SCALES), contexts=[mx.gpu(0)])
    prediction = predictor.predict(rgb_uint8_image)   # .probabilities (L, H, W), .labels, .confidence
"""
from tusimple_duc.inference.crf import CRFParams, dense_crf
from tusimple_duc.inference.predictor import (
    PAPER_MULTI_SCALES,
    RELEASED_MULTI_SCALE_SPEC,
    RELEASED_RGB_MEAN,
    RELEASED_SPEC,
    InferenceSpec,
    Prediction,
    Predictor,
    forward_probabilities,
    spec_from_config,
)

__all__ = [
    "CRFParams",
    "dense_crf",
    "PAPER_MULTI_SCALES",
    "RELEASED_MULTI_SCALE_SPEC",
    "RELEASED_RGB_MEAN",
    "RELEASED_SPEC",
    "InferenceSpec",
    "Prediction",
    "Predictor",
    "forward_probabilities",
    "spec_from_config",
]
