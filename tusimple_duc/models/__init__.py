"""Networks: dilated ResNet backbone (HDC), DUC / bilinear / deconv heads, presets.

Public API::

    get_model(name_or_spec, **overrides) -> SegmentationNet
    ModelSpec, PRESETS, list_presets(), describe_preset(name), PAPER_ROWS
    SegmentationNet, predict_probabilities(net, x), count_parameters(block)

Submodules: ``resnet`` (backbone), ``hdc`` (dilation schedules, the gridding rule), ``gridding`` (exact coverage),
``heads``, ``duc`` (the rearrangement), ``segnet``, ``presets``.
"""
from tusimple_duc.models.presets import (
    PAPER_ROWS, PRESETS, ModelSpec, ModelSpecError, build_model, describe_preset, get_model,
    get_spec, list_presets)
from tusimple_duc.models.segnet import SegmentationNet, count_parameters, predict_probabilities

__all__ = [
    "PAPER_ROWS", "PRESETS", "ModelSpec", "ModelSpecError", "SegmentationNet", "build_model",
    "count_parameters", "describe_preset", "get_model", "get_spec", "list_presets",
    "predict_probabilities",
]
