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
  explicitly: OpenVINO's CPU plugin otherwise runs bf16 on CPUs with AVX512-BF16 or AMX),
  ``int8`` (the layers not quantized in f32) and ``int8-bf16`` (the same int8 convolutions, the
  layers not quantized in bf16).
* ``onnxruntime``: ``fp32`` and ``int8``.

``int8`` on both runtimes runs the QDQ copy of the export written by this project's own
quantizer (:func:`tusimple_duc.io.onnx_quantize.quantize_qdq`; NNCF and
``onnxruntime.quantization`` do not install with this project's pins, numpy 1.23.5 and
onnx < 1.16): calibrated (naive min/max) on the same ``calibration`` inputs as the MXNet int8
path, with the same layer groups kept fp32 (``int8_fp32``, :func:`int8_fp32_weights`).
OpenVINO then runs FakeQuantize'd int8 convolutions (the rest in f32), ONNX Runtime
``QLinearConv``.

Dilated convolution form (:data:`CONV_FORMS`, ``[inference] dilated_conv_form``): ``direct`` runs
the export as it is; ``taps`` rewrites the DUC head's dilated 3x3 convolutions (the ASPP
branches) as sums of shifted 1x1 convolutions (:func:`tusimple_duc.io.onnx_taps.dilated_conv_taps`,
exact); ``phases`` as one dense 3x3 convolution on the d x d phases of the input moved into the
batch (:func:`tusimple_duc.io.onnx_phases.dilated_conv_phases`, exact, about one copy of the
input instead of the taps' nine). Both come after the int8 quantization (a head convolution
quantized to int8 keeps its direct form). Which form is faster depends on the runtime, the precision and the CPU: measure it
(``tools/bench.py``, or ``precision = auto`` with ``dilated_conv_form = auto``).

