"""Post-training int8 quantization of the clean ONNX export into QDQ form, with onnx + NumPy only.

OpenVINO and ONNX Runtime both run a *pre-quantized* ONNX whose quantized convolutions read
``DequantizeLinear(QuantizeLinear(x))`` activations and ``DequantizeLinear(int8)`` weights:
OpenVINO turns each pair into a FakeQuantize and runs int8 convolutions (its low-precision
transformations), ONNX Runtime's CPU provider fuses ``DQ -> Conv (-> Relu) -> Q`` into
``QLinearConv``. The usual tools (NNCF, ``onnxruntime.quantization``) do not install with this
project's pins (numpy 1.23.5, onnx < 1.16), so :func:`quantize_qdq` writes that form itself:

* **calibration** (naive min/max, MXNet's ``calib_mode='naive'``): the fp32 model runs in ONNX
  Runtime on each calibration input (one image per run, as MXNet's ``quantize_net_v2`` with
  batch size 1), with ``ReduceMin`` / ``ReduceMax`` of every quantized convolution's activation
  input added as scalar graph outputs (:func:`activation_ranges`); the range of a tensor is the
  min / max over all images; a calibration image larger than the calibration tile is cut into
  tiles (:func:`calibration_tiles`) so that the calibration session holds the activations of one
  tile, not of the whole image (the network is fully convolutional: the ranges of tiles cover
  those of the image up to the tiles' borders);
* **activations** (:func:`activation_parameters`): per tensor; uint8 with zero point 0 and
  ``scale = max / 255`` when the tensor was never negative (after a ReLU or max-pool of one),
  else int8 symmetric ``scale = max|x| / 127``. One QuantizeLinear/DequantizeLinear pair per
  tensor, read by every quantized convolution of that tensor; other readers (the residual
  shortcut, fp32 convolutions) keep the fp32 tensor;
* **weights** (:func:`weight_parameters`): int8 symmetric per output channel (axis 0),
  ``scale_c = max|W_c| / 127``, values rounded half to even (as ONNX's QuantizeLinear) and
  stored as an int8 initializer read through a DequantizeLinear;
* **bias**: int32 per output channel with ``scale = activation scale * weight scale_c`` and zero
  point 0, read through a DequantizeLinear (ONNX Runtime fuses a convolution into
  ``QLinearConv`` only when all its inputs come from DequantizeLinear). Its rounding error is
  at most half of ``activation scale * scale_c`` per channel, below a thousandth of the int8
  activation step times the largest weight: the bias is in effect fp32.

Convolutions whose weight initializer is named in ``fp32_weights`` stay untouched (fp32);
which they are is the caller's choice (the inference layer maps MXNet's ``int8_fp32`` groups
onto weight names). The result is checked by ``onnx.checker`` at the model's opset (13).
"""
from __future__ import annotations

from typing import Collection, Dict, List, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tusimple_duc.errors import ConfigError

UINT8_MAX = 255
INT8_MAX = 127
INT32_MIN, INT32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max
#: scale of a tensor or weight channel that is zero everywhere (any positive value is exact)
ZERO_RANGE_SCALE = 1.0

Range = Tuple[float, float]


def quantized_convolutions(graph: onnx.GraphProto, fp32_weights: Collection[str] = ()) -> List[onnx.NodeProto]:
    """The Conv nodes of ``graph`` to quantize: constant weights not named in ``fp32_weights``."""
    constants = {init.name for init in graph.initializer}
    return [node for node in graph.node
            if node.op_type == "Conv" and node.input[1] in constants and node.input[1] not in fp32_weights]


def activation_ranges(model: onnx.ModelProto, tensors: Sequence[str], calibration: np.ndarray) -> Dict[str, Range]:
    """``{tensor: (min, max)}`` of the fp32 ``model``'s tensors over the calibration inputs.

    Parameters
    ----------
    model : a single-input float32 model.
    tensors : names of tensors of ``model.graph``.
    calibration : (K, 3, H, W) float32 inputs, run one at a time.
    """
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    del graph.output[:]
    outputs = []
    for name in tensors:
        for reduction in ("ReduceMin", "ReduceMax"):
            output = f"{name}/{reduction}"
            graph.node.append(helper.make_node(reduction, [name], [output], name=output, keepdims=0))
            graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, []))
            outputs.append(output)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = graph.input[0].name
    low = np.full(len(tensors), np.inf)
    high = np.full(len(tensors), -np.inf)
    for image in np.asarray(calibration, dtype=np.float32):
        values = np.asarray(session.run(outputs, {input_name: image[None]}), dtype=np.float64).reshape(-1, 2)
        low = np.minimum(low, values[:, 0])
        high = np.maximum(high, values[:, 1])
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(tensors, low, high)}


