"""Clean up an ONNX graph written by MXNet's ``mx.onnx.export_model`` (mx2onnx 1.9.1).

mx2onnx lists every weight both as an initializer and as a graph input. ONNX Runtime then
warns once per weight ("Initializer ... appears in graph inputs and will not be treated as
constant") and cannot fold constants, since a caller could override any of them. It also keeps
every inference BatchNormalization as its own node and divides the softmax input by a
temperature of 1. :func:`clean_model` rewrites the ModelProto (no new exporter):

1. weights become initializers only (removed from ``graph.input``);
2. each BatchNormalization that directly follows a convolution used by nothing else is folded
   into it: ``W' = W * s``, ``b' = (b - mean) * s + beta`` per output channel with
   ``s = gamma / sqrt(var + eps)``, computed in float64 and stored in float32. An inference
   BatchNormalization uses its stored (global) statistics, so this is exact up to float32
   rounding (about 1e-7 relative);
3. a division by a constant 1 is removed (``x / 1 == x`` exactly);
4. initializers no node reads any more are dropped;
5. dynamic dimensions get names (``batch``, ``height``, ...) and the opset import is set to
   :data:`ONNX_OPSET`, then ``onnx.checker`` validates the graph against that opset.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import numpy_helper

#: the ONNX opset the export declares: the newest opset of mx2onnx 1.9.1's operator
#: translations (``mxnet/onnx/mx2onnx/_op_translations``), supported by ONNX Runtime >= 1.6
#: and every OpenVINO release since 2021.
ONNX_OPSET = 13

DimName = Union[str, int, None]


def clean_model(model: onnx.ModelProto, input_dims: Dict[str, Sequence[DimName]],
                output_dims: Dict[str, Sequence[DimName]]) -> onnx.ModelProto:
    """The cleaned copy of ``model`` (see the module docstring).

    Parameters
    ----------
    model : an mx2onnx ModelProto.
    input_dims, output_dims : per graph input / output name, one entry per dimension: a name
        for a dynamic dimension, an int for a fixed one, None to leave it as it is.

    Raises
    ------
    onnx.checker.ValidationError : the result is not a valid opset-:data:`ONNX_OPSET` model.
    """
    cleaned = onnx.ModelProto()
    cleaned.CopyFrom(model)
    graph = cleaned.graph
    weights = {init.name for init in graph.initializer}
    kept_inputs = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    fold_batch_norms(graph)
    remove_unit_divisions(graph)
    remove_unused_initializers(graph)
    for value in graph.input:
        _name_dims(value, input_dims.get(value.name, ()))
    for value in graph.output:
        _name_dims(value, output_dims.get(value.name, ()))
    del cleaned.opset_import[:]
    cleaned.opset_import.append(onnx.helper.make_opsetid("", ONNX_OPSET))
    onnx.checker.check_model(cleaned, full_check=True)
    return cleaned


def _initializer_arrays(graph: onnx.GraphProto) -> Dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _consumers(graph: onnx.GraphProto) -> Counter:
    """How many node inputs (and graph outputs) read each tensor name."""
    counts: Counter = Counter(name for node in graph.node for name in node.input if name)
    counts.update(value.name for value in graph.output)
    return counts


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _set_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> None:
    tensor = numpy_helper.from_array(value.astype(np.float32), name)
    for index, init in enumerate(graph.initializer):
        if init.name == name:
            graph.initializer[index].CopyFrom(tensor)
            return
    graph.initializer.append(tensor)


def fold_batch_norms(graph: onnx.GraphProto) -> int:
    """Fold every BatchNormalization that follows a Conv with constant weights into that Conv,
    in place (see the module docstring); returns how many were folded."""
    arrays = _initializer_arrays(graph)
    consumers = _consumers(graph)
    producer = {output: node for node in graph.node for output in node.output}
    folded = []
    for bn in graph.node:
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1 or _attribute(bn, "training_mode", 0):
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or consumers[bn.input[0]] != 1:
            continue
        stats = list(bn.input[1:5])
        conv_weights = list(conv.input[1:])
        if not all(name in arrays for name in stats + conv_weights):
            continue
        if any(consumers[name] != 1 for name in conv_weights):
            continue
        gamma, beta, mean, var = (arrays[name].astype(np.float64) for name in stats)
        scale = gamma / np.sqrt(var + float(_attribute(bn, "epsilon", 1e-5)))
        weight = arrays[conv.input[1]].astype(np.float64)
        bias = arrays[conv.input[2]].astype(np.float64) if len(conv.input) > 2 else np.zeros(len(weight))
        _set_initializer(graph, conv.input[1], weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)))
        bias_name = conv.input[2] if len(conv.input) > 2 else f"{conv.input[1]}/folded_bias"
        _set_initializer(graph, bias_name, (bias - mean) * scale + beta)
        if len(conv.input) < 3:
            conv.input.append(bias_name)
        conv.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        graph.node.remove(bn)
    return len(folded)


def remove_unit_divisions(graph: onnx.GraphProto) -> int:
    """Remove every ``Div(x, c)`` whose constant ``c`` is all ones, in place (its readers read
    ``x``); returns how many."""
    arrays = _initializer_arrays(graph)
    outputs = {value.name for value in graph.output}
    removed = []
    for node in graph.node:
        divisor: Optional[np.ndarray] = arrays.get(node.input[1]) if node.op_type == "Div" else None
        if divisor is None or not np.all(divisor == 1) or node.output[0] in outputs:
            continue
        for reader in graph.node:
            for index, name in enumerate(reader.input):
                if name == node.output[0]:
                    reader.input[index] = node.input[0]
        removed.append(node)
    for node in removed:
        graph.node.remove(node)
    return len(removed)


def remove_unused_initializers(graph: onnx.GraphProto) -> None:
    """Drop the initializers no node reads, in place."""
    used = set(_consumers(graph))
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _name_dims(value: onnx.ValueInfoProto, dims: Sequence[DimName]) -> None:
    shape = value.type.tensor_type.shape
    for dim, wanted in zip(shape.dim, dims):
        if isinstance(wanted, int):
            dim.dim_value = wanted
        elif isinstance(wanted, str):
            dim.dim_param = wanted
