"""Dilated 3x3 convolutions of an ONNX graph rewritten as sums of shifted 1x1 convolutions.

A 3x3 convolution with dilation ``d``, stride 1 and padding ``d`` is, exactly, the sum over its
nine taps ``(i, j)`` of a 1x1 convolution with the tap's weights ``W[:, :, i, j]`` applied to the
input shifted by ``((i - 1) d, (j - 1) d)``::

    y = bias + sum_{i, j} conv1x1(pad(x, d)[:, :, i d : i d + H, j d : j d + W], W[:, :, i, j])

The rewrite pads once, cuts the nine windows with ``Slice`` (ends relative to the far edge, so the
graph keeps its dynamic height and width), runs nine 1x1 ``Conv`` nodes (the bias on the first)
and adds them with one ``Sum``. The arithmetic is the same products summed in another order
(float32 rounding, about 1e-6 relative).

Why: a runtime's dilated kernels can be much slower than its 1x1 kernels at some precision.
OpenVINO's AMX bf16 convolutions on the DUC head's ASPP branches (3x3, 2048 -> L r^2,
dilation 6-24) are slower than its fp32 ones on the Xeon of docs/PERFORMANCE.md, while 1x1
convolutions are its fastest kernels; on other CPUs and at fp32 the direct form can be faster.
Which form is faster is therefore measured, never assumed (``[inference] dilated_conv_form``).
"""
from __future__ import annotations

from typing import Callable, Collection, List

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tusimple_duc.io.onnx_graph import ONNX_OPSET, remove_unused_initializers

INT64_MAX = np.iinfo(np.int64).max


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def tap_dilation(node: onnx.NodeProto, weights: dict) -> int:
    """The dilation ``d`` of a Conv the rewrite applies to (3x3 weights held as an initializer,
    equal dilations > 1, stride 1, padding ``d`` on every side, one group, no auto_pad); 0 otherwise."""
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
        return 0
    attributes = _attributes(node)
    if weights[node.input[1]].shape[2:] != (3, 3) or attributes.get("group", 1) != 1:
        return 0
    dilations = list(attributes.get("dilations", [1, 1]))
    d = dilations[0]
    auto_pad = attributes.get("auto_pad", b"NOTSET")
    if (d < 2 or dilations != [d, d] or list(attributes.get("strides", [1, 1])) != [1, 1]
            or list(attributes.get("pads", [0, 0, 0, 0])) != [d] * 4 or auto_pad not in (b"NOTSET", "NOTSET")):
        return 0
    return int(d)


def _window_end(tap: int, dilation: int) -> int:
    """End of tap ``tap``'s window along a padded axis of size ``n + 2 d``: ``n + tap d``."""
    return -(2 - tap) * dilation if tap < 2 else int(INT64_MAX)


def _taps_nodes(node: onnx.NodeProto, weight: np.ndarray, dilation: int, graph: onnx.GraphProto) -> List[onnx.NodeProto]:
    """The nodes replacing ``node`` (their initializers appended to ``graph``)."""
    base = node.output[0]
    constants = {
        f"{base}_taps_pads": np.array([0, 0, dilation, dilation, 0, 0, dilation, dilation], dtype=np.int64),
        f"{base}_taps_axes": np.array([2, 3], dtype=np.int64),
    }
    padded = f"{base}_taps_padded"
    nodes = [helper.make_node("Pad", [node.input[0], f"{base}_taps_pads"], [padded], name=f"{base}_taps_pad")]
    partial_sums = []
    for i in range(3):
        for j in range(3):
            tap = f"{base}_tap{i}{j}"
            constants[f"{tap}_starts"] = np.array([i * dilation, j * dilation], dtype=np.int64)
            constants[f"{tap}_ends"] = np.array([_window_end(i, dilation), _window_end(j, dilation)], dtype=np.int64)
            constants[f"{tap}_weight"] = np.ascontiguousarray(weight[:, :, i:i + 1, j:j + 1])
            nodes.append(helper.make_node("Slice", [padded, f"{tap}_starts", f"{tap}_ends", f"{base}_taps_axes"],
                                          [f"{tap}_window"], name=f"{tap}_slice"))
            inputs = [f"{tap}_window", f"{tap}_weight"] + (list(node.input[2:3]) if (i, j) == (0, 0) else [])
            nodes.append(helper.make_node("Conv", inputs, [f"{tap}_out"], name=f"{tap}_conv", kernel_shape=[1, 1]))
            partial_sums.append(f"{tap}_out")
    nodes.append(helper.make_node("Sum", partial_sums, [base], name=f"{base}_taps_sum"))
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    return nodes


RewriteFn = Callable[[onnx.NodeProto, np.ndarray, int, onnx.GraphProto], List[onnx.NodeProto]]


def rewrite_dilated_convs(model: onnx.ModelProto, weight_names: Collection[str], rewrite: RewriteFn,
                          form: str) -> onnx.ModelProto:
    """A copy of ``model`` whose dilated 3x3 convolutions with a weight named in ``weight_names``
    (and the form :func:`tap_dilation` accepts) are replaced by ``rewrite(node, weight, d, graph)``'s
    nodes (which append their initializers to ``graph``); other nodes are unchanged.

    Raises ValueError naming the first of ``weight_names`` that is not such a convolution's weight
    (``form``: the rewrite's name, for the message).
    """
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    graph = rewritten.graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes: List[onnx.NodeProto] = []
    done = set()
    for node in graph.node:
        dilation = tap_dilation(node, weights)
        if dilation and node.input[1] in weight_names:
            nodes.extend(rewrite(node, weights[node.input[1]], dilation, graph))
            done.add(node.input[1])
        else:
            nodes.append(node)
    missing = sorted(set(weight_names) - done)
    if missing:
        raise ValueError(f"dilated_conv_{form}: {missing[0]} is not the weight of a dilated 3x3 convolution "
                         f"(stride 1, padding = dilation, one group) of the graph")
    del graph.node[:]
    graph.node.extend(nodes)
    remove_unused_initializers(graph)
    del rewritten.opset_import[:]
    rewritten.opset_import.append(helper.make_opsetid("", ONNX_OPSET))
    onnx.checker.check_model(rewritten, full_check=True)
    return rewritten


def dilated_conv_taps(model: onnx.ModelProto, weight_names: Collection[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose dilated 3x3 convolutions with a weight named in ``weight_names``
    (and the form :func:`tap_dilation` accepts) are rewritten as shifted 1x1 convolutions
    (module docstring); other nodes are unchanged.

    Raises ValueError naming the first of ``weight_names`` that is not such a convolution's weight.
    """
    return rewrite_dilated_convs(model, weight_names, _taps_nodes, "taps")