def calibration_tiles(calibration: np.ndarray, tile: Tuple[int, int], stride: int) -> np.ndarray:
    """The calibration inputs cut into non-overlapping tiles of at most ``tile`` (H, W) pixels.

    Parameters
    ----------
    calibration : (K, 3, H, W) float32 network inputs, H and W multiples of ``stride``.
    tile : (rows, cols) pixels of a tile; a side at least the image's keeps the whole side.
    stride : the network's output stride: a tile's sides are rounded down to its multiples
        (at least one stride).

    Returns
    -------
    (T * K, 3, h, w) float32, T = ceil(H / h) * ceil(W / w) tiles per image (tile-major); the
    last row / column of tiles ends at the image's edge (it overlaps the one before it when
    h does not divide H), so every pixel is in a tile and every tile has the same size.
    """
    images = np.asarray(calibration, dtype=np.float32)
    height, width = images.shape[2:]
    rows, cols = (min(side, max(stride, want // stride * stride)) for side, want in zip((height, width), tile))
    if (rows, cols) == (height, width):
        return images
    tops = sorted({min(top, height - rows) for top in range(0, height, rows)})
    lefts = sorted({min(left, width - cols) for left in range(0, width, cols)})
    return np.ascontiguousarray(np.concatenate([images[:, :, top:top + rows, left:left + cols]
                                                for top in tops for left in lefts]))


def activation_parameters(low: float, high: float) -> Tuple[np.ndarray, np.ndarray]:
    """(scale float32 scalar, zero point scalar) of a tensor seen in [``low``, ``high``]:
    uint8 with zero point 0 when ``low >= 0``, else int8 symmetric (both with the range
    extended to include 0, as every quantizer does)."""
    if low >= 0:
        scale, zero_point = high / UINT8_MAX, np.uint8(0)
    else:
        scale, zero_point = max(-low, high) / INT8_MAX, np.int8(0)
    return np.array(scale if scale > 0 else ZERO_RANGE_SCALE, dtype=np.float32), np.array(zero_point)


def weight_parameters(weight: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(int8 values like ``weight``, float32 scales (C_out,)) of the symmetric per-output-channel
    quantization of a (C_out, C_in, kh, kw) weight: ``scale_c = max|W_c| / 127``,
    ``q = round_half_even(W / scale_c)``."""
    peak = np.abs(weight).reshape(len(weight), -1).max(axis=1)
    scale = np.where(peak > 0, peak / INT8_MAX, ZERO_RANGE_SCALE).astype(np.float32)
    shaped = scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    values = np.clip(np.round(weight.astype(np.float32) / shaped), -INT8_MAX, INT8_MAX)
    return values.astype(np.int8), scale


def quantize_qdq(model: onnx.ModelProto, calibration: np.ndarray,
                 fp32_weights: Collection[str] = ()) -> onnx.ModelProto:
    """The QDQ int8 copy of a clean fp32 ONNX ``model`` (see the module docstring).

    Parameters
    ----------
    model : a model of :func:`tusimple_duc.io.export.onnx_model` (opset 13, weights as
        initializers, BatchNorm folded).
    calibration : (K, 3, H, W) float32 network inputs (mean-subtracted RGB), K >= 1.
    fp32_weights : weight initializer names whose convolutions stay fp32.

    Raises
    ------
    ConfigError : no calibration input or no convolution left to quantize.
    onnx.checker.ValidationError : the result is not a valid model (a bug).
    """
    if calibration is None or np.ndim(calibration) != 4 or len(calibration) == 0:
        raise ConfigError("int8 quantization needs calibration inputs, a non-empty (N, 3, H, W) float32 array")
    convolutions = quantized_convolutions(model.graph, fp32_weights)
    if not convolutions:
        raise ConfigError("int8 quantization: every convolution is kept fp32, nothing to quantize")
    activations = sorted({node.input[0] for node in convolutions})
    ranges = activation_ranges(model, activations, calibration)
    quantized = onnx.ModelProto()
    quantized.CopyFrom(model)
    graph = quantized.graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    chosen = {node.output[0] for node in convolutions}
    replaced = {name for node in convolutions for name in node.input[1:]}
    initializers = [init for init in graph.initializer if init.name not in replaced]
    nodes: List[onnx.NodeProto] = []
    activation_scales: Dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type == "Conv" and node.output[0] in chosen:
            name = node.input[0]
            if name not in activation_scales:
                scale, zero_point = activation_parameters(*ranges[name])
                activation_scales[name] = scale
                initializers += [numpy_helper.from_array(scale, f"{name}/scale"),
                                 numpy_helper.from_array(zero_point, f"{name}/zero_point")]
                nodes += [helper.make_node("QuantizeLinear", [name, f"{name}/scale", f"{name}/zero_point"],
                                           [f"{name}/quantized"], name=f"{name}/QuantizeLinear"),
                          helper.make_node("DequantizeLinear", [f"{name}/quantized", f"{name}/scale",
                                                                f"{name}/zero_point"],
                                           [f"{name}/dequantized"], name=f"{name}/DequantizeLinear")]
            node.input[0] = f"{name}/dequantized"
            nodes += _weight_nodes(node, weights, activation_scales[name], initializers)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(quantized, full_check=True)
    return quantized


def _weight_nodes(conv: onnx.NodeProto, weights: Dict[str, np.ndarray], activation_scale: np.ndarray,
                  initializers: List[onnx.TensorProto]) -> List[onnx.NodeProto]:
    """DequantizeLinear nodes giving ``conv`` its weight (int8) and bias (int32) back under their
    fp32 names; their initializers are appended to ``initializers``."""
    weight_name = conv.input[1]
    values, scale = weight_parameters(weights[weight_name])
    stored = [(weight_name, values, scale, np.zeros(len(scale), dtype=np.int8))]
    if len(conv.input) > 2:
        bias_scale = (activation_scale * scale).astype(np.float32)
        bias = np.clip(np.round(weights[conv.input[2]].astype(np.float64) / bias_scale), INT32_MIN, INT32_MAX)
        stored.append((conv.input[2], bias.astype(np.int32), bias_scale, np.zeros(len(scale), dtype=np.int32)))
    nodes = []
    for name, integers, scales, zero_points in stored:
        initializers += [numpy_helper.from_array(integers, f"{name}/quantized"),
                         numpy_helper.from_array(scales, f"{name}/scale"),
                         numpy_helper.from_array(zero_points, f"{name}/zero_point")]
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}/quantized", f"{name}/scale",
                                                           f"{name}/zero_point"],
                                      [name], name=f"{name}/DequantizeLinear", axis=0))
    return nodes
