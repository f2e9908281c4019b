"""Deployment backends: the predictor's network call run by OpenVINO or ONNX Runtime.

A backend is only another ``forward=`` of :class:`~tusimple_duc.inference.predictor.Predictor`
(the :data:`~tusimple_duc.inference.predictor.ForwardFn` contract: a (N, 3, H, W) float32
batch -> (N, L, H/s, W/s) float32 probabilities), so whole image, sliding window, scales, flip
and CRF are the predictor's, unchanged::

    forward = make_forward(net, "openvino", "bf16")
    predictor = Predictor(net, spec, forward=forward)

Both runtimes run the project's own clean ONNX export of the network
(:func:`tusimple_duc.io.export.onnx_model`, kept in memory): ``data`` -> ``seg_prob`` (N, L,
r*r*h*w), the released flattened DUC layout, which :func:`prediction_layout` rearranges to the
prediction map. ``mxnet`` is :class:`~tusimple_duc.inference.fast.FastForward` (the reference).

Precisions (:data:`BACKEND_PRECISIONS`):

* ``openvino``: ``fp32`` and ``bf16`` through ``INFERENCE_PRECISION_HINT`` (f32 is set
  explicitly: OpenVINO's CPU plugin otherwise runs bf16 on CPUs with AVX512-BF16 or AMX).
  ``int8`` is not offered: OpenVINO >= 2025 quantizes only through NNCF, whose releases that
  support it need numpy >= 1.24 (this project pins 1.23.5) and whose older releases import the
  removed ``openvino.runtime``.
* ``onnxruntime``: ``fp32``. ``int8`` (``onnxruntime.quantization.quantize_static``) is not
  offered: onnxruntime 1.19's quantization module needs onnx >= 1.16, this project pins
  onnx < 1.16 for MXNet's exporter.

Anything not available is a one-line :class:`~tusimple_duc.errors.ConfigError` naming
``[inference] backend`` or ``precision`` and the reason.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Dict, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.fast import FastForward
from tusimple_duc.io.export import onnx_model
from tusimple_duc.io.symbol import INPUT_NAME
from tusimple_duc.layout import cells_to_pixels

BACKENDS: Tuple[str, ...] = ("mxnet", "openvino", "onnxruntime")
BACKEND_PRECISIONS: Dict[str, Tuple[str, ...]] = {
    "mxnet": ("fp32", "bf16", "int8"),
    "openvino": ("fp32", "bf16"),
    "onnxruntime": ("fp32",),
}
UNAVAILABLE_REASONS: Dict[Tuple[str, str], str] = {
    ("openvino", "int8"): "OpenVINO quantizes only through NNCF, which does not install with this "
                          "project's pins (numpy 1.23.5) for OpenVINO 2026",
    ("onnxruntime", "bf16"): "ONNX Runtime's CPU provider has no bf16 convolutions",
    ("onnxruntime", "int8"): "onnxruntime.quantization needs onnx >= 1.16; this project pins onnx < 1.16 "
                             "(MXNet's ONNX exporter)",
}
OPENVINO_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
MODULES = {"openvino": "openvino", "onnxruntime": "onnxruntime"}
#: (H, W) the ONNX graph is traced at: any multiple of the output stride works (dynamic shapes)
TRACE_SHAPE = (64, 64)

log = logging.getLogger(__name__)


def check_backend(backend: str, precision: str) -> None:
    """Raise a one-line ConfigError unless ``backend`` can run ``precision`` on this install."""
    if backend not in BACKENDS:
        raise ConfigError(f"[inference] backend = {backend}: unknown (known: {', '.join(BACKENDS)})")
    if precision not in BACKEND_PRECISIONS[backend]:
        reason = UNAVAILABLE_REASONS.get((backend, precision), "not implemented")
        raise ConfigError(f"[inference] precision = {precision} is not available with backend {backend}: {reason} "
                          f"(available: {', '.join(BACKEND_PRECISIONS[backend])})")
    if backend in MODULES:
        _runtime(backend)


def _runtime(backend: str) -> Any:
    try:
        return importlib.import_module(MODULES[backend])
    except ImportError as err:
        extra = ' (pip install -e ".[openvino]")' if backend == "openvino" else ""
        raise ConfigError(f"[inference] backend = {backend}: {MODULES[backend]} is not installed{extra}: "
                          f"{err}") from None


def prediction_layout(flat: np.ndarray, net: Any, input_shape: Tuple[int, int]) -> np.ndarray:
    """The exported output (N, L, P) rearranged to the prediction map (N, L, H/s, W/s).

    Parameters
    ----------
    flat : ``seg_prob`` of :func:`~tusimple_duc.io.export.onnx_model`: for a DUC head the
        released layout (P = r*r*h*w, :mod:`tusimple_duc.layout`), for other heads the
        row-major flattened prediction map.
    net : the network (``output_stride``, ``prediction_stride``, ``head.kind``).
    input_shape : (H, W) of the network input, pixels.
    """
    height, width = input_shape
    stride = int(net.prediction_stride)
    if getattr(net.head, "kind", None) != "duc":
        return flat.reshape(flat.shape[:2] + (height // stride, width // stride))
    ratio = int(net.output_stride) // stride
    cells = flat.reshape(flat.shape[:2] + (ratio * ratio, height // int(net.output_stride),
                                           width // int(net.output_stride)))
    return np.ascontiguousarray(cells_to_pixels(cells, ratio))


class OnnxRuntimeForward:
    """ONNX Runtime (CPU provider, all graph optimizations) on the network's clean ONNX export."""

    def __init__(self, net: Any, precision: str = "fp32", model_bytes: Optional[bytes] = None) -> None:
        check_backend("onnxruntime", precision)
        runtime = _runtime("onnxruntime")
        options = runtime.SessionOptions()
        options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_ENABLE_ALL
        model_bytes = model_bytes or onnx_model(net, TRACE_SHAPE).SerializeToString()
        self.net = net
        self.precision = precision
        self.session = runtime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, L, H/s, W/s) float32 probabilities."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        (flat,) = self.session.run(None, {INPUT_NAME: batch})
        return prediction_layout(flat, self.net, batch.shape[2:])


