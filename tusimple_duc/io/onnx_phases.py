"""Dilated 3x3 convolutions of an ONNX graph rewritten as dense 3x3 convolutions on the d x d phases.

A 3x3 convolution with dilation ``d``, stride 1 and padding ``d`` only ever combines pixels whose
rows and columns are congruent modulo ``d``: it is, exactly, an ordinary 3x3 convolution
(dilation 1, padding 1) applied to each of the ``d * d`` phase images ``x[:, :, a::d, b::d]``
(TensorFlow's "atrous convolution by space-to-batch")::

    y[:, :, a + d r, b + d c] = conv3x3(x[:, :, a::d, b::d], W)[:, :, r, c]

The rewrite pads the bottom and right edges with zeros to multiples of ``d`` (the zeros the
convolution's own padding would read), moves the phases into the batch (``SpaceToDepth``, then a
``Reshape`` to (N d d, C, H'/d, W'/d): no copy), runs ONE dense 3x3 ``Conv`` with the original
weights and bias, and undoes the move (``Reshape``, ``DepthToSpace`` in DCR order) before
cutting the padding off. The padding amounts come from the input's ``Shape``: the graph keeps its
dynamic height and width. The products are the same, summed in another order (float32 rounding).

Against the taps form (:mod:`tusimple_duc.io.onnx_taps`: nine shifted windows, each a copy of the
input) it holds about one extra copy of the input and of the output instead of nine of each; it
computes up to ``(H + d - 1)(W + d - 1) / (H W)`` times the direct form's multiply-adds (the
padding rows: 1.27x for d = 24 at 64 x 128). Which form is fastest is measured, never assumed
(``[inference] dilated_conv_form``).
"""
from __future__ import annotations

from typing import Collection, List

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tusimple_duc.io.onnx_taps import rewrite_dilated_convs


def _phase_nodes(node: onnx.NodeProto, weight: np.ndarray, dilation: int, graph: onnx.GraphProto) -> List[onnx.NodeProto]:
    """The nodes replacing ``node`` (their initializers appended to ``graph``)."""
    base = node.output[0]
    name = lambda suffix: f"{base}_phases_{suffix}"  # noqa: E731
    channels_in, channels_out = weight.shape[1], weight.shape[0]
    constants = {
        name("hw_starts"): np.array([2], dtype=np.int64), name("hw_ends"): np.array([4], dtype=np.int64),
        name("d"): np.array([dilation, dilation], dtype=np.int64),
        name("zeros"): np.zeros(6, dtype=np.int64),
        name("crop_starts"): np.zeros(2, dtype=np.int64),
        name("axes"): np.array([2, 3], dtype=np.int64),
        name("to_batch"): np.array([-1, channels_in, 0, 0], dtype=np.int64),
        name("to_channels"): np.array([-1, dilation * dilation * channels_out, 0, 0], dtype=np.int64),
    }
    source = node.input[0]
    nodes = [
        helper.make_node("Shape", [source], [name("shape")], name=name("shape")),
        helper.make_node("Slice", [name("shape"), name("hw_starts"), name("hw_ends")], [name("hw")], name=name("hw")),
        helper.make_node("Mod", [name("hw"), name("d")], [name("rest")], name=name("rest")),
        helper.make_node("Sub", [name("d"), name("rest")], [name("short")], name=name("short")),
        helper.make_node("Mod", [name("short"), name("d")], [name("pad_end")], name=name("pad_end")),
        helper.make_node("Concat", [name("zeros"), name("pad_end")], [name("pads")], name=name("pads"), axis=0),
        helper.make_node("Pad", [source, name("pads")], [name("padded")], name=name("pad")),
        helper.make_node("SpaceToDepth", [name("padded")], [name("phases")], name=name("space_to_depth"),
                         blocksize=dilation),
        helper.make_node("Reshape", [name("phases"), name("to_batch")], [name("batch")], name=name("to_batch")),
        helper.make_node("Conv", [name("batch"), *node.input[1:]], [name("conv")], name=name("conv"),
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", [name("conv"), name("to_channels")], [name("channels")], name=name("to_channels")),
        helper.make_node("DepthToSpace", [name("channels")], [name("full")], name=name("depth_to_space"),
                         blocksize=dilation, mode="DCR"),
        helper.make_node("Slice", [name("full"), name("crop_starts"), name("hw"), name("axes")], [base], name=name("crop")),
    ]
    graph.initializer.extend(numpy_helper.from_array(value, key) for key, value in constants.items())
    return nodes


def dilated_conv_phases(model: onnx.ModelProto, weight_names: Collection[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose dilated 3x3 convolutions with a weight named in ``weight_names``
    (stride 1, padding = dilation, one group: :func:`~tusimple_duc.io.onnx_taps.tap_dilation`)
    run as one dense 3x3 convolution on the ``d * d`` phases (module docstring).

    Raises ValueError naming the first of ``weight_names`` that is not such a convolution's weight.
    """
    return rewrite_dilated_convs(model, weight_names, _phase_nodes, "phases")
