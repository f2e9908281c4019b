"""Deployment-backend variants of the benchmark (:mod:`tusimple_duc.inference.backends`).

Every backend variant runs the same ONNX file, the suite's clean export of the benchmark's
weights (:func:`tusimple_duc.io.export.onnx_model`, ``VariantConfig.onnx``):

=====================  ===========================================================================
``openvino-fp32``      bare OpenVINO: the ONNX read, reshaped to the input, compiled for the CPU
                       plugin with ``INFERENCE_PRECISION_HINT`` f32, called on the input;
                       output ``seg_prob`` (N, L, r*r*h*w)
``openvino-bf16``      the same with the hint bf16
``openvino-int8``      the same (hint f32) on the QDQ int8 copy of the ONNX
                       (:func:`tusimple_duc.io.onnx_quantize.quantize_qdq`, calibrated on the
                       suite's calibration inputs, the MXNet int8 default's layer groups fp32),
                       quantized when the worker is built (not timed)
``openvino-int8-all``  ``openvino-int8`` with every convolution quantized (``[inference]
                       int8_fp32 = none``: the project's placement closest to NNCF's)
``openvino-int8-bf16`` the same int8 copy with the hint bf16 (the layers not quantized in bf16)
``onnxruntime-fp32``   bare ONNX Runtime: CPU provider, all graph optimizations, default threads
``onnxruntime-int8``   the same on the QDQ int8 copy (``QLinearConv``)
``openvino-taps-*``    ``openvino-fp32`` / ``-bf16`` / ``-int8`` / ``-int8-bf16`` with the DUC head's dilated
                       convolutions rewritten as shifted 1x1 convolutions
                       (``[inference] dilated_conv_form = taps``,
                       :func:`tusimple_duc.io.onnx_taps.dilated_conv_taps`), rewritten when
                       the worker is built (not timed)
``openvino-phases-*``  the same with the form ``phases`` (one dense 3x3 convolution on the d x d
                       phases, :func:`tusimple_duc.io.onnx_phases.dilated_conv_phases`)
``predict-openvino``   what ``test.py`` runs with ``[inference] backend = openvino``: one
                       ``Predictor.predict`` (released whole-image protocol) of a uint8 image with
                       ``backends.make_forward(net, "openvino", "fp32")``
``bare-openvino``      the same image by hand around the bare OpenVINO fp32 model: mean
                       subtraction, compiled model, DUC rearrangement, bilinear resize of the
                       probabilities to the image, argmax
=====================  ===========================================================================

An int8 variant given ``int8_cache`` (a file stem, ``VariantConfig.int8_cache``) reads its QDQ
copy from the quantized-model cache (:mod:`tusimple_duc.io.onnx_quantize_cache`) when it is there
and writes it there when it is not: the suite quantizes in one process and times another that
only compiles the file, so that the peak memory of the quantization and of the inference are
reported apart.

The image variants (``predict-openvino``, ``bare-openvino``; and ``predict-whole``, the same
through :class:`~tusimple_duc.inference.fast.FastForward`) report the probabilities at image
resolution, (1, L, H, W).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import cv2
import numpy as np

from experiments.bench.scoring import read_rgb
from tusimple_duc.config import RELEASED_RGB_MEAN
from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.backends import (OPENVINO_PRECISION_HINTS, check_backend, is_int8, prediction_layout,
                                            runtime_model_bytes)
from tusimple_duc.inference.fast import INT8_FP32_DEFAULT
from tusimple_duc.io.symbol import INPUT_NAME
from tusimple_duc.layout import sides_are_multiples

BARE_VARIANTS = ("openvino-fp32", "openvino-bf16", "openvino-int8", "openvino-int8-all", "onnxruntime-fp32",
                 "onnxruntime-int8",
                 "openvino-int8-bf16", "openvino-taps-fp32", "openvino-taps-bf16", "openvino-taps-int8",
                 "openvino-taps-int8-bf16", "openvino-phases-fp32", "openvino-phases-bf16", "openvino-phases-int8",
                 "openvino-phases-int8-bf16")
IMAGE_VARIANTS = ("predict-openvino", "bare-openvino")
#: the rewritten forms a variant name can carry (``openvino-<form>-<precision>``)
REWRITTEN_FORMS = ("taps", "phases")
#: the suffix of an int8 variant that quantizes every convolution (``int8_fp32 = none``)
ALL_INT8 = "-all"


def backend_precision(variant: str) -> Tuple[str, str]:
    """``openvino-int8-bf16`` -> (``openvino``, ``int8-bf16``), ``openvino-taps-bf16`` -> (``openvino``,
    ``bf16``); the image variants run OpenVINO fp32."""
    if variant in IMAGE_VARIANTS:
        return "openvino", "fp32"
    backend, precision = variant.removesuffix(ALL_INT8).split("-", 1)
    form = conv_form(variant)
    return backend, precision[len(form) + 1:] if form != "direct" else precision


def conv_form(variant: str) -> str:
    """``taps`` / ``phases`` for the ``*-taps-*`` / ``*-phases-*`` variants, else ``direct``."""
    return next((form for form in REWRITTEN_FORMS if f"-{form}-" in variant), "direct")


def unavailable_reason(variant: str) -> Optional[str]:
    """Why ``variant`` cannot run with this install (None when it can): the backend's own
    one-line error (precision not offered, runtime not installed)."""
    try:
        check_backend(*backend_precision(variant), conv_form(variant))
    except ConfigError as err:
        return str(err)
    return None


def openvino_model(onnx_model: Union[str, bytes], precision: str, input_shape: Tuple[int, ...]) -> Any:
    """The ONNX model (a file path or serialized bytes) compiled by OpenVINO's CPU plugin for one
    (N, 3, H, W) input shape."""
    import openvino

    core = openvino.Core()
    model = core.read_model(onnx_model)
    model.reshape({INPUT_NAME: list(input_shape)})
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION_HINTS[precision]})


def int8_fp32_groups(variant: str) -> Tuple[str, ...]:
    """The layer groups an int8 variant keeps fp32: none for ``*-all``, else MXNet int8's default."""
    return () if variant.endswith(ALL_INT8) else INT8_FP32_DEFAULT