class OpenVINOForward:
    """OpenVINO's CPU plugin on the network's clean ONNX export, compiled for each input shape
    (the last one kept: keep shapes fixed, as with FastForward)."""

    def __init__(self, net: Any, precision: str = "fp32", model_bytes: Optional[bytes] = None) -> None:
        check_backend("openvino", precision)
        runtime = _runtime("openvino")
        self.core = runtime.Core()
        self.model = self.core.read_model(model_bytes or onnx_model(net, TRACE_SHAPE).SerializeToString())
        self.net = net
        self.precision = precision
        self.config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION_HINTS[precision]}
        self._compiled: Any = None
        self._compiled_for: Optional[Tuple[int, ...]] = None

    def _compile(self, shape: Tuple[int, ...]) -> Any:
        if shape != self._compiled_for:
            if self._compiled_for is not None:
                log.info("openvino: input shape %s replaces %s, recompiling", shape, self._compiled_for)
            self.model.reshape({INPUT_NAME: list(shape)})
            self._compiled = self.core.compile_model(self.model, "CPU", self.config)
            self._compiled_for = shape
        return self._compiled

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, L, H/s, W/s) float32 probabilities."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        flat = self._compile(tuple(batch.shape))(batch)[0]
        return prediction_layout(np.asarray(flat, dtype=np.float32), self.net, batch.shape[2:])


def make_forward(net: Any, backend: str, precision: str, calibration: Optional[np.ndarray] = None,
                 int8_fp32: Sequence[str] = (), ctx: mx.Context = mx.cpu(),
                 model_bytes: Optional[bytes] = None) -> Any:
    """The predictor forward of ``backend`` at ``precision`` (see the module docstring).

    Parameters
    ----------
    net : an initialised ``SegmentationNet``.
    backend : one of :data:`BACKENDS`; precision : one of its :data:`BACKEND_PRECISIONS`.
    calibration : int8 only: (K, 3, H, W) float32 network inputs.
    int8_fp32 : mxnet int8 only: the layer groups kept in fp32.
    ctx : mxnet only: the CPU context.
    model_bytes : the serialized ONNX export, to reuse it across precisions (None: export).
    """
    check_backend(backend, precision)
    if backend == "mxnet":
        return FastForward(net, precision=precision, calibration=calibration, int8_fp32=int8_fp32, ctx=ctx)
    if backend == "openvino":
        return OpenVINOForward(net, precision, model_bytes)
    return OnnxRuntimeForward(net, precision, model_bytes)