Anything not available is a one-line :class:`~tusimple_duc.errors.ConfigError` naming
``[inference] backend`` or ``precision`` and the reason.
"""
from __future__ import annotations

import importlib
import json
import logging
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
import onnx

from tusimple_duc.config import CALIBRATION_TILE_DEFAULT
from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.fast import INT8_FP32_DEFAULT, FastForward, int8_fp32_layers, probability_symbol
from tusimple_duc.io.export import onnx_model
from tusimple_duc.io.onnx_quantize import calibration_tiles, quantize_qdq
from tusimple_duc.io.onnx_quantize_cache import cache_file, cached_quantized, quantization_key
from tusimple_duc.io.onnx_phases import dilated_conv_phases
from tusimple_duc.io.onnx_taps import dilated_conv_taps, tap_dilation
from tusimple_duc.io.symbol import INPUT_NAME
from tusimple_duc.layout import cells_to_pixels

BACKENDS: Tuple[str, ...] = ("mxnet", "openvino", "onnxruntime")
CONV_FORMS: Tuple[str, ...] = ("direct", "taps", "phases")
BACKEND_PRECISIONS: Dict[str, Tuple[str, ...]] = {
    "mxnet": ("fp32", "bf16", "int8"),
    "openvino": ("fp32", "bf16", "int8", "int8-bf16"),
    "onnxruntime": ("fp32", "int8"),
}
UNAVAILABLE_REASONS: Dict[Tuple[str, str], str] = {
    ("onnxruntime", "bf16"): "ONNX Runtime's CPU provider has no bf16 convolutions",
    ("onnxruntime", "int8-bf16"): "ONNX Runtime's CPU provider has no bf16 convolutions",
    ("mxnet", "int8-bf16"): "FastForward's int8 keeps its other layers fp32 (int8-bf16 is OpenVINO's)",
}
#: the rewrite of the DUC head's dilated convolutions of each form but ``direct``
CONV_REWRITES = {"taps": dilated_conv_taps, "phases": dilated_conv_phases}
#: int8: the quantized convolutions run int8 whatever the hint, the rest f32
OPENVINO_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32", "int8-bf16": "bf16"}
MODULES = {"openvino": "openvino", "onnxruntime": "onnxruntime"}
#: (H, W) the ONNX graph is traced at: any multiple of the output stride works (dynamic shapes)
TRACE_SHAPE = (64, 64)

log = logging.getLogger(__name__)


def is_int8(precision: str) -> bool:
    """Whether ``precision`` runs int8 convolutions (``int8``, ``int8-bf16``): it needs calibration."""
    return precision.startswith("int8")


def check_backend(backend: str, precision: str, conv_form: str = "direct") -> None:
    """Raise a one-line ConfigError unless ``backend`` can run ``precision`` in ``conv_form`` on this install."""
    if backend not in BACKENDS:
        raise ConfigError(f"[inference] backend = {backend}: unknown (known: {', '.join(BACKENDS)})")
    if conv_form not in CONV_FORMS:
        raise ConfigError(f"[inference] dilated_conv_form = {conv_form}: unknown (known: {', '.join(CONV_FORMS)})")
    if conv_form != "direct" and backend not in MODULES:
        raise ConfigError(f"[inference] dilated_conv_form = {conv_form} rewrites the ONNX export: it needs backend "
                          f"openvino or onnxruntime, not {backend}")
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


def int8_fp32_weights(net: Any, groups: Sequence[str]) -> FrozenSet[str]:
    """Weight names of the convolutions the MXNet int8 path keeps fp32 for the layer groups
    ``groups`` (:data:`~tusimple_duc.inference.fast.INT8_FP32_GROUPS`); they are also the
    weight initializer names of the network's ONNX export.

    The layers are :func:`~tusimple_duc.inference.fast.int8_fp32_layers`'s. A residual sum kept
    fp32 keeps fp32 the convolution oneDNN fuses it into as well: the one behind the sum's first
    operand (through its BatchNorm), the bottleneck's ``_1x1_increase`` (the ``_1x1_proj``
    shortcut stays int8), as in FastForward's quantized graph.
    """
    symbol = probability_symbol(net)
    kept = set(int8_fp32_layers(symbol, net, groups))
    nodes: List[Dict[str, Any]] = json.loads(symbol.tojson())["nodes"]
    weights = set()
    for node in nodes:
        if node["name"] not in kept:
            continue
        if node["op"] == "elemwise_add":
            node = nodes[node["inputs"][0][0]]
            while node["op"] == "BatchNorm":
                node = nodes[node["inputs"][0][0]]
        if node["op"] in ("Convolution", "Deconvolution"):
            weights.add(nodes[node["inputs"][1][0]]["name"])
    return frozenset(weights)


def tap_weights(net: Any, model: onnx.ModelProto) -> List[str]:
    """Weight names of the DUC head's dilated convolutions that ``model`` (the network's export,
    possibly quantized) holds in the form the taps rewrite accepts (:func:`tap_dilation`).

    Raises a one-line ConfigError for a network without a DUC head (the comparison systems)."""
    if getattr(getattr(net, "head", None), "kind", None) != "duc":
        raise ConfigError("[inference] dilated_conv_form = taps / phases rewrites the DUC head's dilated convolutions: "
                          "this network has no DUC head")
    head = int8_fp32_weights(net, ("head",))
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    return sorted(node.input[1] for node in model.graph.node
                  if node.op_type == "Conv" and node.input[1] in head and tap_dilation(node, weights))


def runtime_model_bytes(net: Any, backend: str, precision: str, model_bytes: Optional[bytes],
                        calibration: Optional[np.ndarray], int8_fp32: Sequence[str],
                        conv_form: str = "direct", calibration_tile: Tuple[int, int] = CALIBRATION_TILE_DEFAULT,
                        int8_cache: Optional[str] = None) -> bytes:
    """The serialized ONNX ``backend`` runs: the clean export (``model_bytes``, or exported at
    :data:`TRACE_SHAPE`), for ``int8`` its QDQ copy calibrated on ``calibration`` (K, 3, H, W)
    cut into tiles of at most ``calibration_tile`` (rows, cols) pixels, with the convolutions of
    the groups ``int8_fp32`` kept fp32, read from / kept in the cache file of the stem
    ``int8_cache`` (:mod:`tusimple_duc.io.onnx_quantize_cache`; None: quantized in memory); for
    ``conv_form = taps`` / ``phases`` with the head's dilated convolutions (those still fp32)
    rewritten (:data:`CONV_REWRITES`)."""
    if is_int8(precision) and (calibration is None or np.ndim(calibration) != 4 or len(calibration) == 0):
        raise ConfigError(f"[inference] precision = {precision} with backend {backend} needs calibration inputs "
                          f"(the first [inference] calibration_images images of the list), a non-empty "
                          f"(N, 3, H, W) float32 array")
    if not is_int8(precision) and conv_form == "direct":
        return model_bytes or onnx_model(net, TRACE_SHAPE).SerializeToString()
    model_bytes = model_bytes or onnx_model(net, TRACE_SHAPE).SerializeToString()
    if is_int8(precision):
        images = np.asarray(calibration, dtype=np.float32)
        fp32_weights = int8_fp32_weights(net, int8_fp32)

        def quantize() -> onnx.ModelProto:
            tiles = calibration_tiles(images, calibration_tile, int(net.output_stride))
            return quantize_qdq(onnx.load_from_string(model_bytes), tiles, fp32_weights)

        if int8_cache:
            key = quantization_key(model_bytes, fp32_weights, images, calibration_tile)
            model = cached_quantized(cache_file(int8_cache, key), quantize)
        else:
            model = quantize()
    else:
        model = onnx.load_from_string(model_bytes)
    if conv_form != "direct":
        names = tap_weights(net, model)
        if names:
            model = CONV_REWRITES[conv_form](model, names)
        else:
            log.info("dilated_conv_form = %s: no fp32 dilated head convolution left to rewrite (all int8)", conv_form)
    return model.SerializeToString()


def prediction_layout(flat: np.ndarray, net: Any, input_shape: Tuple[int, int]) -> np.ndarray:
    """The exported output (N, L, P) rearranged to the prediction map (N, L, H/s, W/s).

    Parameters
    ----------
    flat : ``seg_prob`` of :func:`~tusimple_duc.io.export.onnx_model`: for a DUC head the
        released layout (P = r*r*h*w, :mod:`tusimple_duc.layout`), for other heads the
        row-major flattened prediction map; a comparison system's (N, L, h, w) map (4-D) is
        already the prediction map and is returned as it is.
    net : the network (``output_stride``, ``prediction_stride``, ``head.kind``).
    input_shape : (H, W) of the network input, pixels.
    """
    if flat.ndim == 4:
        return flat
    height, width = input_shape
    stride = int(net.prediction_stride)
    if getattr(net.head, "kind", None) != "duc":
        return flat.reshape(flat.shape[:2] + (height // stride, width // stride))
    ratio = int(net.output_stride) // stride
    cells = flat.reshape(flat.shape[:2] + (ratio * ratio, height // int(net.output_stride),
                                           width // int(net.output_stride)))
    return np.ascontiguousarray(cells_to_pixels(cells, ratio))


class OnnxRuntimeForward:
    """ONNX Runtime (CPU provider, all graph optimizations) on the network's clean ONNX export
    (int8: its QDQ copy, :func:`runtime_model_bytes`; ``calibration`` and ``int8_fp32`` as
    in :func:`make_forward`)."""

    def __init__(self, net: Any, precision: str = "fp32", model_bytes: Optional[bytes] = None,
                 calibration: Optional[np.ndarray] = None, int8_fp32: Sequence[str] = INT8_FP32_DEFAULT,
                 conv_form: str = "direct", calibration_tile: Tuple[int, int] = CALIBRATION_TILE_DEFAULT,
                 int8_cache: Optional[str] = None) -> None:
        check_backend("onnxruntime", precision, conv_form)
        runtime = _runtime("onnxruntime")
        options = runtime.SessionOptions()
        options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_ENABLE_ALL
        model_bytes = runtime_model_bytes(net, "onnxruntime", precision, model_bytes, calibration, int8_fp32,
                                          conv_form, calibration_tile, int8_cache)
        self.net = net
        self.precision = precision
        self.session = runtime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, L, H/s, W/s) float32 probabilities."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        (flat,) = self.session.run(None, {INPUT_NAME: batch})
        return prediction_layout(flat, self.net, batch.shape[2:])


class OpenVINOForward:
    """OpenVINO's CPU plugin on the network's clean ONNX export (int8: its QDQ copy,
    :func:`runtime_model_bytes`; ``calibration`` and ``int8_fp32`` as in :func:`make_forward`),
    compiled for each input shape (the last one kept: keep shapes fixed, as with FastForward)."""

    def __init__(self, net: Any, precision: str = "fp32", model_bytes: Optional[bytes] = None,
                 calibration: Optional[np.ndarray] = None, int8_fp32: Sequence[str] = INT8_FP32_DEFAULT,
                 conv_form: str = "direct", calibration_tile: Tuple[int, int] = CALIBRATION_TILE_DEFAULT,
                 int8_cache: Optional[str] = None) -> None:
        check_backend("openvino", precision, conv_form)
        runtime = _runtime("openvino")
        self.core = runtime.Core()
        self.model = self.core.read_model(runtime_model_bytes(net, "openvino", precision, model_bytes,
                                                              calibration, int8_fp32, conv_form,
                                                              calibration_tile, int8_cache))
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
                 int8_fp32: Sequence[str] = INT8_FP32_DEFAULT, ctx: mx.Context = mx.cpu(),
                 model_bytes: Optional[bytes] = None, conv_form: str = "direct",
                 calibration_tile: Tuple[int, int] = CALIBRATION_TILE_DEFAULT, int8_cache: Optional[str] = None) -> Any:
    """The predictor forward of ``backend`` at ``precision`` (see the module docstring).

    Parameters
    ----------
    net : an initialised ``SegmentationNet``.
    backend : one of :data:`BACKENDS`; precision : one of its :data:`BACKEND_PRECISIONS`.
    calibration : int8 only, required: (K, 3, H, W) float32 network inputs (mean-subtracted RGB)
        whose ranges set the quantization (every backend: the same inputs).
    int8_fp32 : int8 only: the layer groups kept in fp32 (every backend: the same layers).
    ctx : mxnet only: the CPU context.
    model_bytes : the serialized clean ONNX export, to reuse it across precisions (None: export).
    conv_form : one of :data:`CONV_FORMS` (``taps``, ``phases``: the ONNX backends only).
    calibration_tile : int8, ONNX backends: (rows, cols) pixels of the calibration tiles.
    int8_cache : int8, ONNX backends: stem of the quantized model's cache file (None: none).
    """
    check_backend(backend, precision, conv_form)
    if backend == "mxnet":
        return FastForward(net, precision=precision, calibration=calibration, int8_fp32=int8_fp32, ctx=ctx)
    if backend == "openvino":
        return OpenVINOForward(net, precision, model_bytes, calibration, int8_fp32, conv_form, calibration_tile,
                               int8_cache)
    return OnnxRuntimeForward(net, precision, model_bytes, calibration, int8_fp32, conv_form, calibration_tile,
                              int8_cache)