def bare_forward(variant: str, onnx_path: str, input_shape: Tuple[int, ...], preset: str,
                 calibration: Optional[str] = None, int8_cache: Optional[str] = None):
    """``batch -> seg_prob`` (N, L, r*r*h*w) of a bare runtime variant on the ONNX file (int8: on
    its QDQ copy calibrated on the ``calibration`` ``.npy`` (K, 3, H, W), ``preset``'s network
    naming the layers kept fp32 (:func:`int8_fp32_groups`), read from / kept in the cache of the
    stem ``int8_cache``; taps: with the head's dilated convolutions rewritten)."""
    backend, precision = backend_precision(variant)
    model: Union[str, bytes] = onnx_path
    if is_int8(precision) or conv_form(variant) != "direct":
        with open(onnx_path, "rb") as f:
            inputs = np.load(calibration) if calibration else None
            model = runtime_model_bytes(geometry_net(preset), backend, precision, f.read(), inputs,
                                        int8_fp32_groups(variant), conv_form(variant), int8_cache=int8_cache)
    if backend == "openvino":
        compiled = openvino_model(model, precision, input_shape)
        return lambda batch: compiled(batch)[0]
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {INPUT_NAME: batch})[0]


def geometry_net(preset: str) -> Any:
    """The preset's network, parameters not initialised (no weight memory): strides and head kind."""
    from experiments.bench.variants import network

    return network(preset)


class PredictorRun:
    """A variant that is one ``Predictor.predict`` of ``self.image`` (uint8 RGB) by
    ``self.predictor``, both set by the subclass."""

    predictor: Any
    image: np.ndarray
    last: Any = None

    def run(self) -> None:
        self.last = None   # freed before the next prediction: the peak memory of one prediction
        self.last = self.predictor.predict(self.image)

    def probabilities(self) -> Optional[np.ndarray]:
        """(1, L, H, W) probabilities of the last run."""
        return None if self.last is None else self.last.probabilities[None]


class PredictOpenVINOVariant(PredictorRun):
    """``Predictor.predict`` with the OpenVINO fp32 backend on the suite's ONNX file."""

    def __init__(self, config) -> None:
        from experiments.bench.variants import load_net
        from tusimple_duc.inference import InferenceSpec, Predictor
        from tusimple_duc.inference.backends import make_forward

        net = load_net(config)
        with open(config.onnx, "rb") as f:
            forward = make_forward(net, "openvino", "fp32", model_bytes=f.read())
        self.predictor = Predictor(net, InferenceSpec(), forward=forward)
        self.image = read_rgb(config.input)
        self.last = None


class BareOpenVINOImageVariant:
    """A uint8 image segmented by hand around the bare OpenVINO fp32 model (pre/post included)."""

    def __init__(self, config) -> None:
        self.net = geometry_net(config.preset)
        self.image = read_rgb(config.input)
        rows, cols = self.image.shape[:2]
        if not sides_are_multiples((rows, cols), int(self.net.output_stride)):
            raise ValueError(f"{config.input}: {rows}x{cols} is not a multiple of the output stride "
                             f"{self.net.output_stride} (bare-openvino does not pad)")
        self.compiled = openvino_model(config.onnx, "fp32", (1, 3, rows, cols))
        self.mean = np.asarray(RELEASED_RGB_MEAN, dtype=np.float32)
        self.full: Optional[np.ndarray] = None
        self.labels: Optional[np.ndarray] = None

    def run(self) -> None:
        rows, cols = self.image.shape[:2]
        self.full = self.labels = None
        data = np.ascontiguousarray((self.image - self.mean).transpose(2, 0, 1)[None])
        small = prediction_layout(self.compiled(data)[0], self.net, (rows, cols))[0]
        self.full = cv2.resize(small.transpose(1, 2, 0), (cols, rows), interpolation=cv2.INTER_LINEAR)
        self.labels = self.full.argmax(axis=2).astype(np.uint8)

    def probabilities(self) -> Optional[np.ndarray]:
        """(1, L, H, W) probabilities of the last run."""
        return None if self.full is None else self.full.transpose(2, 0, 1)[None]
